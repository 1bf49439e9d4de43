"""An incident's description gives its reporter's phone only when the number stands beside the reporter's
own name (`identity.contacts`). Every name and number here is synthetic."""

from __future__ import annotations

import datetime as dt
import logging

import duckdb
import pyarrow as pa
import pytest

from islandbridge.config import parse_as_of
from islandbridge.identity.contacts import contact_phones, with_contact_phones
from islandbridge.identity.reconcile import reconcile
from islandbridge.identity.records import load_records, person_streams
from islandbridge.privacy.configured import open_vault
from islandbridge.privacy.scrub import phone_spans
from islandbridge.privacy.sealing import SealedColumns
from tests.identity.support import add_run, land, make_id, person_key_of

NAME, PHONE = "司徒晓岚", "19912345678"


@pytest.mark.parametrize(
    "text",
    [
        f"楼道堆放杂物，联系人{NAME}电话{PHONE}",  # the source systems' sample writes it so
        f"路灯不亮。联系人：{NAME}，电话：{PHONE}",
        f"{NAME}反映下水道堵塞，{NAME}的手机号是{PHONE}",
        f"噪音扰民 报告人 {NAME}（{PHONE}）",
        f"{NAME} 199-1234-5678 反映消防通道堵塞",
        "联系人司徒曉嵐电话19912345678",  # traditional characters in the text: the same name normalised
    ],
)
def test_a_number_beside_the_reporters_own_name_is_the_reporters(text):
    assert contact_phones(text, NAME) is not None
    assert contact_phones(text, NAME).replace("-", "") == PHONE


def test_the_reporters_name_is_compared_after_name_normalisation():
    assert contact_phones(f"联系人陈佳电话{PHONE}", "陈\u3000佳 ") == PHONE
    assert contact_phones(f"联系人陈  佳电话{PHONE}", "陈佳") == PHONE


@pytest.mark.parametrize(
    "text",
    [
        f"楼道堆放杂物，联系人李四电话{PHONE}",  # another contact
        f"{NAME}反映楼上漏水，邻居李四电话{PHONE}",  # the reporter names a neighbour and gives his number
        f"邻居{NAME}电话{PHONE}",  # a relation before the name: a namesake, not the caller
        f"找{NAME}，{PHONE}",  # a bare comma: whose number follows is not said
        f"联系人{NAME}，业主李四电话{PHONE}",
        f"联系人{NAME}身份证510104196812225052",  # an ID number is not a phone
        f"{NAME} 6222 0212 3456 7890",  # nor is a bank card
        f"联系人{NAME}电话[电话]",  # a scrubbed text gives nothing
    ],
)
def test_a_number_beside_another_name_or_none_is_not_the_reporters(text):
    assert contact_phones(text, NAME) is None


def test_a_name_that_ends_a_longer_name_is_not_the_reporters():
    """朱国华's number is not that of a reporter 国华."""
    assert contact_phones(f"联系人朱国华电话{PHONE}", "国华") is None
    assert contact_phones(f"联系人朱国华电话{PHONE}", "朱国华") == PHONE


@pytest.mark.timeout(10)
def test_long_runs_of_blanks_anywhere_in_the_text_are_read_as_one_blank():
    """Runs of 5,000 spaces, ideographic spaces and line breaks before, inside and after the contact: the
    reading stays linear in the text (it once backtracked on every blank before a number)."""
    runs = (" " * 5000, "\u3000" * 5000, "\n" * 5000)
    text = (
        f"楼道漏水{runs[0]}请尽快处理。{runs[1]}联系人{runs[0]}{NAME}{runs[2]}电话{runs[1]}{PHONE}{runs[0]}"
    )
    assert contact_phones(text, NAME) == PHONE
    assert (
        contact_phones(f"楼道漏水{runs[0]}请尽快处理。{runs[1]}邻居{runs[2]}{NAME}电话{PHONE}", NAME) is None
    )
    assert contact_phones(f"楼道漏水{runs[0]}{runs[1]}{runs[2]}请尽快处理{PHONE}", NAME) is None


@pytest.mark.parametrize(
    ("text", "reporter"),
    [
        ("联系人阿依古丽·买买提电话13800138000", "买买提"),  # a daughter's name ends in her father's
        ("联系人阿依古丽.买买提电话13800138000", "买买提"),
        ("联系人朱 国华电话13800138000", "国华"),  # a blank inside a longer name
        ("邻居 张三电话13800138000", "张三"),  # a relation, then a blank
        ("张三-李四电话13800138000", "李四"),
    ],
)
def test_a_name_after_a_name_character_blanks_skipped_is_not_the_reporters(text, reporter):
    assert contact_phones(text, reporter) is None


def test_an_introducing_word_before_a_blank_and_the_name_still_introduces_it():
    assert contact_phones("联系人朱 国华电话13800138000", "朱国华") == "13800138000"
    assert contact_phones("报告人 国华电话13800138000", "国华") == "13800138000"


@pytest.mark.parametrize(
    "text",
    [
        "联系人：李四、张三，电话13800138000",  # a list of names: the number is not said to be the last one's
        "李四/张三 13800138000",
        "联系人：李四，张三，电话13800138000",
        "联系人李四和张三电话13800138000",
        "张三电话13800138000（其女儿）",  # a note right after the number says whose it is
        "张三 13800138000 (邻居)",
    ],
)
def test_a_number_after_a_list_of_names_or_followed_by_a_note_is_not_the_reporters(text):
    assert contact_phones(text, "张三") is None


def test_a_comma_before_the_name_in_a_clause_that_introduces_no_one_still_starts_it():
    assert contact_phones("路灯不亮，张三电话13800138000", "张三") == "13800138000"
    assert contact_phones("联系人李四。漏水，张三电话13800138000", "张三") == "13800138000"


def test_the_scrubbers_phone_spans_are_the_numbers_it_replaces():
    text = f"联系人{NAME}电话１９９-1234-5678，证件510104196812225052"
    assert [text[a:b] for a, b in phone_spans(text)] == ["１９９-1234-5678"]
    assert phone_spans(None) == [] and phone_spans(12345) == []


def test_a_reporter_phone_the_incident_gives_is_kept_and_only_a_missing_one_is_filled():
    """A valid ``reporter_phone`` stays even when the text gives another number beside the same name;
    a missing or unusable one takes the text's number; a text naming someone else fills nothing."""
    table = pa.table(
        {
            "r_name": [NAME, NAME, NAME, NAME],
            "r_phone": ["13800138000", None, "无", None],
            "r_note": [f"联系人{NAME}电话{PHONE}"] * 3 + [f"邻居李四电话{PHONE}"],
        }
    )
    filled = with_contact_phones(table, "r_phone", "r_note", "r_name")
    assert filled.column_names == ["r_name", "r_phone"]
    assert filled["r_phone"].to_pylist() == ["13800138000", PHONE, PHONE, None]


# -- end to end: a reconcile of the simulated street with three records landed the next day ------------

REPORTER, NEIGHBOUR = "闻人雪芃", "上官若琳"


def _land_street_day(con, settings) -> str:
    """Three grid residents at flats of XQ001 — two namesakes 闻人雪芃 with numbers of their own, and
    上官若琳 — and two incidents at a flat of XQ002 where none of them lives, each without a reporter
    phone: one reported by 闻人雪芃, whose description gives the first one's number beside her name, and
    one by 上官若琳, whose description gives the first 闻人雪芃's name and number as a neighbour's. The
    name alone cannot say which 闻人雪芃 reported (two bear it: the street-reporter rule leaves it)."""
    estates = dict(con.execute("SELECT xqbm, xqmc FROM raw.registry__t_xq").fetchall())
    run_id, _ = add_run(con, "2026-11-21")
    for pid, name, phone, born, flat in (
        ("GP900101", REPORTER, PHONE, dt.date(1961, 4, 9), "1栋1单元101室"),
        ("GP900102", NEIGHBOUR, "19912345679", dt.date(1972, 3, 5), "1栋1单元102室"),
        ("GP900103", REPORTER, "19912345670", dt.date(1983, 6, 1), "2栋1单元301室"),
    ):
        resident = {
            "person_id": pid,
            "name": name,
            "gender": "女",
            "id_card": make_id(born=born, sequence=991),
        }
        land(
            con,
            "grid__residents",
            run_id,
            f"residents:{pid}",
            {**resident, "phone": phone, "address": estates["XQ001"] + flat},
            settings,
        )
    for event_id, reporter, text in (
        ("EV2026112199001", REPORTER, f"楼道堆放杂物，联系人{REPORTER}电话{PHONE}"),
        ("EV2026112199002", NEIGHBOUR, f"{NEIGHBOUR}反映楼上漏水，邻居{REPORTER}电话{PHONE}"),
    ):
        event = {"event_id": event_id, "category": "环境卫生", "title": text[:8], "description": text}
        land(
            con,
            "grid__events",
            run_id,
            f"events:{event_id}",
            {
                **event,
                "reporter_name": reporter,
                "reporter_phone": None,
                "address": estates["XQ002"] + "9栋9单元909室",
                "status": "待受理",
            },
            settings,
        )
    return run_id


def test_the_description_phone_joins_an_incident_away_from_home_to_its_reporter_and_no_one_else(
    warehouse_copy, caplog
):
    """The incident whose description gives the reporter's own number joins her, not her namesake; the
    one whose description gives a neighbour's name and number does not join the neighbour. The number is nowhere
    in the warehouse, the identity tables or the log: only in the vault and the sealed files beside it."""
    with duckdb.connect(str(warehouse_copy.warehouse_path)) as con:
        _land_street_day(con, warehouse_copy)
    with caplog.at_level(logging.DEBUG):
        reconcile(warehouse_copy, parse_as_of("2026-11-21"))
    with duckdb.connect(str(warehouse_copy.warehouse_path), read_only=True) as con:
        reporter = person_key_of(con, "grid_platform", "residents:GP900101")
        assert person_key_of(con, "grid_platform", "events:EV2026112199001") == reporter
        assert person_key_of(con, "grid_platform", "residents:GP900103") != reporter
        assert person_key_of(con, "grid_platform", "events:EV2026112199002") != reporter
        tables = [
            f"{schema}.{name}"
            for schema, name in con.execute(
                "SELECT schema_name, table_name FROM duckdb_tables() WHERE schema_name IN ('raw', 'core', 'meta')"
            ).fetchall()
        ]
        text = "\n".join(repr(con.execute(f"SELECT * FROM {t}").fetchall()) for t in tables)
    for where in (text, caplog.text):
        assert PHONE not in where
    assert REPORTER not in caplog.text
    for path in warehouse_copy.warehouse_path.parent.rglob("*"):
        if path.is_file():
            assert PHONE.encode() not in path.read_bytes(), path.name


def test_the_record_table_gives_an_incident_the_phone_beside_its_reporters_name_only(warehouse_copy):
    """Read back from the vault (the warehouse holds the description scrubbed), normalised as a reporter
    phone: the reporter's own incident has her number, the one naming a neighbour has none."""
    with duckdb.connect(str(warehouse_copy.warehouse_path)) as con:
        _land_street_day(con, warehouse_copy)
        scrubbed = con.execute(
            "SELECT description FROM raw.grid__events WHERE _record_key = 'events:EV2026112199001'"
        ).fetchall()
        with open_vault(warehouse_copy) as vault:
            records = load_records(
                con, person_streams(warehouse_copy), parse_as_of("2026-11-21"), SealedColumns(vault)
            )
    assert scrubbed == [(f"楼道堆放杂物，联系人{REPORTER}电话[电话]",)]
    phones = dict(zip(records["record_key"].to_pylist(), records["phones"].to_pylist(), strict=True))
    assert phones["events:EV2026112199001"] == [f"+86{PHONE}"]
    assert not phones["events:EV2026112199002"]
