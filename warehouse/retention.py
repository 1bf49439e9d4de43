"""Retention in the warehouse and the vault: what runs leave behind grows with change, not with days.

**The window.** ``retention.days`` (default 35) back from the newest loaded run. The *horizon run* is the
newest loaded run at least that many days older than the newest one. Every run after the horizon can be
re-run, alone or with ``--replay-forward``, exactly as an in-order run computed it; the horizon run and
earlier ones cannot: `check_window` refuses them with `RetentionError`, because what they would need is
compacted away. The horizon only moves forward (``meta.retention``).

**What goes** (`prune`), for runs at or before the horizon:

- ``raw_device_events`` — the raw IoT event slices already merged into the event day files (the
  Parquet behind ``core.device_events`` keeps every event; only a re-run re-merges its own slice); kept
  as Parquet parts (`islandbridge.landing.raw_parts`), a slice leaves the view and its parts are deleted;
- ``identity_history`` — changes in ``core.identity_map_changes`` superseded by the horizon run's map
  (so the map after the horizon run is still rebuilt exactly); earlier runs lose their ``history`` flag;
- ``identity_review`` — each run's stored review pairs (every run stores its open pairs again);
- ``source_state`` — connector states superseded before the horizon (a re-run reads the state before it);
- ``vault_versions`` — the vault's sealed record versions no run after the horizon can read: superseded by
  a newer version at or before the horizon, or whose raw row is gone; erased from the vault file
  (`islandbridge.privacy.erasure`).

By age: ``quality_results`` rows of runs older than ``reports_days`` and ``gate_stops`` (the quality
gate's notes of the runs it stopped, each naming its report) of the same age, and ``device_event_days``:
the event day partitions older than ``device_events_days`` (by the events' own day).

**What stays**: the raw rows of every other stream — each row is a change of a record (the residency
history and each record's ``first_seen_run`` read them), so they grow with change already — the run
accounting (one row per run and stream), identity events and redirects, quarantined rows until replayed.

Everything removed is counted in ``meta.retention_log`` (counts only) and logged in one line.
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pyarrow as pa

from islandbridge.config import LOCAL_TZ, DuckDBResources, Retention, local_day
from islandbridge.errors import TerminalError
from islandbridge.landing import raw_parts
from islandbridge.privacy.erasure import erase_versions, sealed_versions
from islandbridge.storage import has_table, registered, transaction
from islandbridge.warehouse.core import sources_of
from islandbridge.warehouse.device_events import EventStore

log = logging.getLogger(__name__)

DDL = """
CREATE SCHEMA IF NOT EXISTS meta;
CREATE TABLE IF NOT EXISTS meta.retention (name VARCHAR PRIMARY KEY, value VARCHAR NOT NULL);
CREATE TABLE IF NOT EXISTS meta.retention_log (
    pruned_at TIMESTAMPTZ NOT NULL, newest_run VARCHAR, horizon_run VARCHAR, item VARCHAR NOT NULL,
    removed BIGINT NOT NULL
);
"""
HORIZON = "horizon_run"


class RetentionError(TerminalError):
    """A run lies beyond the retention window: what re-running it needs was compacted away.

    Terminal: re-run a day inside the window instead (or restore a backup of the warehouse and vault)."""


@dataclass(frozen=True)
class Window:
    """The newest loaded run and the horizon run (None while every run is inside the window)."""

    newest_run: str
    newest_as_of: dt.datetime
    horizon_run: str | None
    horizon_as_of: dt.datetime | None


def window(con: duckdb.DuckDBPyConnection, retention: Retention) -> Window | None:
    """The window of ``retention.days`` back from the newest loaded run (never behind the stored horizon);
    None without a loaded run."""
    if not has_table(con, "meta.runs"):
        return None
    newest = con.execute(
        "SELECT run_id, as_of FROM meta.runs WHERE status = 'loaded' ORDER BY as_of DESC LIMIT 1"
    ).fetchall()
    if not newest:
        return None
    cutoff = newest[0][1] - dt.timedelta(days=retention.days)
    horizon = con.execute(
        "SELECT run_id, as_of FROM meta.runs WHERE status = 'loaded' AND as_of <= ? ORDER BY as_of DESC "
        "LIMIT 1",
        [cutoff],
    ).fetchall()
    stored = stored_horizon(con)
    if stored and (not horizon or stored[1] > horizon[0][1]):
        horizon = [stored]
    return Window(*newest[0], *(horizon[0] if horizon else (None, None)))


def stored_horizon(con: duckdb.DuckDBPyConnection) -> tuple[str, dt.datetime] | None:
    """(run_id, as_of) of the horizon run retention last pruned to, or None."""
    if not has_table(con, "meta.retention"):
        return None
    rows = con.execute(
        "SELECT r.run_id, r.as_of FROM meta.retention k JOIN meta.runs r ON r.run_id = k.value "
        "WHERE k.name = ?",
        [HORIZON],
    ).fetchall()
    return rows[0] if rows else None


def check_window(con: duckdb.DuckDBPyConnection, as_of: dt.datetime) -> None:
    """Raise `RetentionError` when a run as of ``as_of`` is at or before the pruned horizon."""
    stored = stored_horizon(con)
    if stored and as_of <= stored[1]:
        horizon = stored[1].astimezone(LOCAL_TZ)
        after = (
            f"a day from {horizon.date()} on"
            if horizon.time() == dt.time()
            else f"an as-of after {horizon.isoformat(sep=' ', timespec='minutes')} (a day from {horizon.date()} on)"
        )
        raise RetentionError(
            f"as of {local_day(as_of)} is beyond the retention window: retention compacted the history up "
            f"to run {stored[0]}, so that day cannot be recomputed exactly; re-run {after} "
            "(retention.days sets the window)"
        )


def prune(
    con: duckdb.DuckDBPyConnection,
    win: Window,
    retention: Retention,
    vault_path: Path,
    events_dir: Path,
    *,
    apply: bool,
    resources: DuckDBResources | None = None,
) -> dict[str, int]:
    """Remove (``apply``) or count (dry run) what retention lets go in the warehouse, the vault and the
    device-event files for the window ``win``; returns counts per item (record them with `record`)."""
    counts: dict[str, int] = {}
    if win.horizon_run is not None:
        at = win.horizon_as_of
        counts["raw_device_events"] = _raw_events(con, at, apply)
        counts["identity_history"] = _identity_history(con, at, apply)
        counts["identity_review"] = _rows(con, "core.identity_review", _RUNS_UPTO, at, apply)
        counts["source_state"] = _rows(con, "meta.source_state", _SUPERSEDED_STATE, at, apply)
        counts["vault_versions"] = _vault_versions(con, vault_path, at, apply, resources)
    old_reports = win.newest_as_of - dt.timedelta(days=retention.reports_days)
    counts["quality_results"] = _rows(con, "meta.quality_results", _RUNS_BEFORE, old_reports, apply)
    # a stopped run may never load (no meta.runs row): its note is aged by its own as-of
    counts["gate_stops"] = _rows(con, "meta.gate_stops", "as_of < $at", old_reports, apply)
    first_day = win.newest_as_of.astimezone(LOCAL_TZ).date() - dt.timedelta(days=retention.device_events_days)
    store = EventStore(events_dir)
    with transaction(con):
        counts["device_event_days"], counts["device_events"] = store.drop_days_before(
            con, first_day, apply=apply
        )
    if apply:
        store.collect_garbage(con)
    return counts


_RUNS_UPTO = "run_id IN (SELECT run_id FROM meta.runs WHERE as_of <= $at)"
_RUNS_BEFORE = "run_id IN (SELECT run_id FROM meta.runs WHERE as_of < $at)"
_SUPERSEDED_STATE = (
    "as_of < (SELECT max(t.as_of) FROM meta.source_state t WHERE t.source = source_state.source "
    "AND t.as_of <= $at)"
)


def _rows(con, table: str, where: str, at: dt.datetime, apply: bool) -> int:
    if not has_table(con, table):
        return 0
    n = con.execute(f"SELECT count(*) FROM {table} WHERE {where}", {"at": at}).fetchall()[0][0]
    if apply and n:
        con.execute(f"DELETE FROM {table} WHERE {where}", {"at": at})
    return int(n)


def _raw_events(con, at: dt.datetime, apply: bool) -> int:
    source = next((s for s, system in sorted(sources_of(con).items()) if system == "iot_platform"), None)
    if source is None or not has_table(con, "core.device_event_runs"):
        return 0
    table = f"raw.{source}__events"
    if raw_parts.is_parts(
        con, table
    ):  # the slices are Parquet parts: unlisted here, deleted after the commit
        merged = "as_of <= $at AND run_id IN (SELECT run_id FROM core.device_event_runs)"
        listed = raw_parts.listed_files(con, table)
        with transaction(con):
            n = raw_parts.drop_runs(con, table, merged, {"at": at}, apply)
        if apply:
            raw_parts.remove_unlisted(con, table, listed)
        return n
    merged = (
        "_run_id IN (SELECT run_id FROM core.device_event_runs) "
        "AND _run_id IN (SELECT run_id FROM meta.runs WHERE as_of <= $at)"
    )
    return _rows(con, table, merged, at, apply)


_SUPERSEDED_CHANGES = """
SELECT rid FROM (
    SELECT c.rowid AS rid, c.removed,
           row_number() OVER (PARTITION BY c.system, c.record_key ORDER BY r.as_of DESC) AS newest
    FROM core.identity_map_changes c JOIN meta.identity_runs r USING (run_id) WHERE r.as_of <= $at
) WHERE newest > 1 OR removed
"""


def _identity_history(con, at: dt.datetime, apply: bool) -> int:
    """Changes up to the horizon run that its map no longer shows; the map after it stays exact."""
    if not has_table(con, "core.identity_map_changes"):
        return 0
    n = con.execute(f"SELECT count(*) FROM ({_SUPERSEDED_CHANGES})", {"at": at}).fetchall()[0][0]
    if apply:
        with transaction(con):
            if n:
                con.execute(
                    f"DELETE FROM core.identity_map_changes WHERE rowid IN ({_SUPERSEDED_CHANGES})",
                    {"at": at},
                )
            con.execute("UPDATE meta.identity_runs SET history = false WHERE as_of < $at", {"at": at})
    return int(n)


def _vault_versions(con, vault_path: Path, at: dt.datetime, apply: bool, resources) -> int:
    """Sealed versions of runs up to the horizon that no later run can read (superseded, or raw row gone)."""
    versions = sealed_versions(vault_path, resources)
    if not versions.num_rows:
        return 0
    gone = []
    with registered(con, "_ib_versions", versions):
        pairs = con.execute("SELECT DISTINCT source, stream FROM _ib_versions ORDER BY ALL").fetchall()
        for source, stream in pairs:
            table = f"raw.{source}__{stream}"
            if not has_table(con, table):
                continue
            gone.append(
                con.sql(
                    f"""SELECT v.source, v.stream, v.run_id, v.record_key
                    FROM _ib_versions v JOIN meta.runs r ON r.run_id = v.run_id
                    WHERE v.source = $source AND v.stream = $stream AND r.as_of <= $at AND (
                        NOT EXISTS (SELECT 1 FROM {table} t
                                    WHERE t._record_key = v.record_key AND t._run_id = v.run_id)
                        OR EXISTS (SELECT 1 FROM {table} t JOIN meta.runs n ON n.run_id = t._run_id
                                   WHERE t._record_key = v.record_key AND n.as_of > r.as_of AND n.as_of <= $at))""",
                    params={"source": source, "stream": stream, "at": at},
                ).to_arrow_table()
            )
    n = sum(t.num_rows for t in gone)
    if apply and n:
        erase_versions(vault_path, pa.concat_tables(gone), resources)
    return n


def record(con: duckdb.DuckDBPyConnection, win: Window, counts: dict[str, int], now: dt.datetime) -> None:
    """Account a prune: a ``meta.retention_log`` row per item removed (counts only), and the horizon."""
    con.execute(DDL)
    removed = {item: n for item, n in counts.items() if n}
    with transaction(con):
        for item, n in removed.items():
            con.execute(
                "INSERT INTO meta.retention_log VALUES (?, ?, ?, ?, ?)",
                [now, win.newest_run, win.horizon_run, item, n],
            )
        if win.horizon_run is not None:
            con.execute("INSERT OR REPLACE INTO meta.retention VALUES (?, ?)", [HORIZON, win.horizon_run])
