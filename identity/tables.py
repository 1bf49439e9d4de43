"""The identity tables of the warehouse: who each source record is, how that changed, and the model.

Only record keys, person keys, probabilities, reasons and counts are stored here — never a name, an ID
number or a phone (the features used for matching live in memory for the length of a run).

Schema ``core``:

- ``identity_map`` — one row per person-bearing source record present at the latest reconciled run:
  ``system, record_key, person_key, matched_by ('id' | 'probabilistic' | 'namesake' | 'none'), match_probability,
  first_seen_run, last_seen_run`` (the raw runs of the record's first and newest version).
- ``identity_map_before`` — the map as it stood before the latest reconciled run, so that run can be
  re-run (``run_id`` names the run it precedes).
- ``identity_events`` — ``run_id, event ('merge' | 'split' | 'retire'), old_key, new_key, at`` (the
  run's as-of instant).
- ``person_key_redirects`` — ``old_key → new_key`` for every merged key; follow it to the end
  (`resolve_sql`).
- ``identity_review`` — pairs a person should decide: ``run_id, system_l, record_key_l, system_r,
  record_key_r, match_probability, reason``.

Schema ``meta``: ``identity_runs`` (per run: persons, records, links per system pair as JSON, merges,
splits, churn, reviews, the model version) and ``linkage_models`` (versioned Splink models as JSON).
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


class IdentityStateError(TerminalError):
    """The identity tables cannot take this run as asked (e.g. an as-of older than the latest reconciled).

    Terminal: the stored identity state or the requested as-of must change; a retry meets the same state."""


@dataclass(frozen=True)
class Base:
    """What a run starts from: the previous map, keys never to issue again, and whether it re-runs."""

    previous: pd.DataFrame  # system, record_key, person_key
    retired: set[str]
    rerun: bool


def ensure_schema(con: duckdb.DuckDBPyConnection) -> None:
    con.execute(DDL)


def resolve_sql() -> str:
    """SQL giving, for every redirected key, the key it ends at today: ``old_key, person_key``."""
    return RESOLVE_SQL


def run_base(con: duckdb.DuckDBPyConnection, run_id: str, as_of: dt.datetime) -> Base:
    """The state a run of ``run_id`` starts from; re-running the latest run starts from before it.

    Raises `IdentityStateError` when ``as_of`` is older than the latest reconciled run.
    """
    latest = con.execute(
        "SELECT run_id, as_of FROM meta.identity_runs ORDER BY as_of DESC LIMIT 1"
    ).fetchall()
    if latest and latest[0][0] != run_id and latest[0][1] > as_of:
        raise IdentityStateError(
            f"run {run_id} is older than the latest reconciled run {latest[0][0]}; identities are reconciled "
            f"in order: re-run {latest[0][0]} or a later as-of"
        )
    rerun = bool(latest) and latest[0][0] == run_id
    if rerun:
        previous = con.execute(
            "SELECT system, record_key, person_key FROM core.identity_map_before WHERE run_id = ?", [run_id]
        ).df()
    else:
        previous = con.execute("SELECT system, record_key, person_key FROM core.identity_map").df()
    retired = {
        r[0]
        for r in con.execute(
            "SELECT old_key FROM core.person_key_redirects WHERE run_id <> ? "
            "UNION SELECT old_key FROM core.identity_events WHERE event = 'retire' AND run_id <> ?",
            [run_id, run_id],
        ).fetchall()
    }
    return Base(previous.astype(object), retired, rerun)


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
) -> None:
    """Replace the identity tables' state with this run's, in one transaction.

    ``identity_map`` has the columns of ``core.identity_map``; ``reviews`` those of ``core.identity_review``
    without ``run_id``; ``events`` are (event, old_key, new_key).
    """
    with transaction(con):
        for table in ("identity_events", "person_key_redirects", "identity_review"):
            con.execute(f"DELETE FROM core.{table} WHERE run_id = ?", [run_id])
        con.execute("DELETE FROM meta.identity_runs WHERE run_id = ?", [run_id])
        if not base.rerun:
            con.execute("DELETE FROM core.identity_map_before")
            con.execute(
                "INSERT INTO core.identity_map_before SELECT ?, system, record_key, person_key "
                "FROM core.identity_map",
                [run_id],
            )
        con.execute("DELETE FROM core.identity_map")
        _insert(con, "core.identity_map", identity_map)
        events = list(events)
        _many(
            con,
            "INSERT INTO core.identity_events VALUES (?, ?, ?, ?, ?)",
            [[run_id, e, o, n, as_of] for e, o, n in events],
        )
        _many(
            con,
            "INSERT OR REPLACE INTO core.person_key_redirects VALUES (?, ?, ?)",
            [[o, n, run_id] for e, o, n in events if e == "merge"],
        )
        _insert(con, "core.identity_review", reviews, run_id)
        con.execute(
            "INSERT INTO meta.identity_runs VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
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
            ],
        )


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


def latest_model(con: duckdb.DuckDBPyConnection, model_format: str) -> tuple[int, dict[str, Any]] | None:
    """(version, model) of the newest saved model of ``model_format``, or None."""
    rows = con.execute(
        "SELECT version, model_json FROM meta.linkage_models WHERE model_format = ? "
        "ORDER BY version DESC LIMIT 1",
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
