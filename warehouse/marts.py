"""The department reports of ../shared/DEPARTMENTS.md as tables of schema ``marts``, over the core model.

``build_marts`` rebuilds every report for one as-of T in one transaction. Personal marts carry the
``person_key`` and the report's non-identifying columns only; the exporter adds ``person_ref`` and the
identifiers a department may see (name, phone, ID number, birth date) from the vault, as each mart's
YAML under ``schemas/core/`` says. Rows are in a total order (ties broken by keys), so an export of
the same T is byte-identical.

=========================  ==============================================================================
``elderly_alerts``         living residents 70+ at T, alone or tagged 独居老人 (tagged and of unknown age
                           counts too), with a door card or a water meter, silent for ``silent_hours``
                           (no access_granted, no meter rise)
``no_device_coverage``     the same population with neither a card nor a meter
``senior_allowance_gaps``  living 户籍 residents 80+ on the first day of M, not on M's 高龄补贴 roster
``subsidy_after_exit``     M's roster rows of people whose newest registry row left (2) or died (3) before M
``unmatched_roster_rows``  M's roster rows whose person no other system knows, with the reason
``island_coverage``        per community: persons known, in each system, in two or more, in all four
``incidents_by_building``  per month, community, estate, building and category: incidents and households
=========================  ==============================================================================

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

from islandbridge.errors import ConfigError, TerminalError
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


class MartOptionsError(ConfigError):
    """The report options are not valid; every problem is listed."""


class MartBuildError(TerminalError):
    """The marts cannot be built: the core model they read is missing.

    Terminal: the core must be built first; retrying the marts alone finds it missing again."""


def options_of(options: Mapping[str, Any] | None) -> dict[str, Any]:
    """The report options with defaults filled in; raises `MartOptionsError` naming every bad key."""
    given = dict(options or {})
    problems = [
        f"unknown option {k!r} (known: {', '.join(DEFAULTS)})" for k in sorted(given) if k not in DEFAULTS
    ]
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
        con.execute(_ELDERLY_BASE_SQL, params_for(_ELDERLY_BASE_SQL, params))
        for report in REPORTS:
            con.execute(_SQL[report], params_for(_SQL[report], params))
        con.execute("DROP TABLE IF EXISTS _ib_elderly")
        counts = {r: con.execute(f"SELECT count(*) FROM marts.{r}").fetchall()[0][0] for r in REPORTS}
        con.execute(
            "CREATE TABLE IF NOT EXISTS meta.mart_builds (run_id VARCHAR PRIMARY KEY, "
            "as_of TIMESTAMPTZ, options VARCHAR, counts VARCHAR)"
        )
        con.execute(
            "INSERT OR REPLACE INTO meta.mart_builds VALUES (?, ?, ?, ?)",
            [run_id, as_of, json.dumps(opts, sort_keys=True), json.dumps(counts, sort_keys=True)],
        )
    log.info("marts built for run %s: %s", run_id, counts)
    return counts


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


_ADDRESS = (
    "CASE WHEN {p}.building IS NOT NULL THEN coalesce({p}.estate_name, '') || {p}.building || '栋' "
    "|| coalesce({p}.unit || '单元', '') || coalesce({p}.room || '室', '') END"
)
_PLACE_ORDER = (
    "{p}.community_code NULLS LAST, {p}.estate_code NULLS LAST, try_cast({p}.building AS INTEGER) NULLS "
    "LAST, {p}.building NULLS LAST, try_cast({p}.unit AS INTEGER) NULLS LAST, {p}.unit NULLS LAST, "
    "try_cast({p}.room AS INTEGER) NULLS LAST, {p}.room NULLS LAST"
)

# The elderly-alert population with what their devices show: one row per person.
_ELDERLY_BASE_SQL = f"""
CREATE OR REPLACE TEMP TABLE _ib_elderly AS
WITH elderly AS (
    SELECT * FROM core.persons
    WHERE registry_status = 1 AND (is_living_alone OR is_tagged_living_alone)
      -- No source gives a birth date: a 独居老人 tag says elderly, so the person is not dropped from sight.
      AND (age >= $elderly_age OR (age IS NULL AND is_tagged_living_alone))
),
cards AS (SELECT c.person_key, c.holder_id FROM core.cardholders c JOIN elderly e USING (person_key)),
meters AS (
    SELECT e.person_key, d.device_id FROM elderly e
    JOIN core.devices d ON d.device_type = 'water_meter' AND d.house_key = e.house_key
),
events AS (  -- valid clocks only, happened and delivered by T; duplicates were dropped when stored
    SELECT device_id, holder_id, event_type, ts_ms, reading FROM core.device_events
    WHERE day >= $lookback_day AND clock_ok AND ts_ms <= $t_ms AND received_by <= $as_of
),
door AS (
    SELECT c.person_key, max(v.ts_ms) AS last_ms FROM cards c
    JOIN events v ON v.holder_id = c.holder_id AND v.event_type = 'access_granted' GROUP BY c.person_key
),
readings AS (
    SELECT DISTINCT m.person_key, m.device_id, v.ts_ms, v.reading FROM meters m
    JOIN events v ON v.device_id = m.device_id AND v.event_type = 'meter_reading' AND v.reading IS NOT NULL
),
series AS (
    SELECT *, lag(reading) OVER (PARTITION BY person_key, device_id ORDER BY ts_ms, reading) AS previous
    FROM readings
),
per_meter AS (
    SELECT person_key, device_id, max(ts_ms) FILTER (WHERE reading > previous) AS last_rise_ms,
           coalesce(max(reading) FILTER (WHERE ts_ms > $ws_ms) > coalesce(
               arg_max(reading, (ts_ms, reading)) FILTER (WHERE ts_ms <= $ws_ms),
               arg_min(reading, (ts_ms, reading)) FILTER (WHERE ts_ms > $ws_ms)), false) AS rose
    FROM series GROUP BY person_key, device_id
),
water AS (SELECT person_key, max(last_rise_ms) AS last_ms, bool_or(rose) AS rose FROM per_meter GROUP BY 1)
SELECT e.person_key, e.community_code, e.community_name, e.estate_code, e.estate_name, e.building, e.unit,
       e.room, {_ADDRESS.format(p="e")} AS address, e.age,
       (SELECT count(*) FROM cards c WHERE c.person_key = e.person_key)::INTEGER AS door_cards,
       EXISTS (SELECT 1 FROM meters m WHERE m.person_key = e.person_key) AS has_water_meter,
       (SELECT count(*) FROM core.cardholders c LEFT JOIN core.persons o ON o.person_key = c.person_key
        WHERE c.house_key = e.house_key AND NOT coalesce(o.in_registry, false))::INTEGER AS unregistered_cards_at_home,
       door.last_ms AS door_ms, water.last_ms AS water_ms,
       coalesce(door.last_ms > $ws_ms, false) OR coalesce(water.rose, false) AS active
FROM elderly e
LEFT JOIN door ON door.person_key = e.person_key
LEFT JOIN water ON water.person_key = e.person_key
"""

_ELDERLY_ALERTS_SQL = f"""
CREATE OR REPLACE TABLE marts.elderly_alerts AS
SELECT person_key, community_code, community_name AS community, estate_name, building, unit, room, address, age,
       make_timestamptz(door_ms * 1000) AS last_door_access_at, make_timestamptz(water_ms * 1000) AS last_water_use_at,
       round(($t_ms - greatest(door_ms, water_ms)) / {HOUR_MS}, 1)::DECIMAL(10, 1) AS hours_silent,
       door_cards, has_water_meter
FROM _ib_elderly
WHERE (door_cards > 0 OR has_water_meter) AND NOT active
ORDER BY hours_silent DESC NULLS FIRST, person_key
"""

_NO_DEVICE_SQL = f"""
CREATE OR REPLACE TABLE marts.no_device_coverage AS
SELECT person_key, community_code, community_name AS community, estate_name, building, unit, room, address, age,
       unregistered_cards_at_home
FROM _ib_elderly e
WHERE door_cards = 0 AND NOT has_water_meter
ORDER BY {_PLACE_ORDER.format(p="e")}, person_key
"""

_SENIOR_GAPS_SQL = """
CREATE OR REPLACE TABLE marts.senior_allowance_gaps AS
SELECT p.person_key, p.community_code, p.community_name AS community, p.age_at_month_start AS age, p.birth_year
FROM core.persons p
WHERE p.registry_status = 1 AND p.registration_type = '户籍' AND p.age_at_month_start >= $senior_age
  AND NOT EXISTS (SELECT 1 FROM core.roster_entries r WHERE r.programme_code = 'senior'
                  AND r.roster_month = $month_first AND r.person_key = p.person_key)
ORDER BY p.community_code NULLS LAST, p.age_at_month_start DESC, p.person_key
"""

_SUBSIDY_AFTER_EXIT_SQL = """
CREATE OR REPLACE TABLE marts.subsidy_after_exit AS
SELECT r.programme, r.roster_file, r.roster_row, r.person_key, coalesce(p.community_code, r.community_code)
       AS community_code, coalesce(p.community_name, r.community_name) AS community,
       p.registry_status AS exit_status, p.exit_date, r.amount_yuan, r.record_key
FROM core.roster_entries r JOIN core.persons p ON p.person_key = r.person_key
WHERE r.roster_month = $month_first AND p.registry_status IN (2, 3) AND p.exit_date < $month_first
ORDER BY r.programme_code, r.roster_file, r.roster_row, r.record_key
"""

# "Could not be tied to a person": no record of the registry, the grid or the IoT platform joined it.
_UNMATCHED_SQL = f"""
CREATE OR REPLACE TABLE marts.unmatched_roster_rows AS
WITH latest AS (SELECT max(run_id) AS run_id FROM meta.identity_runs WHERE as_of <= $as_of),
undecided AS (  -- two persons it matched about equally, or several people of its name it could be
    SELECT system_l AS system, record_key_l AS record_key FROM core.identity_review, latest
    WHERE identity_review.run_id = latest.run_id AND reason IN ('ambiguous', 'several_namesakes')
    UNION SELECT system_r, record_key_r FROM core.identity_review, latest
    WHERE identity_review.run_id = latest.run_id AND reason IN ('ambiguous', 'several_namesakes')
),
ambiguous AS (SELECT record_key FROM undecided WHERE system = 'civil_affairs')
SELECT r.programme, r.roster_month, r.roster_file, r.roster_row, r.person_key, r.record_key,
       r.community_code, r.community_name AS community, r.id_kind,
       CASE WHEN r.id_kind IN {DAMAGED_ID_KINDS} THEN 'damaged_id_number'
            WHEN r.record_key IN (SELECT record_key FROM ambiguous) THEN 'ambiguous'
            ELSE 'no_candidate' END AS reason
FROM core.roster_entries r LEFT JOIN core.persons p ON p.person_key = r.person_key
WHERE r.roster_month = $month_first AND NOT coalesce(p.in_registry OR p.in_grid OR p.in_iot, false)
ORDER BY r.programme_code, r.roster_file, r.roster_row, r.record_key
"""

_ISLAND_COVERAGE_SQL = """
CREATE OR REPLACE TABLE marts.island_coverage AS
SELECT community_code, community_name AS community, count(*) AS persons_known,
       count(*) FILTER (WHERE in_registry) AS in_registry, count(*) FILTER (WHERE in_grid) AS in_grid,
       count(*) FILTER (WHERE in_civil) AS in_civil, count(*) FILTER (WHERE in_iot) AS in_iot,
       count(*) FILTER (WHERE systems >= 2) AS in_two_or_more, count(*) FILTER (WHERE systems = 4) AS in_all_four
FROM core.persons
GROUP BY community_code, community_name
ORDER BY community_code NULLS LAST, community_name NULLS LAST
"""

_INCIDENTS_SQL = """
CREATE OR REPLACE TABLE marts.incidents_by_building AS
WITH households AS (
    SELECT estate_code, building, count(*) FILTER (WHERE living_residents > 0) AS households
    FROM core.houses GROUP BY estate_code, building
),
counted AS (
    SELECT created_month AS month, community_code, community_name AS community, estate_code, estate_name, building,
           category, count(*) AS incidents
    FROM core.grid_incidents WHERE created_at <= $as_of
    GROUP BY created_month, community_code, community_name, estate_code, estate_name, building, category
)
SELECT c.*, h.households
FROM counted c LEFT JOIN households h ON h.estate_code = c.estate_code AND h.building = c.building
ORDER BY c.month, c.community_code NULLS LAST, c.estate_code NULLS LAST, try_cast(c.building AS INTEGER) NULLS LAST,
         c.building NULLS LAST, c.category
"""

_SQL = {
    "elderly_alerts": _ELDERLY_ALERTS_SQL,
    "no_device_coverage": _NO_DEVICE_SQL,
    "senior_allowance_gaps": _SENIOR_GAPS_SQL,
    "subsidy_after_exit": _SUBSIDY_AFTER_EXIT_SQL,
    "unmatched_roster_rows": _UNMATCHED_SQL,
    "island_coverage": _ISLAND_COVERAGE_SQL,
    "incidents_by_building": _INCIDENTS_SQL,
}
