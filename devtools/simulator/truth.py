"""The ground truth under ``truth/``: who each record is, who the people are, and the expected answers.

``records.csv`` maps every person-bearing record of every system to a true person; ``persons.csv`` lists
the people; ``expected_*.csv`` are the department answers for T (the end of the as-of date, local time)
and roster month M (the as-of month), computed from the model and from what the delivered IoT log
shows, never by re-reading the damaged files.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from pathlib import Path

from islandbridge.devtools.simulator.civil import RosterRow
from islandbridge.devtools.simulator.common import HOUR_MS, LOCAL_TZ, age_on
from islandbridge.devtools.simulator.iot_events import Observed
from islandbridge.devtools.simulator.population import Person, Street
from islandbridge.devtools.simulator.scenarios import elderly_population

WINDOW_HOURS = 48
PERSON_COLUMNS = ["person_id", "name", "id_number", "phone", "community"]
PROGRAMME_NAMES = {"dibao": "低保", "senior": "高龄补贴"}


def write_truth(
    street: Street,
    out: Path,
    records: list[tuple[str, str, str]],
    month_rows: list[RosterRow],
    observed: Observed | None,
    meta_extra: dict,
) -> dict[str, int]:
    """Write every truth file; return the row count of each.

    ``observed=None`` leaves out the two elderly answers, for a caller that writes them later with
    :func:`write_elderly` (a living street learns what the IoT log shows only after all its days).
    """
    out.mkdir(parents=True, exist_ok=True)
    _csv(out / "records.csv", ["system", "record_key", "person_id"], records, "\n")
    _csv(
        out / "persons.csv",
        [
            "person_id",
            "name",
            "id_number",
            "birth",
            "status",
            "hukou",
            "in_registry",
            "community",
            "estate",
            "building",
            "unit",
            "room",
        ],
        [_person_row(p) for p in street.persons],
        "\n",
    )
    answers = elderly_files(elderly_subjects(street), observed, street.t_ms) if observed else {}
    answers |= {
        "expected_senior_allowance_gaps.csv": senior_gaps(street, month_rows),
        "expected_subsidy_after_exit.csv": subsidy_after_exit(street, month_rows),
    }
    for name, (header, rows) in answers.items():
        _csv(out / name, header, rows, "\r\n")
    meta = {
        "as_of": street.as_of.isoformat(),
        "roster_month": f"{street.month_first:%Y-%m}",
        "people": len(street.persons),
        "records": len(records),
        "note": "iot/events.jsonl is the whole event log as the platform would deliver it from the start of its "
        "7-day retention, in arrival order; civil/ holds a 低保 file for the roster month and its correction "
        "(_更正), which replaces it: truth names the correction's rows",
        "t_end": street.t_end.isoformat(),
        "window_hours": WINDOW_HOURS,
        **meta_extra,
    }
    (out / "meta.json").write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    return {
        "records": len(records),
        "persons": len(street.persons),
        **{k: len(v[1]) for k, v in answers.items()},
    }


def _csv(path: Path, header: list[str], rows, newline: str) -> None:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(rows)
    path.write_text(buffer.getvalue(), encoding="utf-8")


def _person_row(p: Person) -> list:
    h = p.house
    return [
        p.pid,
        p.name,
        p.id_number,
        p.birth.isoformat(),
        p.status,
        p.hukou,
        p.in_registry,
        h.estate.community_name,
        h.estate.name,
        h.building,
        h.unit,
        h.room,
    ]


def _identity(p: Person) -> list:
    return [p.pid, p.name, p.id_number, p.phone or "", p.house.estate.community_name]


def _address(p: Person) -> str:
    h = p.house
    return f"{h.estate.name}{h.building}栋{h.unit}单元{h.room}室"


def _local(ms: int | None) -> str:
    return "" if ms is None else dt.datetime.fromtimestamp(ms / 1000, LOCAL_TZ).isoformat(timespec="seconds")


def water_use(readings: list[tuple[int, int]], window_start: int) -> tuple[int | None, bool]:
    """(ts of the newest reading above the one before it, whether the meter rose inside the window).

    The baseline is the newest reading at or before the window's start (or the first inside it);
    duplicates and out-of-order arrivals do not matter because readings are taken in ``ts`` order.
    """
    series = sorted(set(readings))
    last_rise = next(
        (series[i][0] for i in range(len(series) - 1, 0, -1) if series[i][1] > series[i - 1][1]), None
    )
    before = [v for ts, v in series if ts <= window_start]
    inside = [v for ts, v in series if ts > window_start]
    if not inside:
        return last_rise, False
    baseline = before[-1] if before else inside[0]
    return last_rise, max(inside) > baseline


def elderly_subjects(street: Street) -> list[tuple]:
    """The alert population as the answers need it: (identity, age and address columns), whether they
    hold a card, their flat's code if it has a water meter, their person id and design."""
    return [
        (
            _identity(p) + [street.age(p), _address(p)],
            bool(p.cards),
            p.house.fwbh if p.house.water else None,
            p.pid,
            p.design,
        )
        for p in elderly_population(street)
    ]


def elderly_files(subjects: list[tuple], observed: Observed, t_ms: int) -> dict:
    alerts, uncovered = elderly_rows(subjects, observed, t_ms)
    return {"expected_elderly_alerts.csv": alerts, "expected_no_device_coverage.csv": uncovered}


def write_elderly(out: Path, subjects: list[tuple], observed: Observed, t_ms: int) -> dict[str, int]:
    """Write the two elderly answers for T = ``t_ms`` from what ``observed`` holds; return row counts."""
    answers = elderly_files(subjects, observed, t_ms)
    for name, (header, rows) in answers.items():
        _csv(out / name, header, rows, "\r\n")
    return {k: len(v[1]) for k, v in answers.items()}


def elderly_answers(street: Street, observed: Observed):
    """The silent people (with a device signal source) and the uncovered ones (without)."""
    return elderly_rows(elderly_subjects(street), observed, street.t_ms)


def elderly_rows(subjects: list[tuple], observed: Observed, t_ms: int):
    window_start = t_ms - WINDOW_HOURS * HOUR_MS
    alerts, uncovered = [], []
    for columns, has_card, meter, pid, design in subjects:
        if not has_card and meter is None:
            uncovered.append(columns)
            continue
        door = observed.last_access_ms.get(pid) if has_card else None
        water, rose = (
            water_use(observed.readings.get(meter, []), window_start) if meter is not None else (None, False)
        )
        if (door is not None and door > window_start) or rose:
            continue
        latest = max([m for m in (door, water) if m is not None], default=None)
        silent = "" if latest is None else round((t_ms - latest) / HOUR_MS, 1)
        alerts.append(columns + [_local(door), _local(water), silent, design])
    alerts.sort(key=lambda r: (r[9] != "", -(r[9] or 0), r[0]))
    header = PERSON_COLUMNS + [
        "age",
        "address",
        "last_door_access_at",
        "last_water_use_at",
        "hours_silent",
        "case",
    ]
    return (header, alerts), (PERSON_COLUMNS + ["age", "address"], sorted(uncovered))


def senior_gaps(street: Street, month_rows: list[RosterRow]):
    """户籍, living, 80+ on the first day of M, and not on M's 高龄补贴 roster (whatever its ID looks like)."""
    first = street.month_first
    on_roster = {r.person.pid for r in month_rows if r.programme == "senior"}
    rows = [
        _identity(p) + [p.birth.isoformat(), age_on(p.birth, first)]
        for p in street.persons
        if p.role == "resident"
        and p.in_registry
        and p.hukou == "户籍"
        and p.living
        and age_on(p.birth, first) >= 80
        and p.pid not in on_roster
    ]
    return PERSON_COLUMNS + ["birth_date", "age"], sorted(rows)


def subsidy_after_exit(street: Street, month_rows: list[RosterRow]):
    """M's roster rows (低保 after correction, 高龄补贴) of people whose newest registry row says they
    left (2) or died (3) before the first day of M."""
    first = street.month_first
    rows = [
        _identity(r.person)
        + [
            PROGRAMME_NAMES[r.programme],
            r.file,
            r.seq,
            r.person.status,
            r.person.exit_date.isoformat(),
            f"{r.amount_fen / 100:.2f}",
        ]
        for r in month_rows
        if r.person.in_registry and r.person.status in (2, 3) and r.person.exit_date < first
    ]
    header = PERSON_COLUMNS + [
        "programme",
        "roster_file",
        "roster_row",
        "exit_status",
        "exit_date",
        "amount_yuan",
    ]
    return header, sorted(rows, key=lambda r: (r[5], r[7]))
