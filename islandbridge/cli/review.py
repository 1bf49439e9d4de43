"""``islandbridge review``: the identity pairs the model was unsure of — list, show (masked), decide."""

from __future__ import annotations

import getpass
import unicodedata
from collections.abc import Mapping
from typing import Any

from islandbridge.cli.common import at_least, command, group, print_json, settings_of
from islandbridge.errors import count
from islandbridge.identity import review
from islandbridge.identity.clusters import REASONS


def register(sub) -> None:
    rsub = group(
        sub, "review", "identity pairs to review: list, show (masked), decide same person or different"
    )
    s = command(
        rsub,
        "list",
        _list,
        "the newest (or given) reconciled run's review pairs: id, records, probability, reason, decided?",
        config=True,
        example="islandbridge review list --reason below_threshold --limit 20",
    )
    s.add_argument("--run", help="a reconciled run id (default: the newest)")
    s.add_argument(
        "--reason",
        choices=REASONS,
        metavar="REASON",
        help=f"only pairs held back for it: {', '.join(REASONS)}",
    )
    s.add_argument(
        "--limit",
        type=at_least(0),
        default=50,
        help="pairs to print, most probable first (default: 50; 0: all)",
    )
    s.add_argument("--open", action="store_true", help="only pairs nobody has decided yet")
    s.add_argument("--json", action="store_true", help="print JSON")
    s = command(
        rsub,
        "show",
        _show,
        "both records of a pair side by side, masked, with the other records of each person (audited)",
        example="islandbridge review show 3f9a0c2b1d",
    )
    s.add_argument("id", help="a pair id from `review list`, or SYSTEM/RECORD_KEY~SYSTEM/RECORD_KEY")
    s.add_argument("--actor", help="who looks, for the audit log (default: the login name)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s = command(
        rsub,
        "decide",
        _decide,
        "decide a pair: the same person or different people; every later reconcile applies it",
        example='islandbridge review decide 3f9a0c2b1d different --note "母女同名, 出生年不同"',
    )
    s.add_argument("id", help="a pair id from `review list`, or SYSTEM/RECORD_KEY~SYSTEM/RECORD_KEY")
    s.add_argument("decision", choices=review.DECISIONS)
    s.add_argument("--note", help="why, without identifiers (a run of six or more digits is refused)")
    s.add_argument("--actor", help="who decides (default: the login name)")
    s.add_argument("--json", action="store_true", help="print JSON")
    s = command(
        rsub,
        "withdraw",
        _withdraw,
        "take back the decision on a pair: from the next reconcile the model and the rules decide it again",
        example='islandbridge review withdraw 3f9a0c2b1d --note "核实有误"',
    )
    s.add_argument("id", help="a decided pair's id, or SYSTEM/RECORD_KEY~SYSTEM/RECORD_KEY")
    s.add_argument("--note", help="why, without identifiers (a run of six or more digits is refused)")
    s.add_argument("--actor", help="who withdraws it (default: the login name)")
    s.add_argument("--json", action="store_true", help="print JSON")


def _list(args) -> int:
    listed = review.list_pairs(
        settings_of(args, with_sources=False),
        run_id=args.run,
        reason=args.reason,
        limit=args.limit,
        open_only=args.open,
    )
    if args.json:
        print_json(listed)
    else:
        print(format_list(listed))
    return 0


def _show(args) -> int:
    shown = review.show_pair(
        settings_of(args, with_sources=False), args.id, actor=args.actor or getpass.getuser()
    )
    if args.json:
        print_json(shown)
    else:
        print(format_pair(shown))
    return 0


def _decide(args) -> int:
    settings = settings_of(args, with_sources=False)
    actor = args.actor or getpass.getuser()
    _print(args, review.decide(settings, args.id, args.decision, actor=actor, note=args.note))
    return 0


def _withdraw(args) -> int:
    settings = settings_of(args, with_sources=False)
    _print(args, review.withdraw(settings, args.id, actor=args.actor or getpass.getuser(), note=args.note))
    return 0


def _print(args, decided: Mapping[str, Any]) -> None:
    if args.json:
        print_json(decided)
    else:
        print(format_decision(decided))


# -- text ----------------------------------------------------------------------------


def format_list(listed: Mapping[str, Any]) -> str:
    lines = [
        f"run {listed['run_id']}: {count(listed['pairs'], 'pair')} to review, {listed['open']} open; "
        f"listed {min(len(listed['rows']), listed['listed'])} of {listed['listed']}"
    ]
    for r in listed["rows"]:
        p = "   -  " if r["match_probability"] is None else f"{r['match_probability']:.3f}"
        status = f"decided {r['decided']}" if r["decided"] else "open"
        lines.append(
            f"{r['id']}  {p}  {r['reason']:<20}  {'/'.join(r['left'])}  ~  {'/'.join(r['right'])}  [{status}]"
        )
    if listed["rows"]:
        lines.append(
            "next: `islandbridge review show ID`, then `islandbridge review decide ID same|different` "
            "(`review withdraw ID` takes a decision back)"
        )
    return "\n".join(lines)


def format_decision(decided: Mapping[str, Any]) -> str:
    """What `review decide` or `review withdraw` recorded, and when it takes effect."""
    pair = f"pair {decided['pair']} ({decided['left']} ~ {decided['right']})"
    if "withdrawn" in decided:
        head = f"withdrew the decision {decided['withdrawn']} on {pair}"
    else:
        replaces = f", replacing {decided['replaces']}" if decided["replaces"] else ""
        head = f"decided {pair} {decided['decision']}{replaces}"
    return f"{head}\napplies {decided['applies']}"


def format_pair(shown: Mapping[str, Any]) -> str:
    """Both records side by side, then the other records of each side's person."""
    left, right = shown["left"], shown["right"]
    p = shown["match_probability"]
    head = [
        f"pair {shown['pair']} (run {shown['run_id']}): probability {'-' if p is None else f'{p:.3f}'}, "
        f"reason {shown['reason'] or '-'}; {'one person' if shown['same_person_now'] else 'two persons'} now",
    ]
    if shown["names"]:
        head.append(f"names: {shown['names']}")
    if shown["decided"]:
        d = shown["decided"]
        head.append(
            f"decided {d['decision']} by {d['actor']} at {d['at']}" + (f": {d['note']}" if d["note"] else "")
        )
    rows = [("", "left", "right"), ("record", _ref(left), _ref(right))]
    rows += [(f, _text(left.get(f)), _text(right.get(f))) for f in review.SHOWN]
    rows.append(("person_key", _text(left["person_key"]), _text(right["person_key"])))
    width = [max(_width(r[i]) for r in rows) for i in range(2)]
    table = [f"{_pad(a, width[0])}  {_pad(b, width[1])}  {c}".rstrip() for a, b, c in rows]
    others = []
    for label, side in (("left", left), ("right", right)):
        others.append(f"other records of the {label} person: {len(side['other_records'])}")
        others += [
            f"  {_ref(o)}  {_text(o.get('name'))}  {_text(o.get('birth_year'))}  {_text(o.get('sex'))}  "
            f"{_text(o.get('id_number'))}  {_text(o.get('phones'))}"
            for o in side["other_records"]
        ]
    return "\n".join([*head, "", *table, "", *others])


def _ref(record: Mapping[str, Any]) -> str:
    return f"{record['system']}/{record['record_key']}" + (" (absent)" if record.get("absent") else "")


def _text(value: object) -> str:
    if value is None or value == []:
        return "-"
    return ", ".join(value) if isinstance(value, list) else str(value)


def _width(text: str) -> int:
    return sum(2 if unicodedata.east_asian_width(c) in "WF" else 1 for c in text)


def _pad(text: str, width: int) -> str:
    return text + " " * (width - _width(text))
