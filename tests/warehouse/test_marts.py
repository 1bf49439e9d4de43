"""The department marts on a hand-made street whose answers are known person by person."""

from __future__ import annotations

import datetime as dt
import logging

import pytest

from islandbridge.landing import raw
from islandbridge.warehouse.core import build_core
from islandbridge.warehouse.marts import REPORTS, MartOptionsError, build_marts, report_notes
from tests.warehouse.test_core_fixtures import HOUR_MS, TinyWarehouse, as_of, ms, resident

T1 = as_of(dt.date(2026, 11, 19))
T = as_of(dt.date(2026, 11, 20))  # the run the reports are for; roster month M = 2026-11
HOUSES = {  # house -> (estate, building, room)
    "FW1": ("XQ001", "3", "501"),
    "FW2": ("XQ001", "3", "502"),
    "FW3": ("XQ001", "3", "503"),
    "FW4": ("XQ002", "7", "101"),
    "FW5": ("XQ002", "7", "102"),
    "FW6": ("XQ002", "8", "201"),
    "FW7": ("XQ002", "8", "202"),
    "FW8": ("XQ002", "8", "203"),
    "FW9": ("XQ002", "8", "204"),
    "FW10": ("XQ001", "5", "101"),
    "FW11": ("XQ001", "5", "102"),
    "FW12": ("XQ001", "5", "103"),
}
# name -> (registry row, what their devices show); every elderly person below lives alone unless noted.
PEOPLE = {
    "A": resident(1, "FW1", "1946-01-01"),  # card: last access 60 h ago -> silent
    "B": resident(2, "FW2", "1950-06-01"),  # card: access 10 h ago -> active
    "C": resident(3, "FW3", "1940-01-01"),  # lives with D, tagged 独居老人 by the grid; meter rises
    "D": resident(4, "FW3", "1990-01-01", hjlx="流动"),
    "E": resident(5, "FW4", "1945-03-03"),  # meter rose 70 h ago, flat since -> silent
    "F": resident(6, "FW5", "1944-11-15"),  # no card, no meter -> no device coverage
    "G": resident(7, "FW6", "1943-02-02"),  # card: late, duplicated and broken-clock events
    "H": resident(8, "FW7", "1957-01-01"),  # 69: not in the population
    "I": resident(9, "FW8", "1940-01-01", zt="2", zxrq="2026-09-01"),  # moved out before M, still paid
    "J": resident(10, "FW9", "1946-11-10"),  # card never used; 80 at T but 79 on the 1st of M
    "K": resident(11, "FW10", None, id_birth="1930-01-01", hjlx="流动"),  # no device; 流动: no allowance
    "L": resident(12, "FW11", "1938-01-01", zt="3", zxrq="2026-11-05"),  # died during M: paid rightly
    "M": resident(13, "FW12", None, id_kind="missing"),  # no birth date anywhere, tagged 独居老人, no device
}


@pytest.fixture(scope="module")
def marts(tmp_path_factory):
    """The street built, core and marts for T; yields the connection."""
    path = tmp_path_factory.mktemp("marts")
    w = TinyWarehouse(path / "wh.duckdb")
    r1, r2 = w.run(T1), w.run(T)
    _registry(w, r1)
    _devices(w, r1, r2)
    _rosters(w, r2)
    _grid(w, r2)
    w.reconciled(r2, T)
    w.con.execute(
        "INSERT INTO core.identity_review VALUES (?, 'civil_affairs', 'senior:202611:23', "
        "'resident_registry', 't_jm:1', 0.7, 'ambiguous')",
        [r2],
    )
    build_core(w.con, T1, r1, path / "events")
    build_core(w.con, T, r2, path / "events")
    w.counts = build_marts(w.con, T, r2)
    w.events = path / "events"
    yield w
    w.close()


def _registry(w: TinyWarehouse, run: str) -> None:
    w.add(
        "registry__t_xq",
        run,
        [
            {"xqbm": "XQ001", "xqmc": "锦江苑", "sqbm": "511403001001", "sqmc": "凤鸣社区"},
            {"xqbm": "XQ002", "xqmc": "蜀南花园", "sqbm": "511403001002", "sqmc": "滨江社区"},
        ],
    )
    w.add(
        "registry__t_fw",
        run,
        [
            {"fwbh": h, "xqbm": e, "ld": b, "dy": "1", "fh": r, "wgbm": "G1"}
            for h, (e, b, r) in HOUSES.items()
        ],
    )
    for name, row in PEOPLE.items():
        (key,) = w.add("registry__t_jm", run, [row])
        w.link(f"pk_{name}", ("registry", key))
    w.add("registry__t_jm_bq", run, [{"jmid": 13, "bq": "独居老人"}])


def _devices(w: TinyWarehouse, r1: str, r2: str) -> None:
    doors = sorted({(e, b) for e, b, _ in HOUSES.values()})
    w.add(
        "iot__devices",
        r1,
        [
            {
                "device_id": f"DR{e}{b}",
                "device_type": "door_access",
                "estate_code": e,
                "building": b,
                "unit": "1",
                "room": None,
            }
            for e, b in doors
        ],
    )
    w.add(
        "iot__devices",
        r1,
        [
            {
                "device_id": f"WM{h}",
                "device_type": "water_meter",
                "estate_code": HOUSES[h][0],
                "building": HOUSES[h][1],
                "unit": "1",
                "room": HOUSES[h][2],
            }
            for h in ("FW3", "FW4")
        ],
    )
    for name, house in (("A", "FW1"), ("B", "FW2"), ("G", "FW6"), ("J", "FW9"), ("CARER", "FW5")):
        e, b, r = HOUSES[house]
        (key,) = w.add(
            "iot__cardholders",
            r1,
            [{"holder_id": f"H{name}", "estate_code": e, "building": b, "unit": "1", "room": r}],
        )
        w.link(f"pk_{name}", ("iot", key))
    t = ms(T)

    def ev(event_id, holder, hours, kind="access_granted", device=None, value=None, ts=None):
        return {
            "event_id": event_id,
            "ts": ts if ts is not None else t - int(hours * HOUR_MS),
            "type": kind,
            "device_id": device or "DRXQ0013",
            "holder_id": holder,
            "value": value,
        }

    w.add(
        "iot__events",
        r1,
        [
            ev("a1", "HA", 60),
            ev("b1", "HB", 30),
            ev("g1", "HG", 60),
            *(
                ev(f"c{n}", None, h, "meter_reading", "WMFW3", v)
                for n, (h, v) in enumerate([(100, 10), (40, 10)])
            ),
            *(
                ev(f"e{n}", None, h, "meter_reading", "WMFW4", v)
                for n, (h, v) in enumerate([(100, 100), (70, 150), (40, 150)])
            ),
        ],
    )
    w.add(
        "iot__events",
        r2,
        [
            ev("b2", "HB", 10),
            ev("g1", "HG", 60),  # B active; G's first access delivered twice
            ev("g2", "HG", 52),  # late: happened before the previous run
            ev("g3", "HG", 0, ts=0),
            ev("g4", "HG", 0, ts=4_102_444_800_000),  # broken clocks: never count
            ev("carer", "HCARER", 2),  # the caregiver's card at F's flat
            ev("c9", None, 5, "meter_reading", "WMFW3", 25),  # C's meter rises inside the window
            ev("e9", None, 10, "meter_reading", "WMFW4", 150),  # E's does not
        ],
    )


def _rosters(w: TinyWarehouse, run: str) -> None:
    def senior(seq, amount="300", kind="full"):
        return {
            "序号": seq,
            "roster_month": "202611",
            "source_file": "511403001_202611_高龄补贴.csv",
            "发放金额": amount,
            "所属社区": "凤鸣社区",
            "身份证号__kind": kind,
        }

    keys = w.add(
        "civil__senior",
        run,
        [senior(1), senior(2, "156.66"), senior(3), senior(21, kind="excel_damaged"), senior(22), senior(23)],
    )
    for name, key in zip(("A", "I", "L", "U1", "U2", "U3"), keys, strict=True):
        w.link(f"pk_{name}", ("civil", key))
    (key,) = w.add(
        "civil__dibao",
        run,
        [
            {
                "序号": 1,
                "roster_month": "202611",
                "source_file": "511403001_202611_低保.xlsx",
                "月保障金(元)": "800",
                "所属社区": "滨江社区",
                "身份证号码__kind": "full",
            }
        ],
    )
    w.link("pk_I", ("civil", key))


def _grid(w: TinyWarehouse, run: str) -> None:
    w.add(
        "grid__grids",
        run,
        [{"grid_code": "G1", "community_code": "511403001001", "community_name": "凤鸣社区"}],
    )
    (key,) = w.add(
        "grid__residents",
        run,
        [{"person_id": "GP1", "gender": "女", "grid_code": "G1", "tags": '["独居老人"]', "status": "在册"}],
    )
    w.link("pk_C", ("grid", key))
    created = {"2026-10": ms(as_of(dt.date(2026, 10, 3))), "2026-11": ms(as_of(dt.date(2026, 11, 3)))}
    keys = w.add(
        "grid__events",
        run,
        [
            {
                "event_id": "V1",
                "category": "环境卫生",
                "address": "锦江苑3栋1单元501室",
                "created_at": created["2026-11"],
            },
            {
                "event_id": "V2",
                "category": "环境卫生",
                "address": "锦江苑3-1-502",
                "created_at": created["2026-11"],
            },
            {
                "event_id": "V3",
                "category": "消防安全",
                "address": "蜀南花园7栋1单元101",
                "created_at": created["2026-10"],
            },
            {
                "event_id": "V4",
                "category": "消防安全",
                "address": "某处",
                "created_at": created["2026-10"],
                "grid_code": "G1",
            },
            {
                "event_id": "V5",
                "category": "消防安全",
                "address": "锦江苑3栋1单元501室",
                "created_at": ms(T) + HOUR_MS,
            },
        ],
    )
    w.link("pk_N", ("grid", keys[3]))  # N: known only as V4's reporter; no system says where N lives


def rows(w, sql: str) -> list[tuple]:
    return w.con.execute(sql).fetchall()


def test_silent_people_are_listed_longest_silent_first(marts):
    got = rows(
        marts,
        "SELECT person_key, hours_silent::DOUBLE, last_door_access_at, last_water_use_at "
        "FROM marts.elderly_alerts",
    )
    assert [(k, h) for k, h, _, _ in got] == [("pk_J", None), ("pk_E", 70.0), ("pk_A", 60.0), ("pk_G", 52.0)]
    by_key = {k: (d, wa) for k, _, d, wa in got}
    assert by_key["pk_E"] == (None, dt.datetime.fromtimestamp((ms(T) - 70 * HOUR_MS) / 1000, dt.UTC))
    assert by_key["pk_G"][0] == dt.datetime.fromtimestamp((ms(T) - 52 * HOUR_MS) / 1000, dt.UTC)


def test_those_without_any_device_are_listed_apart_even_of_unknown_age_when_tagged(marts):
    got = rows(
        marts, "SELECT person_key, address, age, unregistered_cards_at_home FROM marts.no_device_coverage"
    )
    assert got == [
        ("pk_K", "锦江苑5栋1单元101室", 96, 0),
        ("pk_M", "锦江苑5栋1单元103室", None, 0),
        ("pk_F", "蜀南花园7栋1单元102室", 82, 1),
    ]


def test_a_tagged_person_of_unknown_age_is_listed_to_check_and_the_others_are_not(marts):
    got = rows(marts, "SELECT person_key, check_reason FROM marts.no_device_coverage ORDER BY person_key")
    assert got == [("pk_F", None), ("pk_K", None), ("pk_M", "年龄不详：各系统均无出生日期（有独居老人标签）")]


def test_a_longer_silence_window_lets_a_recent_access_count(marts):
    try:
        build_marts(marts.con, T, raw.run_id_for(T), {"silent_hours": 72})
        assert rows(marts, "SELECT person_key FROM marts.elderly_alerts") == [("pk_J",)]
    finally:
        build_marts(marts.con, T, raw.run_id_for(T))


def test_senior_allowance_gaps_are_registered_residents_80_on_the_first_of_the_month(marts):
    assert rows(marts, "SELECT person_key, age FROM marts.senior_allowance_gaps ORDER BY person_key") == [
        ("pk_C", 86),
        ("pk_E", 81),
        ("pk_F", 81),
        ("pk_G", 83),
    ]


def test_a_month_whose_rosters_have_not_arrived_is_a_warning_and_a_note_not_silence(marts):
    """As of a day in December with only November's rosters: senior_allowance_gaps lists every senior (as
    DEPARTMENTS.md defines it), and the build says why, as failing warnings and as the reports' notes."""
    december = as_of(dt.date(2026, 12, 7))
    run = raw.run_id_for(december)
    checks = (
        "SELECT stream, expectation, severity, success FROM meta.quality_results "
        "WHERE run_id = ? AND source = 'reports' ORDER BY ALL"
    )
    assert rows(marts, checks.replace("?", f"'{raw.run_id_for(T)}'")) == [
        ("senior_allowance_gaps", "senior_roster_arrived", "warning", True),
        ("senior_allowance_gaps", "senior_roster_files_read", "warning", True),
        ("subsidy_after_exit", "dibao_roster_arrived", "warning", True),
        ("subsidy_after_exit", "dibao_roster_files_read", "warning", True),
        ("subsidy_after_exit", "senior_roster_arrived", "warning", True),
        ("subsidy_after_exit", "senior_roster_files_read", "warning", True),
    ]
    assert report_notes(marts.con, raw.run_id_for(T)) == {}
    try:
        build_marts(marts.con, december, run)
        seniors = rows(
            marts,
            "SELECT count(*) FROM core.persons WHERE registry_status = 1 AND registration_type = '户籍' "
            "AND age_at_month_start >= 80",
        )
        assert rows(marts, "SELECT count(*) FROM marts.senior_allowance_gaps") == seniors
        assert rows(marts, "SELECT count(*) FROM marts.subsidy_after_exit") == [(0,)]
        assert rows(marts, checks.replace("?", f"'{run}'")) == [
            ("senior_allowance_gaps", "senior_roster_arrived", "warning", False),
            ("senior_allowance_gaps", "senior_roster_files_read", "warning", True),
            ("subsidy_after_exit", "dibao_roster_arrived", "warning", False),
            ("subsidy_after_exit", "dibao_roster_files_read", "warning", True),
            ("subsidy_after_exit", "senior_roster_arrived", "warning", False),
            ("subsidy_after_exit", "senior_roster_files_read", "warning", True),
        ]
        notes = report_notes(marts.con, run)
        assert sorted(notes) == ["senior_allowance_gaps", "subsidy_after_exit"]
        assert "2026-12 高龄补贴名册尚未收到（或未能读入）" in notes["senior_allowance_gaps"][0]
        assert [n.split("：")[0] for n in notes["subsidy_after_exit"]] == [
            "2026-12 低保名册尚未收到（或未能读入）",
            "2026-12 高龄补贴名册尚未收到（或未能读入）",
        ]
    finally:
        build_marts(marts.con, T, raw.run_id_for(T))


def test_a_refused_roster_file_of_the_month_is_a_warning_and_a_note_on_its_reports(marts, caplog):
    """A 高龄补贴 correction of M the connector refused (an Excel 97-2003 file): the month's reports use the
    roster read before it, and say so on both reports that read it, with a failing warning expectation."""
    run = raw.run_id_for(T)
    bad = "511403001_202611_高龄补贴_更正.xls"
    marts.con.execute(raw.META_DDL)
    marts.con.execute(
        "INSERT INTO meta.source_files VALUES (?, 'civil', 'senior', ?, 'refused', ?, 0, now()), "
        "(?, 'civil', 'dibao', '511403002_202611_低保.xlsx', 'refused', 'a roster of street 511403002', 0, now())",
        [
            run,
            bad,
            "an Excel 97-2003 workbook (.xls, BIFF format), which cannot be read: save it as .xlsx",
            run,
        ],
    )
    try:
        with caplog.at_level(logging.WARNING):
            build_marts(marts.con, T, run)
        assert (
            "senior roster files of 2026-11 could not be read: the reports of that month's rosters use"
            in (caplog.text)
        )
        caplog.clear()
        failing = rows(
            marts,
            f"SELECT stream, expectation FROM meta.quality_results WHERE run_id = '{run}' "
            "AND source = 'reports' AND NOT success ORDER BY ALL",
        )
        assert failing == [
            ("senior_allowance_gaps", "senior_roster_files_read"),
            ("subsidy_after_exit", "senior_roster_files_read"),
        ], "another street's file is not this street's roster"
        notes = report_notes(marts.con, run)
        for report in ("senior_allowance_gaps", "subsidy_after_exit"):
            (note,) = notes[report]
            assert note.startswith(f"2026-11 高龄补贴名册文件 {bad} 未能读入：本表仍按此前读入的名册核对")
            assert "as if uncorrected" in note and "save it as .xlsx" in note
        december = as_of(dt.date(2026, 12, 7))
        later = raw.run_id_for(december)
        marts.con.execute(
            "INSERT INTO meta.source_files VALUES (?, 'civil', 'senior', ?, 'refused', 'not a zip', 0, now())",
            [later, "511403001_202612_高龄补贴.xlsx"],
        )
        with caplog.at_level(logging.WARNING):
            build_marts(marts.con, december, later)
        said = caplog.text  # no file of December's roster was read: nothing is used "as if uncorrected"
        assert "senior roster files of 2026-12 could not be read: no file of that roster was read" in said
        assert "as if uncorrected" not in said.split("senior roster files of 2026-12", 1)[1].splitlines()[0]
        arrived, refused = report_notes(marts.con, later)["senior_allowance_gaps"]
        assert arrived.startswith("2026-12 高龄补贴名册尚未收到（或未能读入）")
        assert refused.startswith(
            "2026-12 高龄补贴名册文件 511403001_202612_高龄补贴.xlsx 未能读入：本表缺少该名册"
        )
    finally:
        marts.con.execute("DELETE FROM meta.source_files")
        build_marts(marts.con, T, run)


def test_subsidy_after_exit_lists_rows_of_people_gone_before_the_month(marts):
    got = rows(
        marts,
        "SELECT programme, roster_row, person_key, exit_status, exit_date, amount_yuan::DOUBLE "
        "FROM marts.subsidy_after_exit",
    )
    assert got == [
        ("低保", 1, "pk_I", 2, dt.date(2026, 9, 1), 800.0),
        ("高龄补贴", 2, "pk_I", 2, dt.date(2026, 9, 1), 156.66),
    ]


def test_unmatched_roster_rows_say_why(marts):
    assert rows(marts, "SELECT roster_row, reason, id_kind FROM marts.unmatched_roster_rows") == [
        (21, "damaged_id_number", "excel_damaged"),
        (22, "no_candidate", "full"),
        (23, "ambiguous", "full"),
    ]


def test_a_roster_row_that_could_be_several_namesakes_is_ambiguous(marts):
    """The identity step's ``several_namesakes`` review (no probability) makes the row ambiguous too."""
    run = marts.con.execute("SELECT max(run_id) FROM meta.identity_runs").fetchall()[0][0]
    review = (
        "INSERT INTO core.identity_review VALUES (?, 'resident_registry', 't_jm:2', 'civil_affairs', "
        "'senior:202611:22', NULL, 'several_namesakes')"
    )
    marts.con.execute(review, [run])
    try:
        build_marts(marts.con, T, run)
        assert rows(
            marts, "SELECT roster_row, reason FROM marts.unmatched_roster_rows WHERE roster_row = 22"
        ) == [(22, "ambiguous")]
    finally:
        marts.con.execute("DELETE FROM core.identity_review WHERE reason = 'several_namesakes'")
        build_marts(marts.con, T, run)


def test_island_coverage_counts_persons_per_community_and_system(marts):
    got = rows(
        marts,
        "SELECT community, persons_known, in_registry, in_grid, in_civil, in_iot, in_two_or_more, "
        "in_all_four FROM marts.island_coverage",
    )
    # 凤鸣社区: A B C D K L M and the three unmatched roster people (placed by the roster's community);
    # 滨江社区: E F G H I J and the caregiver (placed by the card at F's flat).
    # N, known only as an incident's reporter, has no community: a row of its own, last (the street
    # office's policy shows its empty 社区 as 社区不明).
    assert got == [
        ("凤鸣社区", 10, 7, 1, 5, 2, 4, 0),
        ("滨江社区", 7, 6, 0, 1, 3, 3, 0),
        (None, 1, 0, 1, 0, 0, 0, 0),
    ]


def test_incidents_are_counted_per_month_building_and_category_with_households(marts):
    got = rows(
        marts,
        "SELECT strftime(month, '%Y-%m'), community, estate_name, building, category, incidents, "
        "households FROM marts.incidents_by_building",
    )
    assert got == [
        ("2026-10", "凤鸣社区", None, None, "消防安全", 1, None),
        ("2026-10", "滨江社区", "蜀南花园", "7", "消防安全", 1, 2),
        ("2026-11", "凤鸣社区", "锦江苑", "3", "环境卫生", 2, 3),
    ]


def test_rebuilding_the_marts_gives_identical_tables(marts):
    before = marts.snapshot(*(f"marts.{r}" for r in REPORTS))
    assert build_marts(marts.con, T, raw.run_id_for(T)) == marts.counts
    assert marts.snapshot(*(f"marts.{r}" for r in REPORTS)) == before


def test_bad_options_are_refused_with_every_problem_named(marts):
    with pytest.raises(MartOptionsError, match="silent_hour.*silent_hours"):
        build_marts(marts.con, T, raw.run_id_for(T), {"silent_hour": 48, "silent_hours": -1})
