"""Checks on a landed stream as a whole: its columns, its volume against earlier runs, roster totals.

Each computes plain numbers in DuckDB (over the landed rows and, read-only, the warehouse attached as
``wh``); the gate hands them to GX as a small frame and GX decides (``suites``).

* **columns** — the landed columns must be exactly the declared ones plus ``_record_key`` (schema drift).
* **volume: population** — how many records the source holds: the keys alive in the warehouse before
  this run (landed in an earlier run and not deleted since), against those keys plus this run's, minus
  this run's deletions. Incremental extractions land only changed rows, so comparing landed counts
  between runs would cry wolf every day; a source that "returns far fewer rows" shows as deletions
  (registry key scans, the IoT device list, roster corrections).
* **volume: flow** — an event log: records read per hour of the interval this run's extraction read
  against the previous run's (``meta.run_sources``), once two earlier runs are loaded. A run's interval
  runs from the as-of of the state it resumed from (``read_from``: a day skipped and filled in later
  does not shorten the interval the run after the gap read) to its as-of; not judged when the
  previous run read the log as it stood more than an hour after its own as-of (a backfill or a late run:
  its state's ``reference_ms``, `connectors.iot_clock`), whose count then covers more than its interval.
  This run's interval is measured up to the clock (``now``) when its as-of lies ahead of it (a day that
  has not ended): the hours still to come hold no events yet, and are not silence.
* **roster_totals** — for each roster file landed: landed + connector-quarantined rows equal the rows the
  connector read from it, and the landed amounts add up to the file's own 合计 row (re-read from the
  roster folder, checked by sha256; reported as not verified when the file is not reachable here).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping, Sequence
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import pyarrow as pa

from islandbridge.connectors.civil_files import landed_rows, read_file
from islandbridge.connectors.iot_clock import read_late, utc_text
from islandbridge.connectors.roster_files import LAYOUTS, Limits, RosterError, parse_roster, to_decimal
from islandbridge.quality.rowchecks import q
from islandbridge.schemas import RECORD_KEY
from islandbridge.storage import existing_columns, has_table

ROSTER_MAX_BYTES = 50 << 20


def population(con, source: str, stream: str, run_id: str, view: str, deleted: str) -> dict[str, Any] | None:
    """Keys alive before this run and after it, or ``None`` when the warehouse has no baseline."""
    if not has_table(con, f"raw.{source}__{stream}", database="wh", views=False):
        return None
    before, after, gone = con.execute(
        f"""
        WITH hist AS (SELECT {RECORD_KEY} AS k, max(_run_id) AS seen FROM wh.raw.{q(source + "__" + stream)}
                      WHERE _run_id < $run GROUP BY 1),
             del AS (SELECT record_key AS k, max(run_id) AS gone FROM wh.meta.deletions
                     WHERE source = $source AND stream = $stream AND run_id < $run GROUP BY 1),
             alive AS (SELECT k FROM hist LEFT JOIN del USING (k) WHERE gone IS NULL OR gone < seen)
        SELECT (SELECT count(*) FROM alive),
               (SELECT count(*) FROM (SELECT k FROM alive UNION SELECT {RECORD_KEY} FROM {view})
                WHERE k NOT IN (SELECT {RECORD_KEY} FROM {deleted})),
               (SELECT count(*) FROM {deleted})""",
        {"run": run_id, "source": source, "stream": stream},
    ).fetchall()[0]
    if not before:
        return None
    return {
        "previous_population": before,
        "population": after,
        "deleted_now": gone,
        "kept_share": round(after / before, 4),
    }


def flow(
    con,
    source: str,
    stream: str,
    as_of: dt.datetime,
    read_now: int,
    now: dt.datetime | None = None,
    read_from: dt.datetime | None = None,
) -> dict[str, Any] | None:
    """Records read per hour now against the previous run's, or ``None`` without two earlier runs.

    Each run's hours are those of the interval its extraction read: from the as-of of the state it
    resumed from (``read_from``, this run's from its landing manifest, the previous run's as recorded in
    ``meta.source_state``) to its as-of; where that was not recorded, from the loaded run before it.
    ``now`` is the clock's reading: an as-of ahead of it is measured up to it, and the result says so
    (``as_of_ahead_h``), e.g. ``flow(con, "iot", "events", as_of, 600, now=clock(), read_from=...)``."""
    if not has_table(con, "meta.runs", database="wh", views=False):
        return None
    runs = con.execute(
        "SELECT run_id, as_of, started_at FROM wh.meta.runs WHERE as_of < ? AND status = 'loaded' "
        "ORDER BY as_of DESC LIMIT 2",
        [as_of],
    ).fetchall()
    if len(runs) < 2:
        return None
    (prev_id, prev_at, _), (_, prevprev_at, _) = runs
    if early := next((run for run, at, loaded in runs if loaded is not None and loaded < at), None):
        # a day synced before it ended read part of its interval, and the run after it read the rest
        # besides its own: neither count is the rate of its interval
        return {
            "baseline": f"not comparable: run {early} was synced before its day ended (loaded before its "
            "as-of), so the previous run's count is not the rate of its interval",
            "previous_run": prev_id,
        }
    arrival_ms, prev_from = _extracted(con, source, stream, prev_id)
    if read_late(prev_at, arrival_ms):
        # a backfill, or a run days late: the previous run read the log as it stood well after its as-of,
        # so its count is not the rate of its interval, and what is left for this run says nothing either
        return {
            "baseline": f"not comparable: the previous run read the log as it stood at {utc_text(arrival_ms)}, "
            "more than an hour after its as-of (a backfill or a late run)",
            "previous_run": prev_id,
        }
    prev_read = con.execute(
        "SELECT sum(read) FROM wh.meta.run_sources WHERE run_id = ? AND source = ? AND stream = ?",
        [prev_id, source, stream],
    ).fetchall()[0][0]
    hours_prev = (prev_at - (prev_from or prevprev_at)).total_seconds() / 3600
    until = as_of if now is None else min(as_of, now)
    hours_now = (until - (read_from or prev_at)).total_seconds() / 3600
    if not prev_read or hours_prev <= 0 or hours_now <= 0:
        return None
    rate_prev, rate_now = prev_read / hours_prev, read_now / hours_now
    ahead = {"as_of_ahead_h": round((as_of - until).total_seconds() / 3600, 1)} if until < as_of else {}
    return {
        "previous_run": prev_id,
        "previous_per_hour": round(rate_prev, 2),
        "per_hour": round(rate_now, 2),
        "kept_share": round(rate_now / rate_prev, 4),
        **ahead,
    }


def _extracted(con, source: str, stream: str, run_id: str) -> tuple[int | None, dt.datetime | None]:
    """What a run's extraction of the log read, as its state records it: when the log had arrived up to,
    as its connector estimated it (``reference_ms``, `connectors.iot_clock`), and the as-of of the state
    it resumed from (``read_from``); each ``None`` when not recorded."""
    if not has_table(con, "meta.source_state", database="wh", views=False):
        return None, None
    # A warehouse from before the column gets it at its next load; validate, before it, reads it as it is
    has_read_from = "read_from" in existing_columns(con, "meta.source_state", database="wh")
    read_from = "max(read_from)" if has_read_from else "NULL"
    return con.execute(
        "SELECT max(try_cast(json_extract_string(state_json, '$.' || ? || '.reference_ms') AS BIGINT)), "
        f"{read_from} FROM wh.meta.source_state WHERE run_id = ? AND source = ?",
        [stream, run_id, source],
    ).fetchall()[0]


def roster_totals(
    con,
    view: str,
    stream: str,
    state: Mapping[str, Any],
    connector_quarantine: pa.Table,
    folder: Path | None,
    sums: Sequence[str],
    optional_sums: Sequence[str],
) -> pa.Table:
    """One row per roster file landed: ``rows_in_file``/``rows_accounted`` and, per summed column,
    ``sum_landed_<n>``/``sum_stated_<n>`` (text; stated is NULL when the file cannot be re-read here)."""
    con.register("_roster_quarantine", connector_quarantine)
    try:
        files = con.execute(
            f"""
            SELECT l.file_sha256, l.source_file, count(*),
                   (SELECT count(*) FROM _roster_quarantine r WHERE r.stream = $stream
                      AND json_extract_string(r.record_json, '$.file_sha256') = l.file_sha256
                      AND json_extract_string(r.record_json, '$.source_file') = l.source_file)
            FROM {view} l GROUP BY 1, 2 ORDER BY 2""",
            {"stream": stream},
        ).fetchall()
    finally:
        con.unregister("_roster_quarantine")
    columns: dict[str, list[Any]] = {"file": [], "rows_in_file": [], "rows_accounted": []}
    summed = [*sums, *optional_sums]
    for n in range(len(summed)):
        columns[f"sum_landed_{n}"], columns[f"sum_stated_{n}"] = [], []
    for sha, name, landed, quarantined in files:
        columns["file"].append(name)
        rows = landed_rows(state, name, sha)
        columns["rows_in_file"].append(-1 if rows is None else rows)
        columns["rows_accounted"].append(landed + quarantined)
        stated = _stated_totals(folder, name, sha, stream) if quarantined == 0 else None
        for n, column in enumerate(summed):
            values = [
                r[0]
                for r in con.execute(
                    f"SELECT {q(column)} FROM {view} WHERE file_sha256 = ? AND source_file = ?", [sha, name]
                ).fetchall()
            ]
            total = _decimal_text(values)
            claim = None if stated is None else stated.get(column)
            if claim is None and column in optional_sums:
                total = None  # the file does not state this optional total: nothing to compare
            columns[f"sum_landed_{n}"].append(total)
            columns[f"sum_stated_{n}"].append(None if claim is None else _decimal_text([claim]))
    return pa.table(
        {k: pa.array(v, pa.int64() if k.startswith("rows") else pa.string()) for k, v in columns.items()}
    )


def _stated_totals(folder: Path | None, name: str, sha: str, stream: str) -> dict[str, Any] | None:
    """The 合计 row of the landed file, if the file is reachable here and still the one landed."""
    layout = next((layout for layout in LAYOUTS.values() if layout.stream == stream), None)
    if folder is None or layout is None:
        return None
    try:
        data = read_file(folder, name, ROSTER_MAX_BYTES)
        if hashlib.sha256(data).hexdigest() != sha:
            return None
        roster = parse_roster(data, name.rsplit(".", 1)[-1], layout, Limits(200_000, 10 * ROSTER_MAX_BYTES))
    except (RosterError, OSError):
        return None
    totals = roster.totals or {}
    return {k: v for k, v in totals.items() if v not in (None, "")}


def _decimal_text(values: Sequence[Any]) -> str | None:
    try:
        total = sum((to_decimal(v) for v in values if v is not None), Decimal(0))
    except (InvalidOperation, ValueError):
        return "unparseable"  # compares unequal to any stated total: a landed amount is not a number
    return str(total.quantize(Decimal("0.0001")))
