"""The ``islandbridge`` command: the pipeline's steps and the operator's tools, without a scheduler.

Commands, in the order a run takes them (``islandbridge COMMAND --help`` shows each one's options and
an example):

    sync                   every step for one day, as the DAG runs them
    extract, validate, load, reconcile, build, export, publish
                           one step at a time
    runs                   recent runs and their accounting
    quarantine             rows the connectors or the gate set aside: list, show, replay
    review                 identity pairs the model was unsure of: list, show (masked), decide
    explain                a person's records (masked) and the rule of each link; --changes: key churn
    linkage train          train and save a new linkage model version
    reveal                 a department's identifiers of some persons, for a stated purpose (audited)
    keys                   vault and quarantine keys: status, add, rotate, retire
    snapshot               the analysts' read-only snapshots: list, publish, rollback
    audit verify           the re-identification log's chain, against the lengths and heads recorded
    sql                    one read-only query on the whole warehouse (operators; analysts use shell)
    shell                  an interactive read-only SQL prompt on the analysts' snapshot

The developer tools (``simulate``, ``serve``, ``demo``, ``eval``, ``bench``, ``privacy scan``) join
through the ``islandbridge.commands`` entry point (`islandbridge.devtools.cli`).

Examples:
    islandbridge sync --config islandbridge.yml --as-of 2026-11-20      a day, every step
    islandbridge runs --limit 3                                        what the last runs read and landed
    islandbridge quarantine list --source iot                          rows set aside, and why
    islandbridge review list                                           pairs a person should decide
    islandbridge shell                                                 SQL on the analysts' snapshot

Exit status: 0 success, 2 bad usage or configuration, 3 a retriable source failure (run again later),
4 any other pipeline error, 5 the quality gate stopped the run (nothing was loaded). Errors print one
clear line; ``-v`` (before or after the command) adds the traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from importlib.metadata import entry_points
from typing import NoReturn

import duckdb

from islandbridge.cli import explain, operate, review, shell, steps
from islandbridge.cli.common import VERBOSE
from islandbridge.config import owner_only_files
from islandbridge.errors import IslandbridgeError, RetriableError
from islandbridge.logs import setup_logging
from islandbridge.privacy.masking import mask_typed
from islandbridge.storage import lock_holder

COMMAND_GROUPS = "islandbridge.commands"  # entry-point group: register(sub) of further command groups


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    verbose = getattr(args, "verbose", 0)
    setup_logging(verbose)
    try:
        with owner_only_files():  # the warehouse, WALs, landing and exports it creates are owner-only
            return args.func(args) or 0
    except IslandbridgeError as exc:
        return _fail(verbose, exc, exc.exit_status)
    except duckdb.IOException as exc:
        if (holder := lock_holder(exc)) is None:
            raise
        # a read while a sync writes (sql, quarantine list, review list…): busy, as reveal and publish say
        busy = RetriableError(
            f"the warehouse is in use by a running step ({holder} holds its lock); run the command again "
            "when it has finished"
        )
        return _fail(verbose, busy, busy.exit_status)
    except BrokenPipeError:  # `islandbridge runs | head`: the reader has gone, which is no error of ours
        _quiet_stdout()
        return 1


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so that flushing it at exit does not raise again (Python's own advice for
    SIGPIPE: docs.python.org/3/library/signal.html#note-on-sigpipe)."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


class _Parser(argparse.ArgumentParser):
    """argparse's own errors repeat what was typed (``unrecognized arguments: --as-of 5114…``, ``invalid
    choice: …``): masked as `sql` masks typed text. The subcommands' parsers are of this class too."""

    def error(self, message: str) -> NoReturn:
        super().error(mask_typed(message))


def parser() -> argparse.ArgumentParser:
    """The whole command line: the steps, the operator's commands, then every registered command group."""
    head, _, tail = __doc__.partition("\n\n")
    p = _Parser(
        prog="islandbridge",
        description=head,
        epilog="Examples:" + tail.partition("Examples:")[2],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Its own -v, not the subcommands' shared one: a default set here would reset a -v given before the
    # subcommand (argparse shares a parent's action objects between parsers).
    p.add_argument("-v", "--verbose", action="count", default=0, help=VERBOSE._actions[0].help)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    steps.register(sub)
    operate.register(sub, after_quarantine=(review.register, explain.register))
    shell.register(sub)
    for plugin in sorted(entry_points(group=COMMAND_GROUPS), key=lambda e: e.name):
        plugin.load()(sub)
    return p


def _fail(verbose: int, exc: Exception, code: int) -> int:
    if verbose:
        logging.exception("failed")
    print(f"islandbridge: error: {exc}", file=sys.stderr)
    for note in getattr(exc, "__notes__", ()):  # e.g. which of the sources extracted at once failed
        print(f"islandbridge: ({note})", file=sys.stderr)
    return code
