"""The steps of a sync, shared by the command line and the Airflow DAG.

A run is bound to its as-of instant T (the end of its data interval). Its steps:

1. ``plan``      — the sources to sync (from the configuration).
2. ``extract``   — one per source: read everything new since the state committed before T into the
                   landing zone (Parquet), returning paths and counts only; ``sync`` extracts the
                   sources at once, as the DAG's mapped tasks run (`extract_sources`).
3. ``validate``  — the quality gate: check the landed data before anything is loaded; a critical
                   failure stops the run with the warehouse untouched, failing rows are quarantined.
4. ``load``      — commit each source's landed slice and state into the warehouse, and close the run.
5. ``reconcile`` — identity reconciliation: map every person-bearing record to a stable, pseudonymous
                   ``person_key`` (``core.identity_map``); see ``islandbridge.identity.reconcile``.

Each step takes the resolved ``Settings`` and plain values and returns a small JSON-able dict, so the
DAG can hand results between tasks as XComs (paths and counts, never data or personal fields).

- `settings` — the configuration checked in full at the edge (`load_settings`, `settings_of_environment`).
- `steps` — the step functions above, one per DAG task (and `build`, `export`, `publish`, `prune`).
- `run` — `sync`, every step for one as-of in the DAG's order, and `replay` of an already loaded day.
- `notices` — what a run tells the operator: a day not ended, a day before later loaded ones, rows a
  replay would now load.

Everything is importable from ``islandbridge.pipeline`` itself.

Example::

    settings = load_settings("islandbridge.yml", environ=os.environ)
    summary = sync(settings, parse_as_of("2026-11-20"))
"""

from islandbridge.pipeline.notices import later_days, warn_earlier_day, warn_when_ahead
from islandbridge.pipeline.run import replay, sync
from islandbridge.pipeline.settings import check_settings, load_settings, settings_of_environment
from islandbridge.pipeline.steps import (
    EXTRACT_THREADS,
    build,
    events_dir,
    export,
    extract,
    extract_sources,
    load,
    plan,
    plan_run,
    prune,
    publish,
    raw_parts_dir,
    reconcile,
    repoint,
    validate,
)

__all__ = [
    "EXTRACT_THREADS",
    "build",
    "check_settings",
    "events_dir",
    "export",
    "extract",
    "extract_sources",
    "later_days",
    "load",
    "load_settings",
    "plan",
    "plan_run",
    "prune",
    "publish",
    "raw_parts_dir",
    "reconcile",
    "replay",
    "repoint",
    "settings_of_environment",
    "sync",
    "validate",
    "warn_earlier_day",
    "warn_when_ahead",
]
