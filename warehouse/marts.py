"""The department reports of ../shared/DEPARTMENTS.md as tables of schema ``marts``, over the core model.

``build_marts`` rebuilds every report for one as-of T in one transaction. Personal marts carry the
``person_key`` and the report's non-identifying columns only; the exporter adds ``person_ref`` and the
identifiers a department may see (name, phone, ID number, birth date) from the vault, as each mart's
YAML under ``schemas/core/`` says. Rows are in a total order (ties broken by keys), so an export of
the same T is byte-identical.

=========================  ==============================================================================
``elderly_alerts``         living residents 70+ at T, alone or tagged 独居老人, with a door card or a water
                           meter, silent for ``silent_hours`` (no access_granted, no meter rise); those
                           whose age or living alone no source settles are listed too, with a
                           ``check_reason``
``no_device_coverage``     the same population with neither a card nor a meter
``senior_allowance_gaps``  living 户籍 residents 80+ on the first day of M, not on M's 高龄补贴 roster
``subsidy_after_exit``     M's roster rows of people whose newest registry row left (2) or died (3) before M
``unmatched_roster_rows``  M's roster rows whose person no other system knows, with the reason
``island_coverage``        per community: persons known, in each system, in two or more, in all four
``incidents_by_building``  per month, community, estate, building and category: incidents and households
=========================  ==============================================================================

The SQL of each report is ``schemas/core/<report>.sql``, beside its YAML, loaded by name with
`islandbridge.schemas.core_sql`; ``_ib_elderly.sql`` stages the population the two elderly reports
share. Nobody drops out of sight silently: a living resident whose age no source gives (no birth date,
no usable ID number) is judged with the 70+ population, with ``age_at_least`` 80 when a 高龄补贴 roster
row names them (more if its 出生年月 says so; that settles the age) and otherwise a ``check_reason``
(``年龄不详：各系统均无出生日期``); likewise one the registry places in no house, so that whether they live
alone is unknown (``是否独居不详：户籍未登记其住房``). ``meta.mart_builds.counts`` holds, besides each
report's rows, ``persons_to_check``: the persons of the two reports with a check reason.

A report of M's rosters read without M's roster is computed all the same, as DEPARTMENTS.md defines it,
but never silently: when no 高龄补贴 roster of M has arrived every senior is 应享未享, and without a 低保 or
高龄补贴 roster ``subsidy_after_exit`` checked none of that programme's rows. ``roster_notes`` words it;
``meta.mart_builds.notes`` keeps the notes per report (the exports print them on the 说明 sheet and in
``manifest.json``), and each report-and-roster pair is a ``warning`` expectation in
``meta.quality_results`` (source ``reports``, expectation ``<programme>_roster_arrived``), failing when
the roster is missing, so the run report lists it with the quality results.

``$name`` is a DuckDB parameter (`_parameters`); ``{hour_ms}`` and ``{damaged_id_kinds}`` are
filled in from the constants here.

Device rules (SPEC D): an event counts at its own ``ts`` (so a late event is judged where it happened),
once per ``event_id`` (duplicates are dropped when stored), and never when its clock was broken. A
meter "rises" in the window when its highest reading inside the window exceeds the newest reading at or
before the window's start (or, with none before, the first inside it).

Example::

    counts = build_marts(con, parse_as_of("2026-11-20"), "ib_20261120T160000Z", {"silent_hours": 48})
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from collections.abc import Mapping
from typing import Any

import duckdb

from islandbridge.config import sync_command, unknown_key
from islandbridge.errors import ConfigError, TerminalError
from islandbridge.quality.quarantine import DDL as QUALITY_DDL
from islandbridge.schemas import core_sql
from islandbridge.storage import existing_columns, has_table, params_for, transaction
from islandbridge.warehouse.core import Moment

log = logging.getLogger(__name__)

REPORTS = (
    "elderly_alerts",
    "no_device_coverage",
    "senior_allowance_gaps",
    "subsidy_after_exit",
    "unmatched_roster_rows",
    "island_coverage",
    "incidents_by_building",
)
DEFAULTS: Mapping[str, Any] = {"silent_hours": 48, "lookback_days": 30, "elderly_age": 70, "senior_age": 80}
DAMAGED_ID_KINDS = ("excel_damaged", "invalid_checksum", "garbage", "missing")
HOUR_MS = 3_600_000
# The reports that read M's rosters, and the rosters each reads (core.roster_entries.programme_code).
ROSTER_REPORTS = {"senior_allowance_gaps": ("senior",), "subsidy_after_exit": ("dibao", "senior")}
PROGRAMMES = {"dibao": "低保", "senior": "高龄补贴"}
TO_CHECK = "persons_to_check"  # meta.mart_builds.counts: persons listed whose age or living alone is unknown
TO_CHECK_SQL = (
    "SELECT count(DISTINCT person_key) FROM (SELECT person_key, check_reason FROM marts.elderly_alerts "
    "UNION ALL SELECT person_key, check_reason FROM marts.no_device_coverage) WHERE check_reason IS NOT NULL"
)

_FRAGMENTS = {"hour_ms": HOUR_MS, "damaged_id_kinds": DAMAGED_ID_KINDS}  # the {name}s of the SQL


def report_rows(counts: Mapping[str, int]) -> dict[str, int]:
    """The rows per report of a ``meta.mart_builds.counts``, without the ``persons_to_check`` it also holds
    (a count of persons, not a report: shown apart, never among the reports)."""
    return {name: n for name, n in counts.items() if name != TO_CHECK}


class MartOptionsError(ConfigError):
    """The report options are not valid; every problem is listed."""


class MartBuildError(TerminalError):
    """The marts cannot be built: the core model they read is missing.

    Terminal: the core must be built first; retrying the marts alone finds it missing again."""


def options_of(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The report options with defaults filled in; raises `MartOptionsError` naming every bad key."""
    given = dict(options or {})
    problems = [unknown_key("", k, DEFAULTS) for k in sorted(given) if k not in DEFAULTS]
    for key, value in given.items():
        if key in DEFAULTS and (isinstance(value, bool) or not isinstance(value, int | float) or value <= 0):
            problems.append(f"{key}: a positive number, got {value!r}")
    if problems:
        raise MartOptionsError("report options: " + "; ".join(problems))
    return {**DEFAULTS, **given}


def build_marts(
    con: duckdb.DuckDBPyConnection, as_of: dt.datetime, run_id: str, options: Mapping[str, Any] | None = None
) -> dict[str, int]:
    """Rebuild every table of schema ``marts`` for T = ``as_of``; returns the row count of each report.

    The build is recorded in ``meta.mart_builds`` with those counts and ``persons_to_check``.

    Needs the core model built for the same as-of (`build_core`). ``options``: ``silent_hours``
    (default 48), ``lookback_days`` (how far back a last door access or water use is looked for,
    default 30), ``elderly_age`` (70) and ``senior_age`` (80). Raises `MartOptionsError` for bad
    options and `MartBuildError` without a core model; any other failure rolls the whole build back.
    """
    opts = options_of(options)
    params = _parameters(Moment.of(as_of), opts)
    if not has_table(con, "core.persons"):
        raise MartBuildError(
            f"no core model in the warehouse: build it first (build_core for run {run_id}, "
            "or `islandbridge sync`)"
        )
    con.execute("CREATE SCHEMA IF NOT EXISTS marts")
    con.execute("CREATE SCHEMA IF NOT EXISTS meta")
    with transaction(con):
        for name in ("_ib_elderly", *REPORTS):
            sql = core_sql(name, **_FRAGMENTS)
            con.execute(sql, params_for(sql, params))
        con.execute("DROP TABLE IF EXISTS _ib_elderly")
        counts = {r: con.execute(f"SELECT count(*) FROM marts.{r}").fetchall()[0][0] for r in REPORTS}
        to_check = con.execute(TO_CHECK_SQL).fetchall()[0][0]
        notes = _roster_checks(con, run_id, params, counts)
        con.execute(
            "CREATE TABLE IF NOT EXISTS meta.mart_builds (run_id VARCHAR PRIMARY KEY, "
            "as_of TIMESTAMPTZ, options VARCHAR, counts VARCHAR)"
        )
        con.execute("ALTER TABLE meta.mart_builds ADD COLUMN IF NOT EXISTS notes VARCHAR")
        # When (wall clock, the transaction's start): a day loaded again is built again (`runs`' steps)
        con.execute("ALTER TABLE meta.mart_builds ADD COLUMN IF NOT EXISTS built_at TIMESTAMPTZ")
        con.execute(
            "INSERT OR REPLACE INTO meta.mart_builds (run_id, as_of, options, counts, notes, built_at) "
            "VALUES (?, ?, ?, ?, ?, current_timestamp)",
            [
                run_id,
                as_of,
                json.dumps(opts, sort_keys=True),
                json.dumps({**counts, TO_CHECK: to_check}, sort_keys=True),
                json.dumps(notes, ensure_ascii=False, sort_keys=True),
            ],
        )
        # Which run the marts hold now: exports check it, so a department never gets another day's lists.
        con.execute("CREATE TABLE IF NOT EXISTS meta.marts_current (run_id VARCHAR, as_of TIMESTAMPTZ)")
        con.execute("DELETE FROM meta.marts_current")
        con.execute("INSERT INTO meta.marts_current VALUES (?, ?)", [run_id, as_of])
    log.debug("marts built for run %s: %s", run_id, counts)
    return counts


def roster_notes(month_first: dt.date, missing: list[str], senior_age: int) -> dict[str, list[str]]:
    """What each roster report's readers must know when rosters of M (``missing``: programme codes)
    have not arrived; {} when every roster is there."""
    month = f"{month_first:%Y-%m}"
    notes: dict[str, list[str]] = {}
    if "senior" in missing:
        notes["senior_allowance_gaps"] = [
            f"{month} 高龄补贴名册尚未收到（或未能读入）：{senior_age} 岁以上户籍居民全部列为应享未享，并非都未领取 / "
            f"the 高龄补贴 roster of {month} has not arrived (or could not be read): every registered resident aged {senior_age}+ "
            "is listed"
        ]
    for code in ROSTER_REPORTS["subsidy_after_exit"]:
        if code in missing:
            notes.setdefault("subsidy_after_exit", []).append(
                f"{month} {PROGRAMMES[code]}名册尚未收到（或未能读入）：{PROGRAMMES[code]}无从核对，本表没有{PROGRAMMES[code]}的行 / "
                f"the {PROGRAMMES[code]} roster of {month} has not arrived (or could not be read): none of its rows could be checked"
            )
    return notes


def report_notes(con: duckdb.DuckDBPyConnection, run_id: str) -> dict[str, list[str]]:
    """The notes of the marts built for ``run_id`` (`roster_notes`), per report; {} when none."""
    if "notes" not in existing_columns(con, "meta.mart_builds"):  # no builds, or only older ones
        return {}
    row = con.execute("SELECT notes FROM meta.mart_builds WHERE run_id = ?", [run_id]).fetchall()
    return json.loads(row[0][0]) if row and row[0][0] else {}


def _roster_checks(
    con: duckdb.DuckDBPyConnection, run_id: str, params: Mapping[str, Any], counts: Mapping[str, int]
) -> dict[str, list[str]]:
    """Whether M's rosters arrived: one warning expectation per report and roster it reads in
    ``meta.quality_results`` (replaced on a rebuild), a log warning and the reports' notes."""
    month_first = params["month_first"]
    rows = dict(
        con.execute(
            "SELECT programme_code, count(*) FROM core.roster_entries WHERE roster_month = ? GROUP BY ALL",
            [month_first],
        ).fetchall()
    )
    missing = sorted(code for code in PROGRAMMES if not rows.get(code))
    refused = refused_rosters(con, run_id, month_first)
    con.execute(QUALITY_DDL)
    con.execute("DELETE FROM meta.quality_results WHERE run_id = ? AND source = 'reports'", [run_id])
    for report, codes in ROSTER_REPORTS.items():
        for code in codes:
            observed = {
                "programme": PROGRAMMES[code],
                "month": f"{month_first:%Y-%m}",
                "roster_rows": rows.get(code, 0),
            }
            _expect(con, run_id, report, f"{code}_roster_arrived", code not in missing, counts, observed)
            files = [file for file, _ in refused.get(code, ())]
            observed = {**observed, "refused_files": files}
            _expect(con, run_id, report, f"{code}_roster_files_read", not files, counts, observed)
    for code in missing:
        log.warning(
            "no %s roster of %s has arrived: the reports of that month's rosters are computed without it "
            "(%s); the exports say so",
            code,
            f"{month_first:%Y-%m}",
            ", ".join(r for r, codes in ROSTER_REPORTS.items() if code in codes),
        )
    for code, files in refused.items():
        log.warning(
            "%s of the %s roster files of %s could not be read: %s; the exports say so",
            len(files),
            code,
            f"{month_first:%Y-%m}",
            "no file of that roster was read, so its reports have none of it"
            if code in missing
            else "the reports of that month's rosters use what was read before them as if uncorrected",
        )
    notes = roster_notes(month_first, missing, int(params["senior_age"]))
    for report, lines in refused_notes(month_first, refused, missing).items():
        notes.setdefault(report, []).extend(lines)
    return notes


def _expect(con, run_id: str, report: str, name: str, ok: bool, counts: Mapping[str, int], observed) -> None:
    """One report-level warning expectation in ``meta.quality_results`` (the run report lists it)."""
    con.execute(
        "INSERT INTO meta.quality_results VALUES (?, 'reports', ?, ?, ?, '', NULL, "
        "'warning', ?, ?, NULL, ?, 'duckdb', now())",
        [
            run_id,
            report,
            name,
            name.partition("_")[2],
            ok,
            counts[report],
            json.dumps(observed, ensure_ascii=False),
        ],
    )


def refused_rosters(con: duckdb.DuckDBPyConnection, run_id: str, month_first: dt.date) -> dict[str, list]:
    """The roster files of M the civil connector refused in its newest run up to ``run_id`` (from
    ``meta.source_files``): {programme code: [(file, reason)]}. Another street's file is not this street's
    roster and is left out (the gate warns of it)."""
    if not has_table(con, "meta.source_files"):
        return {}
    rows = con.execute(
        "SELECT stream, file, reason FROM meta.source_files s WHERE outcome = 'refused' "
        "AND stream IN ('dibao', 'senior') AND regexp_extract(file, '_(20[0-9]{4})_', 1) = ? "
        "AND coalesce(reason, '') NOT LIKE 'a roster of street %' "
        "AND run_id = (SELECT max(run_id) FROM meta.source_files t WHERE t.source = s.source AND t.run_id <= ?) "
        "ORDER BY stream, file",
        [f"{month_first:%Y%m}", run_id],
    ).fetchall()
    out: dict[str, list] = {}
    for stream, file, reason in rows:
        out.setdefault(stream, []).append((file, reason or ""))
    return out


def refused_notes(
    month_first: dt.date, refused: Mapping[str, list], missing: list[str]
) -> dict[str, list[str]]:
    """What the readers of M's roster reports must know when a roster file of M was refused: the month is
    reported from what was read before it (the roster it meant to correct), as if uncorrected."""
    month = f"{month_first:%Y-%m}"
    notes: dict[str, list[str]] = {}
    for report, codes in ROSTER_REPORTS.items():
        for code in codes:
            for file, reason in refused.get(code, ()):
                name = PROGRAMMES[code]
                used = (
                    ("本表缺少该名册", "the report has no roster of it")
                    if code in missing
                    else (
                        "本表仍按此前读入的名册核对，该文件的更正未计入，结果可能有误",
                        "the report uses the version read before it as if uncorrected: rows that file changed may be wrong",
                    )
                )
                notes.setdefault(report, []).append(
                    f"{month} {name}名册文件 {file} 未能读入：{used[0]} / {file}, a {name} roster file of {month}, "
                    f"could not be read ({reason}): {used[1]}; ask the bureau for a readable file"
                )
    return notes


def marts_run(con: duckdb.DuckDBPyConnection) -> tuple[str, dt.datetime] | None:
    """(run_id, as_of) of the run the marts were last built for, or None when none were built.

    A warehouse built before ``meta.marts_current`` existed holds the newest run it built marts for.
    """
    if has_table(con, "meta.marts_current"):
        rows = con.execute("SELECT run_id, as_of FROM meta.marts_current").fetchall()
    elif has_table(con, "meta.mart_builds"):
        rows = con.execute(
            "SELECT run_id, as_of FROM meta.mart_builds ORDER BY as_of DESC LIMIT 1"
        ).fetchall()
    else:
        rows = []
    return (rows[0][0], rows[0][1]) if rows else None


def require_marts_of(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    as_of: dt.datetime,
    step: str,
    error: type[Exception] = MartBuildError,
    *,
    where: str = "",
    unbuilt_ok: bool = False,
) -> None:
    """Refuse a ``step`` ("publish", "export") of ``run_id`` (as of ``as_of``) from marts built for another
    run, or for none unless ``unbuilt_ok``: it would hand out another day's figures under this run's id.
    Raises ``error`` saying what the marts hold and the command that completes the day (`sync_command`,
    what `islandbridge runs` advises: `build` alone refuses a day whose identities are not the newest);
    ``where`` names what the step would have written."""
    built = marts_run(con)
    if (built is None and unbuilt_ok) or (built is not None and built[0] == run_id):
        return
    held = f"run {built[0]}" if built else "no run yet"
    raise error(
        f"the marts hold {held}, not run {run_id}{where}: run `{sync_command(as_of)}` to complete the day "
        f"(it loads, reconciles, builds, exports and publishes it); nothing was {step}ed"
    )


def _parameters(moment: Moment, opts: Mapping[str, Any]) -> dict[str, Any]:
    t_ms = int(moment.at.timestamp() * 1000)
    return {
        "as_of": moment.at,
        "day": moment.day,
        "month_first": moment.month_first,
        "t_ms": t_ms,
        "ws_ms": t_ms - int(float(opts["silent_hours"]) * HOUR_MS),
        "lookback_day": moment.day - dt.timedelta(days=int(opts["lookback_days"]) + 1),
        "elderly_age": int(opts["elderly_age"]),
        "senior_age": int(opts["senior_age"]),
    }
