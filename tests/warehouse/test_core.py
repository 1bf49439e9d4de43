"""The core model on small hand-made raw tables: history, devices events, idempotency and atomicity."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pytest

from islandbridge.landing import raw
from islandbridge.landing.folder_owner import is_marker
from islandbridge.schemas import load_tables
from islandbridge.warehouse import device_events
from islandbridge.warehouse.core import (
    SCRUBBED_READS,
    STAGES,
    TABLES,
    CoreBuildError,
    build_core,
    sources_of,
)
from tests.warehouse.test_core_fixtures import HOUR_MS, TinyWarehouse, as_of, ms, resident, street

T1 = as_of(dt.date(2026, 11, 19))
T2 = as_of(dt.date(2026, 11, 20))
CORE = [f"core.{t}" for t in TABLES] + ["core.device_event_files", "core.device_event_runs"]


@pytest.fixture
def w(tmp_path):
    warehouse = TinyWarehouse(tmp_path / "wh.duckdb")
    yield warehouse
    warehouse.close()


def build(w: TinyWarehouse, t: dt.datetime, events: Path) -> dict[str, int]:
    return build_core(w.con, t, raw.run_id_for(t), events)


def event(
    event_id: str,
    ts: int,
    *,
    holder: str | None = "H1",
    device: str = "DR1",
    kind: str = "access_granted",
    value: int | None = None,
) -> dict:
    return {
        "event_id": event_id,
        "ts": ts,
        "device_id": device,
        "type": kind,
        "holder_id": holder,
        "value": value,
        "alarm_code": None,
    }


def iot(w: TinyWarehouse, run_id: str) -> None:
    w.add(
        "iot__devices",
        run_id,
        [
            {
                "device_id": "DR1",
                "device_type": "door_access",
                "estate_code": "XQ001",
                "building": "3",
                "unit": "1",
                "room": None,
                "status": "online",
                "installed_at": "2024-03-01T00:00:00Z",
            }
        ],
    )
    w.add(
        "iot__cardholders",
        run_id,
        [
            {
                "holder_id": "H1",
                "estate_code": "xq001",
                "building": "3栋",
                "unit": "1",
                "room": "501",
                "face_enrolled": "true",
                "valid_until": "2027-12-31",
            }
        ],
    )


def files_on_disk(root: Path) -> dict[str, bytes]:
    """The files under ``root`` but its owner marker (`folder_owner.is_marker`: which warehouse owns it)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and not (p.parent == root and is_marker(p))
    }


def test_a_person_who_moved_out_and_back_lives_here_with_two_residency_rows(w, tmp_path):
    run = w.run(T1)
    street(w, run)
    old, new = w.add(
        "registry__t_jm",
        run,
        [
            resident(
                100,
                "FW1",
                "1950-03-01",
                zt="2",
                rzrq="2015-01-01",
                zxrq="2023-05-01",
                cjsj="2015-01-01 09:00:00",
            ),
            resident(200, "FW4", "1950-03-01", zt="1", rzrq="2025-02-01", cjsj="2025-02-01 09:00:00"),
        ],
    )
    w.link("pk_a", ("registry", old), ("registry", new))
    build(w, T1, tmp_path / "events")
    rows = w.con.execute(
        "SELECT record_key, status, valid_from, valid_to, is_person_current FROM core.residency "
        "WHERE person_key = 'pk_a' ORDER BY record_key"
    ).fetchall()
    assert rows == [
        ("t_jm:100", 2, dt.date(2015, 1, 1), dt.date(2023, 5, 1), False),
        ("t_jm:200", 1, dt.date(2025, 2, 1), None, True),
    ]
    person = w.con.execute(
        "SELECT registry_status, exit_date, estate_code, house_id, age, is_living_alone "
        "FROM core.persons WHERE person_key = 'pk_a'"
    ).fetchall()
    assert person == [(1, None, "XQ002", "FW4", 76, True)]


def test_a_changed_registry_row_closes_its_version_and_an_unchanged_one_adds_none(w, tmp_path):
    r1, r2, t3 = w.run(T1), w.run(T2), as_of(dt.date(2026, 11, 21))
    r3 = w.run(t3)
    street(w, r1)
    (key,) = w.add("registry__t_jm", r1, [resident(300, "FW2", "1940-01-01")])
    w.add("registry__t_jm", r2, [resident(300, "FW2", "1940-01-01", zt="3", zxrq="2026-11-20")])
    w.add("registry__t_jm", r3, [resident(300, "FW2", "1940-01-01", zt="3", zxrq="2026-11-20")])
    w.link("pk_b", ("registry", key))
    build(w, t3, tmp_path / "events")
    versions = w.con.execute(
        "SELECT status, valid_to, recorded_from, recorded_to, is_current FROM core.residency "
        "ORDER BY recorded_from"
    ).fetchall()
    assert versions == [(1, None, T1, T2, False), (3, dt.date(2026, 11, 20), T2, None, True)]
    assert w.con.execute("SELECT registry_status, exit_date FROM core.persons").fetchall() == [
        (3, dt.date(2026, 11, 20))
    ]
    build(w, T1, tmp_path / "events")  # an earlier as-of sees only what was known then
    assert w.con.execute("SELECT status, is_current FROM core.residency").fetchall() == [(1, True)]


def test_birth_dates_prefer_the_declared_date_and_distrust_a_centenarian_from_a_15_digit_number(w, tmp_path):
    run = w.run(T2)
    street(w, run)
    keys = w.add(
        "registry__t_jm",
        run,
        [
            resident(1, "FW1", "1950-06-01", id_birth="1951-01-01"),
            resident(2, "FW2", None, id_birth="1944-02-03"),
            resident(3, "FW3", None, id_birth="1920-05-05", id_kind="legacy15_upgraded"),
            resident(4, "FW4", None, id_birth="1950-05-05", id_kind="legacy15_upgraded"),
        ],
    )
    for n, key in enumerate(keys, start=1):
        w.link(f"pk_{n}", ("registry", key))
    build(w, T2, tmp_path / "events")
    ages = w.con.execute(
        "SELECT person_key, birth_year, age, age_at_month_start FROM core.persons ORDER BY 1"
    )
    assert ages.fetchall() == [
        ("pk_1", 1950, 76, 76),
        ("pk_2", 1944, 82, 82),
        ("pk_3", None, None, None),
        ("pk_4", 1950, 76, 76),
    ]


def test_house_parts_are_normalised_so_cards_devices_and_houses_join(w, tmp_path):
    run = w.run(T1)
    street(w, run)
    iot(w, run)
    holder = w.con.execute("SELECT _record_key FROM raw.iot__cardholders").fetchall()[0][0]
    w.link("pk_card", ("iot", holder))
    build(w, T1, tmp_path / "events")
    assert w.con.execute("SELECT house_key FROM core.houses WHERE house_id = 'FW1'").fetchall() == [
        ("XQ001|3|1|501",)
    ]
    assert w.con.execute("SELECT house_id, door_device_id FROM core.cardholders").fetchall() == [
        ("FW1", "DR1")
    ]
    assert w.con.execute(
        "SELECT place_source, community_name, in_iot, in_registry FROM core.persons"
    ).fetchall() == [("iot", "凤鸣社区", True, False)]


def test_a_corrected_roster_replaces_the_rows_it_dropped(w, tmp_path):
    r1, r2 = w.run(T1), w.run(T2)
    street(w, r1)
    row = {
        "roster_month": "202611",
        "月保障金(元)": "500",
        "所属社区": "凤鸣社区",
        "身份证号码__kind": "full",
    }
    w.add(
        "civil__dibao",
        r1,
        [{**row, "序号": n, "source_file": "511403001_202611_低保.xlsx"} for n in (1, 2, 3)],
    )
    w.add(
        "civil__dibao",
        r2,
        [{**row, "序号": n, "source_file": "511403001_202611_低保_更正.xlsx"} for n in (1, 2)],
    )
    build(w, T2, tmp_path / "events")
    entries = w.con.execute(
        "SELECT roster_file, roster_row, amount_yuan, community_code FROM core.roster_entries"
    )
    assert [(f, r, float(a), c) for f, r, a, c in entries.fetchall()] == [
        ("511403001_202611_低保_更正.xlsx", 1, 500.0, "511403001001"),
        ("511403001_202611_低保_更正.xlsx", 2, 500.0, "511403001001"),
    ]


def test_incidents_are_placed_by_address_or_by_the_grids_houses(w, tmp_path):
    run = w.run(T1)
    street(w, run)
    base = {"category": "环境卫生", "status": "待受理", "grid_code": "G1", "created_at": ms(T1) - HOUR_MS}
    w.add(
        "grid__events",
        run,
        [
            {**base, "event_id": "E1", "address": "锦江苑小区3幢1单元501号"},
            {**base, "event_id": "E2", "address": "7栋1单元101"},
            {**base, "event_id": "E3", "address": "不知道在哪里"},
        ],
    )
    build(w, T1, tmp_path / "events")
    placed = w.con.execute(
        "SELECT event_id, estate_code, building, house_id, located_by, community_name, "
        "created_month FROM core.grid_incidents ORDER BY event_id"
    ).fetchall()
    assert placed == [
        ("E1", "XQ001", "3", "FW1", "address", "凤鸣社区", dt.date(2026, 11, 1)),
        ("E2", "XQ002", "7", "FW4", "address_and_grid", "滨江社区", dt.date(2026, 11, 1)),
        ("E3", None, None, None, "grid_only", "凤鸣社区", dt.date(2026, 11, 1)),
    ]


def test_events_delivered_twice_across_runs_are_stored_once(w, tmp_path):
    r1, r2 = w.run(T1), w.run(T2)
    street(w, r1)
    iot(w, r1)
    w.add("iot__events", r1, [event("e1", ms(T1) - 5 * HOUR_MS), event("e2", ms(T1) - 3 * HOUR_MS)])
    w.add("iot__events", r2, [event("e2", ms(T1) - 3 * HOUR_MS), event("e3", ms(T2) - HOUR_MS)])
    build(w, T1, tmp_path / "events")
    counts = build(w, T2, tmp_path / "events")
    stored = w.con.execute(
        "SELECT event_id, received_run FROM core.device_events ORDER BY event_id"
    ).fetchall()
    assert stored == [("e1", r1), ("e2", r1), ("e3", r2)]
    assert counts["device_event_duplicates"] == 1
    assert w.con.execute(
        "SELECT delivered, kept, duplicates FROM core.device_event_runs WHERE run_id = ?", [r2]
    ).fetchall() == [(2, 1, 1)]


def test_broken_clocks_are_kept_flagged_and_without_a_time(w, tmp_path):
    run = w.run(T1)
    street(w, run)
    w.add(
        "iot__events",
        run,
        [event("zero", 0), event("ahead", 4_102_444_800_000), event("ok", ms(T1) - HOUR_MS)],
    )
    build(w, T1, tmp_path / "events")
    rows = w.con.execute(
        "SELECT event_id, clock_ok, clock_issue, event_at IS NULL, day FROM core.device_events "
        "ORDER BY event_id"
    ).fetchall()
    assert rows == [
        ("ahead", False, "ahead", True, dt.date(2100, 1, 1)),
        ("ok", True, None, False, dt.date(2026, 11, 19)),
        ("zero", False, "unset", True, dt.date(1970, 1, 1)),
    ]


def test_a_late_event_is_stored_in_the_day_it_happened_and_flagged(w, tmp_path):
    r1, r2 = w.run(T1), w.run(T2)
    street(w, r1)
    w.add("iot__events", r1, [event("on_time", ms(T1) - 5 * HOUR_MS)])
    w.add("iot__events", r2, [event("late", ms(T1) - 2 * HOUR_MS), event("fresh", ms(T2) - 2 * HOUR_MS)])
    build(w, T1, tmp_path / "events")
    build(w, T2, tmp_path / "events")
    rows = w.con.execute("SELECT event_id, day, is_late FROM core.device_events ORDER BY event_id").fetchall()
    assert rows == [
        ("fresh", dt.date(2026, 11, 20), False),
        ("late", dt.date(2026, 11, 19), True),
        ("on_time", dt.date(2026, 11, 19), False),
    ]
    runs = w.con.execute("SELECT day, runs FROM core.device_event_files ORDER BY day, runs").fetchall()
    # the late event is a second file of its day, beside the day's first one
    assert runs == [
        (dt.date(2026, 11, 19), [r1]),
        (dt.date(2026, 11, 19), [r2]),
        (dt.date(2026, 11, 20), [r2]),
    ]


def test_rebuilding_the_same_as_of_gives_identical_tables_and_parquet_bytes(w, tmp_path):
    run = w.run(T1)
    street(w, run)
    iot(w, run)
    (key,) = w.add("registry__t_jm", run, [resident(1, "FW1", "1944-01-01")])
    w.link("pk_1", ("registry", key))
    w.add("iot__events", run, [event(f"e{n}", ms(T1) - n * HOUR_MS) for n in range(1, 40)])
    build(w, T1, tmp_path / "events")
    first, first_files = w.snapshot(*CORE, "core.device_events"), files_on_disk(tmp_path / "events")
    build(w, T1, tmp_path / "events")
    assert w.snapshot(*CORE, "core.device_events") == first
    assert files_on_disk(tmp_path / "events") == first_files


def test_re_running_a_run_replaces_its_events(w, tmp_path):
    run = w.run(T1)
    w.add("iot__events", run, [event("e1", ms(T1) - HOUR_MS), event("e2", ms(T1) - 2 * HOUR_MS)])
    build(w, T1, tmp_path / "events")
    w.con.execute("DELETE FROM raw.iot__events WHERE _run_id = ?", [run])  # the run is loaded again ...
    w.add("iot__events", run, [event("e1", ms(T1) - HOUR_MS)])  # ... and its slice has changed
    build(w, T1, tmp_path / "events")
    assert w.con.execute("SELECT event_id FROM core.device_events").fetchall() == [("e1",)]


def test_a_failure_during_the_build_leaves_the_previous_core_and_its_files(w, tmp_path):
    r1, r2 = w.run(T1), w.run(T2)
    street(w, r1)
    (key,) = w.add("registry__t_jm", r1, [resident(1, "FW1", "1944-01-01")])
    w.link("pk_1", ("registry", key))
    w.add("iot__events", r1, [event("e1", ms(T1) - HOUR_MS)])
    build(w, T1, tmp_path / "events")
    w.add("registry__t_jm", r2, [resident(1, "FW1", "1944-01-01", zt="3", zxrq="2026-11-20")])
    w.add("iot__events", r2, [event("e2", ms(T2) - HOUR_MS)])
    # Something in the way of the last table: the build fails after the others were rebuilt.
    w.con.execute("DROP TABLE core.grid_visits")
    w.con.execute("CREATE VIEW core.grid_visits AS SELECT 1 AS in_the_way")
    before = w.snapshot(*(t for t in CORE if t != "core.grid_visits"), "core.device_events")
    with pytest.raises(duckdb.Error):
        build(w, T2, tmp_path / "events")
    assert w.snapshot(*(t for t in CORE if t != "core.grid_visits"), "core.device_events") == before
    w.con.execute("DROP VIEW core.grid_visits")
    build(w, T2, tmp_path / "events")
    assert w.con.execute("SELECT registry_status FROM core.persons").fetchall() == [(3,)]
    live = {r[0] for r in w.con.execute("SELECT file FROM core.device_event_files").fetchall()}
    assert set(files_on_disk(tmp_path / "events")) == live  # the failed build's files were cleared away


def test_a_day_file_that_fails_to_write_fails_the_build_and_leaves_the_previous_core(
    w, tmp_path, monkeypatch
):
    """Day files are written on a second thread while the next day is read: a write that fails on a
    later day still fails the build, and the core and its files stay as the previous build left them."""
    r1, r2 = w.run(T1), w.run(T2)
    street(w, r1)
    w.add("iot__events", r1, [event(f"a{n}", ms(T1) - n * 6 * HOUR_MS) for n in range(1, 12)])
    build(w, T1, tmp_path / "events")
    before = w.snapshot("core.device_events", "core.device_event_files")
    w.add("iot__events", r2, [event(f"b{n}", ms(T2) - n * 6 * HOUR_MS) for n in range(1, 16)])
    written = []

    def failing_on_the_third(table, where, **kwargs):
        written.append(where)
        if len(written) == 3:
            raise OSError("disk full (simulated)")
        return real_write(table, where, **kwargs)

    real_write = device_events.pq.write_table
    monkeypatch.setattr(device_events.pq, "write_table", failing_on_the_third)
    with pytest.raises(OSError, match="disk full"):
        build(w, T2, tmp_path / "events")
    assert len(written) == 3  # the days after the failed one were not written
    assert w.snapshot("core.device_events", "core.device_event_files") == before
    monkeypatch.setattr(device_events.pq, "write_table", real_write)
    build(w, T2, tmp_path / "events")
    assert w.con.execute("SELECT count(*) FROM core.device_events").fetchall() == [(26,)]
    live = {r[0] for r in w.con.execute("SELECT file FROM core.device_event_files").fetchall()}
    assert set(files_on_disk(tmp_path / "events")) == live


def test_sources_are_recognised_by_the_streams_they_landed(tmp_path):
    con = duckdb.connect()
    con.execute("CREATE SCHEMA raw")
    for table in ("reg__t_jm", "g__residents", "g__events", "i__devices", "i__events", "odd__events"):
        con.execute(f"CREATE TABLE raw.{table} (x VARCHAR)")
    assert sources_of(con) == {"reg": "resident_registry", "g": "grid_platform", "i": "iot_platform"}
    con.execute("CREATE TABLE raw.reg2__t_fw (x VARCHAR)")
    with pytest.raises(CoreBuildError, match="resident_registry"):
        sources_of(con)


def test_the_core_reads_no_direct_identifier():
    """Every staged raw column is quasi or none in its schema (or a derived column, or scrubbed text)."""
    schemas = {(t.system, t.stream): t for t in load_tables().values()}
    for (system, stream), (_, columns) in STAGES.items():
        for column in columns:
            if "__" in column or (system, stream, column) in SCRUBBED_READS:
                continue
            assert schemas[system, stream].pii(column) != "direct", (system, stream, column)


def test_an_as_of_without_a_time_zone_is_refused(w, tmp_path):
    with pytest.raises(CoreBuildError, match="time zone"):
        build_core(w.con, dt.datetime(2026, 11, 21), "r", tmp_path / "events")


def test_lost_event_files_are_named_and_can_be_rebuilt_from_the_raw_slices(w, tmp_path):
    r1, r2 = w.run(T1), w.run(T2)
    w.add("iot__events", r1, [event("e1", ms(T1) - HOUR_MS)])
    w.add("iot__events", r2, [event("e2", ms(T2) - HOUR_MS)])
    build(w, T1, tmp_path / "events")
    build(w, T2, tmp_path / "events")
    for path in (tmp_path / "events").rglob("*.parquet"):
        path.unlink()
    with pytest.raises(CoreBuildError, match="missing under"):
        build(w, T2, tmp_path / "events")
    w.con.execute("DELETE FROM core.device_event_files")
    w.con.execute("DELETE FROM core.device_event_runs")
    build(w, T2, tmp_path / "events")
    assert w.con.execute("SELECT event_id FROM core.device_events ORDER BY 1").fetchall() == [
        ("e1",),
        ("e2",),
    ]


def test_a_warehouse_never_reconciled_is_refused_with_what_to_do(tmp_path):
    con = duckdb.connect(str(tmp_path / "bare.duckdb"))
    with pytest.raises(CoreBuildError, match="islandbridge reconcile"):
        build_core(con, T1, raw.run_id_for(T1), tmp_path / "events")
