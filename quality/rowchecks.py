"""Row-level checks in one DuckDB pass: every failing row of every check, by record key.

Great Expectations returns at most a sample of the failing rows (200 at most, 20 by default), and its
pandas engine is slow on millions of rows. So each check of a suite is also a SQL predicate, and one
pass over the landed rows computes, for every row, the derived values the checks need (parsed dates,
ID and phone validity, whether a referenced key exists) and one flag per check. From that pass come the
counts per check, a few record keys per failing check, and *every* row that fails a ``row`` check,
with the list of checks it failed — the quarantine. GX then validates the same suite on the same
derived frame (``suites``) and its counts must agree with these (see ``gate``).

Predicates mirror GX's semantics: map checks ignore NULLs (``not_null`` excepted), ``unique`` flags
every copy of a repeated value, ``pair_equal`` ignores rows where both values are missing.

Example::

    out = run_row_checks(con, "landed", table, table.suite, CheckContext(as_of), refs={"house_exists": "ref_0"})
    out.counts["zt_known"].unexpected_count
    out.failing          # every row failing a row check: raw columns, _record_key, expectations_failed
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace

import duckdb
import numpy as np
import pyarrow as pa
import pyarrow.dataset as pads

from islandbridge.config import LOCAL_TZ
from islandbridge.connectors.iot_clock import read_late
from islandbridge.landing.zone import RECORD_KEY
from islandbridge.privacy.scrub import scrub
from islandbridge.quality.errors import QualityCheckBrokenError
from islandbridge.schemas import Check, TableSchema

LANDED = "_rc_landed"
ROW = "_row"
SAMPLE_KEYS = 10
TOP_VALUES = 5
# Kinds whose GX expectation reads a value derived in SQL rather than the raw column.
DERIVED_KINDS = (
    "date_between",
    "date_format",
    "epoch_ms_between",
    "number_between",
    "id_valid",
    "phone_valid",
    "no_identifier",
    "exists_in",
)
# Kinds whose derived value the project's own Python judges, once per distinct value.
PYTHON_KINDS = ("id_valid", "phone_valid", "no_identifier")
_BOUND = re.compile(r"^(as_of|arrival)(?:([+-])(\d+)d)?$")
_EPOCH_MS = r"-?[0-9]{1,15}"


@dataclass(frozen=True)
class CheckContext:
    """What checks are relative to: the run's as-of instant, and for a log read after it, when the part
    read arrived as its connector estimated it (``reference_ms`` in the stream's state; the ``arrival``
    bound is that when it lies more than an hour after the as-of, else the as-of), and the clock's reading
    when the gate ran (``now``: an event log's volume is measured up to it, `tablechecks.flow`)."""

    as_of: dt.datetime
    arrival_ms: int | None = None
    now: dt.datetime | None = None

    def for_state(self, state: object) -> CheckContext:
        """This context with the ``arrival`` of a stream's landed state (``{"reference_ms": epoch ms}``)."""
        ms = state.get("reference_ms") if isinstance(state, dict) else None
        return replace(self, arrival_ms=ms) if type(ms) is int else self


@dataclass(frozen=True)
class CheckCount:
    element_count: int
    nonnull_count: int
    unexpected_count: int

    @property
    def success_ratio(self) -> float:
        return 1.0 if self.nonnull_count == 0 else 1 - self.unexpected_count / self.nonnull_count


@dataclass
class RowCheckOutcome:
    rows: int
    counts: dict[str, CheckCount]
    samples: dict[str, list[str]] = field(default_factory=dict)
    top_values: dict[str, list[tuple[str, int]]] = field(default_factory=dict)
    failing: pa.Table | None = None
    frame: pa.Table | None = None


def derived_name(check: Check) -> str:
    """The column holding a check's derived value, in the DuckDB pass and the GX frame."""
    return f"{check.id}__value"


def bound(text: object, as_of: dt.datetime, utc: bool, arrival_ms: int | None = None) -> object:
    """A check bound: a number, a date (``'2000-01-01'``), ``as_of[+-Nd]`` or ``arrival[+-Nd]`` (``arrival``
    when the log was read more than an hour after the as-of, else the as-of), as a naive datetime in the column's own clock (local time, or UTC for
    ``tz: utc`` and epoch columns)."""
    if isinstance(text, (int, float)):
        return text
    match = _BOUND.match(str(text))
    if match:
        days = int(match[3] or 0) * (-1 if match[2] == "-" else 1)
        late = match[1] == "arrival" and read_late(as_of, arrival_ms)  # the connector's rule
        base = dt.datetime.fromtimestamp(arrival_ms / 1000, dt.UTC) if late else as_of
        moment = base + dt.timedelta(days=days)
        return moment.astimezone(dt.UTC if utc else LOCAL_TZ).replace(tzinfo=None)
    return dt.datetime.fromisoformat(str(text))


def check_bounds(check: Check, ctx: CheckContext) -> tuple[object, object]:
    utc = check.kind == "epoch_ms_between" or check.params.get("tz") == "utc"
    return (
        bound(check.params["min"], ctx.as_of, utc, ctx.arrival_ms),
        bound(check.params["max"], ctx.as_of, utc, ctx.arrival_ms),
    )


def run_row_checks(con: duckdb.DuckDBPyConnection, rows: pa.Table, *args, **options) -> RowCheckOutcome:
    """Evaluate every row-level check over ``rows`` (landed rows: text columns + ``_record_key``); the
    other arguments as `check_landed`'s.

    The rows stay in Arrow; DuckDB scans them in place and keeps only row numbers, derived values and
    flags. For a stream too large to hold in Arrow, `land` then `check_landed` instead.
    """
    con.register(LANDED, rows.append_column(ROW, pa.array(np.arange(rows.num_rows, dtype=np.int64))))
    try:
        return check_landed(con, rows, *args, **options)
    finally:
        con.unregister(LANDED)


def land(con: duckdb.DuckDBPyConnection, dataset: pads.Dataset, columns: Sequence[str]) -> int:
    """Copy ``columns`` of ``dataset``'s rows, batch by batch and numbered in ``ROW`` in the dataset's order,
    into the DuckDB temp table ``LANDED``; returns the number of rows. DuckDB holds them under its memory
    limit and spills, where the whole stream as an Arrow table need not fit (the 19.3 M device events of a
    300,000-resident street are ~5 GiB of text). Columns that are all NULL in Arrow are copied as text:
    the checks read them as they would read an untyped NULL."""
    # the default read-ahead decodes up to 64 batches ahead: ~0.3 GiB more at 19 M events, no faster here
    reader = dataset.scanner(columns=list(columns), batch_readahead=2, fragment_readahead=1).to_reader()
    fields = [pa.field(f.name, pa.string()) if pa.types.is_null(f.type) else f for f in reader.schema]
    schema = pa.schema([*fields, pa.field(ROW, pa.int64())])
    count = 0

    def numbered():
        nonlocal count
        for batch in reader:
            arrays = [a.cast(pa.string()) if pa.types.is_null(a.type) else a for a in batch.columns]
            yield pa.record_batch(
                [*arrays, pa.array(np.arange(count, count + batch.num_rows))], schema=schema
            )
            count += batch.num_rows

    con.register("_rc_stream", pa.RecordBatchReader.from_batches(schema, numbered()))
    try:
        con.execute(f"CREATE OR REPLACE TEMP TABLE {LANDED} AS SELECT * FROM _rc_stream")
    finally:
        con.unregister("_rc_stream")
    return count


def check_landed(
    con: duckdb.DuckDBPyConnection,
    raw: pa.Table | pads.Dataset,
    table: TableSchema,
    checks: Sequence[Check],
    ctx: CheckContext,
    refs: Mapping[str, str],
    *,
    want_frame: bool = True,
    gx_columns: Iterable[str] = (),
) -> RowCheckOutcome:
    """Evaluate every row-level check of ``checks`` over the rows already in DuckDB as ``LANDED`` (the
    columns the checks read, and ``ROW``: the row's position in ``raw``, which gives the failing rows'
    every column and the GX frame).

    ``refs`` names, per ``exists_in`` check, a relation with one column ``k`` of the keys that exist.
    Raises ``QualityCheckBrokenError`` if a check's SQL fails: a broken check, never bad data.
    """
    checks = [c for c in checks if c.is_row_level]
    maps: dict[str, str] = {}
    try:
        _register_python_derived(con, checks, maps, spreadsheet=table.spreadsheet)
        con.execute(_pass_sql(table, checks, ctx, refs, maps))
        counts = _counts(con, checks)
        out = RowCheckOutcome(con.execute(f"SELECT count(*) FROM {LANDED}").fetchall()[0][0], counts)
        _samples(con, table, checks, out)
        out.failing = _failing(con, raw, table, checks)
        if want_frame:
            out.frame = _frame(con, raw, checks, gx_columns)
    except duckdb.Error as exc:
        raise QualityCheckBrokenError(
            f"the SQL of a check on {table.connector}.{table.stream} failed ({type(exc).__name__}: "
            f"{str(exc).splitlines()[0][:300]}); this is a broken check, not bad data: fix its definition "
            f"in schemas/ (checks: {', '.join(c.id for c in checks)})"
        ) from None
    finally:
        for name in maps.values():
            con.unregister(name)
        con.execute("DROP TABLE IF EXISTS _checked")
    return out


# --------------------------------------------------------------------------- the pass


def _pass_sql(
    table: TableSchema,
    checks: Sequence[Check],
    ctx: CheckContext,
    refs: Mapping[str, str],
    maps: Mapping[str, str],
) -> str:
    """One CREATE TABLE: per row its number, record key, derived values, a flag per check, and the raw
    values that reports may show (``pii: none`` columns of in_set/regex checks)."""
    joins = "".join(
        f" LEFT JOIN {maps[c.id]} ON l.{q(c.column)} = {maps[c.id]}.v" for c in checks if c.id in maps
    )
    shown = [c.column for c in checks if _shows_values(table, c)]
    keep = [
        ROW,
        RECORD_KEY,
        *dict.fromkeys(x for c in checks for x in c.columns if c.kind not in DERIVED_KINDS),
    ]
    derived = [
        f"{_derived_sql(c, ctx, refs, maps)} AS {q(derived_name(c))}"
        for c in checks
        if c.kind in DERIVED_KINDS
    ]
    flags = [f"coalesce({_flag_sql(c, ctx, n)}, false) AS __f{n}" for n, c in enumerate(checks)]
    dups = "".join(f", {_dup_cte(c, n)}" for n, c in enumerate(checks) if c.kind == "unique")
    inner = ", ".join([*(f"l.{q(x)}" for x in dict.fromkeys([*keep, *shown])), *derived])
    return (
        f"CREATE OR REPLACE TEMP TABLE _checked AS WITH d AS (SELECT {inner} FROM {LANDED} l{joins}){dups} "
        f"SELECT d.*{''.join(', ' + f for f in flags)} FROM d"
    )


def _shows_values(table: TableSchema, c: Check) -> bool:
    return c.kind in ("in_set", "regex") and table.pii(c.column) == "none"


def _dup_cte(c: Check, n: int) -> str:
    """The values of a ``unique`` check's columns that occur more than once (hash aggregate, not a window)."""
    cols = ", ".join(q(x) for x in c.params["columns"])
    present = " OR ".join(f"{q(x)} IS NOT NULL" for x in c.params["columns"])
    return f"_dup{n} AS (SELECT {cols} FROM {LANDED} WHERE {present} GROUP BY ALL HAVING count(*) > 1)"


def _derived_sql(c: Check, ctx: CheckContext, refs: Mapping[str, str], maps: Mapping[str, str]) -> str:
    col = f"l.{q(c.column)}"
    if c.kind in ("date_between", "date_format"):
        parsed = f"try_strptime({col}, {_list_literal(c.params['formats'])})"
        if c.kind == "date_between":
            return parsed
        return f"CASE WHEN {col} IS NULL OR trim({col}) = '' THEN NULL ELSE {parsed} IS NOT NULL END"
    if c.kind == "epoch_ms_between":
        return (
            f"CASE WHEN regexp_full_match(trim({col}), '{_EPOCH_MS}') "
            f"THEN make_timestamp(CAST(trim({col}) AS BIGINT) * 1000) END"
        )
    if c.kind == "number_between":
        return f"TRY_CAST(trim({col}) AS DOUBLE)"
    if c.kind in PYTHON_KINDS:
        return f"{maps[c.id]}.ok"
    if c.kind == "exists_in":
        return f"CASE WHEN {col} IS NULL THEN NULL ELSE {col} IN (SELECT k FROM {refs[c.id]}) END"
    raise AssertionError(c.kind)


def _flag_sql(c: Check, ctx: CheckContext, n: int) -> str:
    """TRUE when the row fails the check (NULL is read as FALSE)."""
    kind = c.kind
    if kind == "not_null":
        return f"{q(c.column)} IS NULL"
    if kind == "unique":
        cols = c.params["columns"]
        present = " OR ".join(f"d.{q(x)} IS NOT NULL" for x in cols)
        match = " AND ".join(f"u.{q(x)} IS NOT DISTINCT FROM d.{q(x)}" for x in cols)
        return f"({present}) AND EXISTS (SELECT 1 FROM _dup{n} u WHERE {match})"
    if kind == "in_set":
        return f"{q(c.column)} IS NOT NULL AND {q(c.column)} NOT IN ({', '.join(lit(v) for v in c.params['values'])})"
    if kind == "regex":
        return f"{q(c.column)} IS NOT NULL AND NOT regexp_matches({q(c.column)}, {lit(c.params['pattern'])})"
    if kind == "pair_equal":
        a, b = (q(x) for x in c.params["columns"])
        return f"NOT ({a} IS NULL AND {b} IS NULL) AND {a} IS DISTINCT FROM {b}"
    value = q(derived_name(c))
    if kind in ("date_between", "epoch_ms_between", "number_between"):
        low, high = check_bounds(c, ctx)
        above = ">=" if c.params.get("strict_max") else ">"
        return f"{value} IS NOT NULL AND ({value} < {lit(low)} OR {value} {above} {lit(high)})"
    return f"{value} = false"


def _register_python_derived(
    con, checks: Sequence[Check], maps: dict[str, str], *, spreadsheet: bool = False
) -> None:
    """ID and phone validity come from the project's normalisers, and "holds no identifier" from its scrubber,
    run once per distinct value (``spreadsheet``: the table's files are typed in Excel, so an ID ending in
    000 is damage)."""
    judges = {"phone_valid": _phone_ok, "no_identifier": _no_identifier}
    for n, c in enumerate(checks):
        if c.kind not in PYTHON_KINDS:
            continue
        values = [
            r[0]
            for r in con.execute(
                f"SELECT DISTINCT {q(c.column)} FROM {LANDED} WHERE {q(c.column)} IS NOT NULL"
            ).fetchall()
        ]
        judge = _id_judge(c.params["kinds"], spreadsheet) if c.kind == "id_valid" else judges[c.kind]
        name = f"_map{n}"
        con.register(
            name,
            pa.table(
                {"v": pa.array(values, pa.string()), "ok": pa.array([judge(v) for v in values], pa.bool_())}
            ),
        )
        maps[c.id] = name


def _id_judge(valid_kinds: Sequence[str], spreadsheet: bool = False) -> Callable[[str], bool | None]:
    from islandbridge.transforms.normalize import normalize_id  # heavy imports: only when validating

    def judge(value: str) -> bool | None:
        kind = normalize_id(value, spreadsheet=spreadsheet).kind
        return None if kind == "missing" else kind in valid_kinds

    return judge


def _phone_ok(value: str) -> bool | None:
    from islandbridge.transforms.normalize import normalize_phones

    status = normalize_phones(value).status
    return None if status == "missing" else status in ("ok", "partial")


def _no_identifier(value: str) -> bool:
    """The value holds no ID number, phone or bank card: the scrubber (`privacy.scrub`, which
    `quarantine.shown_key` applies to record keys) leaves it as it is."""
    return scrub(value) == value


# --------------------------------------------------------------------------- reading the pass


def _domain_count_sql(c: Check) -> str:
    if c.kind == "not_null":
        return "count(*)"
    if c.kind == "unique" and len(c.params["columns"]) > 1:
        return "count_if(" + " OR ".join(f"{q(x)} IS NOT NULL" for x in c.params["columns"]) + ")"
    if c.kind == "pair_equal":
        a, b = (q(x) for x in c.params["columns"])
        return f"count_if(NOT ({a} IS NULL AND {b} IS NULL))"
    column = derived_name(c) if c.kind in DERIVED_KINDS else c.column or c.params["columns"][0]
    return f"count({q(column)})"


def _counts(con, checks: Sequence[Check]) -> dict[str, CheckCount]:
    if not checks:
        return {}
    parts = [f"{_domain_count_sql(c)}, count_if(__f{n})" for n, c in enumerate(checks)]
    row = con.execute(f"SELECT count(*), {', '.join(parts)} FROM _checked").fetchall()[0]
    return {c.id: CheckCount(row[0], row[1 + 2 * n], row[2 + 2 * n]) for n, c in enumerate(checks)}


def _samples(con, table: TableSchema, checks: Sequence[Check], out: RowCheckOutcome) -> None:
    """A few record keys per failing check, scrubbed as `quarantine.shown_key` shows keys (a roster's 序号
    may hold an ID number or a phone); the commonest failing values only for ``pii: none`` columns."""
    for n, c in enumerate(checks):
        if not out.counts[c.id].unexpected_count:
            continue
        out.samples[c.id] = [
            scrub(r[0])
            for r in con.execute(
                f"SELECT {RECORD_KEY} FROM _checked WHERE __f{n} ORDER BY 1 LIMIT {SAMPLE_KEYS}"
            ).fetchall()
        ]
        if _shows_values(table, c):
            out.top_values[c.id] = [
                (str(v), k)
                for v, k in con.execute(
                    f"SELECT {q(c.column)}, count(*) FROM _checked WHERE __f{n} GROUP BY 1 ORDER BY 2 DESC, 1 "
                    f"LIMIT {TOP_VALUES}"
                ).fetchall()
            ]


def _failing(con, raw: pa.Table | pads.Dataset, table: TableSchema, checks: Sequence[Check]) -> pa.Table:
    """Every row failing a ``row`` check: its raw columns, record key and the checks it failed."""
    row_checks = [(n, c) for n, c in enumerate(checks) if c.severity == "row"]
    columns = [*table.column_names, RECORD_KEY]
    if not row_checks:
        return _raw(raw, columns, pa.array([], pa.int64())).append_column(
            "expectations_failed", pa.array([], pa.list_(pa.string()))
        )
    cases = ", ".join(f"CASE WHEN __f{n} THEN {lit(c.id)} END" for n, c in row_checks)
    where = " OR ".join(f"__f{n}" for n, _ in row_checks)
    found = con.sql(
        f"SELECT {ROW}, list_filter([{cases}], lambda x: x IS NOT NULL) AS failed FROM _checked "
        f"WHERE {where} ORDER BY {RECORD_KEY}, {ROW}"
    ).to_arrow_table()
    return _raw(raw, columns, found[ROW].combine_chunks()).append_column(
        "expectations_failed", found["failed"]
    )


def _frame(con, raw: pa.Table | pads.Dataset, checks: Sequence[Check], gx_columns: Iterable[str]) -> pa.Table:
    """The frame GX validates: the raw columns its expectations read and the derived values, row by row."""
    frame = _raw(raw, list(dict.fromkeys([RECORD_KEY, *gx_columns])))
    names = [derived_name(c) for c in checks if c.kind in DERIVED_KINDS]
    if names:
        derived = con.sql(
            f"SELECT {', '.join(q(n) for n in names)} FROM _checked ORDER BY {ROW}"
        ).to_arrow_table()
        for name in names:
            frame = frame.append_column(name, derived[name])
    return frame


def _raw(raw: pa.Table | pads.Dataset, columns: list[str], rows: pa.Array | None = None) -> pa.Table:
    """``columns`` of ``raw``: every row, or the rows at positions ``rows`` in that order. A dataset is
    read batch by batch, keeping only what is asked for."""
    if isinstance(raw, pa.Table):
        picked = raw.select(columns)
        return picked if rows is None else picked.take(rows)
    if rows is None:
        return raw.to_table(columns=columns)
    if not len(rows):  # a take scans the whole dataset, even for no rows
        return raw.schema.empty_table().select(columns)
    return raw.take(rows, columns=columns)


# --------------------------------------------------------------------------- SQL literals


def q(name: str) -> str:
    """A quoted identifier (column names here are Chinese, with parentheses and slashes)."""
    return '"' + str(name).replace('"', '""') + '"'


def lit(value: object) -> str:
    """A SQL literal for a schema-defined constant (never a data value)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, dt.datetime):
        return f"TIMESTAMP '{value.isoformat(sep=' ')}'"
    return "'" + str(value).replace("'", "''") + "'"


def _list_literal(values: Sequence[str]) -> str:
    return "[" + ", ".join(lit(v) for v in values) + "]"
