"""A whole run for one as-of, its steps in the same order as the DAG: `sync`, and `replay` of a loaded day.

`sync` extracts, validates, loads, reconciles and delivers (build, export, publish); a past day synced
after later ones can replay those forward. The steps themselves are `islandbridge.pipeline.steps`,
called through that module (``steps.load``), so a benchmark can time each one.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence
from typing import Any

from islandbridge.config import Clock, Settings, utc_now
from islandbridge.landing import raw
from islandbridge.pipeline import notices, steps

log = logging.getLogger(__name__)


def sync(
    settings: Settings,
    as_of: dt.datetime,
    sources: Sequence[str] | None = None,
    clock: Clock = utc_now,
    *,
    reconcile_identities: bool = True,
    deliver: bool = True,
    replay_forward: bool = False,
) -> dict[str, Any]:
    """Run every step for one as-of, in the same order as the DAG.

    ``reconcile_identities=False`` stops after the load (for measuring or testing reconciliation alone);
    ``deliver=False`` stops after reconciliation (no core model, marts, exports or snapshot).

    A past day can be synced again after later days: it is recomputed exactly as an in-order run
    computed it (identities from the map before it; see `islandbridge.identity.reconcile`), and the
    warehouse's model then holds that day. ``replay_forward=True`` then re-runs every later loaded day
    in order (`replay`: reconcile, build, export, publish — their extracts are already loaded), so the
    warehouse, the exports and the snapshot end exactly where an in-order run ends. Without it, the
    later days are listed under ``later_days`` for the operator (the next run reconciles them in order).
    """
    whole = steps.plan_run(settings) if reconcile_identities and deliver else steps.plan(settings)
    names = list(dict.fromkeys(sources)) if sources else whole  # a source named twice is extracted once
    steps.extract_sources(settings, names, as_of)
    gate = steps.validate(settings, as_of, names, clock)
    summary = steps.load(settings, as_of, names, clock)
    summary["quality"] = gate
    if reconcile_identities:
        summary["identity"] = steps.reconcile(settings, as_of, clock)
        # read once: publish warns of them, and they are replayed or named
        later = notices.later_days(settings, as_of)
        if deliver:
            summary |= _deliver(settings, as_of, clock, warn_later=not replay_forward, later=later)
        if replay_forward and deliver:
            summary["replayed"] = [replay(settings, day, clock) for day in later]
        elif later:
            summary["later_days"] = [raw.run_id_for(day) for day in later]
            if not deliver:
                notices.warn_earlier_day(settings, as_of, later)
    return summary


def replay(settings: Settings, as_of: dt.datetime, clock: Clock = utc_now) -> dict[str, Any]:
    """Re-run the steps after the load for an already loaded day: reconcile, build, export, publish."""
    log.info("replaying %s (already loaded) in order", raw.run_id_for(as_of))
    return {"run_id": raw.run_id_for(as_of), "identity": steps.reconcile(settings, as_of, clock)} | _deliver(
        settings, as_of, clock, warn_later=False
    )


def _deliver(
    settings: Settings,
    as_of: dt.datetime,
    clock: Clock,
    *,
    warn_later: bool,
    later: Sequence[dt.datetime] | None = None,
) -> dict[str, Any]:
    return {
        "warehouse_build": steps.build(settings, as_of),
        "exports": steps.export(settings, as_of, clock),
        "published": steps.publish(settings, as_of, clock, warn_later=warn_later, later=later),
    }
