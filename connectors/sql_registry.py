"""The resident registry (居民信息管理系统): four tables of a MySQL database, read incrementally.

The production database belongs to the neighbourhood committees and must never be written to, locked
for long or read with one unbounded query. So every query here is a keyset page of at most
``chunk_rows`` rows, ordered by ``(gxsj, primary key)`` (by the key alone where no index leads with
``gxsj`` and the window is settled: ``registry_keyset.increment_keyset``, `read_increment`), in its own short read-only transaction, through
a session set read-only on connect (and ``PRAGMA query_only`` on SQLite), each query bounded by
``query_timeout_s`` and the extract by ``deadline_s`` (``registry_session``). A page never ends inside a
group of rows tied on the keyset (``PageReader._end_between_ties``), and one key stands for one row per
run: an exact copy is a duplicate, a conflicting row is quarantined (``registry_rows.one_per_key``).

Per stream:

* ``t_fw``, ``t_jm``, ``t_jm_bq`` carry ``gxsj`` (updated at, local time) and are read incrementally:
  from ``watermark - overlap_s`` up to the run's as-of, so rows committed late with a slightly older
  ``gxsj`` are still seen. Rows re-read inside the overlap whose ``(key, gxsj)`` was already landed are
  counted as duplicates; the state keeps only those marks (the overlap window), never the table.
* ``t_xq`` has no ``gxsj``: a small dimension table, read whole every run in keyset pages; the state keeps
  a short digest per row, so an unchanged row is counted as a duplicate, not landed again.
* Hard deletions: a keys-only keyset scan compares the source's keys with the previous run's key list
  (kept in the state, sorted) and reports the missing ones with ``sink.deleted``.
* Rows the increment cannot read (NULL key or ``gxsj``, a ``gxsj`` that is no time or far in the future,
  a late row whose ``gxsj`` is below the watermark, text that is not UTF-8) are quarantined once with
  their reason, never dropped silently: see ``connectors.registry_rows``.

Values are landed engine-independently: datetimes as ``YYYY-MM-DD HH:MM:SS`` local time, dates as
``YYYY-MM-DD`` and ``CHAR(n)`` values right-trimmed as MySQL returns them, so SQLite, PostgreSQL and
MariaDB copies of one registry land identical text.

Example configuration::

    registry: {kind: sql_registry, url: {env: REGISTRY_URL}, chunk_rows: 5000, overlap_s: 300}
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.exc import (
    ArgumentError,
    NoSuchModuleError,
    SQLAlchemyError,
)

from islandbridge.config import LOCAL_TZ, Secret
from islandbridge.connectors.options import option
from islandbridge.connectors.options import parse_options as parse_connector_options
from islandbridge.errors import FatalSourceError, RetriableError, count, noun

from .base import Connector, ExtractContext, Sink, Stream, declared_stream, register
from .paging import safe_text, storable
from .registry_batch import Page, join_keys, key_parts, newest_stamp, raw_value, read_page, stamp_checks
from .registry_keyset import TIE_ROWS_FACTOR, bindable, increment_keyset, keyset_after, loose
from .registry_rows import (
    CURSOR,
    DUPLICATE,
    TS_FORMAT,
    digest,
    key_text,
    late_rows,
    one_per_key,
    readable_predicate,
    row_problem,
    set_aside_scan,
    stamp_problem,
)
from .registry_session import check_sqlite_file, classify, connect_args, session_setup, statement_started

log = logging.getLogger(__name__)

STATE_VERSION = 1

# Keys and columns as the raw schema declares them (schemas/raw_registry.yml).
STREAMS = tuple(declared_stream("sql_registry", name) for name in ("t_xq", "t_fw", "t_jm", "t_jm_bq"))


# URL query options passed on to the driver that cannot run SQL, read files or weaken the session.
SAFE_URL_QUERY = frozenset(
    {"charset", "sslmode", "ssl_mode", "sslrootcert", "application_name", "mode", "uri"}
)


@dataclass(frozen=True)
class Options:
    """The checked options of one registry source (`connectors.options.parse_options`)."""

    url: sa.URL = option(required=True, check=lambda raw, problems, _: _parse_url(raw, problems))
    chunk_rows: int = option(5000, low=1)
    overlap_s: int = option(300, low=0)
    deletion_scan: bool = option(True)
    retries: int = option(2, low=0)
    connect_timeout_s: int = option(10, low=1)
    query_timeout_s: int = option(300, low=1)
    deadline_s: int = option(3600, low=1)

    @property
    def safe_url(self) -> str:
        return self.url.render_as_string(hide_password=True)


@register
class SqlRegistryConnector(Connector):
    """Reads t_xq, t_fw, t_jm and t_jm_bq from the registry database at option ``url``.

    Options: ``url`` (str or Secret; an SQLAlchemy URL), ``chunk_rows`` (rows per query, 5000),
    ``overlap_s`` (seconds re-read below the watermark, 300), ``deletion_scan`` (true), ``retries``
    (extra attempts per query on a transient failure, 2), ``connect_timeout_s`` (10), ``query_timeout_s``
    (300: the server cancels a longer query) and ``deadline_s`` (3600: no query starts after it).
    Raises ``FatalSourceError`` (credentials, missing database or table) or ``RetriableError``
    (unreachable server) naming the host and database, never the password.
    """

    kind = "sql_registry"
    system = "resident_registry"
    required_options = ("url",)

    def __init__(self, settings) -> None:
        super().__init__(settings)
        self.opts = parse_options(self.name, self.options)

    def streams(self) -> Sequence[Stream]:
        return STREAMS

    def describe(self) -> str:
        return f"{self.name} ({self.kind} {self.opts.safe_url})"

    def extract(self, ctx: ExtractContext) -> Mapping[str, Any]:
        upper = local_text(ctx.as_of)
        self.now = dt.datetime.now(dt.UTC)
        # a window that ended before the read began (by more than the overlap that absorbs the clocks'
        # skew): an edit made during the read falls after it, so the pages may follow the key
        self.settled = window_settled(ctx.as_of, self.now, self.opts.overlap_s)
        old = ctx.state.get("streams", {}) if ctx.state.get("version") == STATE_VERSION else {}
        reader = PageReader.open(self.opts)
        try:
            reader.check_columns(STREAMS)
            states = {
                s.name: self._extract_stream(reader, s, old.get(s.name, {}), upper, ctx.sink) for s in STREAMS
            }
        finally:
            reader.close()
        return {"version": STATE_VERSION, "streams": states}

    def _extract_stream(
        self, reader: PageReader, stream: Stream, old: Mapping[str, Any], upper: str, sink: Sink
    ) -> dict[str, Any]:
        aside, aside_keys = set_aside_scan(
            reader, stream, old.get("set_aside", []), self.now, sink, normalise
        )
        if CURSOR not in stream.columns:
            return {**read_snapshot(reader, stream, old, sink, self.opts.deletion_scan), "set_aside": aside}
        before, watermark = old.get("keys"), old.get("watermark")
        read_keys: set[str] | None = set() if self.opts.deletion_scan and before and watermark else None
        state = read_increment(
            reader, stream, old, upper, self.opts.overlap_s, sink, read_keys, settled=self.settled
        )
        state["set_aside"] = aside
        if self.opts.deletion_scan:
            state["keys"] = scan_deletions(reader, stream, before, sink)
            if read_keys is not None:
                missed = sorted(set(state["keys"]) - set(before) - read_keys - aside_keys)
                low = shift(watermark, self.opts.overlap_s)
                late_rows(reader, stream, missed, low, sink, normalise)
        log.debug("%s %s: watermark %s", self.name, stream.name, state["watermark"])
        return state


def parse_options(name: str, options: Mapping[str, Any]) -> Options:
    """Check every option at once; ``ConfigError`` lists all problems (never the URL's password)."""
    return parse_connector_options(Options, name, "sql_registry", options)


def _parse_url(value: Any, problems: list[str]) -> sa.URL | None:
    text = value.reveal() if isinstance(value, Secret) else value
    if not isinstance(text, str) or not text:
        problems.append("url must be an SQLAlchemy URL (a string or {env: NAME})")
        return None
    try:
        url = sa.make_url(text)
    except (ArgumentError, ValueError):
        # The parser's message would quote the whole string, password included.
        problems.append("url is not a valid SQLAlchemy URL (dialect+driver://user:***@host/db)")
        return None
    if url.password is not None and not isinstance(value, Secret):
        problems.append(
            "url holds a password written in the configuration; put the whole URL in the secrets file or "
            "the environment, as {env: REGISTRY_URL} or {file: secrets/registry.url}"
        )
        return None
    unsafe = sorted(set(url.query) - SAFE_URL_QUERY)
    if unsafe:  # the query goes to the driver: pymysql's init_command runs any SQL on connect
        problems.append(
            f"url query {noun(len(unsafe), 'option')} {', '.join(unsafe)} {noun(len(unsafe), 'is', 'are')} not allowed; only "
            f"{', '.join(sorted(SAFE_URL_QUERY))} may be given in the URL"
        )
        return None
    try:
        url.get_dialect().import_dbapi()
    except (NoSuchModuleError, ImportError):
        problems.append(f"url names a database driver that is not installed: {url.drivername!r}")
        return None
    return url


# --------------------------------------------------------------------------- values


def local_text(value: dt.datetime) -> str:
    """A datetime as registry text: local (Asia/Shanghai) wall-clock time, to the second."""
    if value.tzinfo is not None:
        value = value.astimezone(LOCAL_TZ).replace(tzinfo=None)
    return value.strftime(TS_FORMAT)


def shift(text: str, seconds: int) -> str:
    return (dt.datetime.strptime(text[:19], TS_FORMAT) - dt.timedelta(seconds=seconds)).strftime(TS_FORMAT)


# --------------------------------------------------------------------------- reading


class PageReader:
    """Runs bounded keyset pages, each in its own short read-only transaction, with bounded retries."""

    def __init__(self, engine: sa.Engine, opts: Options) -> None:
        self.engine, self.opts = engine, opts
        self.fixed: dict[str, set[str]] = {}
        self.keysets: dict[str, tuple[str, ...]] = {}
        self.deadline = time.monotonic() + opts.deadline_s

    @classmethod
    def open(cls, opts: Options) -> PageReader:
        if opts.url.get_backend_name() == "sqlite":
            check_sqlite_file(opts)
        engine = sa.create_engine(
            opts.url, hide_parameters=True, pool_pre_ping=True, connect_args=connect_args(opts)
        )
        event.listen(engine, "connect", session_setup(engine.dialect.name, opts.query_timeout_s))
        if engine.dialect.name == "sqlite":
            event.listen(engine, "before_cursor_execute", statement_started)
        return cls(engine, opts)

    def close(self) -> None:
        self.engine.dispose()

    def check_columns(self, streams: Sequence[Stream]) -> None:
        """Fail before reading if a declared column is missing; note CHAR columns for trimming."""
        for stream in streams:
            found = self._attempt(lambda conn, s=stream: sa.inspect(conn).get_columns(s.name))
            types = {c["name"].lower(): c["type"] for c in found}
            missing = [c for c in stream.columns if c not in types]
            if missing:
                raise FatalSourceError(
                    f"{self.opts.safe_url}: table {stream.name} lacks {noun(len(missing), 'column')} "
                    f"{', '.join(missing)}; expected {', '.join(stream.columns)}"
                )
            self.fixed[stream.name] = {c for c in stream.columns if isinstance(types[c], sa.CHAR)}
            if CURSOR in stream.columns:
                indexed = self._attempt(lambda conn, s=stream: _index_leads(conn, s.name))
                self.keysets[stream.name] = increment_keyset(CURSOR, stream.key_columns, indexed)

    def keyset(self, stream: Stream) -> tuple[str, ...]:
        """The order of the increment's pages (``registry_keyset.increment_keyset``)."""
        return self.keysets.get(stream.name, (CURSOR, *stream.key_columns))

    def pages(
        self,
        table: str,
        columns: Sequence[str],
        order: Sequence[str],
        where: Sequence[sa.ColumnElement[bool]] = (),
    ) -> Iterator[list[sa.Row]]:
        """Yield pages of at most ``chunk_rows`` rows, following the keyset ``order`` to the end."""
        t = sa.table(table, *[sa.column(c) for c in dict.fromkeys([*columns, *order])])
        base = sa.select(*[t.c[c] for c in columns], *[t.c[c] for c in order if c not in columns])
        base = base.where(*[t.c[c].is_not(None) for c in order], *[w(t) for w in where])
        group = base.order_by(*[t.c[c] for c in order])
        base = group.limit(self.opts.chunk_rows)
        after: tuple[Any, ...] | None = None
        while True:
            stmt = base if after is None else base.where(keyset_after([t.c[c] for c in order], after))
            rows = self._attempt(lambda conn, s=stmt: conn.execute(s).fetchall())
            full = len(rows) >= self.opts.chunk_rows
            if full:
                rows, last = self._end_between_ties(rows, order, group, t)
                after = tuple(bindable(last[c]) for c in order)
            if rows:
                yield rows
            if not full:
                return

    def _end_between_ties(
        self, rows: list[sa.Row], order: Sequence[str], group: sa.Select, t: sa.TableClause
    ):
        """A full page cut so that the next one, ``> last``, skips no row.

        The keyset need not be unique (a table without its primary key may hold one row twice): rows
        tied with the page's last one would be skipped. So the page ends before its trailing tie group
        (compared loosely, as a case- and accent-insensitive collation may, so it errs towards a longer
        group, which the next page reads), or, when the whole page is one group, it is the whole group
        read by equality (bounded: a larger group is refused)."""
        tail = loose(rows[-1], order)
        end = len(rows) - 1
        while end > 0 and loose(rows[end - 1], order) == tail:
            end -= 1
        if end > 0:
            return rows[:end], rows[end - 1]._mapping
        cap = TIE_ROWS_FACTOR * self.opts.chunk_rows + 1
        last = rows[-1]._mapping
        ties = group.where(*[t.c[c] == bindable(last[c]) for c in order]).limit(cap)
        found = self._attempt(lambda conn, s=ties: conn.execute(s).fetchall())
        if len(found) >= cap:
            raise FatalSourceError(
                f"{self.opts.safe_url}: table {t.name} holds {cap} or more rows with one "
                f"({', '.join(order)}); they cannot be read in bounded pages. Remove the copies or raise "
                "chunk_rows."
            )
        exact = {tuple(r) for r in found}
        return [*(r for r in rows if tuple(r) not in exact), *found], last

    def _check_deadline(self) -> None:
        if time.monotonic() > self.deadline:
            raise RetriableError(
                f"{self.opts.safe_url}: the extract passed its deadline_s ({self.opts.deadline_s} s) before "
                "reading every table; nothing of this run is kept. Run again later, or raise deadline_s"
            )

    def run(self, work):
        """Run ``work(conn)`` in one short read-only transaction, with the reader's retries."""
        return self._attempt(work)

    def bind(self, text: str) -> Any:
        """A cursor bound: SQLite stores gxsj as text, the servers as DATETIME/TIMESTAMP."""
        if self.engine.dialect.name == "sqlite":
            return text
        return dt.datetime.strptime(text[:19], TS_FORMAT)

    def _attempt(self, work):
        """Run ``work(conn)`` in one short transaction; retry transient failures, classify the rest."""
        attempt = 0
        while True:
            self._check_deadline()
            try:
                with self.engine.connect() as conn, conn.begin():
                    return work(conn)
            except SQLAlchemyError as exc:
                error = classify(exc, self.opts)
                attempt += 1
                if isinstance(error, FatalSourceError) or attempt > self.opts.retries:
                    raise error from None
                log.warning(
                    "%s: transient failure (%s), attempt %d of %d",
                    self.opts.safe_url,
                    type(exc).__name__,
                    attempt,
                    self.opts.retries + 1,
                )
                time.sleep(min(30.0, 2.0 ** (attempt - 1)))


def window_settled(as_of: dt.datetime, now: dt.datetime, overlap_s: int) -> bool:
    """Whether a window ending at ``as_of`` closed more than ``overlap_s`` before ``now`` (see
    `read_increment`). An edit during the read is stamped at least ``overlap_s`` after the window then,
    on the registry's clock too unless it is behind ours by more than ``overlap_s``. A naive ``as_of``
    (no zone) is not judged settled."""
    if as_of.tzinfo is None:
        return False
    return as_of + dt.timedelta(seconds=overlap_s) <= now


def _index_leads(conn: sa.Connection, table: str) -> list[tuple[list[str | None], bool]]:
    """The columns of the table's primary key and of each of its indexes, in index order, each with
    whether it is unique (a primary key is)."""
    inspector = sa.inspect(conn)
    try:
        found = [(inspector.get_pk_constraint(table).get("constrained_columns") or [], True)]
        return found + [
            (i.get("column_names") or [], bool(i.get("unique"))) for i in inspector.get_indexes(table)
        ]
    except NotImplementedError:  # a dialect that cannot list indexes: read as if there were none
        return []


# --------------------------------------------------------------------------- the three ways of reading


def read_increment(
    reader: PageReader,
    stream: Stream,
    old: Mapping[str, Any],
    upper: str,
    overlap_s: int,
    sink: Sink,
    read_keys: set[str] | None = None,
    *,
    settled: bool = False,
) -> dict[str, Any]:
    """Land rows with ``watermark - overlap_s <= gxsj < upper``; return the stream's next state.

    The pages follow ``(gxsj, key…)``, or, for a ``settled`` window (``upper`` passed more than
    ``overlap_s`` before the read began), the order `PageReader.keyset` chose for the table: an edit
    during the read moves its row to a ``gxsj`` after the window then, so the next run reads it.

    ``recent`` marks (``[gxsj, key…]``) of rows landed (or quarantined) inside the overlap make the re-read
    idempotent. A row that cannot be landed (``registry_rows.row_problem``) is quarantined, once, and
    never moves the watermark. The keys read are added to ``read_keys`` when it is given.
    """
    watermark = old.get("watermark")
    recent = {tuple(m) for m in old.get("recent", [])}
    high = reader.bind(upper)
    where = [lambda t: t.c[CURSOR] < high, readable_predicate(reader.engine.dialect.name)]
    if watermark:
        low = reader.bind(shift(watermark, overlap_s))
        where.append(lambda t: t.c[CURSOR] >= low)
    order = reader.keyset(stream) if settled else (CURSOR, *stream.key_columns)
    marks: list[tuple[str, ...]] = []
    floor = ""
    landed: dict[str, int] = {}  # key -> the content hash of the row landed under it in this run
    exact = (CURSOR, *stream.key_columns)  # the row's own order, whatever order its page followed
    for rows in reader.pages(stream.name, stream.columns, order, where):
        sink.read(stream.name, len(rows))
        page = read_page(rows, stream.columns, reader.fixed.get(stream.name, set()), exact, (CURSOR,))
        stamps, page_marks = _land_page(reader, stream, page, recent, sink, read_keys, landed)
        watermark = max([watermark or "", *stamps]) or None
        floor = shift(watermark, overlap_s) if watermark else ""
        marks = [m for m in (*marks, *page_marks(floor)) if m[0] >= floor]
    floor = shift(watermark, overlap_s) if watermark else ""
    kept = sorted({m for m in (*recent, *marks) if m[0] >= floor})
    return {"watermark": watermark, "recent": [list(m) for m in kept]}


def _land_page(
    reader: PageReader,
    stream: Stream,
    page: Page,
    recent: set[tuple[str, ...]],
    sink: Sink,
    read_keys: set[str] | None,
    landed: dict[str, int],
):
    """Land, quarantine or count as duplicates the rows of one page, in columns (``registry_batch``);
    its odd rows row by row. Returns the page's good stamps (``gxsj[:19]``) and a function giving the
    page's marks at or above a floor. A second row under a key already landed in this run (``landed``)
    is a duplicate when it is the same row, else quarantined as a conflict (``one_per_key``).

    The same decisions, in the same order, as one row at a time: a row whose mark is in ``recent`` is a
    duplicate; else one with a ``row_problem`` is quarantined (in page order); else it lands."""
    keys = key_parts(page, stream.key_columns)
    key_texts = join_keys(keys)
    gxsj = page.text(CURSOR)
    repeat = [False] * len(page.positions)
    if recent and len(gxsj):
        seen = pa.array(sorted({m[0] for m in recent}), pa.string())
        for i in pc.indices_nonzero(pc.fill_null(pc.is_in(gxsj, seen), False)).to_pylist():
            repeat[i] = (gxsj[i].as_py(), *(k[i].as_py() for k in keys)) in recent
    ok, problems = stamp_checks(gxsj)
    quarantined: list[tuple[int, str, str, dict[str, Any]]] = []
    taken = list(repeat)  # rows not to land: re-read, or a duplicate or conflict under a key landed now
    for i in pc.indices_nonzero(pc.and_(ok, pc.invert(pa.array(repeat, pa.bool_())))).to_pylist():
        verdict = one_per_key(landed, key_texts[i].as_py(), page.rows[page.positions[i]], stream.key_columns)
        if verdict is DUPLICATE:
            repeat[i] = taken[i] = True
        elif verdict:
            problems[i], taken[i] = verdict, True
    for i, problem in problems.items():
        if not repeat[i]:
            record = normalise(reader, stream, page.rows[page.positions[i]])
            quarantined.append((page.positions[i], key_texts[i].as_py(), problem, storable(record)))
    repeats, odd_fresh, odd_marks, stamps = sum(repeat), [], [], []
    for position in page.odd:
        record = normalise(reader, stream, page.rows[position])
        key = key_text([record[c] for c in stream.key_columns])
        if read_keys is not None:
            read_keys.add(key)
        odd_marks.append(mark_of(stream, record))
        if not stamp_problem(record[CURSOR]):
            stamps.append(record[CURSOR][:19])
        if mark_of(stream, record) in recent:
            repeats += 1
        elif problem := row_problem(stream, record):
            quarantined.append((position, key, problem, storable(record)))
        elif (verdict := one_per_key(landed, key, page.rows[position], stream.key_columns)) is DUPLICATE:
            repeats += 1
        elif verdict:
            quarantined.append((position, key, verdict, storable(record)))
        else:
            odd_fresh.append(record)
    for _, key, problem, record in sorted(quarantined, key=lambda q: q[0]):
        sink.quarantine(stream.name, f"{stream.name}:{key}", problem, record)
    fresh = pc.indices_nonzero(pc.and_(ok, pc.invert(pa.array(taken, pa.bool_()))))
    if len(fresh):
        prefix = pa.scalar(stream.key_prefix or stream.name)
        record_keys = pc.binary_join_element_wise(prefix, key_texts.take(fresh), ":")
        sink.write_batch(stream.name, page.take(fresh), record_keys)
    if odd_fresh:  # a page whose keys or gxsj Arrow cannot render as str does: its rows, as lists
        columns = {c: [r[c] for r in odd_fresh] for c in stream.columns}
        sink.write_batch(stream.name, columns, pa.array(stream.record_keys(odd_fresh), pa.string()))
    sink.duplicate(stream.name, repeats)
    if read_keys is not None:
        read_keys.update(key_texts.to_pylist())
    newest = newest_stamp(gxsj, ok)
    stamps += [newest] if newest else []

    def marks_at_or_above(floor: str) -> list[tuple[str, ...]]:
        near = pc.greater_equal(gxsj, floor) if len(gxsj) else pa.array([], pa.bool_())
        columns = [pc.filter(c, near).to_pylist() for c in (gxsj, *keys)]
        return [*zip(*columns, strict=True), *(m for m in odd_marks if m[0] >= floor)]

    return stamps, marks_at_or_above


def read_snapshot(
    reader: PageReader, stream: Stream, old: Mapping[str, Any], sink: Sink, deletions: bool
) -> dict[str, Any]:
    """Read a small table without ``gxsj`` whole; land new or changed rows; report vanished keys."""
    before: Mapping[str, str] = old.get("rows", {})
    now: dict[str, str] = {}
    for rows in reader.pages(stream.name, stream.columns, stream.key_columns):
        records = [normalise(reader, stream, row) for row in rows]
        sink.read(stream.name, len(records))
        fresh, repeats = [], 0
        for record in records:
            key, mark = key_text([record[c] for c in stream.key_columns]), digest(record)
            now[key] = mark
            if before.get(key) == mark:
                repeats += 1  # unchanged since the last run (landed, or quarantined, then)
            elif problem := row_problem(stream, record):
                sink.quarantine(stream.name, f"{stream.name}:{key}", problem, storable(record))
            else:
                fresh.append(record)
        sink.write(stream.name, fresh)
        sink.duplicate(stream.name, repeats)
    if deletions and before:
        sink.deleted(stream.name, [f"{stream.name}:{k}" for k in sorted(set(before) - set(now))])
    return {"rows": dict(sorted(now.items()))}


def scan_deletions(reader: PageReader, stream: Stream, before: Sequence[str] | None, sink: Sink) -> list[str]:
    """Keys-only keyset scan; keys in the previous scan but gone now are reported as deleted.

    The first scan has nothing to compare with and only records the key list for the next run.
    """
    keys: set[str] = set()
    for rows in reader.pages(stream.name, stream.key_columns, stream.key_columns):
        page = read_page(rows, stream.key_columns, set(), stream.key_columns)
        keys.update(join_keys(key_parts(page, stream.key_columns)).to_pylist())
        keys.update(key_text(tuple(page.rows[i])) for i in page.odd)
    if before is not None:
        gone = sorted(set(before) - keys)
        sink.deleted(stream.name, [f"{stream.name}:{k}" for k in gone])
        if gone:
            log.info("%s: %s no longer in the source", stream.name, count(len(gone), "key"))
    return sorted(keys)


def normalise(reader: PageReader, stream: Stream, row: sa.Row) -> dict[str, Any]:
    fixed = reader.fixed.get(stream.name, set())
    mapping = row._mapping
    return {c: raw_value(mapping[c], c in fixed) for c in stream.columns}


def mark_of(stream: Stream, record: Mapping[str, Any]) -> tuple[str, ...]:
    return (safe_text(str(record[CURSOR])), *(safe_text(str(record[c]).strip()) for c in stream.key_columns))
