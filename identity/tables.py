"""The identity tables of the warehouse: who each source record is, how that changed, and the model.

Only record keys, person keys, probabilities, reasons and counts are stored here — never a name, an ID
number or a phone (the features used for matching live in memory for the length of a run).

Schema ``core``:

- ``identity_map`` — one row per person-bearing source record present at the latest reconciled run:
  ``system, record_key, person_key, matched_by ('id' | 'decision' | 'probabilistic' | 'namesake' | 'reporter' | 'masked_id' | 'roster' | 'reporter_phone' | 'street_reporter' | 'none'), match_probability,
  first_seen_run, last_seen_run`` (the raw runs of the record's first and newest version).
- ``identity_map_changes`` — the map's history, proportional to change: per reconciled run, the rows
  that run added or changed, and (``removed``) the records it no longer maps, each with its ``change``
  (`churn`: new, merge, split, retire, removed, updated). The map after any kept
  run is the newest change of each record up to that run (`map_at`), so any past day can be re-run
  from the map before it (`rewind`).
- ``identity_map_before`` — kept for warehouses written before the history existed; no longer read.
- ``identity_events`` — ``run_id, event ('merge' | 'split' | 'retire' | 'rekey'), old_key, new_key, at``
  (the run's as-of instant; ``rekey``: a key forgotten by a rewind that came back as another, `remembered`).
- ``person_key_redirects`` — ``old_key → new_key`` for every merged or re-keyed key; follow it to the end
  (`resolve_sql`).
- ``identity_links`` — every link that joined two records of a person, with its rule (`links`):
  ``system_l, record_key_l, system_r, record_key_r, rule, match_probability, fingerprint_l,
  fingerprint_r, run_id`` (the run that made it) ``, ended_run`` (the first run without it; NULL while it
  stands). Kept as intervals, so it grows with change; `rewind` forgets the rows of the runs it forgets.
- ``identity_review`` — pairs a person should decide: ``run_id, system_l, record_key_l, system_r,
  record_key_r, match_probability, reason``.

- ``identity_decisions`` — what people decided about pairs (``islandbridge review decide`` and
  ``withdraw``, `review`): ``seq, pair_id, system_l, record_key_l, system_r, record_key_r, decision
  ('same' | 'different' | 'withdrawn'), actor, note, decided_at``; append-only, the newest row of a pair
  counts ('withdrawn': none is in force). Not state of a run: `rewind` never
  touches it, and every reconcile applies it.

Schema ``meta``: ``identity_runs`` (per run: persons, records, links per system pair as JSON, merges,
splits, churn, open reviews, the model version, the decisions applied and those that could not be, as
JSON, and the churn by reason as JSON in ``changes``) and ``linkage_models`` (versioned Splink models as JSON).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import duckdb
import pandas as pd
import pyarrow as pa

from islandbridge.errors import TerminalError
from islandbridge.identity import remembered
from islandbridge.storage import transaction

DDL = """
CREATE SCHEMA IF NOT EXISTS core;
CREATE SCHEMA IF NOT EXISTS meta;
CREATE TABLE IF NOT EXISTS core.identity_map (
    system VARCHAR NOT NULL, record_key VARCHAR NOT NULL, person_key VARCHAR NOT NULL, matched_by VARCHAR,
    match_probability DOUBLE, first_seen_run VARCHAR, last_seen_run VARCHAR, PRIMARY KEY (system, record_key)
);
CREATE TABLE IF NOT EXISTS core.identity_map_before (
    run_id VARCHAR NOT NULL, system VARCHAR NOT NULL, record_key VARCHAR NOT NULL, person_key VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS core.identity_map_changes (
    run_id VARCHAR NOT NULL, system VARCHAR NOT NULL, record_key VARCHAR NOT NULL, person_key VARCHAR,
    matched_by VARCHAR, match_probability DOUBLE, first_seen_run VARCHAR, last_seen_run VARCHAR,
    removed BOOLEAN NOT NULL
);
CREATE TABLE IF NOT EXISTS core.identity_events (
    run_id VARCHAR NOT NULL, event VARCHAR NOT NULL, old_key VARCHAR NOT NULL, new_key VARCHAR, "at" TIMESTAMPTZ
);
CREATE TABLE IF NOT EXISTS core.person_key_redirects (
    old_key VARCHAR PRIMARY KEY, new_key VARCHAR NOT NULL, run_id VARCHAR NOT NULL
);
CREATE TABLE IF NOT EXISTS core.identity_review (
    run_id VARCHAR NOT NULL, system_l VARCHAR, record_key_l VARCHAR, system_r VARCHAR, record_key_r VARCHAR,
    match_probability DOUBLE, reason VARCHAR
);
CREATE TABLE IF NOT EXISTS meta.identity_runs (
    run_id VARCHAR PRIMARY KEY, as_of TIMESTAMPTZ NOT NULL, model_version INTEGER, persons BIGINT,
    records BIGINT, links VARCHAR, merges BIGINT, splits BIGINT, retired BIGINT, churn BIGINT,
    reviews BIGINT, reconciled_at TIMESTAMPTZ
);
-- history: whether the map after this run can be rebuilt from core.identity_map_changes (not for runs
-- reconciled before the history was kept).
ALTER TABLE meta.identity_runs ADD COLUMN IF NOT EXISTS history BOOLEAN;
ALTER TABLE meta.identity_runs ADD COLUMN IF NOT EXISTS decisions VARCHAR;
CREATE TABLE IF NOT EXISTS core.identity_decisions (
    seq BIGINT NOT NULL, pair_id VARCHAR NOT NULL, system_l VARCHAR NOT NULL, record_key_l VARCHAR NOT NULL,
    system_r VARCHAR NOT NULL, record_key_r VARCHAR NOT NULL, decision VARCHAR NOT NULL, actor VARCHAR NOT NULL,
    note VARCHAR, decided_at TIMESTAMPTZ NOT NULL
);
-- change: why the record's row changed ('new' | 'merge' | 'split' | 'retire' | 'removed' | 'updated'; churn.py).
ALTER TABLE core.identity_map_changes ADD COLUMN IF NOT EXISTS change VARCHAR;
-- changes: the run's churn by reason as JSON (churn.summary).
ALTER TABLE meta.identity_runs ADD COLUMN IF NOT EXISTS changes VARCHAR;
CREATE TABLE IF NOT EXISTS core.identity_links (
    system_l VARCHAR NOT NULL, record_key_l VARCHAR NOT NULL, system_r VARCHAR NOT NULL,
    record_key_r VARCHAR NOT NULL, rule VARCHAR NOT NULL, match_probability DOUBLE, fingerprint_l VARCHAR,
    fingerprint_r VARCHAR, run_id VARCHAR NOT NULL, ended_run VARCHAR
);
CREATE TABLE IF NOT EXISTS meta.linkage_models (
    version INTEGER PRIMARY KEY, model_format VARCHAR NOT NULL, trained_at TIMESTAMPTZ,
    trained_on_run VARCHAR, records BIGINT, model_json VARCHAR NOT NULL
);
"""

RESOLVE_SQL = """
WITH RECURSIVE chain(old_key, new_key, depth) AS (
    SELECT old_key, new_key, 1 FROM core.person_key_redirects
    UNION ALL
    SELECT c.old_key, r.new_key, c.depth + 1 FROM chain c JOIN core.person_key_redirects r ON r.old_key = c.new_key
    WHERE c.depth < 100
)
SELECT old_key, arg_max(new_key, depth) AS person_key FROM chain GROUP BY old_key
"""


MAP_COLUMNS = "system, record_key, person_key, matched_by, match_probability, first_seen_run, last_seen_run"


class IdentityStateError(TerminalError):
    """The identity tables cannot take this run as asked (e.g. an as-of older than the latest reconciled).

    Terminal: the stored identity state or the requested as-of must change; a retry meets the same state."""


@dataclass(frozen=True)
class Base:
    """What a run starts from: the previous map, keys never to issue again, and whether it re-runs."""

    previous: pa.Table  # system, record_key, person_key, in (system, record_key) order like the records
    retired: set[str]
    rerun: bool


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL + remembered.DDL)


def resolve_sql() -> str:
    """SQL giving, for every redirected key, the key it ends at today: ``old_key, person_key``."""
    return RESOLVE_SQL


def run_base(con: duckdb.DuckDBPyConnection, run_id: str, as_of: dt.datetime) -> Base:
    """The state a run of ``run_id`` starts from: the map after the newest reconciled run before it.

    Call `rewind` first, so that no reconciled run at or after ``as_of`` is left.
    """
    # In the records' order (`records.load_records` sorts them so), a day without a new or gone record
    # pairs the two row for row (`pairing.pair`) without a join.
    previous = con.sql(
        "SELECT system, record_key, person_key FROM core.identity_map ORDER BY system, record_key"
    ).to_arrow_table()
    retired = {
        r[0]
        for r in con.execute(
            "SELECT old_key FROM core.person_key_redirects WHERE run_id <> ? "
            "UNION SELECT old_key FROM core.identity_events WHERE event = 'retire' AND run_id <> ?",
            [run_id, run_id],
        ).fetchall()
    }
    return Base(previous, retired, rerun=False)


def reconciled_runs(con: duckdb.DuckDBPyConnection) -> list[tuple[str, dt.datetime]]:
    """(run_id, as_of) of every reconciled run, oldest first."""
    return con.execute("SELECT run_id, as_of FROM meta.identity_runs ORDER BY as_of").fetchall()


def rewind(con: duckdb.DuckDBPyConnection, as_of: dt.datetime) -> tuple[str, ...]:
    """Forget every reconciled run at or after ``as_of``, and set the map back to the one before it.

    Returns the run ids forgotten (oldest first). The runs before ``as_of`` and their history stay as
    they were, so reconciling ``as_of`` (and then each later run, in order) gives exactly what an
    in-order run gives. Raises `IdentityStateError` when the history needed is not kept.
    """
    _seed_history(con)
    later = tuple(r for r, a in reconciled_runs(con) if a >= as_of)
    if not later:
        return ()
    before = [(r, a) for r, a in reconciled_runs(con) if a < as_of]
    if before and not _has_history(con, before[-1][0]):
        raise IdentityStateError(
            f"cannot re-run as of {as_of.isoformat()}: the identity history of run {before[-1][0]} is not "
            "kept (the warehouse predates it, or retention removed it); re-run a later day instead"
        )
    with transaction(con):
        remembered.remember(con, later)  # their keys come back when they are reconciled again
        marks = ", ".join("?" * len(later))
        for table in ("identity_events", "person_key_redirects", "identity_review", "identity_map_changes"):
            con.execute(f"DELETE FROM core.{table} WHERE run_id IN ({marks})", list(later))
        _forget_links(con, later)
        con.execute(f"DELETE FROM meta.identity_runs WHERE run_id IN ({marks})", list(later))
        con.execute("DELETE FROM core.identity_map")
        if before:
            con.execute(f"INSERT INTO core.identity_map {MAP_AT_SQL}", [before[-1][1]])
    return later


# The map after the run whose as-of is $1: each record's newest change up to it, unless that removed it.
MAP_AT_SQL = f"""
SELECT {MAP_COLUMNS} FROM (
    SELECT c.*, row_number() OVER (PARTITION BY c.system, c.record_key ORDER BY r.as_of DESC) AS newest
    FROM core.identity_map_changes c JOIN meta.identity_runs r USING (run_id)
    WHERE r.as_of <= ?
) WHERE newest = 1 AND NOT removed
"""


def _has_history(con: duckdb.DuckDBPyConnection, run_id: str) -> bool:
    rows = con.execute("SELECT history FROM meta.identity_runs WHERE run_id = ?", [run_id]).fetchall()
    return bool(rows and rows[0][0])


def _seed_history(con: duckdb.DuckDBPyConnection) -> None:
    """A warehouse from before the history: its current map becomes the history of its latest run."""
    if con.execute("SELECT count(*) FROM meta.identity_runs WHERE history").fetchall()[0][0]:
        return
    latest = con.execute("SELECT run_id FROM meta.identity_runs ORDER BY as_of DESC LIMIT 1").fetchall()
    if latest:
        with transaction(con):
            con.execute(
                f"INSERT INTO core.identity_map_changes (run_id, {MAP_COLUMNS}, removed) "
                f"SELECT ?, {MAP_COLUMNS}, false FROM core.identity_map",
                [latest[0][0]],
            )
            con.execute("UPDATE meta.identity_runs SET history = true WHERE run_id = ?", [latest[0][0]])


def write_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    as_of: dt.datetime,
    base: Base,
    identity_map: pa.Table,
    events: Iterable[tuple[str, str, str | None]],
    reviews: pa.Table,
    summary: Mapping[str, Any],
    reconciled_at: dt.datetime,
    links: pa.Table | None = None,
    changes: pd.DataFrame | None = None,
) -> None:
    """Replace the identity tables' state with this run's, in one transaction.

    ``identity_map`` has the columns of ``core.identity_map``; ``reviews`` those of ``core.identity_review``
    without ``run_id``; ``events`` are (event, old_key, new_key); ``links`` the columns of
    ``core.identity_links`` before ``run_id`` (`links.links_table`); ``changes`` (system, record_key,
    change) the reason of each record that is new, changed key or left (`churn.record_changes`).
    """
    with transaction(con):
        for table in ("identity_events", "person_key_redirects", "identity_review"):
            con.execute(f"DELETE FROM core.{table} WHERE run_id = ?", [run_id])
        con.execute("DELETE FROM meta.identity_runs WHERE run_id = ?", [run_id])
        con.execute("DELETE FROM core.identity_map_changes WHERE run_id = ?", [run_id])
        _forget_links(con, (run_id,))
        if links is not None:
            _record_links(con, run_id, links)
        con.register("_ib_new_map", identity_map)
        try:
            _record_changes(con, run_id, changes)
            _replace_map(con)
        finally:
            con.unregister("_ib_new_map")
        events = list(events)
        _many(
            con,
            "INSERT INTO core.identity_events VALUES (?, ?, ?, ?, ?)",
            [[run_id, e, o, n, as_of] for e, o, n in events],
        )
        _many(
            con,
            "INSERT OR REPLACE INTO core.person_key_redirects VALUES (?, ?, ?)",
            [[o, n, run_id] for e, o, n in events if e in ("merge", "rekey")],
        )
        remembered.forget(con, run_id)
        _insert(con, "core.identity_review", reviews, run_id)
        con.execute(
            "INSERT INTO meta.identity_runs (run_id, as_of, model_version, persons, records, links, merges, "
            "splits, retired, churn, reviews, reconciled_at, history, decisions, changes) "
            "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, true, ?, ?)",
            [
                run_id,
                as_of,
                summary["model_version"],
                summary["persons"],
                summary["records"],
                json.dumps(summary["links"], sort_keys=True),
                summary["merges"],
                summary["splits"],
                summary["retired"],
                summary["churn"],
                summary["reviews"],
                reconciled_at,
                json.dumps(summary.get("decisions", {}), sort_keys=True),
                json.dumps(summary.get("changes", {}), sort_keys=True),
            ],
        )


def _record_changes(con: duckdb.DuckDBPyConnection, run_id: str, changes: pd.DataFrame | None) -> None:
    """History rows for this run: records whose key, match decision or versions differ from the previous
    map, and records it dropped, each with its ``change`` (``updated`` when the key stayed). A score that
    moved while nothing else did (term frequencies shift a little with every day's data) is not a change:
    the history stays proportional to what changed."""
    con.execute(
        f"""INSERT INTO core.identity_map_changes (run_id, {MAP_COLUMNS}, removed)
        SELECT ?, {MAP_COLUMNS}, false FROM _ib_new_map n
        WHERE NOT EXISTS (
            SELECT 1 FROM core.identity_map o
            WHERE o.system = n.system AND o.record_key = n.record_key AND o.person_key = n.person_key
              AND o.matched_by IS NOT DISTINCT FROM n.matched_by
              AND o.first_seen_run IS NOT DISTINCT FROM n.first_seen_run
              AND o.last_seen_run IS NOT DISTINCT FROM n.last_seen_run)
        UNION ALL
        SELECT ?, system, record_key, NULL, NULL, NULL, NULL, NULL, true FROM (
            SELECT system, record_key FROM core.identity_map
            EXCEPT SELECT system, record_key FROM _ib_new_map)""",
        [run_id, run_id],
    )
    if changes is not None and len(changes):
        con.register("_ib_changes", changes[["system", "record_key", "change"]])
        try:
            con.execute(
                "UPDATE core.identity_map_changes c SET change = x.change FROM _ib_changes x "
                "WHERE c.run_id = ? AND c.system = x.system AND c.record_key = x.record_key",
                [run_id],
            )
        finally:
            con.unregister("_ib_changes")
    con.execute(
        "UPDATE core.identity_map_changes SET change = CASE WHEN removed THEN 'removed' ELSE 'updated' END "
        "WHERE run_id = ? AND change IS NULL",
        [run_id],
    )


MAP_SAME = " AND ".join(f"o.{c} IS NOT DISTINCT FROM n.{c}" for c in MAP_COLUMNS.split(", "))


def _replace_map(con: duckdb.DuckDBPyConnection) -> None:
    """``core.identity_map`` becomes ``_ib_new_map``, row for row, by deleting the rows that differ and
    inserting the new ones: a day's change, not the whole map, is rewritten (and its key index with it)."""
    con.execute(
        f"DELETE FROM core.identity_map o WHERE NOT EXISTS (SELECT 1 FROM _ib_new_map n WHERE {MAP_SAME})"
    )
    con.execute(
        f"INSERT INTO core.identity_map SELECT {MAP_COLUMNS} FROM _ib_new_map n WHERE NOT EXISTS "
        "(SELECT 1 FROM core.identity_map o WHERE o.system = n.system AND o.record_key = n.record_key)"
    )


LINK_SAME = """o.system_l = n.system_l AND o.record_key_l = n.record_key_l AND o.system_r = n.system_r
    AND o.record_key_r = n.record_key_r AND o.rule = n.rule
    AND o.fingerprint_l IS NOT DISTINCT FROM n.fingerprint_l AND o.fingerprint_r IS NOT DISTINCT FROM n.fingerprint_r"""


def _record_links(con: duckdb.DuckDBPyConnection, run_id: str, links: pa.Table) -> None:
    """End the current links this run no longer has, and add the ones it made anew (a link is kept as one
    row for as long as it stands: ``run_id`` made it, ``ended_run`` is the first run without it)."""
    con.register("_ib_links", links)
    try:
        con.execute(
            "UPDATE core.identity_links o SET ended_run = ? WHERE ended_run IS NULL "
            f"AND NOT EXISTS (SELECT 1 FROM _ib_links n WHERE {LINK_SAME})",
            [run_id],
        )
        con.execute(
            "INSERT INTO core.identity_links SELECT n.*, ?, NULL FROM _ib_links n WHERE NOT EXISTS "
            f"(SELECT 1 FROM core.identity_links o WHERE o.ended_run IS NULL AND {LINK_SAME})",
            [run_id],
        )
    finally:
        con.unregister("_ib_links")


def _forget_links(con: duckdb.DuckDBPyConnection, runs: Iterable[str]) -> None:
    runs = list(runs)
    marks = ", ".join("?" * len(runs))
    con.execute(f"DELETE FROM core.identity_links WHERE run_id IN ({marks})", runs)
    con.execute(f"UPDATE core.identity_links SET ended_run = NULL WHERE ended_run IN ({marks})", runs)


def current_links(con: duckdb.DuckDBPyConnection) -> pd.DataFrame:
    """The links of the newest reconciled run (``core.identity_links`` rows still standing).

    Read through Arrow: the same frame as DuckDB's ``df()`` (pandas' Arrow-backed strings), but for the
    all-null ``ended_run`` typed as a string, at a sixth of the CPU (≈ 0.15 against 0.9 s at 300,000)."""
    return con.sql("SELECT * FROM core.identity_links WHERE ended_run IS NULL").to_arrow_table().to_pandas()


def _many(con: duckdb.DuckDBPyConnection, sql: str, rows: list[list[Any]]) -> None:
    if rows:
        con.executemany(sql, rows)


def _insert(con: duckdb.DuckDBPyConnection, table: str, data: pa.Table, run_id: str | None = None) -> None:
    """Append ``data`` (columns in the table's order, after ``run_id`` when one is given)."""
    if not data.num_rows:
        return
    con.register("_ib_rows", data)
    try:
        if run_id is None:
            con.execute(f"INSERT INTO {table} SELECT * FROM _ib_rows")
        else:
            con.execute(f"INSERT INTO {table} SELECT ?, * FROM _ib_rows", [run_id])
    finally:
        con.unregister("_ib_rows")


def latest_model(
    con: duckdb.DuckDBPyConnection, model_format: str, run_id: str | None = None
) -> tuple[int, dict[str, Any]] | None:
    """(version, model) of the newest saved model of ``model_format``, or None.

    With ``run_id``, the newest trained on that run or an earlier one (run ids sort as their as-of), so a
    past day re-run uses the model its day used, not one trained on a later day.
    """
    rows = con.execute(
        "SELECT version, model_json FROM meta.linkage_models WHERE model_format = ? "
        "AND (? IS NULL OR trained_on_run <= ?) ORDER BY version DESC LIMIT 1",
        [model_format, run_id, run_id],
    ).fetchall()
    return (rows[0][0], json.loads(rows[0][1])) if rows else None


def first_model(con: duckdb.DuckDBPyConnection, model_format: str) -> tuple[int, dict[str, Any]] | None:
    """(version, model) of the earliest saved model of ``model_format``, or None. A day synced before
    every saved model's day uses it (`reconcile`): the model the days after it used, so that they score
    as they did; a version trained on that day instead would become the newest for all of them."""
    rows = con.execute(
        "SELECT version, model_json FROM meta.linkage_models WHERE model_format = ? ORDER BY version LIMIT 1",
        [model_format],
    ).fetchall()
    return (rows[0][0], json.loads(rows[0][1])) if rows else None


def save_model(
    con: duckdb.DuckDBPyConnection,
    model: Mapping[str, Any],
    model_format: str,
    trained_on_run: str,
    records: int,
    trained_at: dt.datetime,
) -> int:
    """Store a trained model as the next version; returns the version number (1 for the first)."""
    version = con.execute("SELECT coalesce(max(version), 0) + 1 FROM meta.linkage_models").fetchall()[0][0]
    con.execute(
        "INSERT INTO meta.linkage_models VALUES (?, ?, ?, ?, ?, ?)",
        [version, model_format, trained_at, trained_on_run, records, json.dumps(model, sort_keys=True)],
    )
    return version
