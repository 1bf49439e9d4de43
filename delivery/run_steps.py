"""Which steps of a loaded run are done, read from what each step already leaves behind (`islandbridge runs`).

No step writes a "done" flag of its own; each one's last write says it finished:

- ``reconciled`` — ``meta.identity_runs`` holds the run, reconciled at or after its load finished;
- ``built`` — ``meta.mart_builds`` holds the run, built at or after its load finished (``built_at``; a
  build recorded before that column counts as done);
- ``exported`` — ``meta.audit_anchors`` holds the export's anchor for the run, written once every
  department's folder is in place (`pipeline.export`), at or after its load finished;
- ``published`` — the run report ``<reports>/<run_id>/run.html``, publish's last write, or the run's
  snapshot ``<snapshots>/<run_id>.duckdb`` is there, written at or after its load finished. Retention
  removes both in time: past ``retention.reports_days`` and without a kept snapshot, it is not known
  (``None``).

"At or after its load finished": a day loaded again, and killed after any step, keeps the traces of the
steps its earlier load went through, which no longer stand for this load.

The steps run in this order and each builds on the one before: a step after one not done is not done
either (marts built for an earlier load of the day no longer stand for this one).

Example::

    steps = run_steps(settings, con, "ib_20261120T160000Z", as_of, loaded_at)
    # {"reconciled": True, "built": True, "exported": False, "published": False}
"""

from __future__ import annotations

import datetime as dt

import duckdb

from islandbridge.config import Settings, sync_command
from islandbridge.delivery.snapshot import SUFFIX
from islandbridge.quality.config import QualityConfig
from islandbridge.storage import existing_columns, has_table

STEPS = ("reconciled", "built", "exported", "published")
LOADING = "loading"  # meta.runs.status from the start of a load until it finishes (`landing.raw.begin_run`)


def run_steps(
    settings: Settings,
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    as_of: dt.datetime,
    loaded_at: dt.datetime | None,
) -> dict[str, bool | None]:
    """Each step after the load of ``run_id`` (loaded at ``loaded_at``): True done, False not done,
    None not known (its trace is past retention). ``con``: the warehouse, read-only is enough."""
    found = {
        "reconciled": _since(con, "meta.identity_runs", "reconciled_at", run_id, loaded_at),
        "built": _since(con, "meta.mart_builds", "built_at", run_id, loaded_at, added_later=True),
        "exported": _since(con, "meta.audit_anchors", "recorded_at", run_id, loaded_at, "command = 'export'"),
        "published": _published(settings, con, run_id, as_of, loaded_at),
    }
    steps: dict[str, bool | None] = {}
    for step in STEPS:
        steps[step] = found[step] if all(steps.values()) else False
    return steps


def describe_steps(steps: dict[str, bool | None], as_of: dt.datetime, config: str | None = None) -> str:
    """One line for an operator: the steps done, and those not yet with the command that completes them
    (``config``: the ``--config`` it repeats, see `sync_command`)."""
    done = [s for s in STEPS if steps[s]]
    unknown = [s for s in STEPS if steps[s] is None]
    missing = [s for s in STEPS if steps[s] is False]
    line = "steps: loaded" + "".join(f", {s}" for s in done)
    if unknown:
        line += "; " + ", ".join(unknown) + " not known (retention removed the run report)"
    if missing:
        line += (
            f"; not yet {', '.join(missing)}: run `{sync_command(as_of, config)}` again to complete the day"
        )
    return line


def unfinished_load(as_of: dt.datetime, config: str | None = None) -> str:
    """The line for a run whose load began and never finished (``meta.runs.status`` still ``loading``)."""
    return f"steps: load not finished: run `{sync_command(as_of, config)}` again to complete the day"


def _since(
    con: duckdb.DuckDBPyConnection,
    table: str,
    at: str,
    run_id: str,
    loaded_at: dt.datetime | None,
    where: str = "TRUE",
    added_later: bool = False,
) -> bool:
    """Whether ``table`` holds a row of ``run_id`` written at or after ``loaded_at`` (its column ``at``).
    ``added_later``: a table from before the column, or a row without it, counts as written after."""
    if not has_table(con, table):
        return False
    when = "NULL" if added_later and at not in existing_columns(con, table) else f"max({at})"
    rows, newest = con.execute(
        f"SELECT count(*), {when} FROM {table} WHERE run_id = ? AND {where}", [run_id]
    ).fetchall()[0]
    return bool(rows) and (newest is None or loaded_at is None or newest >= loaded_at)


def _published(
    settings: Settings,
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    as_of: dt.datetime,
    loaded_at: dt.datetime | None,
) -> bool | None:
    reports = QualityConfig.from_mapping(settings.quality).reports_root(settings.warehouse_path)
    snapshot = settings.snapshots_dir / f"{run_id}{SUFFIX}" if settings.snapshots_dir else None
    traces = [p for p in (reports / run_id / "run.html", snapshot) if p is not None and p.is_file()]
    if any(loaded_at is None or _written(p) >= loaded_at for p in traces):
        return True
    if traces:  # written for an earlier load of the day
        return False
    newest = con.execute("SELECT max(as_of) FROM meta.runs WHERE status = 'loaded'").fetchall()[0][0]
    past = newest is not None and as_of < newest - dt.timedelta(days=settings.retention.reports_days)
    return None if past else False


def _written(path) -> dt.datetime:
    return dt.datetime.fromtimestamp(path.stat().st_mtime, dt.UTC)
