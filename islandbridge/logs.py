"""Quiet, informative logs: our own steps at INFO, third-party chatter silenced at its source.

Great Expectations logs ~200 ``Skipping registering function …`` lines at INFO when it is imported, and
Airflow, SQLAlchemy and friends log their internals at INFO. ``quiet_third_party`` raises those loggers
to WARNING (their warnings and errors still show); it is called by the command line, by the DAG's tasks
and by the quality gate just before it imports Great Expectations, so a task log carries only what we
say. ``set_verbosity(1)`` (the command line's ``-v``) brings the chatter back.

``timed`` logs one line per step with its count and time: ``extract registry: 4,093 rows in 1.2 s``.
``progress`` wraps a long loop in a tqdm bar on a terminal, and in nothing otherwise.

Example::

    quiet_third_party()
    with timed("extract", "registry") as step:
        step.rows = connector_run()
    for source in progress(sources, desc="load"):
        ...
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import sys
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

T = TypeVar("T")

# Loggers that speak at INFO about their own workings, not about the run. Their WARNING and above pass.
NOISY_LOGGERS = (
    "great_expectations",
    "airflow",
    "sqlalchemy",
    "alembic",
    "httpx",
    "httpcore",
    "fsspec",
    "urllib3",
    "py4j",
    "splink",
    "matplotlib",
)
OURS = "islandbridge"
VERBOSE_ENV = "ISLANDBRIDGE_VERBOSE"  # the DAG passes -v on to its tasks through this variable

LOG_TZ = ZoneInfo("Asia/Shanghai")  # config.LOCAL_TZ, which this module sits below

_verbosity = 0


def set_verbosity(verbose: int) -> None:
    """0: quiet third parties; 1 (``-v``): let them speak at INFO; 2 (``-vv``): debug output too."""
    global _verbosity
    _verbosity = max(0, int(verbose))
    quiet_third_party()


def verbosity_of(environ: Mapping[str, str]) -> int:
    """The verbosity an environment asks for (``ISLANDBRIDGE_VERBOSE=1``); 0 when unset or unreadable."""
    try:
        return max(0, int(environ.get(VERBOSE_ENV, "0") or 0))
    except ValueError:
        return 0


def quiet_third_party() -> None:
    """Set the noisy libraries' loggers to WARNING (or back to NOTSET when verbose). Ours are left to the
    host's configuration (Airflow's, a test's, ``setup_logging``'s).

    Cheap and idempotent: call it before importing a chatty library (a logger's level may be set before
    the library creates it) and at the start of a step.
    """
    for name in NOISY_LOGGERS:
        logging.getLogger(name).setLevel(logging.NOTSET if _verbosity else logging.WARNING)


def setup_logging(verbose: int = 0, stream: Any = None) -> None:
    """For a command-line process: a handler on stderr showing our lines from INFO (DEBUG with ``-vv``)
    and everyone else's from WARNING (INFO with ``-v``); third parties quiet at their source. Leaves a
    root logger that already has handlers (a host application, pytest) as it is, but for the levels of
    the noisy libraries."""
    root = logging.getLogger()
    if not root.handlers:
        handler = logging.StreamHandler(stream or sys.stderr)
        handler.setFormatter(
            _ShanghaiTime("%(asctime)s %(levelname)s %(name)s: %(message)s", "date")
            if verbose
            else _ShanghaiTime("%(asctime)s %(message)s")
        )
        handler.addFilter(_OursOrWarnings(verbose))
        root.addHandler(handler)
        root.setLevel(logging.DEBUG if verbose > 1 else logging.INFO)
    set_verbosity(verbose)


class _ShanghaiTime(logging.Formatter):
    """Log times in Asia/Shanghai with the offset shown (``12:34:19+08:00``; ``-v``: with the date): the
    zone of ``islandbridge runs``, the run report and the exports, whatever the machine's own zone is
    (a server kept in UTC logged ``04:34:19`` for what ``runs`` shows as ``12:34:19+08:00``)."""

    def formatTime(self, record: logging.LogRecord, datefmt: str | None = None) -> str:  # noqa: N802
        shown = dt.datetime.fromtimestamp(record.created, LOG_TZ).isoformat(sep=" ", timespec="seconds")
        return shown if datefmt else shown.partition(" ")[2]


class _OursOrWarnings(logging.Filter):
    """Our records from INFO; other libraries' from WARNING unless verbose."""

    def __init__(self, verbose: int) -> None:
        super().__init__()
        self.verbose = verbose

    def filter(self, record: logging.LogRecord) -> bool:
        ours = record.name == OURS or record.name.startswith(OURS + ".")
        return ours or bool(self.verbose) or record.levelno >= logging.WARNING


@dataclass
class Step:
    """What a running step reports at its end: a row count and any details (``key=value``)."""

    name: str
    rows: int | None = None
    unit: str = "rows"
    details: dict[str, Any] = field(default_factory=dict)


@contextlib.contextmanager
def timed(step: str, subject: str = "", logger: logging.Logger | None = None) -> Iterator[Step]:
    """Log ``<step> <subject>: 4,093 rows in 1.2 s`` when the block ends (nothing if it raises)."""
    quiet_third_party()
    found = Step(" ".join(p for p in (step, subject) if p))
    started = time.perf_counter()
    yield found
    took = time.perf_counter() - started
    parts = [f"{found.rows:,} {found.unit}"] if found.rows is not None else []
    parts += [f"{v:,} {k}" if isinstance(v, int) else f"{k} {v}" for k, v in found.details.items()]
    (logger or logging.getLogger(OURS)).info(
        "%s: %s%s %.1f s", found.name, ", ".join(parts), " in" if parts else "done in", took
    )


def progress(items: Iterable[T], *, desc: str, total: int | None = None, stream: Any = None) -> Iterable[T]:
    """``items`` under a tqdm progress bar when ``stream`` (stderr) is a terminal; ``items`` as is
    otherwise (a log file, a pipe, an Airflow task), so nothing is printed there."""
    out = stream or sys.stderr
    if not (hasattr(out, "isatty") and out.isatty()):
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, total=total, file=out, leave=False, unit="step")
