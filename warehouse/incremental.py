"""The residency history (SCD2) kept by changed keys: what a daily build takes over from the last one.

``core.residency`` is a window over every version of every registry resident row up to T. A daily run
brings new versions of a few rows only; every other row's history is what the previous build wrote,
unless something it joins changed since: the row's person key (``core.identity_map``), its house's place
(``core.houses``), or whether it is its person's newest registry row (``_ib_reg``). `changed_keys` lists
exactly those record keys; the build recomputes their rows from all their versions and keeps the rest, in
the same order as a full build (record key, then the run that recorded the version). With no such key (a
day without change) the table is left as it is, not written again.

The previous build is taken over only when ``meta.core_state`` says this version of the code made it, at
an as-of not after T, from the registry slices up to its as-of that are still there (a slice loaded again
— a re-synced day, a quarantine replay — changes their ``loaded_at`` or ``landed``). Otherwise, or when
``full`` is asked for, the history is rebuilt from every version, as before. Both give the same table
(``tests/test_living_build.py`` compares them day by day on a living street).

Example::

    keys = plan(con, "registry", moment.at, full=False)   # None: rebuild the whole history
"""

from __future__ import annotations

import datetime as dt

import duckdb

from islandbridge.storage import existing_columns, has_table

# Bump when residency.sql or the staging of registry versions changes what a row holds: a state written
# by another version is not taken over.
VERSION = "residency-1"
STATE_DDL = (
    "CREATE TABLE IF NOT EXISTS meta.core_state (as_of TIMESTAMPTZ, run_id VARCHAR, version VARCHAR, "
    "registry VARCHAR, mode VARCHAR)"
)
# Each run's load of the stream (a slice loaded again, or replayed into, changes loaded_at or landed), and
# how many versions and deletions there are up to the as-of (rows added to a past run some other way).
_FINGERPRINT = """
SELECT md5(concat_ws('#',
    (SELECT string_agg(concat_ws('|', s.run_id, s.loaded_at, s.landed, s.deleted), ',' ORDER BY s.run_id)
     FROM meta.run_sources s JOIN meta.runs r ON r.run_id = s.run_id
     WHERE s.source = $source AND s.stream = 't_jm' AND r.as_of <= $at),
    (SELECT count(*) FROM {table} t JOIN meta.runs r ON r.run_id = t._run_id WHERE r.as_of <= $at),
    (SELECT count(*) FROM meta.deletions d JOIN meta.runs r ON r.run_id = d.run_id
     WHERE d.source = $source AND d.stream = 't_jm' AND r.as_of <= $at)))
"""


def fingerprint(con: duckdb.DuckDBPyConnection, source: str | None, at: dt.datetime) -> str:
    """What the registry resident slices up to ``at`` are: each run's load time and counts, hashed."""
    if (
        source is None
        or not has_table(con, "meta.run_sources")
        or not existing_columns(con, f"raw.{source}__t_jm")
    ):
        return ""
    sql = _FINGERPRINT.format(table=f"raw.{source}__t_jm")
    return con.execute(sql, {"source": source, "at": at}).fetchall()[0][0]


def previous_as_of(
    con: duckdb.DuckDBPyConnection, source: str | None, at: dt.datetime, *, full: bool
) -> dt.datetime | None:
    """The as-of of the build whose residency history this one may keep, or None: rebuild it whole."""
    if (
        full
        or source is None
        or not has_table(con, "core.residency")
        or not has_table(con, "meta.core_state")
    ):
        return None
    if not existing_columns(con, f"raw.{source}__t_jm"):
        return None
    rows = con.execute("SELECT as_of, version, registry FROM meta.core_state").fetchall()
    if len(rows) != 1:
        return None
    as_of, version, registry = rows[0]
    if version != VERSION or as_of > at or registry != fingerprint(con, source, as_of):
        return None
    return as_of


def record(
    con: duckdb.DuckDBPyConnection, source: str | None, at: dt.datetime, run_id: str, mode: str
) -> None:
    """Inside the build's transaction: the state the next build may take over."""
    con.execute(STATE_DDL)
    con.execute("DELETE FROM meta.core_state")
    con.execute(
        "INSERT INTO meta.core_state VALUES (?, ?, ?, ?, ?)",
        [at, run_id, VERSION, fingerprint(con, source, at), mode],
    )


def keep_houses(con: duckdb.DuckDBPyConnection) -> None:
    """Before ``core.houses`` is rebuilt: where the last build placed each house (`build_residency` diffs it)."""
    con.execute(
        "CREATE OR REPLACE TEMP TABLE _ib_houses_before AS "
        "SELECT house_id, estate_code, building, unit, room FROM core.houses"
    )


def build_residency(con, source: str | None, at: dt.datetime, kept_since: dt.datetime | None, sql_of) -> None:
    """``core.residency``: whole (``kept_since`` None), or the previous rows with those of the changed keys
    recomputed. ``sql_of(target)`` is residency.sql creating ``target``."""
    if kept_since is None:
        _stage_versions(con, source, at, only_changed=False)
        con.execute(sql_of("TABLE core.residency"))
        return
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _ib_res_keys AS SELECT DISTINCT t._record_key AS record_key "
        f"FROM raw.{source}__t_jm t JOIN meta.runs r ON r.run_id = t._run_id "
        "WHERE r.as_of > $since AND r.as_of <= $as_of "
        "UNION SELECT d.record_key FROM meta.deletions d JOIN meta.runs r ON r.run_id = d.run_id "
        "WHERE d.source = $source AND d.stream = 't_jm' AND r.as_of > $since AND r.as_of <= $as_of",
        {"since": kept_since, "as_of": at, "source": source},
    )
    con.execute(_CHANGED_JOINS)
    if not con.execute("SELECT count(*) FROM _ib_res_keys").fetchall()[0][0]:
        return  # nothing changed: the kept table is already every row, in a full build's order
    _stage_versions(con, source, at, only_changed=True)
    con.execute(sql_of("TEMP TABLE _ib_res_new"))
    con.execute(
        "CREATE OR REPLACE TABLE core.residency AS SELECT * FROM ("
        "SELECT * FROM core.residency r WHERE NOT EXISTS "
        "(SELECT 1 FROM _ib_res_keys k WHERE k.record_key = r.record_key) "
        "UNION ALL SELECT * FROM _ib_res_new) ORDER BY record_key, recorded_from"
    )


# The rows whose person key, house or newest-row flag moved since the last build.
_CHANGED_JOINS = """
INSERT INTO _ib_res_keys
SELECT r.record_key FROM core.residency r
LEFT JOIN core.identity_map m ON m.system = 'resident_registry' AND m.record_key = r.record_key
WHERE r.person_key IS DISTINCT FROM m.person_key
UNION
SELECT r.record_key FROM core.residency r LEFT JOIN _ib_reg g ON g.record_key = r.record_key
WHERE r.is_current AND r.is_person_current IS DISTINCT FROM coalesce(g.is_newest, false)
UNION
SELECT r.record_key FROM core.residency r
WHERE r.house_id IN (SELECT house_id FROM (
    (SELECT * FROM _ib_houses_before
     EXCEPT ALL SELECT house_id, estate_code, building, unit, room FROM core.houses)
    UNION ALL
    (SELECT house_id, estate_code, building, unit, room FROM core.houses
     EXCEPT ALL SELECT * FROM _ib_houses_before)))
EXCEPT SELECT record_key FROM _ib_res_keys
"""
_VERSION_COLUMNS = ("jmid", "fwbh", "hjlx", "yhzgx", "rzrq", "zt", "zxrq")


def _stage_versions(con, source: str | None, at: dt.datetime, *, only_changed: bool) -> None:
    """``_ib_jm_versions``: every version of every registry resident row up to T (of the changed keys
    only, with ``only_changed``); a deletion up to T closes a row's last version."""
    table = f"raw.{source}__t_jm" if source else None
    if not table or not existing_columns(con, table):
        nulls = ", ".join(f'NULL::VARCHAR AS "{c}"' for c in _VERSION_COLUMNS)
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE _ib_jm_versions AS SELECT NULL::VARCHAR AS record_key, "
            f"NULL::VARCHAR AS run_id, NULL::TIMESTAMPTZ AS run_as_of, {nulls} LIMIT 0"
        )
        return
    picks = ", ".join(f't."{c}"' for c in _VERSION_COLUMNS)
    keys = " AND {k} IN (SELECT record_key FROM _ib_res_keys)" if only_changed else ""
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _ib_jm_versions AS SELECT t._record_key AS record_key, t._run_id AS run_id, "
        f"r.as_of AS run_as_of, {picks} FROM {table} t JOIN meta.runs r ON r.run_id = t._run_id "
        "WHERE r.as_of <= $as_of" + keys.format(k="t._record_key"),
        {"as_of": at},
    )
    con.execute(
        "INSERT INTO _ib_jm_versions (record_key, run_id, run_as_of) "
        "SELECT d.record_key, d.run_id, r.as_of FROM meta.deletions d JOIN meta.runs r ON r.run_id = d.run_id "
        "WHERE d.source = $source AND d.stream = 't_jm' AND r.as_of <= $as_of"
        + keys.format(k="d.record_key"),
        {"source": source, "as_of": at},
    )
