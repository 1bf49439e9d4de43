"""The person-bearing record table: field parsing and which records a stream contributes."""

from __future__ import annotations

import datetime as dt

import duckdb
import pytest

from islandbridge.config import parse_as_of
from islandbridge.identity.records import (
    PERSON_STREAMS,
    born_by,
    load_records,
    parse_birth,
    parse_sex,
    person_streams,
)
from islandbridge.privacy.configured import open_vault
from islandbridge.privacy.sealing import SealedColumns


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        ("1944-01-18", ("1944-01-18", "1944-01")),
        ("19440118", ("1944-01-18", "1944-01")),
        ("1944.01", (None, "1944-01")),
        ("1944-02-30", (None, None)),
        (None, (None, None)),
        ("", (None, None)),
    ],
)
def test_declared_birth_dates_parse_in_every_source_format(raw, expected):
    assert parse_birth(raw) == expected


@pytest.mark.parametrize(
    ("raw", "expected"), [("1", "M"), ("2", "F"), ("男", "M"), ("女", "F"), ("", None), (None, None)]
)
def test_sex_codes_of_every_source_map_to_m_or_f(raw, expected):
    assert parse_sex(raw) == expected


def test_born_by_is_the_latest_plausible_birth_date():
    assert born_by(dt.datetime(2026, 11, 21, tzinfo=dt.UTC), 16) == "2010-11-21"
    assert born_by(dt.datetime(2028, 2, 29, tzinfo=dt.UTC), 7) == "2021-02-28"
    assert born_by(dt.datetime(2026, 11, 21, tzinfo=dt.UTC), None) is None


def test_roster_scopes_keep_one_month_and_living_registry_rows_apart():
    specs = {(s.system, s.stream): s for s in PERSON_STREAMS}
    assert specs["civil_affairs", "dibao"].scope("dibao:202611:12") == "civil_affairs/dibao:202611"
    assert specs["resident_registry", "t_jm"].scope("t_jm:1", "1") is not None
    assert specs["resident_registry", "t_jm"].scope("t_jm:1", "2") is None
    assert specs["iot_platform", "cardholders"].scope("cardholders:H1") is None


def test_the_record_table_holds_every_truth_record_in_the_truth_format(street):
    """Every person-bearing record the truth names is in the table, keyed exactly as the truth keys it."""
    import csv

    with (
        duckdb.connect(str(street.synced_warehouse), read_only=True) as con,
        open_vault(street.settings) as vault,
    ):
        records = load_records(
            con, person_streams(street.settings), parse_as_of("2026-11-20"), SealedColumns(vault)
        )
    with (street.truth / "records.csv").open(encoding="utf-8") as f:
        truth = {(r["system"], r["record_key"]) for r in csv.DictReader(f)}
    found = set(zip(records["system"].to_pylist(), records["record_key"].to_pylist(), strict=True))
    assert found == truth
    assert records["uid"].to_pylist() == list(range(records.num_rows))


def test_every_record_is_placed_in_its_community_and_registry_rows_are_marked(street):
    """Records with an estate take its community from the registry; the rosters name theirs (所属社区)."""
    with (
        duckdb.connect(str(street.synced_warehouse), read_only=True) as con,
        open_vault(street.settings) as vault,
    ):
        records = load_records(
            con, person_streams(street.settings), parse_as_of("2026-11-20"), SealedColumns(vault)
        ).to_pylist()
        communities = dict(con.execute("SELECT DISTINCT xqbm, sqmc FROM raw.registry__t_xq").fetchall())
    housed = [r for r in records if r["house_key"]]
    assert housed and all(r["community"] == communities[r["house_key"].split("|")[0]] for r in housed)
    seniors = [r for r in records if r["system"] == "civil_affairs" and r["record_key"].startswith("senior:")]
    assert seniors and all(r["community"] in communities.values() for r in seniors)
    assert all(r["registered"] == (r["system"] == "resident_registry") for r in records)


def test_an_address_without_its_estate_is_placed_by_the_one_house_of_its_grid_with_that_room(warehouse_copy):
    """`3栋2单元501` with grid code G: the flat is the registry house of grid G with that building/unit/room."""
    from collections import Counter

    from islandbridge.transforms.normalize import house_key
    from tests.identity.support import add_run, land

    with duckdb.connect(str(warehouse_copy.warehouse_path)) as con:
        houses = con.execute(
            "SELECT DISTINCT f.xqbm, f.ld, f.dy, f.fh, f.wgbm, x.sqmc FROM raw.registry__t_fw f "
            "JOIN raw.registry__t_xq x USING (xqbm)"
        ).fetchall()
        slots = Counter((h[4], house_key(*h[:4]).split("|", 1)[1]) for h in houses)
        estate, ld, dy, fh, grid, community = next(
            h for h in houses if slots[(h[4], house_key(*h[:4]).split("|", 1)[1])] == 1
        )
        run_id, _ = add_run(con, "2026-11-21")
        address = f"{ld.removesuffix('栋')}栋{dy}单元{fh}室"
        for person_id, grid_code in (("GP900011", grid), ("GP900012", "no-such-grid")):
            land(
                con,
                "grid__residents",
                run_id,
                f"residents:{person_id}",
                {
                    "person_id": person_id,
                    "name": "司徒晓岚",
                    "gender": "女",
                    "address": address,
                    "grid_code": grid_code,
                },
                warehouse_copy,
            )
        with open_vault(warehouse_copy) as vault:
            records = load_records(
                con, person_streams(warehouse_copy), parse_as_of("2026-11-21"), SealedColumns(vault)
            )
    placed = {
        r["record_key"]: r
        for r in records.to_pylist()
        if r["record_key"] in ("residents:GP900011", "residents:GP900012")
    }
    assert placed["residents:GP900011"]["house_key"] == house_key(estate, ld, dy, fh)
    assert placed["residents:GP900011"]["community"] == community.replace(" ", "")
    assert placed["residents:GP900012"]["house_key"] is None
    assert placed["residents:GP900012"]["room_key"] == house_key(estate, ld, dy, fh).split("|", 1)[1]


def test_roster_ids_ending_in_000_are_excel_damage_but_registry_ids_are_not():
    """The same checksum-valid ``…000`` number: damage in a civil roster (typed in Excel), an ID in the
    registry (typed into a database)."""
    import pyarrow as pa

    from islandbridge.identity.records import Places, _features

    specs = {(s.system, s.stream): s for s in PERSON_STREAMS}
    table = pa.table(
        {
            "record_key": ["k:1"],
            "first_seen_run": ["r1"],
            "last_seen_run": ["r1"],
            "r_name": ["张三"],
            "r_id_number": ["360102200210121000"],
        }
    )
    places = Places({}, {}, {})
    as_of = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
    ids = {
        key: _features(table, specs[key], places, as_of)["id_full"].to_pylist()
        for key in (("civil_affairs", "senior"), ("civil_affairs", "dibao"), ("resident_registry", "t_jm"))
    }
    assert ids == {
        ("civil_affairs", "senior"): [None],
        ("civil_affairs", "dibao"): [None],
        ("resident_registry", "t_jm"): ["360102200210121000"],
    }


def test_a_childs_legacy_number_gets_the_century_of_its_declared_birth_date():
    """Registry row born 2012-01-08 with a 15-digit number: the number, the birth date and the masked
    signature are the child's, not those of someone born 1912; an adult's legacy number keeps 19yy."""
    import pyarrow as pa

    from islandbridge.identity.records import Places, _features
    from tests.identity.support import make_id

    child, adult = make_id(born=dt.date(2012, 1, 8)), make_id(born=dt.date(1960, 4, 9))
    registry = {(s.system, s.stream): s for s in PERSON_STREAMS}[("resident_registry", "t_jm")]
    table = pa.table(
        {
            "record_key": ["t_jm:1", "t_jm:2"],
            "first_seen_run": ["r1", "r1"],
            "last_seen_run": ["r1", "r1"],
            "r_name": ["章博", "章大"],
            "r_id_number": [child[:6] + child[8:17], adult[:6] + adult[8:17]],
            "r_birth_date": ["2012-01-08", None],
        }
    )
    out = _features(table, registry, Places({}, {}, {}), dt.datetime(2026, 11, 21, tzinfo=dt.UTC))
    assert out["id_full"].to_pylist() == [child, adult]
    assert out["birth"].to_pylist() == ["2012-01-08", "1960-04-09"]
    assert out["id_ps"].to_pylist() == [child[:6] + child[-4:], adult[:6] + adult[-4:]]
