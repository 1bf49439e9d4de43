"""The street generator: deterministic, every SPEC quirk present, truth complete, answers consistent.

All tests read the session's 300-resident street (``street_dir``) unless they need one of their own.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
import re
import sqlite3
from collections import Counter, defaultdict
from functools import cache
from pathlib import Path

import opencc
import openpyxl
import pytest
import sqlalchemy as sa

from islandbridge.devtools.simulator import generate, hard_delete, load_registry
from islandbridge.devtools.simulator.formats import check_digit
from tests.conftest import AS_OF, SEED

T_MS = int(dt.datetime(2026, 11, 21, tzinfo=dt.timezone(dt.timedelta(hours=8))).timestamp() * 1000)
HOUR = 3_600_000
M_FIRST = dt.date(2026, 11, 1)
FW = str.maketrans("０１２３４５６７８９", "0123456789")


# -- reading the generated street ----------------------------------------------------------------------
def rows(path: Path) -> list[dict]:
    return list(csv.DictReader(path.open(encoding="utf-8", newline="")))


@cache
def _registry(street: Path) -> tuple[dict, ...]:
    with sqlite3.connect(street / "registry" / "rrs.sqlite") as db:
        db.row_factory = sqlite3.Row
        return tuple(dict(r) for r in db.execute("SELECT * FROM t_jm ORDER BY jmid"))


def registry(street: Path) -> list[dict]:
    return list(_registry(street))


def query(street: Path, sql: str) -> list[tuple]:
    with sqlite3.connect(street / "registry" / "rrs.sqlite") as db:
        return db.execute(sql).fetchall()


def grid(street: Path, name: str) -> list[dict]:
    return json.loads((street / "grid" / f"{name}.json").read_text(encoding="utf-8"))


@cache
def _events(street: Path) -> tuple[dict, ...]:
    with (street / "iot" / "events.jsonl").open(encoding="utf-8") as f:
        return tuple(json.loads(line) for line in f)


def events(street: Path) -> tuple[dict, ...]:
    return _events(street)


def truth(street: Path) -> dict[str, str]:
    """record key -> person id"""
    return {r["record_key"]: r["person_id"] for r in rows(street / "truth" / "records.csv")}


def persons(street: Path) -> dict[str, dict]:
    return {r["person_id"]: r for r in rows(street / "truth" / "persons.csv")}


def person_of_jmid(street: Path) -> dict[int, str]:
    return {int(k.split(":")[1]): v for k, v in truth(street).items() if k.startswith("t_jm:")}


def newest_rows(street: Path) -> dict[str, dict]:
    """person id -> their newest registry row (highest jmid)."""
    owner = person_of_jmid(street)
    return {owner[r["jmid"]]: r for r in registry(street)}  # rows come in jmid order


def xlsx_rows(path: Path) -> list[tuple]:
    return list(openpyxl.load_workbook(path).active.iter_rows(values_only=True))


def senior_csv(path: Path) -> list[list[str]]:
    text = path.read_bytes().decode("gb18030")
    return list(csv.reader(io.StringIO(text, newline="")))


def age(birth: str, day: dt.date) -> int:
    b = dt.date.fromisoformat(birth)
    return day.year - b.year - ((day.month, day.day) < (b.month, b.day))


def digits(phone: str | None) -> str:
    return re.sub(r"\D", "", (phone or "").translate(FW))[-11:]


# -- determinism ---------------------------------------------------------------------------------------
def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_gives_byte_identical_files(tmp_path):
    generate(tmp_path / "a", residents=300, seed=SEED, as_of=AS_OF)
    generate(tmp_path / "b", residents=300, seed=SEED, as_of=AS_OF)
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert len(a) == 21  # 1 registry + 5 grid + 5 civil + 3 iot + 7 truth files
    assert a.keys() == b.keys()
    assert [name for name in a if a[name] != b[name]] == []


def test_different_seed_changes_every_system(tmp_path, street_dir):
    generate(tmp_path / "other", residents=300, seed=SEED + 1, as_of=AS_OF)
    other, mine = _tree(tmp_path / "other"), _tree(street_dir)
    for name in (
        "registry/rrs.sqlite",
        "grid/residents.json",
        "iot/events.jsonl",
        "truth/persons.csv",
        "civil/511403001_202611_高龄补贴.csv",
        "civil/511403001_202611_低保_更正.xlsx",
    ):
        assert other[name] != mine[name], name


def test_generate_rejects_out_of_range_sizes(tmp_path):
    with pytest.raises(ValueError, match="300..300000"):
        generate(tmp_path, residents=10, seed=1)


def test_generate_returns_counts_per_system(street_dir, tmp_path):
    summary = generate(tmp_path / "s", residents=300, seed=SEED, as_of=AS_OF)
    assert summary["resident_registry"]["t_jm"] == len(registry(street_dir))
    assert summary["grid_platform"]["residents"] == len(grid(street_dir, "residents"))
    assert summary["iot_platform"]["events"] == len(events(street_dir))
    assert summary["truth"]["records"] == len(truth(street_dir))


# -- registry quirks -----------------------------------------------------------------------------------
def test_registry_id_numbers_carry_every_quirk(street_dir):
    ids = [r["sfzh"] for r in registry(street_dir)]
    present = [i for i in ids if i is not None]
    assert None in ids
    assert any(re.fullmatch(r"\d{17}x", i) for i in present), "lowercase x"
    assert any(re.fullmatch(r"\d{6} \d{8} \d{3}[\dX]", i) for i in present), "inner spaces"
    assert any(re.fullmatch(r"\d{17}[\dX] ", i) for i in present), "trailing space"
    assert any(re.fullmatch(r"\d{15}", i) for i in present), "legacy 15-digit"
    assert any(re.fullmatch(r"\d{18}", i) and check_digit(i[:17]) != i[17] for i in present), (
        "check-digit typo"
    )
    foreign = [r["sfzh"] for r in registry(street_dir) if r["hjlx"] == "境外"]
    assert foreign and all(re.fullmatch(r"[A-Z]\d{8}", i) for i in foreign if i), "passports for 境外"


def test_registry_birth_dates_come_in_both_formats_or_null(street_dir):
    kinds = Counter(
        "null" if v is None else "dash" if "-" in v else "compact"
        for v in (r["csrq"] for r in registry(street_dir))
    )
    assert set(kinds) == {"null", "dash", "compact"}


def test_registry_names_have_trailing_and_ideographic_spaces(street_dir):
    names = [r["xm"] for r in registry(street_dir)]
    assert any(n.endswith(" ") for n in names)
    assert any(re.fullmatch(r".\u3000.", n) for n in names)


def test_registry_phones_come_in_every_listed_format(street_dir):
    phones = [r["lxdh"] for r in registry(street_dir)]
    patterns = {
        "plain": r"1\d{10}",
        "dashed": r"1\d{2}-\d{4}-\d{4}",
        "plus86": r"\+86 1\d{10}",
        "cc86": r"861\d{10}",
        "spaced": r"1\d{2} \d{4} \d{4}",
        "fullwidth": r"１[０-９]{10}",
        "two": r"1\d{10}/1\d{10}",
        "wu": "无",
        "empty": "",
    }
    for kind, pattern in patterns.items():
        assert any(p is not None and re.fullmatch(pattern, p) for p in phones), kind
    assert None in phones


def test_a_shared_phone_belongs_to_different_people(street_dir):
    owner = person_of_jmid(street_dir)
    holders = defaultdict(set)
    for r in registry(street_dir):
        for number in re.split("/", r["lxdh"] or ""):
            if digits(number):
                holders[digits(number)].add(owner[r["jmid"]])
    assert any(len(people) > 1 for people in holders.values())


def test_a_person_who_moved_out_and_back_has_an_old_and_a_new_row(street_dir):
    by_person = defaultdict(list)
    for r in registry(street_dir):
        by_person[person_of_jmid(street_dir)[r["jmid"]]].append(r)
    returned = [rs for rs in by_person.values() if len(rs) == 2]
    assert returned
    for old, new in returned:
        assert (old["zt"], new["zt"]) == (2, 1)
        assert old["zxrq"] and old["zxrq"] < new["rzrq"]


def test_registry_holds_moved_out_and_deceased_rows_with_exit_dates(street_dir):
    statuses = query(street_dir, "SELECT zt, COUNT(*), SUM(zxrq IS NULL) FROM t_jm GROUP BY zt")
    assert {s for s, _, _ in statuses} == {1, 2, 3}
    assert all(missing == (count if s == 1 else 0) for s, count, missing in statuses)


def test_floating_residents_missing_from_registry_appear_elsewhere(street_dir):
    seen = defaultdict(set)
    for key, pid in truth(street_dir).items():
        seen[pid].add(key.split(":")[0])
    missing = [
        p for p in persons(street_dir).values() if p["in_registry"] == "False" and p["hukou"] == "流动"
    ]
    assert any(seen[p["person_id"]] & {"residents", "cardholders"} for p in missing)


def test_houses_write_building_and_room_both_ways(street_dir):
    houses = query(street_dir, "SELECT ld, fh FROM t_fw")
    assert {bool(re.fullmatch(r"\d+栋", ld)) for ld, _ in houses} == {True, False}
    assert any(re.fullmatch(r"0\d{3}", fh) for _, fh in houses)
    assert any(re.fullmatch(r"[1-9]\d{2,3}", fh) for _, fh in houses)


def test_registry_tags_include_all_three_kinds(street_dir):
    assert {t for (t,) in query(street_dir, "SELECT DISTINCT bq FROM t_jm_bq")} == {
        "独居老人",
        "残疾人",
        "退役军人",
    }


# -- grid quirks ---------------------------------------------------------------------------------------
def test_grid_names_have_homophone_typos_and_traditional_characters(street_dir):
    s2t = opencc.OpenCC("s2t")
    people, true = truth(street_dir), persons(street_dir)
    pairs = [
        (r["name"], true[people[f"residents:{r['person_id']}"]]["name"])
        for r in grid(street_dir, "residents")
    ]
    assert any(shown != name and shown == s2t.convert(name) for shown, name in pairs), "traditional"
    assert any(
        shown != name and len(shown) == len(name) and shown != s2t.convert(name) for shown, name in pairs
    ), "typo"


def test_grid_id_cards_are_masked_full_or_null(street_dir):
    cards = [r["id_card"] for r in grid(street_dir, "residents")]
    assert any(c and re.fullmatch(r"\d{6}\*{8}\d{3}[\dX]", c) for c in cards)
    assert any(c and re.fullmatch(r"\d{17}[\dX]", c) for c in cards)
    assert None in cards


def test_grid_phones_are_sometimes_stale(street_dir):
    current = {pid: digits(r["lxdh"]) for pid, r in newest_rows(street_dir).items() if digits(r["lxdh"])}
    people = truth(street_dir)
    stale = [
        r
        for r in grid(street_dir, "residents")
        if digits(r["phone"])
        and people[f"residents:{r['person_id']}"] in current
        and digits(r["phone"]) != current[people[f"residents:{r['person_id']}"]]
    ]
    assert stale


def test_grid_addresses_use_all_five_styles_and_fullwidth_digits(street_dir):
    addresses = [r["address"].translate(FW) for r in grid(street_dir, "residents")]
    styles = {
        "full": r"[^\d]+\d+栋\d+单元\d+室",
        "dashed": r"[^\d]+\d+-\d+-\d+",
        "xiaoqu": r"[^\d]*小区\d+幢\d+单元\d+号",
        "city": r"眉山市彭山区[^\d]+\d+栋\d+单元\d+",
        "bare": r"\d+栋\d+单元\d+",
    }
    for style, pattern in styles.items():
        assert any(re.fullmatch(pattern, a) for a in addresses), style
    assert any(re.search("[０-９]", r["address"]) for r in grid(street_dir, "residents"))


def test_grid_residents_have_tags_and_both_statuses(street_dir):
    residents = grid(street_dir, "residents")
    assert {r["status"] for r in residents} == {"在册", "已迁出"}
    assert {t for r in residents for t in r["tags"]} >= {"独居老人", "残疾人"}


def test_grid_events_leak_reporter_details_into_free_text(street_dir):
    evs = grid(street_dir, "events")
    assert any(
        e["reporter_name"]
        and e["reporter_name"] in e["description"]
        and re.search(r"1\d{10}", e["description"])
        for e in evs
    )
    assert all(isinstance(e["created_at"], int) and len(str(e["created_at"])) == 13 for e in evs)
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", e["update_time"]) for e in evs)


def test_visits_point_at_grid_residents_and_workers(street_dir):
    residents = {r["person_id"] for r in grid(street_dir, "residents")}
    workers = {w["worker_id"] for w in grid(street_dir, "workers")}
    visits = grid(street_dir, "visits")
    assert visits and all(v["person_id"] in residents and v["worker_id"] in workers for v in visits)


# -- civil quirks --------------------------------------------------------------------------------------
def civil(street: Path, name: str) -> Path:
    return street / "civil" / f"511403001_{name}"


def test_both_months_and_the_correction_are_written(street_dir):
    names = sorted(p.name for p in (street_dir / "civil").iterdir())
    assert names == [
        "511403001_202610_低保.xlsx",
        "511403001_202610_高龄补贴.csv",
        "511403001_202611_低保.xlsx",
        "511403001_202611_低保_更正.xlsx",
        "511403001_202611_高龄补贴.csv",
    ]


def test_dibao_workbook_has_title_maker_and_header_rows(street_dir):
    sheet = openpyxl.load_workbook(civil(street_dir, "202611_低保.xlsx")).active
    assert [str(r) for r in sheet.merged_cells.ranges] == ["A1:K1"]
    assert sheet["A1"].value == "彭山区凤鸣街道2026年11月城乡低保发放花名册"
    assert sheet["A2"].value.startswith("制表单位：") and sheet["I2"].value.startswith("制表日期：")
    assert sheet["A3"].value == "序号" and sheet["K3"].value == "所属社区"


def test_dibao_ids_are_excel_damaged_or_apostrophed(street_dir):
    ids = [r[2] for r in xlsx_rows(civil(street_dir, "202610_低保.xlsx"))[3:-1]]
    assert any(isinstance(i, float) and i > 1e17 for i in ids)
    assert any(isinstance(i, str) and re.fullmatch(r"'\d{17}[\dX]", i) for i in ids)


def test_senior_csv_is_gb18030_crlf_with_damaged_ids_and_bank_cards(street_dir):
    path = civil(street_dir, "202611_高龄补贴.csv")
    raw = path.read_bytes()
    assert raw.count(b"\r\n") == raw.count(b"\n")
    table = senior_csv(path)
    ids = [r[3] for r in table[1:-1]]
    assert any(re.fullmatch(r"\d\.\d{5}E\+17", i) for i in ids)
    assert any(re.fullmatch(r"'\d{17}[\dX]", i) for i in ids)
    assert all(re.fullmatch(r"6217\d{15}", r[8]) for r in table[1:-1])


def test_roster_names_are_padded_misspelt_or_traditional(street_dir):
    s2t = opencc.OpenCC("s2t")
    people, true = truth(street_dir), persons(street_dir)
    shown = []
    for month in ("202610", "202611"):
        table = senior_csv(civil(street_dir, f"{month}_高龄补贴.csv"))[1:-1]
        shown += [(r[1], true[people[f"senior:{month}:{r[0]}"]]["name"]) for r in table]
    dibao = xlsx_rows(civil(street_dir, "202610_低保.xlsx"))[3:-1]
    shown += [(r[1], true[people[f"dibao:202610:{r[0]}"]]["name"]) for r in dibao]
    assert any(re.fullmatch(r".  .", s) and s.replace(" ", "") == n for s, n in shown), "padded"
    assert any(s != n and s == s2t.convert(n) for s, n in shown), "traditional"
    assert any(s != n and len(s) == len(n) and s != s2t.convert(n) for s, n in shown), "typo"


def test_roster_totals_rows_add_up(street_dir):
    for name in ("202610_低保.xlsx", "202611_低保.xlsx", "202611_低保_更正.xlsx"):
        table = xlsx_rows(civil(street_dir, name))
        assert table[-1][0] == "合计"
        assert round(sum(r[8] for r in table[3:-1]), 2) == round(table[-1][8], 2), name
    for name in ("202610_高龄补贴.csv", "202611_高龄补贴.csv"):
        table = senior_csv(civil(street_dir, name))
        assert table[-1][0] == "合计"
        assert round(sum(float(r[7]) for r in table[1:-1]), 2) == float(table[-1][7]), name


def test_money_has_decimals_somewhere(street_dir):
    amounts = [r[8] for r in xlsx_rows(civil(street_dir, "202611_低保.xlsx"))[3:-1]]
    amounts += [float(r[7]) for r in senior_csv(civil(street_dir, "202611_高龄补贴.csv"))[1:-1]]
    amounts += [r[8] for r in xlsx_rows(civil(street_dir, "202610_低保.xlsx"))[3:-1]]
    assert any(a != int(a) for a in amounts)


def test_correction_replaces_the_month_file_with_different_rows(street_dir):
    original = xlsx_rows(civil(street_dir, "202611_低保.xlsx"))[3:-1]
    corrected = xlsx_rows(civil(street_dir, "202611_低保_更正.xlsx"))[3:-1]
    assert corrected != original
    assert len(corrected) < len(original), "a head who had left is removed"
    dibao_keys = [k for k in truth(street_dir) if k.startswith("dibao:202611:")]
    assert len(dibao_keys) == len(corrected), "truth names the correction's rows"


# -- IoT quirks ----------------------------------------------------------------------------------------
def test_iot_log_has_duplicates(street_dir):
    counts = Counter(e["event_id"] for e in events(street_dir))
    assert any(n > 1 for n in counts.values())


def test_iot_log_has_events_arriving_more_than_a_day_late(street_dir):
    newest, late = 0, 0
    for e in events(street_dir):
        if 0 < e["ts"] <= T_MS:
            late = max(late, newest - e["ts"])
            newest = max(newest, e["ts"])
    assert 24 * HOUR < late <= 48 * HOUR


def test_iot_log_has_broken_clocks(street_dir):
    stamps = [e["ts"] for e in events(street_dir)]
    assert 0 in stamps
    assert any(ts > T_MS + 365 * 24 * HOUR for ts in stamps)


def test_iot_log_has_every_event_type_and_device_type(street_dir):
    assert {e["type"] for e in events(street_dir)} == {
        "access_granted",
        "access_denied",
        "meter_reading",
        "alarm",
        "heartbeat",
    }
    devices = json.loads((street_dir / "iot" / "devices.json").read_text(encoding="utf-8"))
    assert {d["device_type"] for d in devices} == {
        "door_access",
        "water_meter",
        "electric_meter",
        "smoke_detector",
    }
    assert all((d["room"] is None) == (d["device_type"] == "door_access") for d in devices)


def test_meter_readings_are_cumulative_and_hourly(street_dir):
    series = defaultdict(dict)
    for e in events(street_dir):
        if e["type"] == "meter_reading" and 0 < e["ts"] <= T_MS:
            series[e["device_id"]][e["ts"]] = e["value"]
    for readings in series.values():
        values = [v for _, v in sorted(readings.items())]
        assert values == sorted(values)
    assert min(len(r) for r in series.values()) > 6 * 24


def test_door_events_come_every_few_hours_per_active_holder(street_dir):
    granted = Counter(e["holder_id"] for e in events(street_dir) if e["type"] == "access_granted")
    per_day = sorted(n / 7 for n in granted.values())
    assert 1 <= per_day[len(per_day) // 2] <= 6


def test_some_card_holders_are_known_to_no_other_system(street_dir):
    systems = defaultdict(set)
    for key, pid in truth(street_dir).items():
        systems[pid].add(key.split(":")[0])
    assert any(s == {"cardholders"} for s in systems.values())


# -- truth ---------------------------------------------------------------------------------------------
def test_truth_covers_every_person_bearing_record(street_dir):
    expected = {f"t_jm:{r['jmid']}" for r in registry(street_dir)}
    expected |= {f"residents:{r['person_id']}" for r in grid(street_dir, "residents")}
    expected |= {f"events:{e['event_id']}" for e in grid(street_dir, "events") if e["reporter_name"]}
    expected |= {
        f"cardholders:{h['holder_id']}"
        for h in json.loads((street_dir / "iot" / "cardholders.json").read_text("utf-8"))
    }
    for month, dibao in (("202610", "202610_低保.xlsx"), ("202611", "202611_低保_更正.xlsx")):
        expected |= {f"dibao:{month}:{r[0]}" for r in xlsx_rows(civil(street_dir, dibao))[3:-1]}
        expected |= {
            f"senior:{month}:{r[0]}" for r in senior_csv(civil(street_dir, f"{month}_高龄补贴.csv"))[1:-1]
        }
    records = truth(street_dir)
    assert set(records) == expected
    assert set(records.values()) <= set(persons(street_dir))


def test_truth_files_have_the_sample_layout(street_dir):
    assert (
        (street_dir / "truth" / "records.csv").read_text("utf-8").startswith("system,record_key,person_id\n")
    )
    systems = {r["system"] for r in rows(street_dir / "truth" / "records.csv")}
    assert systems == {"resident_registry", "grid_platform", "civil_affairs", "iot_platform"}
    meta = json.loads((street_dir / "truth" / "meta.json").read_text("utf-8"))
    assert (meta["as_of"], meta["roster_month"], meta["people"]) == (
        "2026-11-20",
        "2026-11",
        len(persons(street_dir)),
    )


# -- expected answers ----------------------------------------------------------------------------------
def expected(street: Path, name: str) -> list[dict]:
    return rows(street / "truth" / f"expected_{name}.csv")


def test_every_alert_is_a_living_registered_person_aged_70_or_more(street_dir):
    alerts, people, newest = (
        expected(street_dir, "elderly_alerts"),
        persons(street_dir),
        newest_rows(street_dir),
    )
    assert alerts
    for a in alerts:
        assert age(people[a["person_id"]]["birth"], AS_OF) >= 70
        assert newest[a["person_id"]]["zt"] == 1
        assert a["hours_silent"] == "" or float(a["hours_silent"]) > 48


def test_alerts_include_silent_people_with_only_late_duplicate_or_broken_events(street_dir):
    cases = {a["case"]: a["person_id"] for a in expected(street_dir, "elderly_alerts")}
    assert {"silent", "silent_late", "silent_dup", "silent_broken", "silent_water"} <= set(cases)
    cards = defaultdict(set)
    for key, pid in truth(street_dir).items():
        if key.startswith("cardholders:"):
            cards[pid].add(key.split(":")[1])
    log = events(street_dir)
    late = [e for e in log if e["holder_id"] in cards[cases["silent_late"]] and e["type"] == "access_granted"]
    assert late and max(e["ts"] for e in late) < T_MS - 48 * HOUR
    dup = Counter(e["event_id"] for e in log if e["holder_id"] in cards[cases["silent_dup"]])
    assert max(dup.values()) == 2
    broken = [e for e in log if e["holder_id"] in cards[cases["silent_broken"]]]
    assert any(e["ts"] == 0 or e["ts"] > T_MS for e in broken)


def test_uncovered_elderly_have_no_card_and_no_water_meter(street_dir):
    uncovered = expected(street_dir, "no_device_coverage")
    assert uncovered
    holders = {pid for key, pid in truth(street_dir).items() if key.startswith("cardholders:")}
    meters = {
        (d["estate_code"], d["building"], d["unit"], d["room"])
        for d in json.loads((street_dir / "iot" / "devices.json").read_text("utf-8"))
        if d["device_type"] == "water_meter"
    }
    estate_code = {name: code for code, name in query(street_dir, "SELECT xqbm, xqmc FROM t_xq")}
    people = persons(street_dir)
    for row in uncovered:
        p = people[row["person_id"]]
        assert row["person_id"] not in holders
        assert (estate_code[p["estate"]], p["building"], p["unit"], p["room"]) not in meters
    assert not {r["person_id"] for r in uncovered} & {
        a["person_id"] for a in expected(street_dir, "elderly_alerts")
    }


def test_senior_allowance_gaps_are_registered_living_80_plus_and_off_the_roster(street_dir):
    gaps, people = expected(street_dir, "senior_allowance_gaps"), persons(street_dir)
    on_roster = {pid for key, pid in truth(street_dir).items() if key.startswith("senior:202611:")}
    assert gaps
    for g in gaps:
        p = people[g["person_id"]]
        assert (p["hukou"], p["status"], p["in_registry"]) == ("户籍", "1", "True")
        assert age(p["birth"], M_FIRST) >= 80
        assert g["person_id"] not in on_roster


def test_subsidy_after_exit_rows_are_roster_rows_of_people_who_left_before_the_month(street_dir):
    rows_ = expected(street_dir, "subsidy_after_exit")
    records, newest = truth(street_dir), newest_rows(street_dir)
    assert {r["programme"] for r in rows_} == {"低保", "高龄补贴"}
    for r in rows_:
        key = {"低保": "dibao", "高龄补贴": "senior"}[r["programme"]] + f":202611:{r['roster_row']}"
        assert records[key] == r["person_id"]
        assert newest[r["person_id"]]["zt"] in (2, 3)
        assert newest[r["person_id"]]["zxrq"] < M_FIRST.isoformat()


def test_people_who_moved_back_or_left_during_the_month_are_not_after_exit_cases(street_dir):
    """The traps: a roster person with an old status-2 row, and one who left on or after the 1st."""
    listed = {r["person_id"] for r in expected(street_dir, "subsidy_after_exit")}
    on_roster = {
        pid for key, pid in truth(street_dir).items() if key.startswith(("senior:202611:", "dibao:202611:"))
    }
    by_person = defaultdict(list)
    for jmid, pid in person_of_jmid(street_dir).items():
        by_person[pid].append(jmid)
    newest = newest_rows(street_dir)
    moved_back = {pid for pid in on_roster if len(by_person[pid]) == 2}
    left_in_month = {
        pid for pid in on_roster if pid in newest and (newest[pid]["zxrq"] or "") >= M_FIRST.isoformat()
    }
    assert moved_back and left_in_month
    assert not (moved_back | left_in_month) & listed


# -- server databases ----------------------------------------------------------------------------------
def _check_loaded(url: str, street: Path) -> None:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            for table, (count,) in (
                ("t_xq", query(street, "SELECT COUNT(*) FROM t_xq")[0]),
                ("t_fw", query(street, "SELECT COUNT(*) FROM t_fw")[0]),
                ("t_jm", query(street, "SELECT COUNT(*) FROM t_jm")[0]),
                ("t_jm_bq", query(street, "SELECT COUNT(*) FROM t_jm_bq")[0]),
            ):
                assert conn.execute(sa.text(f"SELECT COUNT(*) FROM {table}")).scalar() == count, table
            source = {r["jmid"]: r for r in registry(street)}
            for jmid, xm, lxdh, gxsj in conn.execute(sa.text("SELECT jmid, xm, lxdh, gxsj FROM t_jm")):
                assert (xm, lxdh) == (source[jmid]["xm"], source[jmid]["lxdh"])
                assert gxsj == dt.datetime.fromisoformat(source[jmid]["gxsj"])
    finally:
        engine.dispose()


@pytest.mark.postgres
def test_registry_loads_into_postgresql(street_dir, postgres_url):
    load_registry(street_dir / "registry" / "rrs.sqlite", postgres_url, batch_size=100)
    _check_loaded(postgres_url, street_dir)


@pytest.mark.mariadb
def test_registry_loads_into_mariadb(street_dir, mariadb_url):
    load_registry(street_dir / "registry" / "rrs.sqlite", mariadb_url, batch_size=100)
    load_registry(street_dir / "registry" / "rrs.sqlite", mariadb_url)  # loading again replaces, not appends
    _check_loaded(mariadb_url, street_dir)


def test_hard_delete_removes_rows_and_their_tags(tmp_path, street_dir):
    copy = tmp_path / "rrs.sqlite"
    copy.write_bytes((street_dir / "registry" / "rrs.sqlite").read_bytes())
    (jmid,) = query(street_dir, "SELECT jmid FROM t_jm_bq LIMIT 1")[0]
    assert hard_delete(copy, [jmid]) == 1
    with sqlite3.connect(copy) as db:
        assert db.execute("SELECT COUNT(*) FROM t_jm WHERE jmid = ?", (jmid,)).fetchone() == (0,)
        assert db.execute("SELECT COUNT(*) FROM t_jm_bq WHERE jmid = ?", (jmid,)).fetchone() == (0,)
