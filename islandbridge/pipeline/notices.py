"""What a run tells the operator beyond its result, as warnings in its log.

- `warn_when_ahead` — a run as of an instant that has not come yet (its reports count silence).
- `later_days` / `warn_earlier_day` — a run of a day before days already loaded, and what to do next.
- `warn_references_ready` — rows quarantined for a missing reference that now find it (a replay loads them).

Advice only: none of these changes the warehouse, and a re-check that fails only warns.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from islandbridge import config
from islandbridge.config import Clock, Settings, utc_now
from islandbridge.delivery.snapshot import current_run
from islandbridge.errors import count, one_line
from islandbridge.landing import raw
from islandbridge.quality.replay import references_ready

log = logging.getLogger(__name__)


def warn_when_ahead(as_of: dt.datetime, clock: Clock = utc_now) -> None:
    """Warn when a run is as of an instant ahead of ``clock`` (an as-of of today: the grid centre's lists
    count the hours until midnight as silence). Not refused: a simulated street may lie ahead of it."""
    now = clock()
    if (ahead := as_of - now) > dt.timedelta(0):
        log.warning(
            "as of %s, %.1f h from now: the day %s has not ended in Asia/Shanghai, so its reports count the "
            "hours until then as silence; for a real street, sync a day that has ended, such as %s",
            as_of.astimezone(config.LOCAL_TZ).isoformat(),
            ahead.total_seconds() / 3600,
            config.local_day(as_of),
            now.astimezone(config.LOCAL_TZ).date() - dt.timedelta(days=1),
        )


def warn_references_ready(settings: Settings, sources: Sequence[str], clock: Clock) -> dict[str, dict]:
    """Re-check the rows earlier runs quarantined only for a missing reference (`quality.replay.
    references_ready`) and say plainly how many now find it, and the command that loads them."""
    try:
        found = references_ready(settings, sources, clock)
    except Exception as exc:  # noqa: BLE001 - advice only: the load has committed and must stand
        log.warning("rows quarantined for a missing reference could not be re-checked: %s", one_line(exc))
        return {}
    for source, counts in found.items():
        if n := counts["ready"]:
            one = n == 1
            log.warning(
                "%s: %s quarantined only for a missing reference now %s it and %s a replay (`islandbridge "
                "quarantine replay %s` loads %s)",
                source,
                count(n, "row"),
                "finds" if one else "find",
                "awaits" if one else "await",
                source,
                "it under its own run" if one else "them under their own runs",
            )
    return found


def later_days(settings: Settings, as_of: dt.datetime) -> list[dt.datetime]:
    """As-ofs of the loaded runs after ``as_of``, oldest first."""
    with raw.open_warehouse(settings, read_only=True) as con:
        rows = con.execute(
            "SELECT as_of FROM meta.runs WHERE status = 'loaded' AND as_of > ? ORDER BY as_of", [as_of]
        ).fetchall()
    return [r[0] for r in rows]


def warn_earlier_day(settings: Settings, as_of: dt.datetime, later: Sequence[dt.datetime]) -> None:
    """Tell the operator, in one warning line, what a run of a day before ``later`` loaded days did and
    what to do next (the DAG's publish task and ``islandbridge sync`` both say it)."""
    day, last = config.local_day(as_of), config.local_day(later[-1])
    runs = sorted({raw.run_id_for(later[0]), raw.run_id_for(later[-1])})
    current = current_run(settings.snapshots_dir)
    kept = f"; the analysts' current snapshot stays at {current}" if current and current > runs[0] else ""
    log.warning(
        "synced %s, a day before %s (%s): its identities, marts and exports are as of %s%s; the later days "
        "are reconciled again, in order and keeping their person keys, by the next run — to do it now: "
        "`islandbridge sync --as-of %s --replay-forward`, or `airflow backfill create --dag-id community_sync "
        "--from-date %sT00:00:00+08:00 --to-date %sT00:00:00+08:00 --reprocess-behavior completed "
        "--max-active-runs 1` (docs/operations.md)",
        raw.run_id_for(as_of),
        count(len(later), "later loaded day"),
        " … ".join(runs),
        day,
        kept,
        day,
        day,
        last + dt.timedelta(days=1),  # a backfill's --to-date: the interval after the last day
    )
