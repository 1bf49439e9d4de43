"""The pipeline's steps, in the order a run takes them: ``sync`` runs them all, the others one each."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from islandbridge import pipeline
from islandbridge.cli import step_text
from islandbridge.cli.common import AS_OF_HELP, command, print_json, settings_of, source_as_of
from islandbridge.config import parse_as_of
from islandbridge.quality import QualityGateError


def register(sub) -> None:
    s = command(
        sub,
        "sync",
        _sync,
        "run every step for one day: extract, validate, load, reconcile, build, export, publish",
        example="islandbridge sync --config islandbridge.yml --as-of 2026-11-20",
    )
    _as_of_args(s, sources=True)
    s.add_argument("--json", action="store_true", help=step_text.JSON_HELP)
    s.add_argument(
        "--replay-forward",
        action="store_true",
        help="after re-syncing a past day, re-run every later loaded day in order (reconcile, build, export, "
        "publish), so the warehouse ends where an in-order run ends",
    )
    for name, func, text in (
        ("extract", _extract, "extract sources into the landing zone (one task per source)"),
        ("validate", _validate, "run the quality gate over the extracted sources"),
        ("load", _load, "load the extracted sources, pseudonymised, into the warehouse"),
    ):
        s = command(
            sub,
            name,
            func,
            text,
            example=f"islandbridge {name} --as-of 2026-11-20"
            + (" --source registry" if name == "extract" else ""),
        )
        _as_of_args(s, sources=True)
        if name != "extract":  # extract prints one JSON line per source already
            s.add_argument("--json", action="store_true", help=step_text.JSON_HELP)
    for name, func, text in (
        ("reconcile", _reconcile, "link every person-bearing record to a stable person_key"),
        ("build", _build, "build the core model and the department marts"),
        ("export", _export, "write each department's reports, as its policy allows"),
        ("publish", _publish, "publish the analysts' snapshot and the run report"),
    ):
        s = command(sub, name, func, text, example=f"islandbridge {name} --as-of 2026-11-20")
        _as_of_args(s)
        s.add_argument("--json", action="store_true", help=step_text.JSON_HELP)
        if name == "reconcile":
            s.add_argument(
                "--full",
                action="store_true",
                help="normalise every record and score every candidate pair again instead of reusing those "
                "unchanged since the last run (the result is the same; see docs/identity.md)",
            )
        if name == "build":
            s.add_argument(
                "--full",
                action="store_true",
                help="rebuild the residency history from every version instead of the changed keys "
                "(the result is the same; see docs/warehouse.md)",
            )


def _as_of_args(s: argparse.ArgumentParser, sources: bool = False) -> None:
    s.add_argument("--as-of", required=True, help=AS_OF_HELP)
    if sources:
        s.add_argument("--source", action="append", help="limit to these sources (repeatable; default: all)")


def _show(args, result: dict, text) -> int:
    """Print ``result`` as JSON with ``--json``, else its short summary ``text(result)``."""
    if args.json:
        print_json(result)
    else:
        print(text(result))
    return 0


def _sync(args) -> int:
    as_of = source_as_of(args.as_of)
    # without --source, every source's secrets: a missing one fails before any extract
    settings = settings_of(args, with_sources=args.source or True)
    with _gate_result_on_stop(args, lambda gate: _stopped_sync(gate, as_of)):
        result = pipeline.sync(settings, as_of, args.source, replay_forward=args.replay_forward)
    return _show(args, result, step_text.sync_text)


def _stopped_sync(gate: dict, as_of) -> dict:
    """What ``sync --json`` prints on a gate stop: a passed run's summary, as far as it got (``quality``)."""
    return {"run_id": gate["run_id"], "as_of": as_of.isoformat(), "quality": gate}


def _extract(args) -> int:
    as_of = source_as_of(args.as_of)
    settings = settings_of(args, with_sources=args.source or True)
    for source in args.source or pipeline.plan(settings):
        print_json(pipeline.extract(settings, source, as_of), indent=None)
    return 0


def _validate(args) -> int:
    as_of = parse_as_of(args.as_of)
    settings = settings_of(args, with_sources=args.source or True)
    with _gate_result_on_stop(args):
        result = pipeline.validate(settings, as_of, args.source or pipeline.plan(settings))
    return _show(args, result, step_text.quality_text)


@contextmanager
def _gate_result_on_stop(args, shape: Callable[[dict], dict] = lambda gate: gate) -> Iterator[None]:
    """With ``--json``, a quality gate stop prints the gate's result too (``shape``: in the command's own
    output's form), so a script reading it learns what stopped; the stop is raised on, keeping exit 5
    and its message on stderr."""
    try:
        yield
    except QualityGateError as stopped:
        if args.json:
            print_json(shape(stopped.result.to_dict()))
        raise


def _load(args) -> int:
    as_of = parse_as_of(args.as_of)
    settings = settings_of(args, with_sources=args.source or True)
    result = pipeline.load(settings, as_of, args.source or pipeline.plan(settings))
    return _show(args, result, step_text.load_text)


def _reconcile(args) -> int:
    as_of = parse_as_of(args.as_of)
    # the warehouse, the vault and keys.person_key/vault: no source is read, so no source's secret is needed
    result = pipeline.reconcile(settings_of(args, with_sources=False), as_of, full=args.full)
    return _show(args, result, step_text.identity_text)


def _build(args) -> int:
    as_of = parse_as_of(args.as_of)
    result = pipeline.build(settings_of(args, with_sources=False), as_of, full=args.full)
    return _show(args, result, step_text.build_text)


def _export(args) -> int:
    as_of = parse_as_of(args.as_of)
    result = pipeline.export(settings_of(args, with_sources=False), as_of)
    return _show(args, result, step_text.export_text)


def _publish(args) -> int:
    as_of = parse_as_of(args.as_of)
    result = pipeline.publish(settings_of(args, with_sources=False), as_of)
    return _show(args, result, step_text.publish_text)
