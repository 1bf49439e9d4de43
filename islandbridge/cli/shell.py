"""``islandbridge shell``: an analyst's read-only SQL prompt on the current snapshot.

The DuckDB Python package is the client (no separate ``duckdb`` program is needed, and it always matches
the file format the pipeline writes). The snapshot is opened read-only with external access off and the
configuration locked, so a statement can neither write the snapshot, nor read or write other files, nor
turn those settings back on; only the snapshot's own device-event folder stays readable (its
``core.device_events`` view reads Parquet files there).

A statement ends with ``;`` and may span lines. Dot commands: ``.tables`` lists the tables and views,
``.help`` says this, ``.quit`` (or end of input) leaves. Without a terminal the statements are read from
standard input, e.g. ``echo "SELECT count(*) FROM core.persons;" | islandbridge shell``.
"""

from __future__ import annotations

import bisect
import itertools
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import TextIO

import duckdb

from islandbridge import storage
from islandbridge.cli.common import command, local_time, settings_of
from islandbridge.config import DuckDBResources
from islandbridge.delivery.snapshot import CURRENT, EVENTS_FOLDER
from islandbridge.errors import ConfigError, count
from islandbridge.privacy.masking import mask_typed

PROMPT, MORE = "ib> ", "..> "
HELP = (
    "End each statement with ';' (it may span lines). .tables lists tables and views; .quit leaves.\n"
    "Times with a time zone are shown in Asia/Shanghai (+08:00), like the run report's.\n"
    "Schemas: core (persons, residency, devices, events …), marts (the department reports), meta "
    "(runs). See docs/analysts.md."
)
TABLES = (
    "SELECT table_schema || '.' || table_name AS name, lower(table_type) AS type "
    "FROM information_schema.tables ORDER BY 1"
)


def register(sub) -> None:
    s = command(
        sub,
        "shell",
        _shell,
        "an interactive read-only SQL prompt on the analysts' current snapshot; times with a time zone "
        "are shown in Asia/Shanghai (+08:00)",
        example='islandbridge shell --config islandbridge.yml\n  echo "SELECT count(*) FROM core.persons;" '
        "| islandbridge shell",
        exits="0 every statement ran, 1 a statement failed, 2 no snapshot or bad configuration",
    )
    s.add_argument("--snapshot", type=Path, help="a snapshot file (default: <snapshots dir>/current.duckdb)")
    s.add_argument("--max-rows", type=int, default=40, help="rows to print per result (default: 40)")


def open_snapshot(path: Path, resources: DuckDBResources | None = None) -> duckdb.DuckDBPyConnection:
    """``path`` opened read-only, bounded by ``resources`` (``settings.duckdb``), external access off (but
    its events folder) and the settings locked."""
    if not path.exists():
        raise ConfigError(f"no snapshot at {path}: run a sync (or `islandbridge snapshot publish`) first")
    target = path.resolve()
    events = target.parent / EVENTS_FOLDER
    try:
        con = storage.connect(str(target), read_only=True, resources=resources)
        if events.is_dir():
            con.execute("SET allowed_directories = ?", [[str(events) + "/"]])
        con.execute("SET enable_external_access = false")
        con.execute("SET lock_configuration = true")
    except duckdb.Error as exc:
        raise ConfigError(f"cannot open the snapshot {path}: {exc}") from None
    return con


def statements(lines: Iterable[str]) -> Iterator[str]:
    """Whole statements (ending in ``;``, a comment after it allowed) and dot commands out of input lines;
    comment-only lines between statements are left out."""
    pending: list[str] = []
    for line in lines:
        stripped = line.strip()
        if not pending and stripped.startswith("."):
            yield stripped
            continue
        if not pending and not has_code(line):
            continue
        pending.append(line.rstrip("\n"))
        text = "\n".join(pending)
        if (end := statement_end(text)) is not None:
            yield from _each(text[: end + 1])  # a comment after the ';' left out
            pending = []
    if pending and has_code("\n".join(pending)):
        yield "\n".join(pending).strip()


def _each(text: str) -> Iterator[str]:
    """The statements of ``text`` (ending in ``;``) one by one, cut at each ``;`` DuckDB reads as one: two
    on a line are two results (given at once, DuckDB ran both and returned the last one's only)."""
    start = 0
    for at, kind in _code(text):
        if kind.endswith("operator") and text[at] == ";":
            if has_code(text[start:at]):
                yield text[start : at + 1].strip()
            start = at + 1


def _code(text: str) -> list[tuple[int, str]]:
    """DuckDB's tokens of ``text`` but comments: (position, kind). DuckDB's own tokenizer, so strings
    across lines, ``$$`` strings and ``/* */`` comments are read as DuckDB reads them. It gives byte
    offsets into the UTF-8 text: a string or a name in Chinese before a token moves it, so they are
    turned into positions in ``text``."""
    tokens = [(at, str(kind)) for at, kind in duckdb.tokenize(text) if not str(kind).endswith("comment")]
    if text.isascii():
        return tokens
    ends = list(itertools.accumulate((len(c.encode("utf-8")) for c in text), initial=0))
    return [(bisect.bisect_left(ends, at), kind) for at, kind in tokens]


def has_code(text: str) -> bool:
    """Whether ``text`` holds anything but blanks and comments."""
    return bool(_code(text))


def statement_end(text: str) -> int | None:
    """Where the ``;`` that ends a statement in ``text`` is, or None: its last token, comments aside, is a
    ``;`` (not one inside a string or a comment, nor an unterminated string)."""
    code = _code(text)
    if code and code[-1][1].endswith("operator") and text[code[-1][0]] == ";":
        return code[-1][0]
    return None


def run(
    con: duckdb.DuckDBPyConnection, lines: Iterable[str], out: TextIO, err: TextIO, max_rows: int = 40
) -> int:
    """Run every statement of ``lines``, printing results to ``out`` and errors to ``err``; returns 1 if
    any statement failed, else 0."""
    failed = 0
    for stmt in statements(lines):
        if stmt in (".quit", ".exit", ".q"):
            break
        if stmt == ".help":
            print(HELP, file=out)
            continue
        try:
            rel = con.sql(TABLES if stmt == ".tables" else stmt)
            if rel is not None:
                print(shown(rel.columns, rel.limit(max_rows + 1).fetchall(), max_rows), file=out)
        except Exception as exc:  # noqa: BLE001 - an analyst's typo must never end the session
            failed = 1
            # DuckDB's first line says it, repeating the statement's literals: masked, as `sql` masks them
            first = (str(exc).splitlines() or [type(exc).__name__])[0]
            print(f"error: {mask_typed(first)}", file=err)
        out.flush()
    return failed


def shown(columns: list[str], rows: list[tuple], max_rows: int) -> str:
    """A result as a table: values as DuckDB's Python client gives them (a sum of integers stays an
    integer, a DECIMAL keeps its scale), times with a time zone in Asia/Shanghai, NULL for null; an empty
    result is its header and ``(0 rows)``."""
    import pandas as pd

    if not columns:
        return "(no columns)"
    if not rows:
        return "  ".join(columns) + "\n(0 rows)"
    more = len(rows) > max_rows
    values = [tuple("NULL" if v is None else local_time(v) for v in row) for row in rows[:max_rows]]
    frame = pd.DataFrame(values, columns=list(columns), dtype=object)
    with pd.option_context("display.max_columns", 50, "display.width", 200, "display.max_colwidth", 60):
        text = frame.to_string(index=False)
    return text + ("\n… more rows (add LIMIT / OFFSET)" if more else f"\n({count(len(rows), 'row')})")


def _lines(stdin: TextIO, err: TextIO) -> Iterator[str]:
    """Input lines; on a terminal with prompts (and readline history), else plain lines."""
    if not stdin.isatty():
        yield from stdin
        return
    try:
        import readline  # noqa: F401 - line editing and history for input()
    except ImportError:
        pass
    print(HELP, file=err)
    pending: list[str] = []
    while True:
        try:
            line = input(MORE if pending else PROMPT)
        except EOFError:
            print(file=err)
            return
        except KeyboardInterrupt:
            print("^C", file=err)
            pending = []
            continue
        if not pending and (line.strip().startswith(".") or not has_code(line)):
            yield line
            continue
        pending.append(line)
        if statement_end("\n".join(pending)) is not None:
            pending = []
        yield line


def _shell(args) -> int:
    settings = settings_of(args, with_sources=False)
    path = args.snapshot or settings.snapshots_dir / CURRENT
    con = open_snapshot(path, settings.duckdb)
    try:
        if sys.stdin.isatty():
            print(f"islandbridge shell: {path} (read-only)", file=sys.stderr)
        return run(con, _lines(sys.stdin, sys.stderr), sys.stdout, sys.stderr, args.max_rows)
    finally:
        con.close()
