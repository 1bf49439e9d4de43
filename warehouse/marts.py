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

from islandbridge.config import unknown_key
from islandbridge.errors import ConfigError, TerminalError
from islandbridge.schemas import core_sql
from islandbridge.storage import has_table, params_for, transaction
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
TO_CHECK = "persons_to_check"  # meta.mart_builds.counts: persons listed whose age or living alone is unknown
TO_CHECK_SQL = (
    "SELECT count(DISTINCT person_key) FROM (SELECT person_key, check_reason FROM marts.elderly_alerts "
    "UNION ALL SELECT person_key, check_reason FROM marts.no_device_coverage) WHERE check_reason IS NOT NULL"
)
_FRAGMENTS = {"hour_ms": HOUR_MS, "damaged_id_kinds": DAMAGED_ID_KINDS}  # the {name}s of the SQL


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
        con.execute(
            "CREATE TABLE IF NOT EXISTS meta.mart_builds (run_id VARCHAR PRIMARY KEY, "
            "as_of TIMESTAMPTZ, options VARCHAR, counts VARCHAR)"
        )
        con.execute(
            "INSERT OR REPLACE INTO meta.mart_builds VALUES (?, ?, ?, ?)",
            [
                run_id,
                as_of,
                json.dumps(opts, sort_keys=True),
                json.dumps({**counts, TO_CHECK: to_check}, sort_keys=True),
            ],
        )
        # Which run the marts hold now: exports check it, so a department never gets another day's lists.
        con.execute("CREATE TABLE IF NOT EXISTS meta.marts_current (run_id VARCHAR, as_of TIMESTAMPTZ)")
        con.execute("DELETE FROM meta.marts_current")
        con.execute("INSERT INTO meta.marts_current VALUES (?, ?)", [run_id, as_of])
    log.debug("marts built for run %s: %s", run_id, counts)
    return counts


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
