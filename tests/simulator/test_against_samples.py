"""A generated street looks like the shared samples: same tables, fields, file layout and value formats.

Formats are compared as *families*: each column's values are classified by an ordered list of
patterns (a plain 18-digit ID, a masked one, ``5.11403E+17`` …). Every value of both streets must fall
in a known family, and every family the samples show must also occur in the generated street, so a
quirk the samples hold can never silently go missing from the generator.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sqlite3
from pathlib import Path

import openpyxl
import pytest

SAMPLES = Path(__file__).resolve().parents[3] / "shared" / "source-systems" / "samples"

pytestmark = pytest.mark.skipif(
    not SAMPLES.is_dir(), reason=f"the shared samples are not on this machine (looked in {SAMPLES})"
)

CJK = r"[\u4e00-\u9fff]"
NAME = [
    ("cjk", rf"{CJK}{{2,4}}"),
    ("dotted", rf"{CJK}+·{CJK}+"),
    ("trailing_space", r".+ "),
    ("ideographic_space", r".\u3000."),
    ("padded", r".  ."),
]
PHONE = [
    ("plain", r"1\d{10}"),
    ("dashed", r"1\d{2}-\d{4}-\d{4}"),
    ("plus86", r"\+86 1\d{10}"),
    ("cc86", r"861\d{10}"),
    ("spaced", r"1\d{2} \d{4} \d{4}"),
    ("fullwidth", r"１[０-９]{10}"),
    ("two", r"1\d{10}/1\d{10}"),
    ("wu", "无"),
    ("empty", ""),
]
ID = [
    ("id18", r"\d{17}[\dX]"),
    ("lower_x", r"\d{17}x"),
    ("spaced", r"\d{6} \d{8} \d{3}[\dXx]"),
    ("trailing", r"\d{17}[\dXx] "),
    ("legacy15", r"\d{15}"),
    ("passport", r"[A-Z]\d{8}"),
    ("masked", r"\d{6}\*{8}\d{3}[\dX]"),
    ("apostrophe", r"'\d{17}[\dX]"),
    ("excel_text", r"\d\.\d{5}E\+17"),
]
ADDRESS = [
    ("full", rf"{CJK}+\d+栋\d+单元\d+室"),
    ("full_no_suffix", rf"{CJK}+\d+栋\d+单元\d+"),
    ("dashed", rf"{CJK}+\d+-\d+-\d+"),
    ("xiaoqu", rf"{CJK}*小区\d+幢\d+单元\d+号"),
    ("city", rf"眉山市彭山区{CJK}+\d+栋\d+单元\d+"),
    ("bare", r"\d+栋\d+单元\d+"),
]
STAMP = [("stamp", r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")]
DATE = [("date", r"\d{4}-\d\d-\d\d")]
UTC = [("utc", r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ")]
COMMUNITY = [("community", rf"{CJK}+社区")]


def family(value, families) -> str:
    """The name of the first family ``value`` belongs to; full-width address digits are a family mark."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, float):
        return "float_id" if value > 1e17 else ("decimal" if value != int(value) else "int")
    if isinstance(value, int):
        return "int"
    if isinstance(value, list):
        return "list:" + ",".join(sorted(value))
    prefix = ""
    if families is ADDRESS and re.search("[０-９]", value):
        prefix, value = "fullwidth_", value.translate(str.maketrans("０１２３４５６７８９", "0123456789"))
    for name, pattern in families:
        if re.fullmatch(pattern, value):
            return prefix + name
    return f"OTHER:{value!r}"


def assert_same_families(sample_values, generated_values, families, what: str) -> None:
    seen_sample = {family(v, families) for v in sample_values}
    seen_generated = {family(v, families) for v in generated_values}
    unknown = sorted(f for f in seen_sample | seen_generated if f.startswith("OTHER"))[:5]
    assert not unknown, f"{what}: values in no family: {unknown}"
    assert seen_sample <= seen_generated, (
        f"{what}: the samples show {sorted(seen_sample - seen_generated)}, the generator never"
    )


# -- SQLite registry -----------------------------------------------------------------------------------
def schema(db: Path) -> dict[str, list[tuple[str, str]]]:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        tables = [
            t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")
        ]
        return {t: [(c[1], c[2]) for c in conn.execute(f"PRAGMA table_info({t})")] for t in tables}


def column(db: Path, table: str, name: str) -> list:
    with sqlite3.connect(f"file:{db}?mode=ro", uri=True) as conn:
        return [v for (v,) in conn.execute(f"SELECT {name} FROM {table}")]


def test_registry_has_the_same_tables_columns_and_declared_types(street_dir):
    assert schema(street_dir / "registry" / "rrs.sqlite") == schema(SAMPLES / "rrs.sqlite")


REGISTRY_FORMATS = {
    ("t_xq", "xqbm"): [("code", r"XQ\d{3}")],
    ("t_xq", "sqbm"): [("code", r"\d{12}")],
    ("t_xq", "sqmc"): COMMUNITY,
    ("t_fw", "fwbh"): [("code", r"FW\d{7}")],
    ("t_fw", "ld"): [("number", r"\d+"), ("dong", r"\d+栋")],
    ("t_fw", "dy"): [("number", r"\d")],
    ("t_fw", "fh"): [("room", r"[1-9]\d{2,3}"), ("padded", r"0\d{3}")],
    ("t_fw", "wgbm"): [("grid", r"\d{14}")],
    ("t_fw", "gxsj"): STAMP,
    ("t_jm", "xm"): NAME,
    ("t_jm", "xb"): [("sex", "[12]"), ("empty", "")],
    ("t_jm", "sfzh"): ID,
    ("t_jm", "csrq"): [("dash", r"\d{4}-\d\d-\d\d"), ("compact", r"\d{8}")],
    ("t_jm", "lxdh"): PHONE,
    ("t_jm", "mz"): [("nation", rf"{CJK}+族")],
    ("t_jm", "hjlx"): [(k, k) for k in ("户籍", "流动", "境外")],
    ("t_jm", "yhzgx"): [(k, k) for k in ("户主", "配偶", "子女", "父母", "其他")],
    ("t_jm", "rzrq"): DATE,
    ("t_jm", "zt"): [],
    ("t_jm", "zxrq"): DATE,
    ("t_jm", "cjsj"): STAMP,
    ("t_jm", "gxsj"): STAMP,
    ("t_jm_bq", "bq"): [(k, k) for k in ("独居老人", "残疾人", "退役军人")],
    ("t_jm_bq", "gxsj"): STAMP,
}


@pytest.mark.parametrize(("table", "name"), list(REGISTRY_FORMATS), ids=lambda v: v)
def test_registry_values_have_the_sample_formats(street_dir, table, name):
    assert_same_families(
        column(SAMPLES / "rrs.sqlite", table, name),
        column(street_dir / "registry" / "rrs.sqlite", table, name),
        REGISTRY_FORMATS[(table, name)],
        f"{table}.{name}",
    )


# -- JSON lists of the grid and IoT platforms ----------------------------------------------------------
def items(root: Path, name: str) -> list[dict]:
    path = root / name
    if name.endswith(".jsonl"):
        return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines()]
    return json.loads(path.read_text(encoding="utf-8"))


JSON_FILES = [
    "grid/grids.json",
    "grid/workers.json",
    "grid/residents.json",
    "grid/events.json",
    "grid/visits.json",
    "iot/devices.json",
    "iot/cardholders.json",
    "iot/events.jsonl",
]


@pytest.mark.parametrize("name", JSON_FILES)
def test_json_items_have_the_sample_fields_in_the_sample_order(street_dir, name):
    sample_keys = {tuple(i) for i in items(SAMPLES, name)}
    generated_keys = {tuple(i) for i in items(street_dir, name)}
    assert generated_keys == sample_keys


@pytest.mark.parametrize("name", JSON_FILES)
def test_json_files_are_one_list_on_one_line_or_one_object_per_line(street_dir, name):
    text = (street_dir / name).read_text(encoding="utf-8")
    if name.endswith(".jsonl"):
        assert all(line.startswith('{"event_id": ') for line in text.splitlines())
    else:
        assert text.startswith("[{") and "\n" not in text


JSON_FORMATS = {
    ("grid/grids.json", "grid_code"): [("grid", r"\d{14}")],
    ("grid/grids.json", "grid_name"): [("name", r"\d\d号网格")],
    ("grid/grids.json", "community_name"): COMMUNITY,
    ("grid/grids.json", "update_time"): STAMP,
    ("grid/workers.json", "worker_id"): [("id", r"W\d{4}")],
    ("grid/workers.json", "phone"): PHONE,
    ("grid/workers.json", "active"): [],
    ("grid/residents.json", "person_id"): [("id", r"GP\d{6}")],
    ("grid/residents.json", "name"): NAME,
    ("grid/residents.json", "gender"): [("m", "男"), ("f", "女")],
    ("grid/residents.json", "id_card"): ID,
    ("grid/residents.json", "phone"): PHONE,
    ("grid/residents.json", "address"): ADDRESS,
    ("grid/residents.json", "tags"): [],
    ("grid/residents.json", "status"): [(k, k) for k in ("在册", "已迁出")],
    ("grid/residents.json", "update_time"): STAMP,
    ("grid/events.json", "event_id"): [("id", r"EV\d{13}")],
    ("grid/events.json", "reporter_name"): NAME,
    ("grid/events.json", "reporter_phone"): PHONE,
    ("grid/events.json", "address"): ADDRESS,
    ("grid/events.json", "status"): [(k, k) for k in ("待受理", "处理中", "已办结")],
    ("grid/events.json", "created_at"): [],
    ("grid/events.json", "update_time"): STAMP,
    ("grid/events.json", "closed_at"): STAMP,
    ("grid/events.json", "category"): [
        (k, k) for k in ("环境卫生", "消防安全", "矛盾纠纷", "设施维修", "民生服务", "治安隐患")
    ],
    ("grid/events.json", "description"): [
        ("text", rf"{CJK}+"),
        ("with_contact", rf"{CJK}+，联系人.+电话1\d{{10}}"),
    ],
    ("grid/visits.json", "visit_id"): [("id", r"VS\d{7}")],
    ("grid/visits.json", "visit_time"): STAMP,
    ("grid/visits.json", "visit_type"): [(k, k) for k in ("走访", "电话回访")],
    ("iot/devices.json", "device_id"): [
        ("door", r"DR\d{6}"),
        ("water", r"WM\d{6}"),
        ("electric", r"EM\d{6}"),
        ("smoke", r"SD\d{6}"),
    ],
    ("iot/devices.json", "building"): [("n", r"\d+")],
    ("iot/devices.json", "room"): [("n", r"\d{3,4}")],
    ("iot/devices.json", "status"): [(k, k) for k in ("online", "offline")],
    ("iot/devices.json", "installed_at"): UTC,
    ("iot/cardholders.json", "holder_id"): [("id", r"H\d{7}")],
    ("iot/cardholders.json", "name"): NAME,
    ("iot/cardholders.json", "phone"): PHONE,
    ("iot/cardholders.json", "card_no"): [("card", r"C\d{7}")],
    ("iot/cardholders.json", "room"): [("n", r"\d{3,4}")],
    ("iot/cardholders.json", "face_enrolled"): [],
    ("iot/cardholders.json", "valid_until"): DATE,
    ("iot/cardholders.json", "updated_at"): UTC,
    ("iot/events.jsonl", "event_id"): [
        ("uuid", r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
    ],
    ("iot/events.jsonl", "type"): [
        (k, k) for k in ("access_granted", "access_denied", "meter_reading", "alarm", "heartbeat")
    ],
    ("iot/events.jsonl", "holder_id"): [("id", r"H\d{7}")],
    ("iot/events.jsonl", "alarm_code"): [("code", r"[A-Z_]+")],
}


@pytest.mark.parametrize(("name", "field"), list(JSON_FORMATS), ids=lambda v: v)
def test_json_values_have_the_sample_formats(street_dir, name, field):
    assert_same_families(
        [i[field] for i in items(SAMPLES, name)],
        [i[field] for i in items(street_dir, name)],
        JSON_FORMATS[(name, field)],
        f"{name}:{field}",
    )


def test_event_timestamps_include_the_sample_clock_faults(street_dir):
    def kinds(root):
        return {
            "zero" if e["ts"] == 0 else "future" if e["ts"] > 1_800_000_000_000 else "ms"
            for e in items(root, "iot/events.jsonl")
        }

    assert kinds(SAMPLES) <= kinds(street_dir)
    assert isinstance(items(street_dir, "iot/events.jsonl")[0]["ts"], int)


# -- civil-affairs rosters -----------------------------------------------------------------------------
def test_roster_files_have_the_sample_names(street_dir):
    def pattern(root):
        return sorted(re.sub(r"_\d{6}_", "_YYYYMM_", p.name) for p in (root / "civil").iterdir())

    assert pattern(street_dir) == pattern(SAMPLES)


def workbook(root: Path, suffix: str) -> list[tuple]:
    """The roster month's workbook with this suffix (``_低保.xlsx`` or ``_低保_更正.xlsx``)."""
    path = sorted((root / "civil").glob(f"*{suffix}"))[-1]
    return list(openpyxl.load_workbook(path).active.iter_rows(values_only=True))


def all_workbooks(root: Path) -> list[list[tuple]]:
    paths = sorted((root / "civil").glob("*.xlsx"))
    return [list(openpyxl.load_workbook(p).active.iter_rows(values_only=True)) for p in paths]


def senior(root: Path) -> list[list[str]]:
    path = sorted((root / "civil").glob("*_高龄补贴.csv"))[-1]
    return list(csv.reader(io.StringIO(path.read_bytes().decode("gb18030"), newline="")))


def test_dibao_workbook_has_the_sample_layout(street_dir):
    sample, mine = workbook(SAMPLES, "_低保_更正.xlsx"), workbook(street_dir, "_低保_更正.xlsx")
    assert mine[2] == sample[2]
    assert (
        re.fullmatch(r"彭山区.+街道\d{4}年\d{1,2}月城乡低保发放花名册", mine[0][0])
        and mine[0][1:] == sample[0][1:]
    )
    assert [v is None for v in mine[1]] == [v is None for v in sample[1]]
    assert [v is None for v in mine[-1]] == [v is None for v in sample[-1]] and mine[-1][0] == sample[-1][
        0
    ] == "合计"


def test_senior_csv_has_the_sample_header_and_totals_row(street_dir):
    sample, mine = senior(SAMPLES), senior(street_dir)
    assert mine[0] == sample[0]
    assert [bool(v) for v in mine[-1]] == [bool(v) for v in sample[-1]]


DIBAO_FORMATS = {
    1: NAME,
    2: ID,
    5: PHONE,
    6: ADDRESS,
    7: [(k, k) for k in ("A类", "B类", "C类")],
    8: [],
    9: [("month", r"\d{6}")],
    10: COMMUNITY,
}
SENIOR_FORMATS = {
    1: NAME,
    2: [("m", "男"), ("f", "女")],
    3: ID,
    4: [("month", r"\d{4}\.\d\d")],
    6: [("n", r"\d+")],
    7: [("yuan", r"\d+"), ("decimal", r"\d+\.\d\d")],
    8: [("card", r"6217\d{15}")],
    9: COMMUNITY,
}


@pytest.mark.parametrize("index", list(DIBAO_FORMATS))
def test_dibao_values_have_the_sample_formats(street_dir, index):
    def values(root):
        return [r[index] for table in all_workbooks(root) for r in table[3:-1]]

    assert_same_families(values(SAMPLES), values(street_dir), DIBAO_FORMATS[index], f"低保 column {index}")


@pytest.mark.parametrize("index", list(SENIOR_FORMATS))
def test_senior_values_have_the_sample_formats(street_dir, index):
    assert_same_families(
        [r[index] for r in senior(SAMPLES)[1:-1]],
        [r[index] for r in senior(street_dir)[1:-1]],
        SENIOR_FORMATS[index],
        f"高龄补贴 column {index}",
    )


# -- truth ---------------------------------------------------------------------------------------------
def truth_rows(root: Path, name: str) -> list[list[str]]:
    return list(csv.reader((root / "truth" / name).open(encoding="utf-8", newline="")))


def test_truth_records_have_the_sample_header_systems_and_key_kinds(street_dir):
    sample, mine = truth_rows(SAMPLES, "records.csv"), truth_rows(street_dir, "records.csv")
    assert mine[0] == sample[0]

    def kinds(table):
        return {(r[0], r[1].split(":")[0]) for r in table[1:]}

    assert kinds(mine) == kinds(sample)


def test_truth_persons_and_meta_have_the_sample_fields(street_dir):
    assert truth_rows(street_dir, "persons.csv")[0] == truth_rows(SAMPLES, "persons.csv")[0]
    meta = json.loads((street_dir / "truth" / "meta.json").read_text("utf-8"))
    assert set(json.loads((SAMPLES / "truth" / "meta.json").read_text("utf-8"))) <= set(meta)


@pytest.mark.parametrize(
    "name", sorted(p.name for p in (SAMPLES / "truth").glob("expected_*.csv")) if SAMPLES.is_dir() else []
)
def test_expected_answers_start_with_the_sample_columns(street_dir, name):
    sample_header = truth_rows(SAMPLES, name)[0]
    assert truth_rows(street_dir, name)[0][: len(sample_header)] == sample_header
    assert (street_dir / "truth" / name).read_bytes().count(b"\r\n") >= 1
