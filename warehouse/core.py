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
``core.device_events``     view over Parquet day partitions (`device_events`), one row per event_id
=========================  ==============================================================================

**The SQL** of each table is ``schemas/core/<table>.sql``, beside its YAML, loaded by name with
`islandbridge.schemas.core_sql`; ``_ib_reg.sql`` and ``_ib_parts.sql`` stage what several tables
read (``device_events.<step>.sql`` belong to `device_events`). ``$name`` is a DuckDB parameter (each
query gets those it names, `storage.params_for`); ``{name}`` is a fragment filled in here: constants,
the shared ``house_by_key`` and ``communities`` CTEs, and each house table's part joins and house key
(``_table_sql``). The staging statements (column lists per raw table) stay built in Python.

**Device events** (``core.device_events``, a view over Parquet day files) are kept by
`islandbridge.warehouse.device_events.EventStore`: staged before the transaction, published inside it,
old files collected after the commit; only the days the pending runs' events touch get a new file (a
day's late events a further file beside the day's others, which stay as they are).

**Daily builds.** The residency history is kept by changed keys (`islandbridge.warehouse.incremental`):
only the registry rows with a new version since the last build, or whose person key, house or newest-row
flag moved, are recomputed; ``full=True`` (``islandbridge build --full``) recomputes every row. The
other tables are rebuilt whole (each is one query over the staged newest versions; ages move with T).

Example::

    counts = build_core(con, parse_as_of("2026-11-20"), "ib_20261120T160000Z", Path("var/events"))
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from islandbridge import config
from islandbridge.config import local_day
from islandbridge.errors import TerminalError, noun
from islandbridge.identity.records import latest_sql
from islandbridge.schemas import core_sql
from islandbridge.storage import existing_columns, has_table, params_for, transaction
from islandbridge.transforms.normalize.addresses import EstateIndex, normalize_house, parse_address
from islandbridge.warehouse import incremental
from islandbridge.warehouse.device_events import LOCAL_TZ, EventFilesError, EventStore

log = logging.getLogger(__name__)

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
_TEMP = tuple(t for t, _ in STAGES.values()) + (
    "_ib_parts",
    "_ib_places",
    "_ib_jm_versions",
    "_ib_reg",
    "_ib_res_keys",
    "_ib_res_new",
    "_ib_houses_before",
)


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
        day = local_day(as_of)
        return cls(as_of, day, day.replace(day=1))


def require_identities_of(con: duckdb.DuckDBPyConnection, run_id: str, as_of: dt.datetime) -> None:
    """Refuse (`CoreBuildError`) to build ``run_id`` unless ``core.identity_map`` is its map (the newest
    reconciled run in ``meta.identity_runs``): a past day built after later days were reconciled would
    take their person keys, and its export would then differ from the in-order one. `islandbridge sync`
    reconciles the day first (`identity.tables.rewind`), so its build passes."""
    if not has_table(con, "meta.identity_runs"):
        return  # `build_core` says there is no identity map
    newest = con.execute("SELECT run_id FROM meta.identity_runs ORDER BY as_of DESC LIMIT 1").fetchall()
    if newest and newest[0][0] == run_id:
        return
    held = f"the identities of run {newest[0][0]}" if newest else "no reconciled run"
    raise CoreBuildError(
        f"core.identity_map holds {held}, not run {run_id}'s: its core and marts would use another "
        f"day's person keys; run `{config.sync_command(as_of)}` to re-run the day (it reconciles "
        "the day, then builds); nothing was built"
    )


def build_core(
    con: duckdb.DuckDBPyConnection,
    as_of: dt.datetime,
    run_id: str,
    events_dir: Path,
    *,
    sources: Mapping[str, str] | None = None,
    full: bool = False,
) -> dict[str, int]:
    """Rebuild schema ``core`` for the run ending at ``as_of``; returns the row count of each table.

    ``sources`` maps source names (the ``raw.<source>__<stream>`` prefix) to their connector's system;
    by default it is recognised from the raw tables' streams. ``full`` rebuilds the residency history
    from every version rather than by changed keys (same rows; see the module docstring). Raises `CoreBuildError` (with what to do)
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
    try:
        staged = store.stage(con, bound, moment.at, run_id)
    except EventFilesError as error:
        raise CoreBuildError(str(error)) from error
    registry = next((s for s, system in sorted(bound.items()) if system == "resident_registry"), None)
    with transaction(con):
        kept_since = incremental.previous_as_of(con, registry, moment.at, full=full)
        if kept_since is not None:
            incremental.keep_houses(con)
        _stage_raw(con, bound, moment)
        values = {"as_of": moment.at, "day": moment.day, "month_first": moment.month_first}
        for table in TABLES:
            if table == "residency":
                incremental.build_residency(con, registry, moment.at, kept_since, _residency_sql)
                continue
            sql = _table_sql(table)
            con.execute(sql, params_for(sql, values))
        store.publish(con, staged)
        incremental.record(con, registry, moment.at, run_id, "full" if kept_since is None else "by_keys")
        counts = {
            t: con.execute(f"SELECT count(*) FROM core.{t}").fetchall()[0][0]
            for t in (*TABLES, "device_events")
        }
        _drop_temp(con)
    store.collect_garbage(con)
    counts["device_event_duplicates"] = staged.duplicates
    log.debug("core built for run %s: %s", run_id, counts)
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
            f"more than one source of {noun(len(doubled), 'system')} {', '.join(sorted(doubled))} in raw "
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
    _stage_parts(con)
    _stage_places(con)
    con.execute(core_sql("_ib_reg"))


def _stage_parts(con) -> None:
    """Building, unit and room as the normaliser writes them (``3栋`` → ``3``, ``0501`` → ``501``)."""
    raw = con.execute(core_sql("_ib_parts")).fetchall()
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


# -- the SQL of each table: schemas/core/<table>.sql, with these fragments filled in ----------------------

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


_HOUSE_BY_KEY = """house_by_key AS (
    SELECT house_key, min(house_id) AS house_id FROM core.houses WHERE house_key IS NOT NULL GROUP BY house_key
)"""
# The community code of each community name (persons and roster rows name only the community).
_COMMUNITIES = """communities AS (
    SELECT community_name, min(community_code) AS community_code FROM core.estates GROUP BY community_name
)"""
_FRAGMENTS = {
    "local_tz": LOCAL_TZ,
    "legacy_rank": LEGACY_RANK,
    "century": CENTURY,
    "alone_tag": ALONE_TAG,
    "house_by_key": _HOUSE_BY_KEY,
    "communities": _COMMUNITIES,
}
# The staged columns a table's house is read from: (alias, estate, building, unit, room).
_HOUSE_COLUMNS = {
    "houses": ("f", "xqbm", "ld", "dy", "fh"),
    "devices": ("d", "estate_code", "building", "unit", "room"),
    "cardholders": ("h", "estate_code", "building", "unit", "room"),
}


def _residency_sql(target: str) -> str:
    """residency.sql creating ``target``: ``TABLE core.residency``, or a temp table of some keys' rows."""
    return _table_sql("residency", target=target)


def _table_sql(table: str, **extra: object) -> str:
    """The statement building ``core.<table>``: ``{house_parts}`` joins the normalised parts of its
    house, ``{house_key}`` makes the house key of them; the other fragments are the same for all."""
    fill: dict[str, object] = dict(_FRAGMENTS, **extra)
    if table in _HOUSE_COLUMNS:
        t, estate, b, u, r = _HOUSE_COLUMNS[table]
        fill["house_parts"] = _HOUSE_PARTS.format(t=t, b=b, u=u, r=r)
        fill["house_key"] = _house_key(f"{t}.{estate}")
    return core_sql(table, **fill)
