"""Nobody drops out of sight silently: the elderly reports list persons whose age or living alone no
source settles, with the reason, and the mart build counts them."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from islandbridge.warehouse.core import build_core
from islandbridge.warehouse.marts import build_marts
from tests.warehouse.test_core_fixtures import HOUR_MS, TinyWarehouse, as_of, ms, resident

T = as_of(dt.date(2026, 11, 20))
HOUSES = {"FW1": "501", "FW2": "502", "FW3": "503", "FW4": "504", "FW5": "505"}
PEOPLE = {
    # 93, living alone, silent for days; no birth date and no ID number in the registry, a masked ID in
    # the grid: no source gives her age.
    "W": resident(1, "FW1", None, id_kind="missing"),
    "Y": resident(2, "FW2", "1966-01-01"),  # 60, living alone, silent: too young, never listed
    "S": resident(3, "FW3", None, id_kind="missing"),  # no birth date, but on the 高龄补贴 roster
    "Q": resident(4, "FW4", None, id_kind="missing"),  # age unknown, but lives with R: not alone
    "R": resident(5, "FW4", "1986-01-01"),
    "U": resident(6, "FW99", "1941-01-01"),  # 85; the registry's house FW99 is in no house list
}
UNKNOWN_AGE = "年龄不详：各系统均无出生日期"


@pytest.fixture(scope="module")
def marts(tmp_path_factory):
    path = tmp_path_factory.mktemp("to_check")
    w = TinyWarehouse(path / "wh.duckdb")
    run = w.run(T)
    w.add(
        "registry__t_xq",
        run,
        [{"xqbm": "XQ001", "xqmc": "锦江苑", "sqbm": "511403001001", "sqmc": "凤鸣社区"}],
    )
    w.add(
        "registry__t_fw",
        run,
        [
            {"fwbh": h, "xqbm": "XQ001", "ld": "3", "dy": "1", "fh": r, "wgbm": "G1"}
            for h, r in HOUSES.items()
        ],
    )
    for name, row in PEOPLE.items():
        (key,) = w.add("registry__t_jm", run, [row])
        w.link(f"pk_{name}", ("registry", key))
    w.add(
        "grid__grids",
        run,
        [{"grid_code": "G1", "community_code": "511403001001", "community_name": "凤鸣社区"}],
    )
    (key,) = w.add(
        "grid__residents",
        run,
        [
            {
                "person_id": "GP1",
                "gender": "女",
                "grid_code": "G1",
                "tags": "[]",
                "status": "在册",
                "id_card__kind": "masked",
            }
        ],
    )
    w.link("pk_W", ("grid", key))
    (key,) = w.add(
        "civil__senior",
        run,
        [
            {
                "序号": 1,
                "roster_month": "202611",
                "source_file": "511403001_202611_高龄补贴.csv",
                "出生年月": "1931.05",
                "发放金额": "300",
                "所属社区": "凤鸣社区",
                "身份证号__kind": "excel_damaged",
            }
        ],
    )
    w.link("pk_S", ("civil", key))
    w.add(
        "iot__devices",
        run,
        [
            {
                "device_id": "DR3",
                "device_type": "door_access",
                "estate_code": "XQ001",
                "building": "3",
                "unit": "1",
            }
        ],
    )
    for name, house in (("W", "FW1"), ("Y", "FW2")):
        (key,) = w.add(
            "iot__cardholders",
            run,
            [
                {
                    "holder_id": f"H{name}",
                    "estate_code": "XQ001",
                    "building": "3",
                    "unit": "1",
                    "room": HOUSES[house],
                }
            ],
        )
        w.link(f"pk_{name}", ("iot", key))
    w.add(
        "iot__events",
        run,
        [
            {
                "event_id": f"e{name}",
                "ts": ms(T) - 100 * HOUR_MS,
                "type": "access_granted",
                "device_id": "DR3",
                "holder_id": f"H{name}",
            }
            for name in ("W", "Y")
        ],
    )
    w.reconciled(run, T)
    build_core(w.con, T, run, path / "events")
    w.counts = build_marts(w.con, T, run)
    w.run_id = run
    yield w
    w.close()


def listed(w, report: str) -> dict[str, tuple]:
    sql = f"SELECT person_key, age, age_at_least, check_reason FROM marts.{report}"
    return {k: rest for k, *rest in w.con.execute(sql).fetchall()}


def test_a_silent_woman_living_alone_of_unknown_age_is_alerted_with_the_reason(marts):
    assert listed(marts, "elderly_alerts") == {"pk_W": [None, None, UNKNOWN_AGE]}


def test_a_silent_person_of_known_age_60_is_still_not_listed(marts):
    assert "pk_Y" not in listed(marts, "elderly_alerts") | listed(marts, "no_device_coverage")


def test_a_senior_allowance_roster_row_settles_the_age_as_a_lower_bound(marts):
    # 出生年月 1931.05: at least 95 on 2026-11-20; the roster alone would say 80.
    assert listed(marts, "no_device_coverage")["pk_S"] == [None, 95, None]


def test_unknown_age_does_not_list_someone_known_to_live_with_others(marts):
    assert "pk_Q" not in listed(marts, "elderly_alerts") | listed(marts, "no_device_coverage")


def test_living_alone_unknown_when_the_registry_house_is_unknown_is_listed_with_the_reason(marts):
    assert listed(marts, "no_device_coverage")["pk_U"] == [85, None, "是否独居不详：户籍未登记其住房"]


def test_the_mart_build_counts_the_persons_to_check(marts):
    (counts,) = marts.con.execute(
        "SELECT counts FROM meta.mart_builds WHERE run_id = ?", [marts.run_id]
    ).fetchone()
    assert json.loads(counts)["persons_to_check"] == 2  # W and U; S's age is settled by the roster
    assert "persons_to_check" not in marts.counts  # build_marts returns the reports' rows only
