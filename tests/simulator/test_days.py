"""A street that lives (``simulate --days``): deterministic, keys and persons that persist, every kind
of change present, and each day served without the days after it.

The module's street: 300 residents, five days from 2026-11-28, so the days cross into December (a new
roster month and its correction).
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import sqlite3
from pathlib import Path

import httpx
import pytest

from islandbridge.devtools.simulator import simulate
from islandbridge.devtools.simulator.days import day_dir
from islandbridge.devtools.simulator.servers_days import LivingStreet

FIRST = dt.date(2026, 11, 28)
DAYS = [FIRST + dt.timedelta(days=i) for i in range(5)]
CLIENT = ("cid", "secret")
KEY = "key"
LOCAL = dt.timezone(dt.timedelta(hours=8))


@pytest.fixture(scope="module")
def street(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("living")
    simulate(out, residents=300, seed=11, days=5, as_of=FIRST)
    return out


def _rows(path: Path) -> list[dict]:
    return list(csv.DictReader(path.open(encoding="utf-8", newline="")))


def _truth(street: Path, day: dt.date, name: str) -> list[dict]:
    return _rows(day_dir(street, day) / "truth" / name)


def _jm(street: Path, day: dt.date) -> dict[int, dict]:
    with sqlite3.connect(day_dir(street, day) / "registry" / "rrs.sqlite") as db:
        db.row_factory = sqlite3.Row
        rows = {r["jmid"]: dict(r) for r in db.execute("SELECT * FROM t_jm")}
    db.close()
    return rows


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_seed_same_bytes(tmp_path):
    simulate(tmp_path / "a", residents=300, seed=3, days=2)
    simulate(tmp_path / "b", residents=300, seed=3, days=2)
    assert _files(tmp_path / "a") == _files(tmp_path / "b")


def test_day_one_is_the_generated_street(street, tmp_path):
    from islandbridge.devtools.simulator import generate

    generate(tmp_path, residents=300, seed=11, as_of=FIRST)
    one = day_dir(street, FIRST)
    assert (one / "registry" / "rrs.sqlite").read_bytes() == (
        tmp_path / "registry" / "rrs.sqlite"
    ).read_bytes()
    assert _files(one / "civil") == _files(tmp_path / "civil")
    assert _rows(one / "truth" / "persons.csv") == _rows(tmp_path / "truth" / "persons.csv")


def test_record_keys_and_person_ids_persist_across_days(street):
    for before, after in zip(DAYS, DAYS[1:], strict=False):
        old = {(r["system"], r["record_key"]): r["person_id"] for r in _truth(street, before, "records.csv")}
        new = {(r["system"], r["record_key"]): r["person_id"] for r in _truth(street, after, "records.csv")}
        # A correction file renumbers its month's 低保 rows (序号), as the bureau's corrections do.
        corrected = {p.name[10:16] for p in (day_dir(street, after) / "civil").glob("*_更正.xlsx")} - {
            p.name[10:16] for p in (day_dir(street, before) / "civil").glob("*_更正.xlsx")
        }
        both = {
            k for k in old.keys() & new.keys() if k[1][6:12] not in corrected or not k[1].startswith("dibao")
        }
        assert both and {k: new[k] for k in both} == {k: old[k] for k in both}
        people_old = {
            r["person_id"]: (r["name"], r["id_number"], r["birth"])
            for r in _truth(street, before, "persons.csv")
        }
        people_new = {
            r["person_id"]: (r["name"], r["id_number"], r["birth"])
            for r in _truth(street, after, "persons.csv")
        }
        assert people_old.items() <= people_new.items()
        assert len(people_new) > len(people_old)  # births and new households


def test_every_kind_of_change_happens(street):
    changes = json.loads((street / "days.json").read_text(encoding="utf-8"))["changes"]
    seen = {kind for day in changes.values() for kind, n in day.items() if n}
    assert seen >= {
        "births", "deaths", "moves_out", "moves_back", "new_households", "phone_changes", "address_changes",
        "hard_deletes", "grid_edits", "grid_added", "incidents_opened", "incidents_closed", "visits",
        "new_cards", "went_silent", "recovered", "roster_deaths", "dibao_heads_left", "roster_files",
    }  # fmt: skip


def test_registry_changes_carry_the_day_they_were_made(street):
    day1, day2 = _jm(street, DAYS[0]), _jm(street, DAYS[1])
    added = day2.keys() - day1.keys()
    deleted = day1.keys() - day2.keys()
    updated = {j for j in day1.keys() & day2.keys() if day1[j] != day2[j]}
    assert added and deleted and updated
    assert all(day2[j]["gxsj"].startswith(DAYS[1].isoformat()) for j in added | updated)
    assert any(day2[j]["zt"] == 3 and day2[j]["zxrq"] == DAYS[1].isoformat() for j in updated)  # a death
    assert any(r["csrq"] in (DAYS[1].isoformat(), f"{DAYS[1]:%Y%m%d}") for j, r in day2.items() if j in added)


def test_a_new_roster_month_comes_with_after_exit_rows_and_a_correction_the_next_day(street):
    names = {d: sorted(p.name for p in (day_dir(street, d) / "civil").iterdir()) for d in DAYS}
    assert not any("202612" in n for n in names[DAYS[2]])
    assert {n for n in names[DAYS[3]] if "202612" in n} == {
        "511403001_202612_低保.xlsx",
        "511403001_202612_高龄补贴.csv",
    }
    assert "511403001_202612_低保_更正.xlsx" in names[DAYS[4]]
    after_exit = _truth(street, DAYS[3], "expected_subsidy_after_exit.csv")
    assert any("202612" in r["roster_file"] and r["exit_date"] == DAYS[2].isoformat() for r in after_exit)
    corrected = _truth(street, DAYS[4], "expected_subsidy_after_exit.csv")
    assert all("低保.xlsx" not in r["roster_file"] or "202611" in r["roster_file"] for r in corrected)


def test_old_people_go_silent_and_recover(street):
    alerts = {
        d: {r["person_id"]: r["case"] for r in _truth(street, d, "expected_elderly_alerts.csv")} for d in DAYS
    }
    went = [p for p, case in alerts[DAYS[-1]].items() if case == "went_silent"]
    assert went and all(p not in alerts[DAYS[1]] for p in went)  # silent since day 2, alerted 48 h later
    persons = {r["person_id"]: r for r in _truth(street, DAYS[-1], "persons.csv")}
    recovered = [p for p in alerts[DAYS[0]] if p not in alerts[DAYS[2]] and persons[p]["status"] == "1"]
    assert recovered


def test_each_day_of_the_iot_log_adds_events_late_duplicated_and_broken(street):
    counts = json.loads((street / "iot" / "events_days.json").read_text(encoding="utf-8"))
    lines = (street / "iot" / "events.jsonl").read_text(encoding="utf-8").splitlines()
    assert list(counts) == [d.isoformat() for d in DAYS] and counts[DAYS[-1].isoformat()] == len(lines)
    assert all(counts[a.isoformat()] < counts[b.isoformat()] for a, b in zip(DAYS, DAYS[1:], strict=False))
    after_day_one = [json.loads(x) for x in lines[counts[DAYS[0].isoformat()] :]]
    day_start = int(dt.datetime.combine(DAYS[-1], dt.time(), LOCAL).timestamp() * 1000)
    last_day = [json.loads(x) for x in lines[counts[DAYS[-2].isoformat()] :]]
    ids = [e["event_id"] for e in after_day_one]
    assert len(ids) > len(set(ids))  # re-delivered
    assert any(0 < e["ts"] < day_start - 3_600_000 for e in last_day)  # arrived hours late
    t_end = day_start + 86_400_000
    assert any(e["ts"] == 0 or e["ts"] > t_end + 86_400_000 for e in after_day_one)  # broken clocks


def _get(base: str, path: str, **params) -> dict:
    return httpx.get(base + path, params=params, headers={"X-Api-Key": KEY}, timeout=10).json()


def _grid(server, path: str, **params) -> dict:
    token = httpx.post(
        server.base_url + "/api/v2/auth/token", json={"client_id": CLIENT[0], "client_secret": CLIENT[1]}
    ).json()["data"]["access_token"]
    return httpx.get(
        server.base_url + "/api/v2" + path, params=params, headers={"Authorization": f"Bearer {token}"}
    ).json()["data"]


def test_serving_a_day_hides_the_next_days_changes(street):
    day, nxt = DAYS[1], DAYS[2]
    counts = json.loads((street / "iot" / "events_days.json").read_text(encoding="utf-8"))
    with LivingStreet(street, day=day, client_id=CLIENT[0], client_secret=CLIENT[1], api_key=KEY) as s:
        residents = _grid(s.grid, "/residents", page_size=500)
        assert all(r["update_time"] < f"{nxt} 00:00:00" for r in residents["items"])
        events = _get(s.iot.base_url, "/iot/v1/events", limit=5000)
        while events["has_more"]:
            more = _get(s.iot.base_url, "/iot/v1/events", limit=5000, cursor=events["next_cursor"])
            events = {**more, "events": events["events"] + more["events"]}
        assert len(events["events"]) == counts[day.isoformat()]
        holders = _get(s.iot.base_url, "/iot/v1/cardholders")["total"]
        assert (s.live / "registry" / "rrs.sqlite").read_bytes() == (
            day_dir(street, day) / "registry" / "rrs.sqlite"
        ).read_bytes()
        s.set_day(nxt)
        later = _grid(s.grid, "/residents", page_size=500)
        assert later["total"] > residents["total"]  # residents added on the next day
        assert any(r["update_time"] >= f"{nxt} 00:00:00" for r in later["items"])
        tail = _get(s.iot.base_url, "/iot/v1/events", limit=5000, cursor=events["next_cursor"])
        assert tail["events"] and len(tail["events"]) <= counts[nxt.isoformat()] - counts[day.isoformat()]
        assert _get(s.iot.base_url, "/iot/v1/cardholders")["total"] > holders
        assert (s.live / "registry" / "rrs.sqlite").read_bytes() == (
            day_dir(street, nxt) / "registry" / "rrs.sqlite"
        ).read_bytes()
        assert sorted(p.name for p in (s.live / "civil").iterdir()) == sorted(
            p.name for p in (day_dir(street, nxt) / "civil").iterdir()
        )


def test_the_day_file_moves_a_running_street_to_another_day(street):
    with LivingStreet(street, day=DAYS[0], client_id=CLIENT[0], client_secret=CLIENT[1], api_key=KEY) as s:
        (s.live / "day").write_text(DAYS[3].isoformat(), encoding="utf-8")
        assert s.follow_day_file() and s.day == DAYS[3] and s.grid.day == DAYS[3]
        assert any("202612" in p.name for p in (s.live / "civil").iterdir())
        (s.live / "day").write_text("2027-01-01", encoding="utf-8")
        with pytest.raises(ValueError, match="has no day 2027-01-01"):
            s.follow_day_file()
        assert s.day == DAYS[3]
