"""The steps of a sync, shared by the command line and the Airflow DAG.

A run is bound to its as-of instant T (the end of its data interval). Its steps:

1. ``plan``      — the sources to sync (from the configuration).
2. ``extract``   — one per source: read everything new since the state committed before T into the
                   landing zone (Parquet), returning paths and counts only.
3. ``validate``  — the quality gate: check the landed data before anything is loaded; a critical
                   failure stops the run with the warehouse untouched, failing rows are quarantined.
4. ``load``      — commit each source's landed slice and state into the warehouse, and close the run.
5. ``reconcile`` — identity reconciliation: map every person-bearing record to a stable, pseudonymous
                   ``person_key`` (``core.identity_map``); see ``islandbridge.reconcile``.

Each step takes the resolved ``Settings`` and plain values and returns a small JSON-able dict, so the
DAG can hand results between tasks as XComs (paths and counts, never data or personal fields).

Example::

    settings = load_settings("islandbridge.yml", environ=os.environ)
    summary = sync(settings, parse_as_of("2026-11-20"))
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Sequence
from typing import Any

from islandbridge.config import Settings
from islandbridge.connectors import ExtractContext, build_connector
from islandbridge.warehouse import raw
from islandbridge.warehouse.landing import COUNT_FIELDS, LandingWriter

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    """Wall-clock time, used only for bookkeeping (when a run loaded), never for which data to read."""
    return dt.datetime.now(dt.UTC)


def plan(settings: Settings) -> list[str]:
    """The names of the sources a run syncs, in configuration order."""
    return list(settings.sources)


def extract(settings: Settings, source: str, as_of: dt.datetime) -> dict[str, Any]:
    """Extract one source for the run ending at ``as_of`` into the landing zone.

    Raises the connector's ``RetriableError`` / ``FatalSourceError`` with what went wrong; nothing in the
    warehouse changes, so the task can simply be retried.
    """
    connector = build_connector(settings.source(source))
    run_id = raw.run_id_for(as_of)
    state = _previous_state(settings, source, as_of)
    writer = LandingWriter.open(settings.landing_url, run_id, source, connector.streams())
    log.info("extracting %s for run %s (as of %s)", connector.describe(), run_id, as_of.isoformat())
    new_state = connector.extract(ExtractContext(run_id=run_id, as_of=as_of, state=state, sink=writer))
    manifest = writer.close(new_state)
    counts = {s: {k: c[k] for k in COUNT_FIELDS} for s, c in manifest["streams"].items()}
    log.info("extracted %s: %s", source, {s: c["landed"] for s, c in counts.items()})
    return {"source": source, "run_id": run_id, "landing": writer.base, "counts": counts}


def validate(settings: Settings, as_of: dt.datetime, sources: Sequence[str]) -> dict[str, Any]:
    """Run the quality gate over the landed sources of the run ending at ``as_of``.

    Raises ``QualityGateError`` (critical failure: nothing was loaded) or ``QualityCheckBrokenError``
    (a check itself failed). Returns the gate's summary: counts, warnings and the report's path.
    """
    from islandbridge.warehouse.quality import validate_run

    gate = validate_run(settings, raw.run_id_for(as_of), as_of, list(sources), settings.quality)
    return gate.to_dict()


def load(settings: Settings, as_of: dt.datetime, sources: Sequence[str], clock: Clock = utc_now) -> dict[str, Any]:
    """Commit every extracted source of the run into the warehouse; returns the run's accounting."""
    run_id = raw.run_id_for(as_of)
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    con = raw.connect(str(settings.warehouse_path))
    try:
        raw.begin_run(con, run_id, as_of, list(sources), clock())
        for source in sources:
            raw.load_source(con, settings.landing_url, run_id, source, as_of, clock())
        raw.finish_run(con, run_id, "loaded", clock())
        summary = dict(raw.run_summary(con, run_id))
    finally:
        con.close()
    return {"run_id": run_id, "as_of": as_of.isoformat(), "warehouse": str(settings.warehouse_path),
            "sources": summary}


def sync(settings: Settings, as_of: dt.datetime, sources: Sequence[str] | None = None,
         clock: Clock = utc_now, *, reconcile_identities: bool = True) -> dict[str, Any]:
    """Run every step for one as-of, in the same order as the DAG.

    ``reconcile_identities=False`` stops after the load (for measuring or testing reconciliation alone).
    """
    names = list(sources) if sources else plan(settings)
    for name in names:
        extract(settings, name, as_of)
    gate = validate(settings, as_of, names)
    summary = load(settings, as_of, names, clock)
    summary["quality"] = gate
    if reconcile_identities:
        summary["identity"] = reconcile(settings, as_of, clock)
    return summary


def reconcile(settings: Settings, as_of: dt.datetime, clock: Clock = utc_now) -> dict[str, Any]:
    """Reconcile identities over the loaded warehouse as of ``as_of``; returns counts only."""
    from islandbridge.reconcile import reconcile as run_reconcile

    return run_reconcile(settings, as_of, clock)


def _previous_state(settings: Settings, source: str, as_of: dt.datetime) -> dict[str, Any]:
    if not settings.warehouse_path.exists():
        return {}
    con = raw.connect(str(settings.warehouse_path), read_only=True)
    try:
        return raw.previous_state(con, source, as_of)
    finally:
        con.close()
