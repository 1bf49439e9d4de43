"""Score the marts against a simulated street's truth: precision and recall of every report.

`score_reports` maps each mart row to the truth and compares it with the expected answer:

- **Personal reports** (``elderly_alerts``, ``no_device_coverage``, ``senior_allowance_gaps``): a mart
  row's ``person_key`` → its records in ``core.identity_map`` → their true ``person_id`` in
  ``truth/records.csv`` (the majority, should a key hold two people). A row is right when that person
  is in ``truth/expected_<report>.csv`` and no earlier row named them (a person listed twice counts
  once). Precision = right rows / rows; recall = expected persons found / expected persons.
  The two elderly reports also list persons "to check" (a ``check_reason``: their age or whether they
  live alone no source settles). The truth's expected rows are judged on true age, so such a row is a
  question, not a claim: precision is over the other rows only, and the to-check rows are counted apart
  (``to_check``, and ``to_check_expected``: how many of them name an expected person). Recall counts an
  expected person found in either kind of row (the person is in front of the grid worker);
  ``recall_confirmed`` counts the confirmed rows only.
- **``subsidy_after_exit``**: rows compared on ``(roster_file, roster_row)``.
- **``unmatched_roster_rows``** (no expected file): derived from the truth. A roster row of month M
  (its record key in ``records.csv``) is unmatched when its true person has no record of the
  registry, the grid platform or the IoT platform in ``records.csv``. Compared on ``record_key``.
- **``island_coverage``** (no expected file): per community of ``persons.csv``, over the persons with at
  least one record in ``records.csv``: persons known, with a record of each system, of two or more,
  of all four. Counts are compared as multisets: for every (community, measure) cell, ``min(got,
  expected)`` units agree; precision = agreeing units / units reported, recall = agreeing / expected.
- **``incidents_by_building``** (no expected file): each incident of ``grid/events.json`` placed by
  reading its free-text address independently of the pipeline (the simulator's five address styles,
  full-width digits folded; an address without an estate resolved through the registry houses of its
  grid code in ``registry/rrs.sqlite``), in the local month of ``created_at`` and the estate's
  community; households per building are the flats where a registry person of ``persons.csv`` lives
  (status 1). Cells are (month, community, estate, building, category, households) with the incident
  count, compared as multisets as above, so a row with a wrong household count is wrong entirely. An
  incident that cannot be placed (no estate, or a flat number two estates of its grid share) counts
  under its grid's community (``grid/grids.json``) with no estate or building.

The roster month M and T come from ``truth/meta.json``. Returns, per report, ``precision``,
``recall``, ``expected``, ``reported`` and ``matched`` (rows or units as described); for the row reports
also ``wrong`` and ``missed``, and how many of those fall on a person whose records the identity step
did not tie together exactly (``wrong_from_linkage``, ``missed_from_linkage``): such errors are the
linkage's, not the report's. The personal reports also count the missed persons of whom no source gives
a birth date (``missed_without_birth_date``: no registry date, no usable ID number), whom no report that
needs an age can find.

Example::

    scores = score_reports(con, Path("var/demo/street/truth"))
    scores["elderly_alerts"]["recall"]     # 1.0
"""

from __future__ import annotations

import csv
import datetime as dt
import json
import re
import sqlite3
import unicodedata
from collections import Counter
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import duckdb

PERSONAL = ("elderly_alerts", "no_device_coverage", "senior_allowance_gaps")
TO_CHECK_REPORTS = ("elderly_alerts", "no_device_coverage")  # rows with a check_reason are scored apart
NON_CIVIL = ("resident_registry", "grid_platform", "iot_platform")
SYSTEMS = ("resident_registry", "grid_platform", "civil_affairs", "iot_platform")
LOCAL = dt.timezone(dt.timedelta(hours=8))
_ADDRESS = re.compile(
    r"^(?:眉山市彭山区)?(?P<estate>.*?)(?P<b>[0-9]+)(?:栋|幢|-)(?P<u>[0-9]+)(?:单元|-)"
    r"(?P<r>[0-9]+)(?:室|号)?$"
)


def score_reports(con: duckdb.DuckDBPyConnection, truth_dir: Path) -> dict[str, dict[str, Any]]:
    """Precision and recall of every mart against the street whose ``truth/`` folder is ``truth_dir``.

    The street's source files (``grid/``, ``registry/``) are read from ``truth_dir``'s parent.
    """
    truth = _Truth(Path(truth_dir))
    links = _Linkage(con, truth)
    scores = {r: _personal(con, r, truth.expected_persons(r), links) for r in PERSONAL}
    scores["subsidy_after_exit"] = _rows(
        _fetch(con, "SELECT roster_file, roster_row::VARCHAR, record_key FROM marts.subsidy_after_exit"),
        truth.expected_subsidy(),
        links,
    )
    scores["unmatched_roster_rows"] = _rows(
        _fetch(con, "SELECT record_key, record_key FROM marts.unmatched_roster_rows"),
        truth.expected_unmatched(),
        links,
    )
    scores["island_coverage"] = _units(_coverage_cells(con), truth.expected_coverage())
    scores["incidents_by_building"] = _units(_incident_cells(con), truth.expected_incidents())
    return scores


def day_mismatch(con: duckdb.DuckDBPyConnection, truth_dir: Path) -> str | None:
    """Why the scores would mislead, or None: the marts hold a run of another as-of than the day the
    truth was written for (a street synced past its day scores its later silences as wrong)."""
    t_end = json.loads((Path(truth_dir) / "meta.json").read_text(encoding="utf-8")).get("t_end")
    try:
        found = con.execute("SELECT run_id, as_of FROM meta.marts_current LIMIT 1").fetchall()
    except duckdb.CatalogException:  # no marts built yet
        return None
    if not t_end or not found or found[0][1] == dt.datetime.fromisoformat(t_end):
        return None
    return (
        f"the marts hold run {found[0][0]}, as of {found[0][1].isoformat()}, but the truth is as of {t_end}: "
        "the scores compare different days (build the truth's day, or simulate a street of the run's day)"
    )


class _Linkage:
    """Which person keys the identity step got exactly right: their records are one true person's, all of them.

    An error of a report on a key that is not exactly right comes from linkage, not from the report.
    """

    def __init__(self, con, truth: _Truth) -> None:
        self.key_of: dict[tuple[str, str], str] = {}
        records_of: dict[str, set[tuple[str, str]]] = {}
        for system, record_key, key in con.execute(
            "SELECT system, record_key, person_key FROM core.identity_map"
        ).fetchall():
            self.key_of[(system, record_key)] = key
            records_of.setdefault(key, set()).add((system, record_key))
        true_records: dict[str, set[tuple[str, str]]] = {}
        for record, person in truth.person_of_record.items():
            if record in self.key_of:
                true_records.setdefault(person, set()).add(record)
        self.person_of = {
            key: _majority([truth.person_of_record.get(r) for r in records])
            for key, records in records_of.items()
        }
        self.exact_keys = {
            key
            for key, records in records_of.items()
            if self.person_of[key] and true_records.get(self.person_of[key]) == records
        }
        self.exact_persons = {self.person_of[k] for k in self.exact_keys}
        ageless = {
            r[0] for r in con.execute("SELECT person_key FROM core.persons WHERE age IS NULL").fetchall()
        }
        # People no source gives a birth date for: no report that needs an age can find them.
        self.ageless_persons = {self.person_of[k] for k in self.exact_keys & ageless}

    def record_exact(self, record_key: str) -> bool:
        """Whether the (roster) record's key is exactly right; roster record keys are unique across systems."""
        return self.key_of.get(("civil_affairs", record_key)) in self.exact_keys


# -- comparing ------------------------------------------------------------------------------------------------


def _ratio(part: int, whole: int) -> float:
    return round(part / whole, 6) if whole else 1.0


def _personal(con, report: str, expected: set[str], links: _Linkage) -> dict[str, Any]:
    flagged = "check_reason IS NOT NULL" if report in TO_CHECK_REPORTS else "false"
    got = con.execute(f"SELECT person_key, {flagged} FROM marts.{report}").fetchall()
    keys = [k for k, to_check in got if not to_check]
    checked = {links.person_of.get(k) or f"unknown:{k}" for k, to_check in got if to_check}
    seen: set[str] = set()
    right, wrong_from_linkage = 0, 0
    for key in keys:
        person = links.person_of.get(key) or f"unknown:{key}"
        if person in expected and person not in seen:
            right += 1
        elif key not in links.exact_keys:
            wrong_from_linkage += 1
        seen.add(person)
    missed = expected - seen - checked
    scores = {
        "precision": _ratio(right, len(keys)),
        "recall": _ratio(len(expected & (seen | checked)), len(expected)),
        "expected": len(expected),
        "reported": len(keys),
        "matched": right,
        "missed": len(missed),
        "wrong": len(keys) - right,
        "wrong_from_linkage": wrong_from_linkage,
        "missed_from_linkage": len(missed - links.exact_persons),
        "missed_without_birth_date": len(missed & links.ageless_persons),
    }
    if report in TO_CHECK_REPORTS:
        scores["recall_confirmed"] = _ratio(len(expected & seen), len(expected))
        scores["to_check"] = len(got) - len(keys)
        scores["to_check_expected"] = len(checked & expected)
    return scores


def _rows(got: list[tuple], expected: Mapping[tuple, str], links: _Linkage) -> dict[str, Any]:
    """``got``: (compared fields…, record_key); ``expected``: compared fields -> record_key."""
    reported = {row[:-1]: row[-1] for row in got}
    right = sum(1 for row in reported if row in expected)
    wrong = [r for row, r in reported.items() if row not in expected]
    missed = [r for row, r in expected.items() if row not in reported]
    return {
        "precision": _ratio(right, len(got)),
        "recall": _ratio(right, len(expected)),
        "expected": len(expected),
        "reported": len(got),
        "matched": right,
        "missed": len(missed),
        "wrong": len(got) - right,
        "wrong_from_linkage": sum(1 for r in wrong if not links.record_exact(r)),
        "missed_from_linkage": sum(1 for r in missed if not links.record_exact(r)),
    }


def _units(got: Counter, expected: Counter) -> dict[str, Any]:
    agree = sum(min(n, expected[k]) for k, n in got.items())
    total_got, total_expected = sum(got.values()), sum(expected.values())
    return {
        "precision": _ratio(agree, total_got),
        "recall": _ratio(agree, total_expected),
        "expected": total_expected,
        "reported": total_got,
        "matched": agree,
        "cells_expected": len(expected),
        "cells_exact": sum(1 for k, n in expected.items() if got.get(k) == n),
    }


def _fetch(con, sql: str) -> list[tuple]:
    return [tuple(r) for r in con.execute(sql).fetchall()]


def _majority(people: Iterable[str | None]) -> str | None:
    """The person most records belong to (ties: the smallest id); None when no record is in the truth."""
    votes = Counter(p for p in people if p)
    return min(votes, key=lambda p: (-votes[p], p)) if votes else None


def _coverage_cells(con) -> Counter:
    cells: Counter = Counter()
    for row in con.execute(
        "SELECT community, persons_known, in_registry, in_grid, in_civil, in_iot, "
        "in_two_or_more, in_all_four FROM marts.island_coverage"
    ).fetchall():
        for measure, value in zip(_COVERAGE_MEASURES, row[1:], strict=True):
            cells[(row[0], measure)] += int(value)
    return cells


def _incident_cells(con) -> Counter:
    cells: Counter = Counter()
    for month, community, estate, building, category, incidents, households in con.execute(
        "SELECT strftime(month, '%Y-%m'), community, estate_name, building, category, incidents, households "
        "FROM marts.incidents_by_building"
    ).fetchall():
        cells[(month, community, estate, building, category, households)] += int(incidents)
    return cells


_COVERAGE_MEASURES = (
    "persons_known",
    "in_registry",
    "in_grid",
    "in_civil",
    "in_iot",
    "in_two_or_more",
    "in_all_four",
)


# -- the truth --------------------------------------------------------------------------------------------------


class _Truth:
    def __init__(self, truth_dir: Path) -> None:
        self.dir = truth_dir
        self.street = truth_dir.parent
        self.meta = json.loads((truth_dir / "meta.json").read_text(encoding="utf-8"))
        self.month = self.meta["roster_month"].replace("-", "")
        self.records = _read_csv(truth_dir / "records.csv")
        self.persons = {p["person_id"]: p for p in _read_csv(truth_dir / "persons.csv")}
        self.person_of_record = {(r["system"], r["record_key"]): r["person_id"] for r in self.records}
        self.systems_of: dict[str, set[str]] = {}
        for r in self.records:
            self.systems_of.setdefault(r["person_id"], set()).add(r["system"])

    def expected_persons(self, report: str) -> set[str]:
        return {r["person_id"] for r in _read_csv(self.dir / f"expected_{report}.csv")}

    def expected_subsidy(self) -> dict[tuple, str]:
        codes = {"低保": "dibao", "高龄补贴": "senior"}
        return {
            (r["roster_file"], r["roster_row"]): f"{codes[r['programme']]}:{self.month}:{r['roster_row']}"
            for r in _read_csv(self.dir / "expected_subsidy_after_exit.csv")
        }

    def expected_unmatched(self) -> dict[tuple, str]:
        rows = (
            r
            for r in self.records
            if r["system"] == "civil_affairs" and r["record_key"].split(":")[1] == self.month
        )
        return {
            (r["record_key"],): r["record_key"]
            for r in rows
            if not self.systems_of[r["person_id"]] & set(NON_CIVIL)
        }

    def expected_coverage(self) -> Counter:
        cells: Counter = Counter()
        for person, systems in self.systems_of.items():
            community = self.persons[person]["community"]
            flags = (True, *(s in systems for s in SYSTEMS), len(systems) >= 2, len(systems) == 4)
            for measure, flag in zip(_COVERAGE_MEASURES, flags, strict=True):
                cells[(community, measure)] += int(flag)
        return cells

    def expected_incidents(self) -> Counter:
        estates, houses = self._registry()
        households = self._households()
        grid = self.street / "grid"
        events = json.loads((grid / "events.json").read_text(encoding="utf-8"))
        grids = {
            g["grid_code"]: g["community_name"]
            for g in json.loads((grid / "grids.json").read_text(encoding="utf-8"))
        }
        cells: Counter = Counter()
        for event in events:
            if event["created_at"] > _t_ms(self.meta):
                continue
            place = _place(event, estates, houses)
            month = dt.datetime.fromtimestamp(event["created_at"] / 1000, LOCAL).strftime("%Y-%m")
            estate, building = place if place else (None, None)
            community = estates[estate] if estate else grids.get(event["grid_code"])
            cells[
                (
                    month,
                    community,
                    estate,
                    building,
                    event["category"],
                    households.get((estate, building), 0) if estate else None,
                )
            ] += 1
        return cells

    def _registry(self) -> tuple[dict[str, str], dict[tuple[str, str, str, str], set[str]]]:
        """estate name -> community name; (grid code, building, unit, room) -> estate names."""
        with sqlite3.connect(self.street / "registry" / "rrs.sqlite") as db:
            names = {
                code: (name, community)
                for code, name, community in db.execute("SELECT xqbm, xqmc, sqmc FROM t_xq").fetchall()
            }
            houses: dict[tuple[str, str, str, str], set[str]] = {}
            for code, ld, dy, fh, grid in db.execute("SELECT xqbm, ld, dy, fh, wgbm FROM t_fw").fetchall():
                key = (grid, _digits(ld), _digits(dy), _digits(fh))
                houses.setdefault(key, set()).add(names[code][0])
        db.close()
        return {name: community for name, community in names.values()}, houses

    def _households(self) -> dict[tuple[str, str], int]:
        flats: dict[tuple[str, str], set[tuple[str, str]]] = {}
        for p in self.persons.values():
            if p["in_registry"] == "True" and p["status"] == "1":
                flats.setdefault((p["estate"], p["building"]), set()).add((p["unit"], p["room"]))
        return {k: len(v) for k, v in flats.items()}


def _place(
    event: Mapping[str, Any], estates: Mapping[str, str], houses: Mapping[tuple[str, str, str, str], set[str]]
) -> tuple[str, str] | None:
    match = _ADDRESS.match(unicodedata.normalize("NFKC", event["address"] or ""))
    if not match:
        return None
    text, b, u, r = match["estate"], _digits(match["b"]), _digits(match["u"]), _digits(match["r"])
    if not text:
        found = houses.get((event["grid_code"], b, u, r), set())
        return (next(iter(found)), b) if len(found) == 1 else None
    for name in estates:
        if text in (name, name if name.endswith("小区") else name + "小区"):
            return name, b
    return None


def _digits(value: object) -> str:
    text = unicodedata.normalize("NFKC", str(value or ""))
    digits = "".join(ch for ch in text if ch.isdigit())
    return digits.lstrip("0") or ("0" if digits else "")


def _t_ms(meta: Mapping[str, Any]) -> int:
    return int(dt.datetime.fromisoformat(meta["t_end"]).timestamp() * 1000)


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(encoding="utf-8", newline="") as f:
        return list(csv.DictReader(f))


def summary(scores: Mapping[str, Mapping[str, Any]]) -> Iterable[str]:
    """One line per report: ``report  P=… R=… (reported/expected)``, for logs and the bench."""
    for report, s in scores.items():
        line = f"{report:24s} P={s['precision']:.4f} R={s['recall']:.4f} ({s['reported']}/{s['expected']})"
        if "to_check" in s:
            line += f" to check {s['to_check']} ({s['to_check_expected']} expected)"
        yield line
