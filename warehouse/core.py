"""The core model: persons, places, residency history, rosters, grid work and devices, as of a run's T.

``build_core`` rebuilds schema ``core`` from the newest version of every raw record (as of T) and the
identity map, in one DuckDB transaction. It reads no ``pii: direct`` column (only the scrubbed
incident address and the derived ``<id column>__kind`` / ``__birth_date``), so the core holds
pseudonymous keys and derived attributes only. The identity tables (``core.identity_*``,
``core.person_key_redirects``) belong to the identity step and are never touched here.

Tables (one YAML each under ``schemas/core/``, rendered in docs/data-dictionary.md):

=========================  ==============================================================================
``core.estates``           one row per estate (小区)
``core.houses``            one row per registry house (房屋), parts normalised, with its living residents
``core.residency``         SCD2: one row per registry resident row per version; valid_from/valid_to are
                           the residence (moved in, exit date), recorded_from/recorded_to the runs that
                           knew that version; a person's current state is their newest registry row
``core.persons``           one row per person_key: derived attributes, where they live, which systems
``core.roster_entries``    one row per civil-affairs roster row of each month (newest file of the month)
``core.grid_incidents``    one row per grid event, placed at a building from its (scrubbed) address
``core.grid_visits``       one row per welfare visit, with the visited person's key
``core.devices``           one row per IoT device, at a normalised house key
``core.cardholders``       one row per door-card holder, with the holder's person_key
``core.device_events``     view over Parquet day partitions (below), one row per event_id
=========================  ==============================================================================

**Device events** are kept as Parquet under ``events_dir/day=YYYY-MM-DD/events-<sha>.parquet`` (the
Asia/Shanghai day of the event's own ``ts``), one row per ``event_id`` across all runs (the copy
delivered first is kept; later copies are counted as duplicates in ``core.device_event_runs``). A
broken clock (``ts`` before 2000, or more than a day after the run that delivered it) is kept but
flagged (``clock_ok = false``, ``event_at`` NULL); a late event counts at its own ``ts`` and is flagged
``is_late`` when it happened before the previous run's T. Each build merges the raw slices of every run
up to T not merged yet (and its own run again), rewriting only the days they touch.

Atomicity: a day's new content is written to a temporary file and renamed to a *content-addressed*
name before the transaction; nothing refers to it yet. The transaction then rebuilds the tables,
replaces ``core.device_event_files`` (the live file of each day) and re-creates the view over exactly
those files. Files no longer listed are deleted only after the commit. A failure or a kill at any
point leaves the previous view on the previous files, both intact; leftovers are removed by the next
build. Re-running the same as-of writes the same bytes under the same names: nothing changes.

Example::

    counts = build_core(con, parse_as_of("2026-11-20"), "ib_20261120T160000Z", Path("var/events"))
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import tempfile
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq

from islandbridge.errors import TerminalError
from islandbridge.identity.records import latest_sql
from islandbridge.storage import existing_columns, has_table, params_for, transaction
from islandbridge.transforms.normalize.addresses import EstateIndex, normalize_house, parse_address

log = logging.getLogger(__name__)

LOCAL_TZ = "Asia/Shanghai"
# In build order: a table may read the ones before it.
TABLES = (
    "estates",
    "houses",
    "devices",
    "cardholders",
    "residency",
    "persons",
    "roster_entries",
    "grid_incidents",
    "grid_visits",
)
ALONE_TAG = "独居老人"
LEGACY_RANK = 6  # birth dates from upgraded 15-digit numbers rank below every other source
CENTURY = 100
# Streams that name a source's system; iot and grid both have ``events``, so it names none.
SYSTEM_STREAMS = {
    "resident_registry": ("t_jm", "t_fw", "t_xq", "t_jm_bq"),
    "grid_platform": ("residents", "grids", "workers", "visits"),
    "civil_affairs": ("dibao", "senior"),
    "iot_platform": ("devices", "cardholders"),
}
# What each staged stream needs: (system, stream) -> (temp table, columns). A column the raw table
# lacks (an older load, a derived column not produced yet) is staged as NULL. Never a `pii: direct`
# column, except the incident address, which the loader keeps only scrubbed.
STAGES: Mapping[tuple[str, str], tuple[str, tuple[str, ...]]] = {
    ("resident_registry", "t_xq"): ("_ib_xq", ("xqbm", "xqmc", "sqbm", "sqmc")),
    ("resident_registry", "t_fw"): ("_ib_fw", ("fwbh", "xqbm", "ld", "dy", "fh", "wgbm")),
    ("resident_registry", "t_jm"): (
        "_ib_jm",
        (
            "jmid",
            "xb",
            "csrq",
            "hjlx",
            "fwbh",
            "yhzgx",
            "rzrq",
            "zt",
            "zxrq",
            "cjsj",
            "sfzh__kind",
            "sfzh__birth_date",
        ),
    ),
    ("resident_registry", "t_jm_bq"): ("_ib_bq", ("jmid", "bq")),
    ("grid_platform", "grids"): ("_ib_grids", ("grid_code", "community_code", "community_name")),
    ("grid_platform", "residents"): (
        "_ib_gres",
        ("person_id", "gender", "grid_code", "tags", "status", "id_card__kind", "id_card__birth_date"),
    ),
    ("grid_platform", "events"): (
        "_ib_gev",
        ("event_id", "category", "status", "created_at", "update_time", "closed_at", "grid_code", "address"),
    ),
    ("grid_platform", "visits"): (
        "_ib_gvis",
        ("visit_id", "worker_id", "person_id", "visit_time", "visit_type"),
    ),
    ("civil_affairs", "dibao"): (
        "_ib_dibao",
        (
            "序号",
            "保障类别",
            "家庭人口",
            "保障人数",
            "月保障金(元)",
            "所属社区",
            "roster_month",
            "source_file",
            "source_row",
            "身份证号码__kind",
        ),
    ),
    ("civil_affairs", "senior"): (
        "_ib_senior",
        (
            "序号",
            "性别",
            "出生年月",
            "年龄",
            "补贴标准(元/月)",
            "发放金额",
            "所属社区",
            "roster_month",
            "source_file",
            "source_row",
            "身份证号__kind",
            "身份证号__birth_date",
        ),
    ),
    ("iot_platform", "devices"): (
        "_ib_dev",
        ("device_id", "device_type", "estate_code", "building", "unit", "room", "status", "installed_at"),
    ),
    ("iot_platform", "cardholders"): (
        "_ib_holders",
        (
            "holder_id",
            "estate_code",
            "building",
            "unit",
            "room",
            "face_enrolled",
            "valid_until",
            "updated_at",
        ),
    ),
}
SCRUBBED_READS = {("grid_platform", "events", "address")}
_TEMP = tuple(t for t, _ in STAGES.values()) + ("_ib_parts", "_ib_places", "_ib_jm_versions", "_ib_reg")


class CoreBuildError(TerminalError):
    """The core cannot be built as asked (no identity map, sources not recognisable, event files gone).

    Terminal: an earlier step must run or missing files be restored; a retry finds the same warehouse."""


@dataclass(frozen=True)
class Moment:
    """T and the calendar facts the reports use: the as-of date (local) and the roster month's first day."""

    at: dt.datetime
    day: dt.date
    month_first: dt.date

    @classmethod
    def of(cls, as_of: dt.datetime) -> Moment:
        """``as_of`` is the end of the as-of date (local midnight): the date is the instant before it."""
        if as_of.tzinfo is None:
            raise CoreBuildError(f"as_of {as_of.isoformat()} has no time zone; pass an aware datetime")
        local = (as_of - dt.timedelta(microseconds=1)).astimezone(dt.timezone(dt.timedelta(hours=8)))
        return cls(as_of, local.date(), local.date().replace(day=1))


def build_core(
    con: duckdb.DuckDBPyConnection,
    as_of: dt.datetime,
    run_id: str,
    events_dir: Path,
    *,
    sources: Mapping[str, str] | None = None,
) -> dict[str, int]:
    """Rebuild schema ``core`` for the run ending at ``as_of``; returns the row count of each table.

    ``sources`` maps source names (the ``raw.<source>__<stream>`` prefix) to their connector's system;
    by default it is recognised from the raw tables' streams. Raises `CoreBuildError` (with what to do)
    when there is no identity map, two sources of one system, an as-of without a time zone, or event
    files listed but missing; any other failure rolls everything back (see the module docstring).
    """
    moment = Moment.of(as_of)
    bound = sources_of(con) if sources is None else dict(sources)
    if not has_table(con, "core.identity_map"):
        raise CoreBuildError(
            f"no core.identity_map in the warehouse: reconcile identities for run {run_id} "
            "first (`islandbridge reconcile`), then build the core"
        )
    con.execute("CREATE SCHEMA IF NOT EXISTS core")
    store = EventStore(Path(events_dir))
    staged = store.stage(con, bound, moment, run_id)
    with transaction(con):
        _stage_raw(con, bound, moment)
        values = {"as_of": moment.at, "day": moment.day, "month_first": moment.month_first}
        for table in TABLES:
            con.execute(_BUILD_SQL[table], params_for(_BUILD_SQL[table], values))
        store.publish(con, staged)
        counts = {
            t: con.execute(f"SELECT count(*) FROM core.{t}").fetchall()[0][0]
            for t in (*TABLES, "device_events")
        }
        _drop_temp(con)
    store.collect_garbage(con)
    counts["device_event_duplicates"] = staged.duplicates
    log.info("core built for run %s: %s", run_id, counts)
    return counts


def sources_of(con: duckdb.DuckDBPyConnection) -> dict[str, str]:
    """Source name -> system, recognised from which streams each source has landed in ``raw``."""
    streams: dict[str, set[str]] = {}
    for (name,) in con.execute(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = 'raw' ORDER BY table_name"
    ).fetchall():
        if "__" in name:
            source, stream = name.rsplit("__", 1)
            streams.setdefault(source, set()).add(stream)
    found: dict[str, str] = {}
    for source, have in sorted(streams.items()):
        systems = [s for s, names in SYSTEM_STREAMS.items() if have & set(names)]
        if not systems and "events" in have:  # an event log alone: the IoT one carries device timestamps
            columns = existing_columns(con, f"raw.{source}__events")
            systems = (
                ["iot_platform"]
                if {"ts", "device_id"} <= columns
                else (["grid_platform"] if "category" in columns else [])
            )
        if len(systems) == 1:
            found[source] = systems[0]
    taken = sorted(found.values())
    doubled = {s for s in taken if taken.count(s) > 1}
    if doubled:
        raise CoreBuildError(
            f"more than one source of system(s) {', '.join(sorted(doubled))} in raw "
            f"({', '.join(sorted(k for k, v in found.items() if v in doubled))}); pass sources={{name: system}}"
        )
    return found


# -- staging: the newest version of each raw record as of T, in temp tables ---------------------------------


def _stage_raw(con, bound: Mapping[str, str], moment: Moment) -> None:
    by_system = {system: source for source, system in bound.items()}
    for (system, stream), (temp, columns) in STAGES.items():
        source = by_system.get(system)
        table = f"raw.{source}__{stream}" if source else None
        have = existing_columns(con, table) if table else set()
        if not have:
            cols = ", ".join(f'NULL::VARCHAR AS "{c}"' for c in columns)
            con.execute(
                f"CREATE OR REPLACE TEMP TABLE {temp} AS SELECT NULL::VARCHAR AS record_key, "
                f"NULL::VARCHAR AS last_seen_run, NULL::TIMESTAMPTZ AS landed_as_of, {cols} LIMIT 0"
            )
            continue
        present = [c for c in columns if c in have]
        missing = ", ".join(f'NULL::VARCHAR AS "{c}"' for c in columns if c not in have)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {temp} AS SELECT l.*, r.as_of AS landed_as_of"
            f"{', ' + missing if missing else ''} FROM ({latest_sql(table, present)}) l "
            "JOIN meta.runs r ON r.run_id = l.last_seen_run",
            {"as_of": moment.at, "source": source, "stream": stream},
        )
    _stage_versions(con, by_system.get("resident_registry"), moment)
    _stage_parts(con)
    _stage_places(con)
    con.execute(_REGISTRY_CURRENT_SQL)


def _stage_versions(con, source: str | None, moment: Moment) -> None:
    """Every version of every registry resident row up to T (for the residency history)."""
    table = f"raw.{source}__t_jm" if source else None
    cols = ("jmid", "fwbh", "hjlx", "yhzgx", "rzrq", "zt", "zxrq")
    if not table or not existing_columns(con, table):
        nulls = ", ".join(f'NULL::VARCHAR AS "{c}"' for c in cols)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _ib_jm_versions AS SELECT NULL::VARCHAR AS record_key, "
            f"NULL::VARCHAR AS run_id, NULL::TIMESTAMPTZ AS run_as_of, {nulls} LIMIT 0"
        )
        return
    picks = ", ".join(f't."{c}"' for c in cols)
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _ib_jm_versions AS SELECT t._record_key AS record_key, t._run_id AS run_id, "
        f"r.as_of AS run_as_of, {picks} FROM {table} t JOIN meta.runs r ON r.run_id = t._run_id "
        "WHERE r.as_of <= $as_of",
        {"as_of": moment.at},
    )
    # Deletions up to T close a row's last version.
    con.execute(
        "INSERT INTO _ib_jm_versions (record_key, run_id, run_as_of) "
        "SELECT d.record_key, d.run_id, r.as_of FROM meta.deletions d JOIN meta.runs r ON r.run_id = d.run_id "
        "WHERE d.source = $source AND d.stream = 't_jm' AND r.as_of <= $as_of",
        {"source": source, "as_of": moment.at},
    )


def _stage_parts(con) -> None:
    """Building, unit and room as the normaliser writes them (``3栋`` → ``3``, ``0501`` → ``501``)."""
    raw = con.execute(
        "SELECT DISTINCT 'building', ld FROM _ib_fw UNION SELECT DISTINCT 'unit', dy FROM _ib_fw "
        "UNION SELECT DISTINCT 'room', fh FROM _ib_fw "
        "UNION SELECT DISTINCT 'building', building FROM _ib_dev UNION SELECT DISTINCT 'unit', unit FROM _ib_dev "
        "UNION SELECT DISTINCT 'room', room FROM _ib_dev "
        "UNION SELECT DISTINCT 'building', building FROM _ib_holders "
        "UNION SELECT DISTINCT 'unit', unit FROM _ib_holders UNION SELECT DISTINCT 'room', room FROM _ib_holders"
    ).fetchall()
    position = {"building": 0, "unit": 1, "room": 2}
    rows = []
    for which, value in raw:
        args = [None, None, None]
        args[position[which]] = value
        rows.append((which, value, normalize_house(*args)[position[which]]))
    _register_temp(
        con,
        "_ib_parts",
        pa.table(
            {
                "part": pa.array([r[0] for r in rows], pa.string()),
                "raw": pa.array([r[1] for r in rows], pa.string()),
                "norm": pa.array([r[2] for r in rows], pa.string()),
            }
        ),
    )


def _stage_places(con) -> None:
    """Where each grid incident happened: its scrubbed address parsed against the registry's estates."""
    index = EstateIndex(dict(con.execute("SELECT xqmc, xqbm FROM _ib_xq WHERE xqmc IS NOT NULL").fetchall()))
    rows = con.execute("SELECT event_id, address FROM _ib_gev ORDER BY event_id").fetchall()
    parsed = [parse_address(address, index) for _, address in rows]
    _register_temp(
        con,
        "_ib_places",
        pa.table(
            {
                "event_id": pa.array([r[0] for r in rows], pa.string()),
                **{
                    f: pa.array([getattr(p, f) for p in parsed], pa.string())
                    for f in ("estate_code", "building", "unit", "room", "status")
                },
            }
        ),
    )


def _register_temp(con, name: str, table: pa.Table) -> None:
    con.register("_ib_arrow", table)
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM _ib_arrow")
    finally:
        con.unregister("_ib_arrow")


def _drop_temp(con) -> None:
    for name in _TEMP:
        con.execute(f"DROP TABLE IF EXISTS {name}")


# -- the SQL of each table -----------------------------------------------------------------------------------

# The newest version of each registry resident row, with its person and its place in the person's rows.
_REGISTRY_CURRENT_SQL = """
CREATE OR REPLACE TEMP TABLE _ib_reg AS
SELECT j.*, m.person_key,
       row_number() OVER (PARTITION BY coalesce(m.person_key, j.record_key)
                          ORDER BY try_strptime(j.rzrq, ['%Y-%m-%d', '%Y%m%d']) DESC NULLS LAST,
                                   try_strptime(j.cjsj, '%Y-%m-%d %H:%M:%S') DESC NULLS LAST,
                                   try_cast(j.jmid AS BIGINT) DESC NULLS LAST, j.jmid DESC) = 1 AS is_newest
FROM _ib_jm j
LEFT JOIN core.identity_map m ON m.system = 'resident_registry' AND m.record_key = j.record_key
"""

_HOUSE_PARTS = """
    LEFT JOIN _ib_parts pb ON pb.part = 'building' AND pb.raw IS NOT DISTINCT FROM {t}.{b}
    LEFT JOIN _ib_parts pu ON pu.part = 'unit' AND pu.raw IS NOT DISTINCT FROM {t}.{u}
    LEFT JOIN _ib_parts pr ON pr.part = 'room' AND pr.raw IS NOT DISTINCT FROM {t}.{r}
"""


def _house_key(code: str) -> str:
    return (
        f"CASE WHEN {code} IS NULL OR pb.norm IS NULL OR pu.norm IS NULL OR pr.norm IS NULL THEN NULL "
        f"ELSE upper(trim({code})) || '|' || pb.norm || '|' || pu.norm || '|' || pr.norm END"
    )


_ESTATES_SQL = """
CREATE OR REPLACE TABLE core.estates AS
SELECT xqbm AS estate_code, trim(xqmc) AS estate_name, sqbm AS community_code, trim(sqmc) AS community_name
FROM _ib_xq WHERE xqbm IS NOT NULL ORDER BY estate_code
"""

_HOUSES_SQL = f"""
CREATE OR REPLACE TABLE core.houses AS
SELECT f.fwbh AS house_id, f.xqbm AS estate_code, e.estate_name, e.community_code, e.community_name,
       pb.norm AS building, pu.norm AS unit, pr.norm AS room, {_house_key("f.xqbm")} AS house_key,
       f.wgbm AS grid_code,
       (SELECT count(*) FROM _ib_reg r WHERE r.fwbh = f.fwbh AND trim(r.zt) = '1')::INTEGER AS living_residents
FROM _ib_fw f
LEFT JOIN core.estates e ON e.estate_code = f.xqbm
{_HOUSE_PARTS.format(t="f", b="ld", u="dy", r="fh")}
WHERE f.fwbh IS NOT NULL
ORDER BY house_id
"""

_RESIDENCY_SQL = """
CREATE OR REPLACE TABLE core.residency AS
WITH v AS (
    SELECT *, md5(concat_ws('|', coalesce(fwbh, '∅'), coalesce(hjlx, '∅'), coalesce(yhzgx, '∅'),
                            coalesce(rzrq, '∅'), coalesce(zt, '∅'), coalesce(zxrq, '∅'),
                            CASE WHEN jmid IS NULL THEN 'deleted' ELSE 'present' END)) AS content
    FROM _ib_jm_versions
), changed AS (
    SELECT *, content IS DISTINCT FROM lag(content) OVER w AS starts FROM v
    WINDOW w AS (PARTITION BY record_key ORDER BY run_as_of, run_id)
), versions AS (
    SELECT *, lead(run_as_of) OVER (PARTITION BY record_key ORDER BY run_as_of, run_id) AS next_as_of
    FROM changed WHERE starts
)
SELECT m.person_key, v.record_key, v.jmid AS registry_row_id, v.fwbh AS house_id, h.estate_code,
       h.building, h.unit, h.room, trim(v.hjlx) AS registration_type, trim(v.yhzgx) AS relation_to_head,
       try_cast(trim(v.zt) AS INTEGER) AS status,
       CAST(try_strptime(v.rzrq, ['%Y-%m-%d', '%Y%m%d']) AS DATE) AS valid_from,
       CAST(try_strptime(v.zxrq, ['%Y-%m-%d', '%Y%m%d']) AS DATE) AS valid_to,
       v.run_id AS recorded_from_run, v.run_as_of AS recorded_from, v.next_as_of AS recorded_to,
       v.next_as_of IS NULL AS is_current,
       coalesce(v.next_as_of IS NULL AND r.is_newest, false) AS is_person_current
FROM versions v
LEFT JOIN core.identity_map m ON m.system = 'resident_registry' AND m.record_key = v.record_key
LEFT JOIN core.houses h ON h.house_id = v.fwbh
LEFT JOIN _ib_reg r ON r.record_key = v.record_key
WHERE v.jmid IS NOT NULL
ORDER BY v.record_key, v.run_as_of
"""

_PERSONS_SQL = f"""
CREATE OR REPLACE TABLE core.persons AS
WITH keys AS (SELECT DISTINCT person_key FROM core.identity_map),
reg AS (
    SELECT r.person_key, r.record_key, trim(r.zt) AS zt, trim(r.hjlx) AS hjlx, r.fwbh,
           CAST(try_strptime(r.zxrq, ['%Y-%m-%d', '%Y%m%d']) AS DATE) AS exit_on,
           CASE trim(r.xb) WHEN '1' THEN 'M' WHEN '2' THEN 'F' END AS sex
    FROM _ib_reg r WHERE r.is_newest AND r.person_key IS NOT NULL
),
births AS (  -- every birth date a person's records give, most trusted first
    SELECT person_key, birth, rank FROM (
        SELECT person_key, CAST(try_strptime(trim(csrq), ['%Y-%m-%d', '%Y%m%d']) AS DATE) AS birth,
               CASE WHEN is_newest THEN 1 ELSE 2 END AS rank FROM _ib_reg
        UNION ALL
        SELECT person_key, try_cast(sfzh__birth_date AS DATE),
               CASE sfzh__kind WHEN 'legacy15_upgraded' THEN {LEGACY_RANK} ELSE 3 END FROM _ib_reg
        UNION ALL
        SELECT l.person_key, try_cast(g.id_card__birth_date AS DATE),
               CASE g.id_card__kind WHEN 'legacy15_upgraded' THEN {LEGACY_RANK} + 1 ELSE 4 END
        FROM _ib_gres g JOIN core.identity_map l ON l.system = 'grid_platform' AND l.record_key = g.record_key
        UNION ALL
        SELECT l.person_key, try_cast(s.身份证号__birth_date AS DATE), 5
        FROM _ib_senior s JOIN core.identity_map l ON l.system = 'civil_affairs' AND l.record_key = s.record_key
    ) WHERE birth IS NOT NULL AND person_key IS NOT NULL
      -- A 15-digit number has no century: its upgrade reads 19xx, wrong for anyone born since 2000, so
      -- a 15-digit birth date that makes someone a centenarian is not believed.
      AND NOT (rank >= {LEGACY_RANK} AND birth <= $day::DATE - INTERVAL {CENTURY} YEAR)
),
birth AS (SELECT person_key, arg_min(birth, (rank, birth)) AS birth FROM births GROUP BY person_key),
grid AS (
    SELECT l.person_key,
           arg_min(CASE trim(g.gender) WHEN '男' THEN 'M' WHEN '女' THEN 'F' END, g.record_key) AS sex,
           arg_min(g.grid_code, (trim(g.status) <> '在册', g.record_key)) AS grid_code,
           list_distinct(flatten(list(coalesce(try(from_json(g.tags, '["VARCHAR"]')), [])))) AS tags
    FROM _ib_gres g JOIN core.identity_map l ON l.system = 'grid_platform' AND l.record_key = g.record_key
    GROUP BY l.person_key
),
civil AS (
    SELECT l.person_key, arg_max(trim(c.community), (c.roster_month, c.record_key)) AS community_name,
           arg_max(CASE trim(c.sex) WHEN '男' THEN 'M' WHEN '女' THEN 'F' END, (c.roster_month, c.record_key)) AS sex
    FROM (SELECT record_key, 所属社区 AS community, roster_month, NULL AS sex FROM _ib_dibao
          UNION ALL SELECT record_key, 所属社区, roster_month, 性别 FROM _ib_senior) c
    JOIN core.identity_map l ON l.system = 'civil_affairs' AND l.record_key = c.record_key
    GROUP BY l.person_key
),
card AS (
    SELECT person_key, arg_min(house_key, (house_key IS NULL, holder_id)) AS house_key
    FROM core.cardholders WHERE person_key IS NOT NULL GROUP BY person_key
),
house_by_key AS (
    SELECT house_key, min(house_id) AS house_id, min(grid_code) AS grid_code FROM core.houses
    WHERE house_key IS NOT NULL GROUP BY house_key
),
reg_tags AS (
    SELECT r.person_key, list_distinct(list(trim(b.bq))) AS tags
    FROM _ib_bq b JOIN _ib_reg r ON r.jmid = b.jmid WHERE r.person_key IS NOT NULL AND b.bq IS NOT NULL
    GROUP BY r.person_key
),
systems AS (
    SELECT person_key, bool_or(system = 'resident_registry') AS in_registry,
           bool_or(system = 'grid_platform') AS in_grid, bool_or(system = 'civil_affairs') AS in_civil,
           bool_or(system = 'iot_platform') AS in_iot
    FROM core.identity_map GROUP BY person_key
),
placed AS (
    SELECT k.person_key, coalesce(rh.house_id, ch.house_id) AS house_id,
           coalesce(rh.house_key, card.house_key) AS house_key,
           coalesce(rh.estate_code, split_part(card.house_key, '|', 1)) AS estate_code,
           coalesce(rh.building, split_part(card.house_key, '|', 2)) AS building,
           coalesce(rh.unit, split_part(card.house_key, '|', 3)) AS unit,
           coalesce(rh.room, split_part(card.house_key, '|', 4)) AS room,
           coalesce(rh.grid_code, grid.grid_code, ch.grid_code) AS grid_code,
           CASE WHEN rh.house_id IS NOT NULL THEN 'registry' WHEN card.house_key IS NOT NULL THEN 'iot'
                WHEN grid.grid_code IS NOT NULL THEN 'grid' WHEN civil.community_name IS NOT NULL THEN 'civil'
           END AS place_source
    FROM keys k
    LEFT JOIN reg ON reg.person_key = k.person_key
    LEFT JOIN core.houses rh ON rh.house_id = reg.fwbh
    LEFT JOIN card ON card.person_key = k.person_key
    LEFT JOIN house_by_key ch ON ch.house_key = card.house_key
    LEFT JOIN grid ON grid.person_key = k.person_key
    LEFT JOIN civil ON civil.person_key = k.person_key
),
communities AS (
    SELECT community_name, min(community_code) AS community_code FROM core.estates GROUP BY community_name
)
SELECT k.person_key,
       coalesce(reg.sex, grid.sex, civil.sex) AS sex,
       year(birth.birth)::INTEGER AS birth_year,
       date_diff('year', birth.birth, $day::DATE)::INTEGER
           - (strftime(birth.birth, '%m%d') > strftime($day::DATE, '%m%d'))::INTEGER AS age,
       date_diff('year', birth.birth, $month_first::DATE)::INTEGER
           - (strftime(birth.birth, '%m%d') > strftime($month_first::DATE, '%m%d'))::INTEGER AS age_at_month_start,
       reg.hjlx AS registration_type,
       try_cast(reg.zt AS INTEGER) AS registry_status,
       CASE WHEN try_cast(reg.zt AS INTEGER) IN (2, 3) THEN reg.exit_on END AS exit_date,
       coalesce(e.community_code, gc.community_code, cc.community_code) AS community_code,
       coalesce(e.community_name, gc.community_name, civil.community_name) AS community_name,
       p.estate_code, e.estate_name, p.building, p.unit, p.room, p.house_id, p.house_key, p.grid_code,
       p.place_source,
       list_sort(list_distinct(list_concat(coalesce(reg_tags.tags, []), coalesce(grid.tags, [])))) AS tags,
       list_contains(coalesce(reg_tags.tags, []), '{ALONE_TAG}')
           OR list_contains(coalesce(grid.tags, []), '{ALONE_TAG}') AS is_tagged_living_alone,
       coalesce(reg.zt = '1' AND rh.living_residents = 1, false) AS is_living_alone,
       s.in_registry, s.in_grid, s.in_civil, s.in_iot,
       (s.in_registry::INTEGER + s.in_grid::INTEGER + s.in_civil::INTEGER + s.in_iot::INTEGER) AS systems
FROM keys k
JOIN systems s ON s.person_key = k.person_key
JOIN placed p ON p.person_key = k.person_key
LEFT JOIN reg ON reg.person_key = k.person_key
LEFT JOIN core.houses rh ON rh.house_id = reg.fwbh
LEFT JOIN birth ON birth.person_key = k.person_key
LEFT JOIN grid ON grid.person_key = k.person_key
LEFT JOIN civil ON civil.person_key = k.person_key
LEFT JOIN reg_tags ON reg_tags.person_key = k.person_key
LEFT JOIN core.estates e ON e.estate_code = p.estate_code
LEFT JOIN _ib_grids gc ON gc.grid_code = p.grid_code AND e.estate_code IS NULL
LEFT JOIN communities cc ON cc.community_name = civil.community_name
ORDER BY k.person_key
"""

_HOUSE_BY_KEY = """house_by_key AS (
    SELECT house_key, min(house_id) AS house_id FROM core.houses WHERE house_key IS NOT NULL GROUP BY house_key
)"""

_DEVICES_SQL = f"""
CREATE OR REPLACE TABLE core.devices AS
WITH {_HOUSE_BY_KEY}
SELECT d.device_id, trim(d.device_type) AS device_type, trim(d.status) AS status,
       try_cast(d.installed_at AS TIMESTAMPTZ) AS installed_at, upper(trim(d.estate_code)) AS estate_code,
       pb.norm AS building, pu.norm AS unit, pr.norm AS room,
       CASE WHEN pb.norm IS NOT NULL AND pu.norm IS NOT NULL
            THEN upper(trim(d.estate_code)) || '|' || pb.norm || '|' || pu.norm END AS unit_key,
       {_house_key("d.estate_code")} AS house_key, hk.house_id
FROM _ib_dev d
{_HOUSE_PARTS.format(t="d", b="building", u="unit", r="room")}
LEFT JOIN house_by_key hk ON hk.house_key = {_house_key("d.estate_code")}
WHERE d.device_id IS NOT NULL
ORDER BY d.device_id
"""

_CARDHOLDERS_SQL = f"""
CREATE OR REPLACE TABLE core.cardholders AS
WITH {_HOUSE_BY_KEY},
doors AS (SELECT unit_key, min(device_id) AS device_id FROM core.devices
          WHERE device_type = 'door_access' AND unit_key IS NOT NULL GROUP BY unit_key)
SELECT h.holder_id, h.record_key, m.person_key, m.matched_by, upper(trim(h.estate_code)) AS estate_code,
       pb.norm AS building, pu.norm AS unit, pr.norm AS room, {_house_key("h.estate_code")} AS house_key,
       hk.house_id, doors.device_id AS door_device_id,
       CASE lower(trim(h.face_enrolled)) WHEN 'true' THEN true WHEN 'false' THEN false END AS face_enrolled,
       try_cast(h.valid_until AS DATE) AS valid_until, try_cast(h.updated_at AS TIMESTAMPTZ) AS updated_at
FROM _ib_holders h
{_HOUSE_PARTS.format(t="h", b="building", u="unit", r="room")}
LEFT JOIN house_by_key hk ON hk.house_key = {_house_key("h.estate_code")}
LEFT JOIN doors ON doors.unit_key = upper(trim(h.estate_code)) || '|' || pb.norm || '|' || pu.norm
LEFT JOIN core.identity_map m ON m.system = 'iot_platform' AND m.record_key = h.record_key
WHERE h.holder_id IS NOT NULL
ORDER BY h.holder_id
"""

_ROSTER_SQL = """
CREATE OR REPLACE TABLE core.roster_entries AS
WITH rows AS (
    SELECT 'dibao' AS programme_code, record_key, landed_as_of, "序号" AS seq, roster_month, source_file,
           source_row, "所属社区" AS community, "月保障金(元)" AS amount, NULL AS rate, "保障类别" AS category,
           "家庭人口" AS household_size, "保障人数" AS persons_covered, NULL AS sex, NULL AS birth_month,
           NULL AS age, "身份证号码__kind" AS id_kind
    FROM _ib_dibao
    UNION ALL
    SELECT 'senior', record_key, landed_as_of, "序号", roster_month, source_file, source_row, "所属社区",
           "发放金额", "补贴标准(元/月)", NULL, NULL, NULL, "性别", "出生年月", "年龄", "身份证号__kind"
    FROM _ib_senior
),
newest AS (  -- a month's roster is its file landed last: rows a correction dropped are no longer on it
    SELECT *, landed_as_of = max(landed_as_of) OVER (PARTITION BY programme_code, roster_month) AS on_roster
    FROM rows
),
communities AS (
    SELECT community_name, min(community_code) AS community_code FROM core.estates GROUP BY community_name
)
SELECT n.programme_code, CASE n.programme_code WHEN 'dibao' THEN '低保' ELSE '高龄补贴' END AS programme,
       CAST(try_strptime(trim(n.roster_month) || '01', '%Y%m%d') AS DATE) AS roster_month,
       n.source_file AS roster_file, try_cast(trim(n.seq) AS INTEGER) AS roster_row,
       try_cast(n.source_row AS INTEGER) AS file_row, n.record_key, m.person_key, m.matched_by,
       m.match_probability, trim(n.community) AS community_name, c.community_code,
       try_cast(trim(n.amount) AS DECIMAL(12, 2)) AS amount_yuan,
       try_cast(trim(n.rate) AS DECIMAL(12, 2)) AS monthly_rate_yuan, trim(n.category) AS category,
       try_cast(trim(n.household_size) AS INTEGER) AS household_size,
       try_cast(trim(n.persons_covered) AS INTEGER) AS persons_covered,
       CASE trim(n.sex) WHEN '男' THEN 'M' WHEN '女' THEN 'F' END AS declared_sex,
       strftime(try_strptime(trim(n.birth_month), '%Y.%m'), '%Y-%m') AS declared_birth_month,
       try_cast(trim(n.age) AS INTEGER) AS declared_age, n.id_kind
FROM newest n
LEFT JOIN core.identity_map m ON m.system = 'civil_affairs' AND m.record_key = n.record_key
LEFT JOIN communities c ON c.community_name = trim(n.community)
WHERE n.on_roster
ORDER BY programme_code, roster_month, roster_row, n.record_key
"""

_INCIDENTS_SQL = f"""
CREATE OR REPLACE TABLE core.grid_incidents AS
WITH {_HOUSE_BY_KEY},
by_grid AS (  -- an address without an estate ("3栋2单元501"): the estate of the grid's matching houses
    SELECT p.event_id, min(h.estate_code) AS estate_code
    FROM _ib_places p JOIN _ib_gev e ON e.event_id = p.event_id
    JOIN core.houses h ON h.grid_code = e.grid_code AND h.building = p.building
        AND (p.unit IS NULL OR h.unit = p.unit) AND (p.room IS NULL OR h.room = p.room)
    WHERE p.estate_code IS NULL AND p.building IS NOT NULL
    GROUP BY p.event_id HAVING count(DISTINCT h.estate_code) = 1
),
placed AS (
    SELECT e.*, coalesce(p.estate_code, g.estate_code) AS estate_code, p.building, p.unit, p.room,
           CASE WHEN p.estate_code IS NOT NULL THEN 'address' WHEN g.estate_code IS NOT NULL THEN 'address_and_grid'
                ELSE 'grid_only' END AS located_by,
           make_timestamptz(try_cast(e.created_at AS BIGINT) * 1000) AS created_ts
    FROM _ib_gev e LEFT JOIN _ib_places p ON p.event_id = e.event_id LEFT JOIN by_grid g ON g.event_id = e.event_id
)
SELECT p.event_id, p.record_key, trim(p.category) AS category, trim(p.status) AS status, p.created_ts AS created_at,
       CAST(date_trunc('month', timezone('{LOCAL_TZ}', p.created_ts)) AS DATE) AS created_month,
       try_strptime(trim(p.update_time) || ' +08:00', '%Y-%m-%d %H:%M:%S %z') AS updated_at,
       try_strptime(trim(p.closed_at) || ' +08:00', '%Y-%m-%d %H:%M:%S %z') AS closed_at,
       p.grid_code, coalesce(e.community_code, g.community_code) AS community_code,
       coalesce(e.community_name, trim(g.community_name)) AS community_name, p.estate_code, e.estate_name,
       CASE WHEN p.estate_code IS NOT NULL THEN p.building END AS building,
       CASE WHEN p.estate_code IS NOT NULL THEN p.unit END AS unit,
       CASE WHEN p.estate_code IS NOT NULL THEN p.room END AS room,
       hk.house_id, p.located_by, m.person_key AS reporter_person_key
FROM placed p
LEFT JOIN core.estates e ON e.estate_code = p.estate_code
LEFT JOIN _ib_grids g ON g.grid_code = p.grid_code
LEFT JOIN house_by_key hk ON hk.house_key = p.estate_code || '|' || p.building || '|' || p.unit || '|' || p.room
LEFT JOIN core.identity_map m ON m.system = 'grid_platform' AND m.record_key = p.record_key
WHERE p.event_id IS NOT NULL
ORDER BY p.event_id
"""

_VISITS_SQL = """
CREATE OR REPLACE TABLE core.grid_visits AS
SELECT v.visit_id, v.record_key, try_strptime(trim(v.visit_time) || ' +08:00', '%Y-%m-%d %H:%M:%S %z') AS visited_at,
       trim(v.visit_type) AS visit_type, v.worker_id, v.person_id AS grid_person_id, m.person_key, g.grid_code
FROM _ib_gvis v
LEFT JOIN _ib_gres g ON g.person_id = v.person_id
LEFT JOIN core.identity_map m ON m.system = 'grid_platform' AND m.record_key = g.record_key
WHERE v.visit_id IS NOT NULL
ORDER BY v.visit_id
"""

_BUILD_SQL = {
    "estates": _ESTATES_SQL,
    "houses": _HOUSES_SQL,
    "devices": _DEVICES_SQL,
    "cardholders": _CARDHOLDERS_SQL,
    "residency": _RESIDENCY_SQL,
    "persons": _PERSONS_SQL,
    "roster_entries": _ROSTER_SQL,
    "grid_incidents": _INCIDENTS_SQL,
    "grid_visits": _VISITS_SQL,
}


# -- device events: Parquet day partitions behind a view ---------------------------------------------------

EVENT_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("ts_ms", pa.int64()),
        ("day", pa.date32()),
        ("device_id", pa.string()),
        ("event_type", pa.string()),
        ("holder_id", pa.string()),
        ("reading", pa.float64()),
        ("alarm_code", pa.string()),
        ("clock_ok", pa.bool_()),
        ("clock_issue", pa.string()),
        ("is_late", pa.bool_()),
        ("received_run", pa.string()),
        ("received_ms", pa.int64()),
    ]
)
_EVENT_COLUMNS = ", ".join(EVENT_SCHEMA.names)
RAW_EVENT_COLUMNS = ("event_id", "ts", "device_id", "type", "holder_id", "value", "alarm_code")
EARLIEST_VALID_MS = 946_684_800_000  # 2000-01-01: a clock before this was never set (ts = 0)
AHEAD_MS = 86_400_000  # a day: the quality gate's tolerance for a ts after the run's T
ROW_GROUP_ROWS = 128 * 1024

_EVENT_DDL = """
CREATE TABLE IF NOT EXISTS core.device_event_files (
    day DATE PRIMARY KEY, file VARCHAR NOT NULL, rows BIGINT NOT NULL, sha256 VARCHAR NOT NULL, runs VARCHAR[]
);
CREATE TABLE IF NOT EXISTS core.device_event_runs (
    run_id VARCHAR PRIMARY KEY, as_of TIMESTAMPTZ, delivered BIGINT, kept BIGINT, duplicates BIGINT,
    clock_issues BIGINT, late BIGINT
);
"""

_NEW_EVENTS_SQL = """
CREATE OR REPLACE TEMP TABLE _ib_ev_new AS
WITH runs AS (SELECT run_id, as_of, lag(as_of) OVER (ORDER BY as_of, run_id) AS previous_as_of FROM meta.runs),
e AS (
    SELECT e.event_id, coalesce(try_cast(e.ts AS BIGINT), try_cast(try_cast(e.ts AS DOUBLE) AS BIGINT), 0) AS ts_ms,
           e.device_id, trim(e.type) AS event_type, nullif(trim(e.holder_id), '') AS holder_id,
           try_cast(e.value AS DOUBLE) AS reading, nullif(trim(e.alarm_code), '') AS alarm_code,
           e._run_id AS received_run, epoch_ms(r.as_of) AS received_ms, epoch_ms(r.previous_as_of) AS previous_ms
    FROM (SELECT {columns}, _run_id FROM {table}) e JOIN runs r ON r.run_id = e._run_id
    WHERE list_contains($pending, e._run_id) AND e.event_id IS NOT NULL
)
SELECT event_id, ts_ms,
       CAST(timezone('{tz}', make_timestamptz(ts_ms * 1000)) AS DATE) AS day, device_id, event_type, holder_id,
       reading, alarm_code, clock_issue IS NULL AS clock_ok, clock_issue,
       clock_issue IS NULL AND previous_ms IS NOT NULL AND ts_ms < previous_ms AS is_late, received_run,
       received_ms
FROM (SELECT *, CASE WHEN ts_ms < {earliest} THEN 'unset' WHEN ts_ms > received_ms + {ahead} THEN 'ahead' END
                AS clock_issue FROM e)
"""


@dataclass
class StagedEvents:
    """What a build will publish: the new file of each affected day (None: the day is now empty)."""

    days: dict[dt.date, tuple[str, int, str, list[str]] | None]
    runs: list[tuple]
    duplicates: int = 0


class EventStore:
    """The Parquet day partitions of ``core.device_events`` under one directory (see the module docstring)."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root).absolute()

    def stage(self, con, bound: Mapping[str, str], moment: Moment, run_id: str) -> StagedEvents:
        """Merge the pending runs' raw events into new day files (not yet referenced by anything)."""
        con.execute(_EVENT_DDL)
        source = next((s for s, system in sorted(bound.items()) if system == "iot_platform"), None)
        table = f"raw.{source}__events" if source else None
        have = existing_columns(con, table) if table else set()
        if not have:
            return StagedEvents({}, [])
        self._check_live_files(con)
        pending = self._pending(con, table, moment, run_id)
        columns = ", ".join(f'"{c}"' if c in have else f'NULL::VARCHAR AS "{c}"' for c in RAW_EVENT_COLUMNS)
        con.execute(
            _NEW_EVENTS_SQL.format(
                table=table, columns=columns, tz=LOCAL_TZ, earliest=EARLIEST_VALID_MS, ahead=AHEAD_MS
            ),
            {"pending": pending},
        )
        try:
            return self._merge(con, pending)
        finally:
            con.execute("DROP TABLE IF EXISTS _ib_ev_new")
            con.execute("DROP TABLE IF EXISTS _ib_ev_all")

    def _check_live_files(self, con) -> None:
        gone = [
            r[0]
            for r in con.execute("SELECT file FROM core.device_event_files ORDER BY day").fetchall()
            if not (self.root / r[0]).is_file()
        ]
        if gone:
            raise CoreBuildError(
                f"{len(gone)} device-event file(s) listed in core.device_event_files are missing under "
                f"{self.root} (first: {gone[0]}); restore the folder, or rebuild every day from the raw event "
                "slices: DELETE FROM core.device_event_files; DELETE FROM core.device_event_runs; then build again"
            )

    def _pending(self, con, table: str, moment: Moment, run_id: str) -> list[str]:
        """This run, and every earlier run up to T whose events were never merged (a core added later)."""
        rows = con.execute(
            f"SELECT DISTINCT e._run_id FROM {table} e JOIN meta.runs r ON r.run_id = e._run_id "
            "WHERE r.as_of <= $as_of AND e._run_id NOT IN (SELECT run_id FROM core.device_event_runs)",
            {"as_of": moment.at},
        ).fetchall()
        return sorted({run_id, *(r[0] for r in rows)})

    def _merge(self, con, pending: list[str]) -> StagedEvents:
        days = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT day FROM _ib_ev_new UNION SELECT day FROM core.device_event_files "
                "WHERE len(list_intersect(runs, $pending)) > 0 ORDER BY 1",
                {"pending": pending},
            ).fetchall()
        ]
        old = [
            self.root / r[0]
            for r in con.execute(
                "SELECT file FROM core.device_event_files WHERE list_contains($days, day) ORDER BY day",
                {"days": days},
            ).fetchall()
        ]
        kept = (
            f"SELECT {_EVENT_COLUMNS} FROM read_parquet({_path_list(old)}) "
            "WHERE NOT list_contains($pending, received_run) UNION ALL "
            if old
            else ""
        )
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _ib_ev_all AS SELECT * FROM ({kept}SELECT {_EVENT_COLUMNS} "
            "FROM _ib_ev_new) QUALIFY row_number() OVER (PARTITION BY event_id ORDER BY received_ms, received_run) = 1",
            {"pending": pending} if old else {},
        )
        staged = StagedEvents({day: self._write_day(con, day) for day in days}, self._run_stats(con, pending))
        staged.duplicates = sum(r[4] for r in staged.runs)
        return staged

    def _write_day(self, con, day: dt.date) -> tuple[str, int, str, list[str]] | None:
        data = con.sql(
            f"SELECT {_EVENT_COLUMNS} FROM _ib_ev_all WHERE day = $day ORDER BY ts_ms, event_id",
            params={"day": day},
        ).to_arrow_table()
        if not data.num_rows:
            return None
        data = data.cast(EVENT_SCHEMA)
        folder = self.root / f"day={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=".tmp-", suffix=".parquet", dir=folder)
        os.close(handle)
        try:
            pq.write_table(data, temp, compression="zstd", row_group_size=ROW_GROUP_ROWS)
            digest = _sha256(Path(temp))
            final = folder / f"events-{digest[:16]}.parquet"
            if final.exists():  # the same content as before: the live file stays as it is
                os.unlink(temp)
            else:
                os.replace(temp, final)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        runs = sorted(set(data.column("received_run").to_pylist()))
        return final.relative_to(self.root).as_posix(), data.num_rows, digest, runs

    @staticmethod
    def _run_stats(con, pending: list[str]) -> list[tuple]:
        rows = con.execute(
            "SELECT n.received_run, make_timestamptz(any_value(n.received_ms) * 1000), count(*), "
            "count(a.event_id), count(*) - count(a.event_id), count(a.event_id) FILTER (WHERE NOT a.clock_ok), "
            "count(a.event_id) FILTER (WHERE a.is_late) "
            "FROM _ib_ev_new n LEFT JOIN _ib_ev_all a ON a.event_id = n.event_id AND a.received_run = n.received_run "
            "GROUP BY n.received_run ORDER BY n.received_run"
        ).fetchall()
        seen = {r[0] for r in rows}  # a pending run that delivered no events still gets its row
        return rows + [(r, None, 0, 0, 0, 0, 0) for r in pending if r not in seen]

    def publish(self, con, staged: StagedEvents) -> None:
        """Inside the build's transaction: point the file table and the view at the staged files."""
        con.execute(_EVENT_DDL)
        for day, entry in sorted(staged.days.items()):
            con.execute("DELETE FROM core.device_event_files WHERE day = ?", [day])
            if entry is not None:
                con.execute("INSERT INTO core.device_event_files VALUES (?, ?, ?, ?, ?)", [day, *entry])
        for row in staged.runs:
            con.execute("DELETE FROM core.device_event_runs WHERE run_id = ?", [row[0]])
            con.execute("INSERT INTO core.device_event_runs VALUES (?, ?, ?, ?, ?, ?, ?)", list(row))
        files = [
            self.root / r[0]
            for r in con.execute("SELECT file FROM core.device_event_files ORDER BY day").fetchall()
        ]
        con.execute(f"CREATE OR REPLACE VIEW core.device_events AS {_events_view_sql(files)}")

    def collect_garbage(self, con) -> int:
        """After the commit: delete day files no longer listed (and leftovers of a failed build)."""
        if not self.root.exists():
            return 0
        live = {r[0] for r in con.execute("SELECT file FROM core.device_event_files").fetchall()}
        removed = 0
        for folder in sorted(self.root.glob("day=*")):
            for path in sorted(folder.iterdir()):
                relative = path.relative_to(self.root).as_posix()
                if path.is_file() and relative not in live and (path.name.startswith((".tmp-", "events-"))):
                    path.unlink()
                    removed += 1
            if not any(folder.iterdir()):
                folder.rmdir()
        return removed


def _events_view_sql(files: Sequence[Path]) -> str:
    columns = (
        "event_id, ts_ms, CASE WHEN clock_ok THEN make_timestamptz(ts_ms * 1000) END AS event_at, day, "
        "device_id, event_type, holder_id, reading, alarm_code, clock_ok, clock_issue, is_late, received_run, "
        "make_timestamptz(received_ms * 1000) AS received_by"
    )
    if files:
        return f"SELECT {columns} FROM read_parquet({_path_list(files)})"
    empty = ", ".join(f"NULL::{_SQL_TYPES[f.type]} AS {f.name}" for f in EVENT_SCHEMA)
    return f"SELECT {columns} FROM (SELECT {empty}) WHERE false"


_SQL_TYPES = {
    pa.string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.date32(): "DATE",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
}


def _path_list(paths: Sequence[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
