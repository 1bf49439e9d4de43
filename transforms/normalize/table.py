"""Vectorised entry: normalise whole Arrow columns by normalising each distinct value once.

A district's tables repeat values heavily (names, addresses, the shared phone of a household), and the
normalisers are pure, so each column is dictionary-encoded, its distinct values are normalised in Python
and the typed results are gathered back to the rows with one ``take`` per output column.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import partial

import pyarrow as pa
import pyarrow.compute as pc

from islandbridge.errors import TerminalError
from islandbridge.transforms.normalize._text import drop_blanks, fold
from islandbridge.transforms.normalize.addresses import EstateIndex, normalize_house, parse_address
from islandbridge.transforms.normalize.ids import normalize_id
from islandbridge.transforms.normalize.names import normalize_name
from islandbridge.transforms.normalize.phones import normalize_phones

_STR = pa.string()
_LIST = pa.list_(pa.string())
_HOUSE_PARTS = ("estate_code", "building", "unit", "room")


class NormalizeSpecError(TerminalError, ValueError):
    """`normalize_table` was given a spec that does not fit the table: fix the spec (all problems listed).

    Terminal: the spec is code or configuration; only a person editing it changes the outcome."""


@dataclass(frozen=True)
class _Kind:
    normalise: Callable[[object], object]
    outputs: tuple[tuple[str, pa.DataType, Callable[[object], object]], ...]


def _field(name: str, attribute: str, type_: pa.DataType = _STR) -> tuple[str, pa.DataType, Callable]:
    return name, type_, lambda result: getattr(result, attribute)


def _same(value: object) -> object:
    return value


def _estate_code(raw: object) -> str | None:
    return (drop_blanks(fold(raw)).upper() or None) if isinstance(raw, str) else None


_ID = _Kind(
    normalize_id,
    (
        _field("id_kind", "kind"),
        _field("id_value", "value"),
        _field("id_birth_date", "birth_date", pa.date32()),
        _field("id_sex", "sex"),
        _field("id_region", "region"),
        _field("id_prefix", "prefix"),
        _field("id_suffix", "suffix"),
        _field("id_mask_length", "mask_length", pa.int8()),
        _field("id_passport", "passport"),
        _field("id_reason", "reason"),
    ),
)
_SPREADSHEET_ID = _Kind(partial(normalize_id, spreadsheet=True), _ID.outputs)
_PHONE = _Kind(
    normalize_phones,
    (
        _field("phone_e164", "numbers", _LIST),
        _field("phone_mobile", "mobiles", _LIST),
        _field("phone_status", "status"),
        _field("phone_reason", "reason"),
    ),
)
_NAME = _Kind(
    normalize_name,
    (
        _field("name_key", "name_key"),
        _field("pinyin_key", "pinyin_key"),
        _field("surname_pinyin", "surname_pinyin"),
        _field("given_pinyin", "given_pinyin"),
        _field("name_status", "status"),
        _field("name_reason", "reason"),
    ),
)
_ADDRESS_OUTPUTS = (
    _field("estate_name", "estate_name"),
    _field("estate_key", "estate_key"),
    _field("estate_code", "estate_code"),
    _field("building", "building"),
    _field("unit", "unit"),
    _field("room", "room"),
    _field("address_status", "status"),
    _field("address_reason", "reason"),
)
_SIMPLE = {
    "estate_code": _Kind(_estate_code, (("estate_code", _STR, _same),)),
    "building": _Kind(lambda raw: normalize_house(raw, None, None).building, (("building", _STR, _same),)),
    "unit": _Kind(lambda raw: normalize_house(None, raw, None).unit, (("unit", _STR, _same),)),
    "room": _Kind(lambda raw: normalize_house(None, None, raw).room, (("room", _STR, _same),)),
}
KINDS = ("id", "phone", "name", "address", *_SIMPLE, "spreadsheet_id")


def normalize_table(
    table: pa.Table, spec: Mapping[str, str], known_estates: Mapping[str, str] | None = None
) -> pa.Table:
    """Append normalised, typed columns for the columns named in `spec` (column → kind).

    Kinds and what they append:

    - ``id``: id_kind, id_value, id_birth_date (date32), id_sex, id_region, id_prefix, id_suffix,
      id_mask_length, id_passport, id_reason
    - ``spreadsheet_id``: the same, for IDs from files typed in Excel (18 digits ending in 000 are
      ``excel_damaged``; see `islandbridge.transforms.normalize.ids`)
    - ``phone``: phone_e164 and phone_mobile (list<string>), phone_status, phone_reason
    - ``name``: name_key, pinyin_key, surname_pinyin, given_pinyin, name_status, name_reason
    - ``address``: estate_name, estate_key, estate_code, building, unit, room, address_status,
      address_reason (estates resolved with `known_estates`, name → ``xqbm``)
    - ``estate_code``, ``building``, ``unit``, ``room``: one column each, for registry and IoT tables

    When estate_code, building, unit and room are all appended, ``house_key`` is appended as well.
    Raises `NormalizeSpecError` listing every unknown column or kind and every output name clash.

    >>> t = normalize_table(pa.table({"sfzh": ["11010119900307002x"]}), {"sfzh": "id"})
    >>> t["id_value"].to_pylist()
    ['11010119900307002X']
    """
    index = EstateIndex(known_estates) if known_estates is not None else None
    kinds = {column: _kind(name, index) for column, name in spec.items() if name in KINDS}
    _check(table, spec, kinds)
    for column, kind in kinds.items():
        for name, array in _normalise_column(table[column], kind).items():
            table = table.append_column(name, array)
    if _appends_house(kinds):
        keys = pc.binary_join_element_wise(
            *(table[name] for name in _HOUSE_PARTS), "|", null_handling="emit_null"
        )
        table = table.append_column("house_key", keys)
    return table


def _kind(name: str, index: EstateIndex | None) -> _Kind:
    if name == "address":
        return _Kind(partial(parse_address, known_estates=index), _ADDRESS_OUTPUTS)
    return {"id": _ID, "spreadsheet_id": _SPREADSHEET_ID, "phone": _PHONE, "name": _NAME, **_SIMPLE}[name]


def _appends_house(kinds: Mapping[str, _Kind]) -> bool:
    appended = {name for kind in kinds.values() for name, _, _ in kind.outputs}
    return set(_HOUSE_PARTS) <= appended


def _check(table: pa.Table, spec: Mapping[str, str], kinds: Mapping[str, _Kind]) -> None:
    problems = [
        f"column {column!r} is not in the table (columns: {', '.join(table.column_names)})"
        for column in spec
        if column not in table.column_names
    ]
    problems += [
        f"column {column!r}: unknown kind {name!r} (known: {', '.join(KINDS)})"
        for column, name in spec.items()
        if name not in KINDS
    ]
    seen: dict[str, str] = {}
    for column, kind in kinds.items():
        for name, _, _ in kind.outputs:
            if name in table.column_names:
                problems.append(f"column {column!r} would append {name!r}, which the table already has")
            elif name in seen:
                problems.append(
                    f"columns {seen[name]!r} and {column!r} would both append {name!r}; "
                    "normalise them in separate calls and rename in between"
                )
            seen[name] = column
    if problems:
        raise NormalizeSpecError("normalize_table spec does not fit the table:\n- " + "\n- ".join(problems))


def _normalise_column(column: pa.ChunkedArray, kind: _Kind) -> dict[str, pa.Array]:
    if pa.types.is_dictionary(column.type):
        column = column.cast(column.type.value_type)
    encoded = pc.dictionary_encode(column.combine_chunks(), null_encoding="encode")
    results = [kind.normalise(value) for value in encoded.dictionary.to_pylist()]
    outputs = {}
    for name, type_, get in kind.outputs:
        distinct = pa.array([get(result) for result in results], type=type_)
        outputs[name] = distinct.take(encoded.indices)
    return outputs
