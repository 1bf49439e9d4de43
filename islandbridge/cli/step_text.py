"""The pipeline steps' results as a few lines an operator reads (`islandbridge sync`, `load` …); with
``--json`` the commands print the whole result instead, for programs.

Each function takes the step's result as `islandbridge.pipeline` returns it and gives its lines: counts,
paths and run ids only, as the result holds (never a record).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any

from islandbridge.cli.common import local_time
from islandbridge.errors import count
from islandbridge.identity.review import COMMAND as REVIEW_COMMAND
from islandbridge.landing import raw

JSON_HELP = "print the whole result as JSON (default: a short summary)"


def sync_text(result: Mapping[str, Any]) -> str:
    """A whole day: the load's accounting, then one line per later step, then any later days."""
    lines = [load_text(result)]
    if "quality" in result:
        lines.append(quality_text(result["quality"]))
    if "identity" in result:
        lines.append(identity_text(result["identity"]))
    if "warehouse_build" in result:
        lines += [build_text(result["warehouse_build"]), export_text(result["exports"])]
        lines.append(publish_text(result["published"]))
    for replayed in result.get("replayed", ()):
        lines.append(f"replayed {replayed['run_id']}: " + identity_text(replayed["identity"]))
    if result.get("later_days"):
        lines.append(
            f"later loaded days, reconciled again by the next run: {', '.join(result['later_days'])}"
        )
    return "\n".join(lines)


def load_text(result: Mapping[str, Any]) -> str:
    lines = [
        f"run {result['run_id']}  as of {local_time(_instant(result['as_of']), 'seconds')}",
        raw.format_accounting(result["sources"], indent="  "),
    ]
    for source, found in result.get("references_ready", {}).items():
        if found.get("ready"):
            lines.append(
                f"{source}: {count(found['ready'], 'row')} quarantined for a missing reference now find it "
                f"(`islandbridge quarantine replay {source}`)"
            )
    return "\n".join(lines)


def quality_text(gate: Mapping[str, Any]) -> str:
    quarantined = _total(gate.get("quarantined"))
    warnings = gate.get("warnings") or []
    return (
        f"quality: {count(gate.get('expectations', 0), 'check')} run, {count(len(warnings), 'warning')}"
        + (f" ({', '.join(warnings)})" if warnings else "")
        + f", {count(quarantined, 'row')} set aside by the gate; report {gate.get('report')}"
    )


def identity_text(identity: Mapping[str, Any]) -> str:
    persons, records = (
        count(identity.get("persons", 0), "person"),
        count(identity.get("records", 0), "record"),
    )
    text = (
        f"identity: {persons} from {records}"
        f"; {count(identity.get('merges', 0), 'merge')}, {count(identity.get('splits', 0), 'split')}"
        f"; {count(identity.get('reviews', 0), 'pair')} for review (`{REVIEW_COMMAND}`)"
    )
    if identity.get("caught_up"):
        text += f"; reconciled first: {', '.join(identity['caught_up'])}"
    return text


def build_text(build: Mapping[str, Any]) -> str:
    marts = build.get("marts") or {}
    return (
        f"build: {count(len(build.get('core') or {}), 'core table')}, "
        f"{count(len(marts), 'report')} ({count(sum(marts.values()), 'row')})"
    )


def export_text(exports: Mapping[str, Any]) -> str:
    departments = exports.get("departments") or {}
    parts = [
        f"{name} {count(sum((d.get('reports') or {}).values()), 'row')}" for name, d in departments.items()
    ]
    return (
        f"exports: {exports.get('day')} in {exports.get('exports_dir')}/<department>/: " + ", ".join(parts)
        if parts
        else f"exports: none (no department policy) for {exports.get('day')}"
    )


def publish_text(published: Mapping[str, Any]) -> str:
    text = (
        f"published: snapshot {published.get('snapshot')} (analysts' current: {published.get('current')}); "
        f"run report {published.get('report')}"
    )
    removed = {item: n for item, n in (published.get("retention") or {}).items() if n}
    if removed:
        text += "; retention removed " + ", ".join(f"{item}: {n}" for item, n in removed.items())
    return text


def _total(nested: object) -> int:
    if isinstance(nested, Mapping):
        return sum(_total(v) for v in nested.values())
    return nested if isinstance(nested, int) else 0


def _instant(text: object) -> object:
    return dt.datetime.fromisoformat(text) if isinstance(text, str) else text
