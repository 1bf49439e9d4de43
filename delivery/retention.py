"""Retention of what runs write outside the warehouse, and the whole prune (``islandbridge prune``).

`prune` applies the ``retention:`` configuration (docs/operations.md, "Retention"): the warehouse and
the vault (`islandbridge.warehouse.retention`), then these folders, by the newest loaded run:

- ``export_days`` — ``exports/<department>/<YYYY-MM-DD>/`` folders older than ``exports_days``;
- ``report_runs`` — the reports root's ``<run_id>/`` folders (quality and run pages) of runs older than
  ``reports_days``;
- ``landing_runs`` — landing-zone run folders up to the newest loaded run: the (emptied) folder of a
  loaded run, and what a failed or stopped extraction left (identifiers in clear: never kept longer);
  and those of a run as of more than a day ahead of ``now`` and of the newest loaded run (an as-of typed
  wrong, ``2030-01-01``: no source has such a day, so it is no pending run, and it would otherwise outlive
  every loaded one; a simulated street whose days lie ahead of the clock keeps its next day's run).

The analysts' snapshots keep their own count (``snapshots.keep``), applied when one is published.
Without ``apply`` nothing changes: the counts say what would go.

Example::

    summary = prune(settings, apply=False, now=utc_now())   # {"horizon_run": ..., "removed": {...}}
"""

from __future__ import annotations

import datetime as dt
import logging
import posixpath
import shutil
from pathlib import Path
from typing import Any

import pyarrow.fs as pafs

from islandbridge.config import LOCAL_TZ, Settings
from islandbridge.landing import raw
from islandbridge.landing.zone import open_root, path_exists
from islandbridge.quality.config import QualityConfig
from islandbridge.warehouse import retention
from islandbridge.warehouse.retention import Window

log = logging.getLogger(__name__)


def prune(settings: Settings, *, apply: bool, now: dt.datetime) -> dict[str, Any]:
    """Apply (``apply``) or preview the retention of ``settings.retention``; returns the window and counts.

    Raises nothing for an empty warehouse (nothing to prune)."""
    if not settings.warehouse_path.is_file():
        return {"applied": apply, "removed": {}}
    with raw.open_warehouse(settings, read_only=not apply) as con:
        win = retention.window(con, settings.retention)
        if win is None:
            return {"applied": apply, "removed": {}}
        events = settings.warehouse_path.parent / "events"
        counts = retention.prune(
            con,
            win,
            settings.retention,
            settings.vault_path,
            events,
            apply=apply,
            resources=settings.duckdb,
        )
        counts |= prune_folders(settings, win, apply=apply, now=now)
        if apply:
            retention.record(con, win, counts, now)
    return {
        "applied": apply,
        "newest_run": win.newest_run,
        "horizon_run": win.horizon_run,
        "rerun_from": _rerun_from(win),
        "removed": counts,
    }


def prune_folders(settings: Settings, win: Window, *, apply: bool, now: dt.datetime) -> dict[str, int]:
    """The export day folders, report folders and landing leftovers retention lets go; counts per item."""
    newest_day = win.newest_as_of.astimezone(LOCAL_TZ).date()
    oldest_export = newest_day - dt.timedelta(days=settings.retention.exports_days)
    exports = [
        day
        for department in _folders(settings.exports_dir)
        for day in _folders(department)
        if _date(day.name) is not None and _date(day.name) < oldest_export
    ]
    oldest_report = win.newest_as_of - dt.timedelta(days=settings.retention.reports_days)
    reports_root = QualityConfig.from_mapping(settings.quality).reports_root(settings.warehouse_path)
    reports = [
        run
        for run in _folders(reports_root)
        if _run_as_of(run.name) is not None and _run_as_of(run.name) < oldest_report
    ]
    if apply:
        for folder in (*exports, *reports):
            shutil.rmtree(folder)
    return {
        "export_days": len(exports),
        "report_runs": len(reports),
        "landing_runs": _landing(settings.landing_url, win.newest_run, _ahead_run(win, now), apply),
    }


# A run as of more than this ahead of the clock is no pending run but a mistyped as-of (module docstring).
_AHEAD = dt.timedelta(days=1)


def _ahead_run(win: Window, now: dt.datetime) -> str:
    """The last run id a pending run may have: a day past the clock, or past the newest loaded run when a
    simulated street's days lie ahead of the clock (its next day's run is pending, not mistyped)."""
    return raw.run_id_for(max(now, win.newest_as_of) + _AHEAD)


def _landing(url: str, newest_run: str, ahead_run: str, apply: bool) -> int:
    """Landing run folders up to ``newest_run`` or after ``ahead_run`` (run ids sort as their as-of)."""
    fs, root = open_root(url)
    if not path_exists(fs, root):
        return 0
    names = [
        (info.path, posixpath.basename(info.path))
        for info in fs.get_file_info(pafs.FileSelector(root))
        if info.type == pafs.FileType.Directory and posixpath.basename(info.path).startswith("ib_")
    ]
    runs = [path for path, name in names if name <= newest_run or name > ahead_run]
    ahead = sorted(name for _, name in names if name > ahead_run)
    if ahead:
        log.warning(
            "landing folders of runs more than a day ahead of now (a mistyped --as-of?) %s: %s",
            "removed" if apply else "would be removed by prune --apply",
            ", ".join(ahead),
        )
    if apply:
        for path in runs:
            fs.delete_dir(path)
    return len(runs)


def _folders(path: Path | None) -> list[Path]:
    return sorted(p for p in Path(path).iterdir() if p.is_dir()) if path and Path(path).is_dir() else []


def _date(name: str) -> dt.date | None:
    try:
        return dt.date.fromisoformat(name)
    except ValueError:
        return None


def _run_as_of(run_id: str) -> dt.datetime | None:
    try:
        return dt.datetime.strptime(run_id, "ib_%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC)
    except ValueError:
        return None


def _rerun_from(win: Window) -> str | None:
    """The first day that can be re-run (the day after the horizon run's), or None: every day can."""
    if win.horizon_as_of is None:
        return None
    return win.horizon_as_of.astimezone(LOCAL_TZ).date().isoformat()
