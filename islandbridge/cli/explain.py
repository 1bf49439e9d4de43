"""``islandbridge explain``: a person's records (masked) and the rule behind each link; ``--changes``: churn."""

from __future__ import annotations

import getpass
from collections.abc import Mapping
from typing import Any

from islandbridge.cli.common import command, local_time, print_json, settings_of
from islandbridge.config import parse_as_of
from islandbridge.errors import count
from islandbridge.identity import explain
from islandbridge.identity.churn import CHANGES


def register(sub) -> None:
    s = command(
        sub,
        "explain",
        _explain,
        "a person's records (masked) and which rule or match weight joined each link; or, with "
        "--changes, how many person keys each run changed and why",
        example="islandbridge explain resident_registry/t_jm:100004   |   islandbridge explain --changes",
    )
    s.add_argument("target", nargs="?", help="a person key (pk_…), SYSTEM/RECORD_KEY, or a record key")
    s.add_argument("--changes", action="store_true", help="per reconciled run: keys changed, by reason")
    s.add_argument("--as-of", help="with --changes: that day's run only, with the records that changed key")
    s.add_argument("--actor", help="who looks, for the audit log (default: the login name)")
    s.add_argument("--json", action="store_true", help="print JSON")


def _explain(args) -> int:
    as_of = parse_as_of(args.as_of) if args.as_of else None
    settings = settings_of(args, with_sources=False)
    if args.changes:
        shown = explain.changes(settings, as_of)
        text = format_changes
    elif args.target:
        shown = explain.explain_person(settings, args.target, actor=args.actor or getpass.getuser())
        text = format_person
    else:
        raise explain.ExplainError("name a person key or a record, or ask for --changes")
    if args.json:
        print_json(shown)
    else:
        print(text(shown))
    return 0


def format_person(shown: Mapping[str, Any]) -> str:
    lines = [
        f"person {shown['person_key']} (run {shown['run_id']}): {count(len(shown['records']), 'record')}, "
        f"{count(len(shown['links']), 'link')}"
    ]
    if merged := shown.get("merged"):
        lines.append(
            f"  ({merged['from']} was merged into this person by run {merged['run_id']}: "
            "core.person_key_redirects, `explain --changes`)"
        )
    for r in shown["records"]:
        p = r["match_probability"]
        lines.append(
            f"  {_record(r)}  matched_by {r['matched_by']}" + (f" p={p:.4f}" if p is not None else "")
        )
    lines.append("links:" if shown["links"] else "links: none (a person of one record)")
    for link in shown["links"]:
        p = link["match_probability"]
        weight = f" p={p:.4f}" if p is not None and link["rule"] == "probabilistic" else ""
        lines.append(
            f"  {link['left']} ~ {link['right']}  {link['rule']}{weight}  since run {link['since_run']}"
        )
    if shown.get("apart"):
        lines.append("decided apart (`islandbridge review decide … different`):")
    for a in shown.get("apart", []):
        other = a["other"]
        lines.append(
            f"  {a['record']} ≠ {other['system']}/{other['record_key']} (now {other['person_key'] or '-'}): "
            f"different by {a['actor']} at {local_time(a['decided_at'], 'seconds')}, pair {a['pair']}, "
            f"{_APART[a['status']]}" + (f"; note: {a['note']}" if a["note"] else "")
        )
        lines.append(f"    {_record(other)}")
    return "\n".join(lines)


_APART = {
    "apart": "kept apart",
    "pending": "applies at the next reconcile",
    "not_honoured": "NOT honoured: stronger evidence joins them (the reconcile's decisions.conflicts)",
    "absent": "the other record is not in the newest reconcile (gone from the sources, or not there yet)",
    "unknown": "the newest reconcile recorded no decisions (reconciled before they were kept)",
}


def _record(r: Mapping[str, Any]) -> str:
    """One record's key and masked fields, ``-`` for a missing one."""
    fields = [r.get("name"), r.get("id_number"), ", ".join(r.get("phones") or []) or None]
    fields += [r.get("birth_year"), r.get("sex"), r.get("community")]
    flat = "/".join(str(r[f]) for f in ("estate", "building", "unit", "room") if r.get(f))
    return (
        f"{r['system']}/{r['record_key']}  {'  '.join(str(f) if f else '-' for f in fields)}  {flat or '-'}"
    )


def format_changes(shown: Mapping[str, Any]) -> str:
    reasons = [c for c in CHANGES if c != "updated"]
    head = ["run", "persons", "merges", "splits", "retired", "churn", *reasons, "explained", "unexplained"]
    head.append("fields_changed")
    rows = [head]
    for run in shown["runs"]:
        c = run["changes"]
        rows.append(
            [run["run_id"], run["persons"], run["merges"], run["splits"], run["retired"], run["churn"]]
            + [c.get(f"records_{r}", "-") for r in reasons]
            + [c.get("splits_explained", "-"), c.get("splits_unexplained", "-")]
            + [c.get("records_with_changed_fields", "-")]
        )
    width = [max(len(str(r[i])) for r in rows) for i in range(len(head))]
    lines = ["  ".join(str(v).rjust(w) for v, w in zip(r, width, strict=True)) for r in rows]
    lines.append(
        "merges/splits/retired: key events; churn: records whose key changed; new..removed: records by "
        "reason; explained: splits the day's data accounts for; fields_changed: linked records whose "
        "identifying fields changed"
    )
    for r in shown["changed_records"]:
        lines.append(f"  {r['change']:<8} {r['system']}/{r['record_key']}  now {r['person_key'] or '-'}")
    return "\n".join(lines)
