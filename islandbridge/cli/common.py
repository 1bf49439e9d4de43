"""What every command group shares: the ``--config`` and ``-v`` options, settings, as-of and JSON output."""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

from islandbridge.config import LOCAL_TZ, Clock, Settings, parse_as_of, utc_now
from islandbridge.errors import ConfigError
from islandbridge.pipeline import load_settings, warn_when_ahead

# -v is accepted before or after the subcommand: each subcommand has it too, defaulting to "not given" so
# that it never resets a -v given before the subcommand.
VERBOSE = argparse.ArgumentParser(add_help=False)
VERBOSE.add_argument(
    "-v",
    "--verbose",
    action="count",
    default=argparse.SUPPRESS,
    help="more logging; -v also shows tracebacks, -vv debug output",
)

# What every command's exit status means (islandbridge --help says it once; each command's --help too).
EXIT_STATUS = (
    "0 success, 2 bad usage or configuration, 3 a retriable source failure (run again later), 4 any "
    "other pipeline error, 5 the quality gate stopped the run (nothing was loaded)"
)

AS_OF_HELP = (
    "the day to sync, in Asia/Shanghai: YYYY-MM-DD means the end of that day (as of midnight "
    "after it); an ISO date-time with a zone means that instant"
)


def command(
    sub,
    name: str,
    func: Callable[[argparse.Namespace], int],
    help: str,
    *,
    config: bool = True,
    example: str | None = None,
    exits: str = EXIT_STATUS,
) -> argparse.ArgumentParser:
    """Add subcommand ``name`` running ``func``, with ``-v`` and (``config``) ``--config``; ``example``
    and the exit statuses (``exits``) are shown at the end of its ``--help``."""
    epilog = (f"example:\n  {example}\n\n" if example else "") + "exit status:\n  " + exits
    parser = sub.add_parser(
        name,
        help=help,
        description=help,
        parents=[VERBOSE],
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    if config:
        config_args(parser)
    parser.set_defaults(func=func)
    return parser


def group(sub, name: str, help: str):
    """A command with subcommands of its own (``keys status``, ``keys rotate`` …); returns their ``sub``."""
    parser = sub.add_parser(
        name,
        help=help,
        description=help,
        parents=[VERBOSE],
        epilog=f"see `islandbridge {name} ACTION --help` for each action's options and an example",
    )
    return parser.add_subparsers(dest=f"{name}_action", required=True, metavar="ACTION")


def at_least(minimum: int) -> Callable[[str], int]:
    """An argparse ``type`` for counts such as ``--limit``: a whole number of at least ``minimum``
    (``runs --limit -1`` as a slice dropped the oldest run, and ``--limit 0`` printed none)."""

    def whole_number(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            value = None
        if value is None or value < minimum:
            raise argparse.ArgumentTypeError(f"expected a whole number of at least {minimum}, got {text!r}")
        return value

    return whole_number


def config_args(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--config",
        type=Path,
        default=_default_config(),
        help="configuration file (default: $ISLANDBRIDGE_CONFIG or ./islandbridge.yml)",
    )


def _default_config() -> Path:
    return Path(os.environ.get("ISLANDBRIDGE_CONFIG", "islandbridge.yml"))


def given_config(args: argparse.Namespace) -> str | None:
    """The ``--config`` a command was given, for the commands it advises to repeat; ``None`` when it is the
    default, which they find by themselves."""
    return None if args.config == _default_config() else str(args.config)


def settings_of(args: argparse.Namespace, with_sources: bool | Collection[str] = True) -> Settings:
    """The settings ``--config`` names; ``with_sources=False`` for commands that read only the warehouse,
    the names of the sources a command touches (``--source``) to need only their secrets. Parse the
    command's other arguments (its as-of) first: a mistyped one is reported before a missing secret.
    A missing file says how to name one."""
    if not Path(args.config).exists():
        raise ConfigError(
            f"configuration file not found: {Path(args.config).resolve()} (name one with --config FILE or "
            "$ISLANDBRIDGE_CONFIG; `make demo` writes var/demo/islandbridge.yml)"
        )
    return load_settings(args.config, environ=os.environ, with_sources=with_sources)


def print_json(value: Any, indent: int | None = 1) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=indent, default=str))


def local_time(value: object, timespec: str = "auto") -> object:
    """A time with a zone as Asia/Shanghai local time (``2026-11-21 00:00:00+08:00``), the zone the run
    report and the exports speak; any other value as it is."""
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(LOCAL_TZ).isoformat(sep=" ", timespec=timespec)
    return value


def source_as_of(text: str, clock: Clock = utc_now) -> dt.datetime:
    """``--as-of`` of a command that reads the sources (`parse_as_of`), with a warning when it lies ahead of
    ``clock`` (`pipeline.warn_when_ahead`)."""
    as_of = parse_as_of(text)
    warn_when_ahead(as_of, clock)
    return as_of
