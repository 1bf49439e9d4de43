"""One page of registry rows as Arrow text columns, and the increment's row checks on whole columns.

``sql_registry`` reads each keyset page with one query; this module turns the page into text columns
(the text the landing zone stores: ``to_text(raw_value(v))``) and decides, for all rows at once, what
the per-row rules of ``registry_rows`` decide for one: the record key, the overlap mark, whether the
``gxsj`` is a registry time, the watermark. Python touches a row only where a column cannot say it
for sure:

* a value Arrow cannot hold as text — SQLite text that is not UTF-8 (read with ``surrogateescape``) —
  makes its row *odd*: the caller hands it to the per-row functions (it is quarantined or a duplicate);
* a column whose values are not all of one of the types Arrow writes as ``to_text`` does (text, whole
  numbers, booleans, naive datetimes, dates) is converted cell by cell with ``to_text(raw_value(v))``;
* a key whose text starts or ends with a character ``str.strip`` removes is stripped by Python;
* a ``gxsj`` that is not plainly ``YYYY-MM-DD HH:MM:SS[.ffffff]`` with a real date and time is judged
  by ``registry_rows.stamp_problem`` itself, so its reason is word for word the same.

The result is the same landed rows, quarantine rows, reasons and state as the row-by-row reading
(``tests/connectors/test_registry_batch.py`` compares them).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from islandbridge.config import LOCAL_TZ
from islandbridge.connectors.registry_rows import stamp_problem

#: Every character ``str.strip()`` removes, as an RE2 class: keys starting or ending with one go to Python.
_SPACE_CLASS = "[" + "".join(f"\\x{{{c:x}}}" for c in range(0x110000) if chr(c).isspace()) + "]"
_EDGE_SPACE = f"^{_SPACE_CLASS}|{_SPACE_CLASS}$"
#: A gxsj that is surely a registry time once its date is a real one (ASCII digits, a possible time).
_PLAIN_STAMP = r"^[0-9]{4}-[0-9]{2}-[0-9]{2} ([01][0-9]|2[0-3]):[0-5][0-9]:[0-5][0-9](\.[0-9]{1,6})?$"

# Python types whose text Arrow writes exactly as ``to_text(raw_value(v))`` does.
_FAST = {str: pa.string(), int: pa.int64(), bool: pa.bool_(), dt.datetime: None, dt.date: pa.date32()}


@dataclass
class Page:
    """One page: its ``regular`` rows as columns, and the positions of its ``odd`` rows (text that is not
    UTF-8, or a key or ``gxsj`` column the columns cannot render as ``str`` does) for the per-row path.

    ``columns[c]`` is an Arrow text column (``to_text(raw_value(v))``) where Arrow writes the text as
    ``to_text`` does, else the list of ``raw_value(v)`` for the landing writer to convert cell by cell.
    ``positions[i]`` is the place in the page of regular row ``i``; ``rows`` are the driver's rows."""

    columns: dict[str, pa.Array | list[Any]]
    positions: list[int]
    odd: list[int]
    rows: Sequence[Sequence[Any]]

    def text(self, column: str) -> pa.Array:
        """A column that is Arrow text (keys and ``gxsj`` always are, on the regular rows)."""
        array = self.columns[column]
        assert isinstance(array, pa.Array), column
        return array

    def take(self, indices: pa.Array) -> dict[str, pa.Array | list[Any]]:
        """The columns of the regular rows at ``indices`` (in order)."""
        picked = indices.to_pylist()
        return {
            c: a.take(indices) if isinstance(a, pa.Array) else [a[i] for i in picked]
            for c, a in self.columns.items()
        }


def read_page(
    rows: Sequence[Sequence[Any]],
    columns: Sequence[str],
    fixed: set[str],
    exact: Sequence[str],
    texts_only: Sequence[str] = (),
) -> Page:
    """The page's rows (tuples in ``columns`` order) as columns. ``exact`` names the columns whose text
    must also be ``str(raw_value(v))`` (keys, ``gxsj``), ``texts_only`` those whose ``raw_value`` must be
    a text (``gxsj``: ``stamp_problem`` quotes the value's ``repr``): if one is not, every row is odd."""
    values = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
    for c in texts_only:
        if set(map(type, values[list(columns).index(c)])) - {str, dt.datetime, dt.date}:
            return Page({c: pa.array([], pa.string()) for c in columns}, [], list(range(len(rows))), rows)
    positions, odd = list(range(len(rows))), []
    try:
        converted = {c: texts(v, c in fixed) for c, v in zip(columns, values, strict=True)}
    except UnicodeEncodeError:  # SQLite text that is not UTF-8 (read with surrogateescape)
        odd = sorted({i for column in values for i, v in enumerate(column) if _undecodable(v)})
        gone = set(odd)
        positions = [i for i in positions if i not in gone]
        values = [[column[i] for i in positions] for column in values]
        converted = {c: texts(v, c in fixed) for c, v in zip(columns, values, strict=True)}
    if not all(converted[c][1] for c in exact):
        return Page({c: pa.array([], pa.string()) for c in columns}, [], list(range(len(rows))), rows)
    return Page({c: v for c, (v, _) in converted.items()}, positions, odd, rows)


def _undecodable(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return True
    return False


def texts(column: Sequence[Any], fixed: bool) -> tuple[pa.Array | list[Any], bool]:
    """``to_text(raw_value(v, fixed))`` of each value as an Arrow text column where Arrow writes that
    text itself, else the list of ``raw_value(v, fixed)``; and whether the column is also
    ``str(raw_value(v))`` in every row (no NULLs, no booleans, Arrow text)."""
    kinds = set(map(type, column)) - {type(None)}
    if len(kinds) == 1 and (kind := next(iter(kinds))) in _FAST and not _zoned(kind, column):
        try:
            array = pa.array(column, _FAST[kind])
        except UnicodeEncodeError:
            raise
        except (pa.ArrowException, OverflowError, TypeError, ValueError):
            array = None
        if array is not None and not (pa.types.is_timestamp(array.type) and array.type.tz is not None):
            text = array.cast(pa.string())
            if kind is dt.datetime:  # isoformat(sep=" "): the microseconds only when there are some
                text = pc.replace_substring_regex(text, r"\.000000$", "")
            if fixed and kind is str:
                text = pc.utf8_rtrim(text, characters=" ")
            return text, kind is not bool and array.null_count == 0
    if not kinds:
        return pa.nulls(len(column), pa.string()), False
    raw = [raw_value(v, fixed) for v in column]
    for v in raw:
        if isinstance(v, str) and _undecodable(v):
            raise UnicodeEncodeError("utf-8", v, 0, 1, "surrogates not allowed")
    return raw, False


def _zoned(kind: type, column: Sequence[Any]) -> bool:
    """Whether a datetime column holds a zone-aware value: Arrow would write it in UTC, not local time
    (and, mixed with naive ones, without a word), so such a column goes row by row."""
    return kind is dt.datetime and any(v is not None and v.tzinfo is not None for v in column)


def raw_value(value: Any, fixed_width: bool) -> Any:
    """One source value in the form every engine lands identically (see ``sql_registry``'s docstring)."""
    if isinstance(value, dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(LOCAL_TZ).replace(tzinfo=None)
        return value.isoformat(sep=" ")
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value).decode("utf-8", errors="backslashreplace")
    if fixed_width and isinstance(value, str):
        return value.rstrip(" ")
    return value


def key_parts(page: Page, key_columns: Sequence[str]) -> list[pa.Array]:
    """Each key column's part of the record key, ``str(v).strip()`` (what ``key_text`` joins)."""
    return [stripped(page.text(c)) for c in key_columns]


def stripped(text: pa.Array) -> pa.Array:
    """``str.strip()`` of each text: Python strips only the few texts with a space at an edge."""
    edge = pc.match_substring_regex(text, _EDGE_SPACE)
    if not pc.any(edge).as_py():
        return text
    where = pc.indices_nonzero(edge).to_pylist()
    fixed = pa.array([text[i].as_py().strip() for i in where], pa.string())
    return pc.replace_with_mask(text, edge, fixed)


def join_keys(parts: Sequence[pa.Array]) -> pa.Array:
    """``key_text``: the parts joined by ``:``."""
    if len(parts) == 1:
        return parts[0]
    return pc.binary_join_element_wise(*parts, ":")


def stamp_checks(gxsj: pa.Array) -> tuple[pa.Array, dict[int, str]]:
    """Which rows' ``gxsj`` is a registry time (a boolean mask) and, for the others, ``stamp_problem``'s
    reason by row. Plain stamps with a real date are accepted at once; Python judges every other one."""
    shaped = pc.fill_null(pc.match_substring_regex(gxsj, _PLAIN_STAMP), False)
    days = pc.utf8_slice_codeunits(gxsj, 0, 10)
    real = pc.is_in(days, pa.array(sorted(_real_dates(pc.unique(pc.filter(days, shaped)))), pa.string()))
    ok = pc.and_(shaped, pc.fill_null(real, False))
    problems: dict[int, str] = {}
    if not pc.all(ok).as_py():
        accepted = ok.to_pylist()
        for i in pc.indices_nonzero(pc.invert(ok)).to_pylist():
            problem = stamp_problem(gxsj[i].as_py())
            if problem is None:
                accepted[i] = True
            else:
                problems[i] = problem
        ok = pa.array(accepted, pa.bool_())
    return ok, problems


def _real_dates(days: pa.Array) -> set[str]:
    real = set()
    for day in days.to_pylist():
        try:
            dt.date(int(day[:4]), int(day[5:7]), int(day[8:10]))
        except ValueError:
            continue
        real.add(day)
    return real


def newest_stamp(gxsj: pa.Array, ok: pa.Array) -> str | None:
    """The largest ``gxsj[:19]`` of the rows whose gxsj is a registry time (the watermark's candidate)."""
    good = pc.filter(gxsj, ok)
    if len(good) == 0:
        return None
    return pc.max(pc.utf8_slice_codeunits(good, 0, 19)).as_py()


def marks_from(
    gxsj: pa.Array, keys: Sequence[pa.Array], rows: pa.Array | None = None
) -> list[tuple[str, ...]]:
    """``mark_of`` of the given rows (a boolean mask, or all): ``(gxsj, key parts…)``."""
    columns = [gxsj, *keys]
    if rows is not None:
        columns = [pc.filter(c, rows) for c in columns]
    return list(zip(*(c.to_pylist() for c in columns), strict=True))
