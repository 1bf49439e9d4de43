"""What every command group shares: the ``--config`` and ``-v`` options, settings, as-of and JSON output."""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from islandbridge.config import Settings
from islandbridge.pipeline import load_settings

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
) -> argparse.ArgumentParser:
    """Add subcommand ``name`` running ``func``, with ``-v`` and (``config``) ``--config``; ``example``
    is shown at the end of its ``--help``."""
    epilog = f"example:\n  {example}" if example else None
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
    parser = sub.add_parser(name, help=help, description=help, parents=[VERBOSE])
    return parser.add_subparsers(dest=f"{name}_action", required=True, metavar="ACTION")


def config_args(s: argparse.ArgumentParser) -> None:
    s.add_argument(
        "--config",
        type=Path,
        default=Path(os.environ.get("ISLANDBRIDGE_CONFIG", "islandbridge.yml")),
        help="configuration file (default: $ISLANDBRIDGE_CONFIG or ./islandbridge.yml)",
    )


def settings_of(args: argparse.Namespace, with_sources: bool = True) -> Settings:
    """The settings ``--config`` names; ``with_sources=False`` for commands that read only the warehouse."""
    return load_settings(args.config, environ=os.environ, with_sources=with_sources)


def print_json(value: Any, indent: int | None = 1) -> None:
    print(json.dumps(value, ensure_ascii=False, indent=indent, default=str))
