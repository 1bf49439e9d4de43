"""The person-bearing record table: every source record that names a person, normalised for matching.

Grain: one row per person-bearing source record (``system``, ``record_key``), taken from the newest
version of the record in the raw tables (raw tables keep one slice per run; the newest run by
``meta.runs.as_of`` wins) and left out when ``meta.deletions`` reports the key gone at or after that
version. Which streams bear persons, and what each means for matching, is declared once in
`PERSON_STREAMS` (keyed by the connector's ``system`` and the stream name), so a configuration may name
its sources freely; which of their columns carry a name, an ID number, a phone, a sex, a birth date, an
address and the parts of a flat is read from the raw schemas' column roles (``schemas/raw_*.yml``).

The table holds names, ID numbers and phones in memory for matching only; it is never written to the
warehouse (see docs/identity.md). Columns of the returned Arrow table (`FEATURES`):

``uid`` (int64, dense, stable for the run), ``system``, ``record_key``, ``first_seen_run``,
``last_seen_run``, ``name_key``, ``pinyin_key``, ``surname_pinyin``, ``given_pinyin``, ``id_full`` (a
valid 18-digit number, a legacy 15-digit one upgraded in its century (`values.legacy_century`), or
``P:<passport>``), ``id_ps`` (region prefix + last 4, from a full or masked
number), ``id_digits`` (the digits of a number whose check digit fails), ``birth`` (``YYYY-MM-DD``),
``birth_ym`` (``YYYY-MM``), ``sex`` (``M``/``F``), ``phones`` (list of E.164; an incident without a
reporter phone takes the one its description writes beside the reporter's name, `contacts`), ``house_key``
(``XQ001|3|2|501``), ``room_key`` (``3|2|501``), ``scope`` (see `PersonStream.distinct`), ``is_home`` (whether the
address is the person's home), ``born_by`` (the latest plausible birth date, from `PersonStream.min_age`),
``community`` (blanks removed: the community of the record's estate when it has one, else the community the
record names itself, as the civil-affairs rosters' 所属社区 do), ``registered`` (a row of the register of
who lives or lived at each flat: the registry's ``t_jm``, living or gone).

An address without its estate (the grid platform's ``3栋2单元501``) is placed through the registry's
houses of the record's grid (``t_fw.wgbm``): when exactly one house of that grid has that building, unit
and room, the record gets its ``house_key``; otherwise only its ``room_key``.

Example::

    records = load_records(con, person_streams(settings), as_of)
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from islandbridge.config import Settings
from islandbridge.connectors import connector_class
from islandbridge.identity.contacts import with_contact_phones
from islandbridge.identity.places import Places, load_places
from islandbridge.identity.values import born_by, id_digits, legacy_century, parse_birth, parse_sex
from islandbridge.schemas import SchemaError, table_of
from islandbridge.storage import existing_columns, has_table
from islandbridge.transforms.normalize import drop_blanks, fold, normalize_table

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The column roles (islandbridge.schemas.ROLES) that matching reads.
ROLES = (
    "name",
    "id_number",
    "phone",
    "sex",
    "birth_date",
    "status",
    "address",
    "estate_code",
    "building",
    "unit",
    "room",
    "community",
    "grid",
    "note",
)


@dataclass(frozen=True)
class HouseLookup:
    """House parts that live in another stream of the same source (the registry's ``t_fw``)."""

    stream: str
    key: str  # column of the house stream that the person stream's `via` column references
    via: str
    columns: Mapping[str, str]  # role (estate_code, building, unit, room) -> column of the house stream


@dataclass(frozen=True)
class PersonStream:
    """How one person-bearing stream of a system maps its columns onto the matching roles.

    ``roles`` maps a role (`ROLES`) to the raw column that holds it. The other fields state what the
    stream means, which the clustering uses as hard constraints:

    - ``distinct``: records that cannot be one person. ``"stream"``: a roster with its own person ids
      (the grid platform's 台账); ``"snapshot"``: rows of one monthly file (``dibao:202611:12`` →
      scope ``dibao:202611``); ``"current"``: rows whose ``status`` role is ``current_status`` (two
      registry rows that both say "living here" are two people; a person who moved out and back has an
      old row with status 2). Card holders have none: a person may hold two cards.
    - ``min_age``: the youngest a person in this stream can plausibly be at the as-of date (an
      incident reporter, a 低保 household head, a door-card holder).
    - ``address_is_home``: an incident's address is where it happened, often but not always the
      reporter's home, so a different flat there says little.
    ``spreadsheet`` (from the raw schema): the records come from files people type in Excel (the
    civil-affairs rosters), so an 18-digit ID ending in ``000`` is Excel damage, not an ID.
    """

    system: str
    stream: str
    roles: Mapping[str, str]
    required: str = "name"  # a record without this role names nobody (grid events without a reporter)
    house: HouseLookup | None = None
    distinct: str | None = None
    current_status: str | None = None
    min_age: int | None = None
    address_is_home: bool = True

    @property
    def spreadsheet(self) -> bool:
        table = table_of(self.system, self.stream)
        return table is not None and table.spreadsheet

    def scope(self, record_key: str, status: str | None = None) -> str | None:
        """The scope inside which two records of this stream are two different people, or None."""
        if self.distinct == "stream":
            return f"{self.system}/{self.stream}"
        if self.distinct == "snapshot":
            return f"{self.system}/{record_key.rsplit(':', 1)[0]}"
        if self.is_current(status):
            return f"{self.system}/{self.stream}:current"
        return None

    def is_current(self, status: str | None) -> bool:
        """Whether a record with this status is a living row of a stream that lists each resident once."""
        return self.distinct == "current" and status is not None and status.strip() == self.current_status

    @property
    def is_register(self) -> bool:
        """Whether the stream is the register of who lives or lived at each flat (its house lookup)."""
        return self.house is not None


def _roles(system: str, stream: str) -> dict[str, str]:
    """Role -> raw column of a stream, from the roles its schema declares (those matching reads)."""
    table = table_of(system, stream)
    if table is None:
        raise SchemaError(f"no raw table is declared for {system}.{stream} (schemas/raw_*.yml)")
    return {role: col for role, col in table.roles().items() if role in ROLES}


def _house_lookup(system: str, stream: str, houses: str) -> HouseLookup:
    """The house parts of ``houses`` (by role), joined on its key through the person stream's column that
    references it (the column of ``stream``'s ``exists_in`` check on that key)."""
    person, house = table_of(system, stream), table_of(system, houses)
    assert person is not None and house is not None, (stream, houses)
    (key,) = house.key
    (via,) = [
        c.column
        for c in person.suite
        if c.kind == "exists_in" and c.params["ref"] == {"stream": houses, "column": key}
    ]
    parts = ("estate_code", "building", "unit", "room")
    return HouseLookup(houses, key, via, {role: col for role, col in house.roles().items() if role in parts})


# Which columns hold which role is the schemas' (schemas/raw_*.yml, `role:`); what each stream means for
# matching is said here.
PERSON_STREAMS: tuple[PersonStream, ...] = (
    PersonStream(
        "resident_registry",
        "t_jm",
        _roles("resident_registry", "t_jm"),
        house=_house_lookup("resident_registry", "t_jm", "t_fw"),
        distinct="current",
        current_status="1",
    ),
    PersonStream("grid_platform", "residents", _roles("grid_platform", "residents"), distinct="stream"),
    PersonStream(
        "grid_platform", "events", _roles("grid_platform", "events"), min_age=16, address_is_home=False
    ),
    PersonStream(
        "civil_affairs",
        "dibao",
        _roles("civil_affairs", "dibao"),
        distinct="snapshot",
        min_age=16,
    ),
    PersonStream(
        "civil_affairs",
        "senior",
        _roles("civil_affairs", "senior"),
        distinct="snapshot",
        min_age=79,
    ),
    # Children below school age seldom hold a door card (the simulator issues them from age 8).
    PersonStream("iot_platform", "cardholders", _roles("iot_platform", "cardholders"), min_age=8),
)
REGISTER_SYSTEM = "resident_registry"  # its sources' t_xq and t_fw name estates and houses (`places`)

FEATURES = pa.schema(
    [
        ("uid", pa.int64()),
        ("system", pa.string()),
        ("record_key", pa.string()),
        ("first_seen_run", pa.string()),
        ("last_seen_run", pa.string()),
        ("name_key", pa.string()),
        ("pinyin_key", pa.string()),
        ("surname_pinyin", pa.string()),
        ("given_pinyin", pa.string()),
        ("id_full", pa.string()),
        ("id_ps", pa.string()),
        ("id_digits", pa.string()),
        ("birth", pa.string()),
        ("birth_ym", pa.string()),
        ("sex", pa.string()),
        ("phones", pa.list_(pa.string())),
        ("house_key", pa.string()),
        ("room_key", pa.string()),
        ("scope", pa.string()),
        ("is_home", pa.bool_()),
        ("born_by", pa.string()),
        ("community", pa.string()),
        ("registered", pa.bool_()),
    ]
)


@dataclass(frozen=True)
class BoundStream:
    """A person stream as configured: the source name its raw tables carry."""

    source: str
    spec: PersonStream

    @property
    def table(self) -> str:
        return f"raw.{self.source}__{self.spec.stream}"


@dataclass(frozen=True)
class StreamPlan:
    """The person-bearing streams of a configuration, and the registry sources that list its places."""

    streams: tuple[BoundStream, ...]
    registers: tuple[str, ...] = field(default=())  # sources whose raw t_xq and t_fw name estates and houses


def person_streams(settings: Settings) -> StreamPlan:
    """The person-bearing streams of every configured source, by its kind's ``system`` (needs no secret)."""
    bound, registers = [], []
    for name, source in settings.sources.items():
        system = connector_class(source).system
        bound += [BoundStream(name, spec) for spec in PERSON_STREAMS if spec.system == system]
        if system == REGISTER_SYSTEM:
            registers.append(name)
    for name in {stream.source for stream in bound} | set(registers):
        _check_ident(name)
    return StreamPlan(tuple(bound), tuple(registers))


class SealedReader(Protocol):
    """Gives back the direct-identifier columns the loader sealed (`islandbridge.privacy.sealing`)."""

    def fill(self, table: pa.Table, *, source: str, stream: str, columns: Sequence[str]) -> pa.Table: ...


def load_records(
    con: duckdb.DuckDBPyConnection,
    plan: StreamPlan,
    as_of: dt.datetime,
    sealed: SealedReader | None = None,
    reuse: Reuse | None = None,
) -> pa.Table:
    """The normalised record table (`FEATURES`) of the newest version of every record as of ``as_of``.

    Streams whose raw table does not exist yet are skipped. ``uid`` numbers the records in
    (system, record_key) order. Role columns that the raw table does not hold (names, ID numbers and
    phones are sealed at load) are read back through ``sealed``, in memory only. With ``reuse``
    (`identity.reuse`), records unchanged since its last run keep their normalised form.
    """
    places = load_places(con, plan.registers, as_of)
    parts = [
        _stream_records(con, stream, as_of, places, sealed, reuse)
        for stream in plan.streams
        if has_table(con, stream.table)
    ]
    parts = [p.select(FEATURES.names) for p in parts if p.num_rows]
    if not parts:
        return FEATURES.empty_table()
    table = pa.concat_tables(parts).sort_by([("system", "ascending"), ("record_key", "ascending")])
    return table.set_column(0, "uid", pa.array(range(table.num_rows), pa.int64()))


def latest_sql(table: str, columns: Sequence[str]) -> str:
    """SQL of the newest version of each record key of a raw table as of ``$as_of``, not deleted since.

    Parameters: ``as_of``, and the ``source`` and ``stream`` whose deletions apply.
    """
    cols = ", ".join(f'v."{c}"' for c in columns)
    return f"""
        WITH runs AS (SELECT run_id, as_of FROM meta.runs WHERE as_of <= $as_of),
        v AS (
            SELECT t.*, r.as_of AS _as_of,
                   row_number() OVER (PARTITION BY t._record_key ORDER BY r.as_of DESC) AS _rn,
                   arg_min(t._run_id, r.as_of) OVER (PARTITION BY t._record_key) AS _first_run
            FROM {table} t JOIN runs r ON r.run_id = t._run_id
        )
        SELECT v._record_key AS record_key, v._first_run AS first_seen_run, v._run_id AS last_seen_run, {cols}
        FROM v
        WHERE v._rn = 1 AND NOT EXISTS (
            SELECT 1 FROM meta.deletions d JOIN runs dr ON dr.run_id = d.run_id
            WHERE d.source = $source AND d.stream = $stream AND d.record_key = v._record_key
              AND dr.as_of >= v._as_of)
    """


def latest_rows(
    con, stream: BoundStream, as_of: dt.datetime, columns: Iterable[str], sealed: SealedReader | None = None
) -> pa.Table:
    """``record_key``, ``first_seen_run``, ``last_seen_run`` and ``columns`` of the newest version of every
    record of ``stream`` as of ``as_of`` (see `latest_sql`). Columns the raw table does not hold are read
    back through ``sealed`` (in memory only), or left out without it."""
    existing = existing_columns(con, stream.table)
    wanted = sorted(set(columns))
    params = {"as_of": as_of, "source": stream.source, "stream": stream.spec.stream}
    data = con.sql(
        latest_sql(stream.table, [c for c in wanted if c in existing]), params=params
    ).to_arrow_table()
    hidden = [c for c in wanted if c not in existing]
    if sealed is None or not hidden:
        return data
    return sealed.fill(data, source=stream.source, stream=stream.spec.stream, columns=hidden)


# Normalises a stream's rows (through the callable given), reusing what it kept of unchanged records,
# given the estate names the normalisers read (`islandbridge.identity.reuse.Reuse`).
Reuse = Callable[[BoundStream, pa.Table, Callable[[pa.Table], pa.Table], Mapping[str, str]], pa.Table]


def _stream_records(
    con, stream: BoundStream, as_of: dt.datetime, places: Places, sealed=None, reuse: Reuse | None = None
) -> pa.Table:
    """The `FEATURES` of one stream (and ``as_of_bound``); its sealed columns are read back only for the
    rows ``reuse`` hands to ``normalise`` (all of them without it). ``reuse`` sees the estate names the
    normalisers read (``estates``); the rest of the places are applied after it (`placed`)."""
    spec = stream.spec
    columns = sorted({*spec.roles.values(), *([spec.house.via] if spec.house else [])})
    # the warehouse keeps a note scrubbed (its numbers replaced): only the vault's is read, or none
    data = latest_rows(con, stream, as_of, [c for c in columns if c != spec.roles.get("note")])
    hidden = [c for c in columns if c not in data.column_names] if sealed is not None else []
    roles = {role: col for role, col in spec.roles.items() if col in data.column_names or col in hidden}
    data = _with_house(con, stream, data, as_of) if spec.house else data

    def normalise(part: pa.Table) -> pa.Table:
        part = sealed.fill(part, source=stream.source, stream=spec.stream, columns=hidden) if hidden else part
        return _normalised(part, spec, roles, places.codes, as_of)

    return placed(
        reuse(stream, data, normalise, places.codes) if reuse is not None else normalise(data), places
    )


def _normalised(
    data: pa.Table, spec: PersonStream, roles, estates: Mapping[str, str], as_of: dt.datetime
) -> pa.Table:
    raw = {
        role: data[col] if col in data.column_names else pa.nulls(data.num_rows, pa.string())
        for role, col in roles.items()
    }
    for role in ("estate_code", "building", "unit", "room"):
        if role in data.column_names and role not in raw:
            raw[role] = data[role]
    table = pa.table(
        {
            "record_key": data["record_key"],
            "first_seen_run": data["first_seen_run"],
            "last_seen_run": data["last_seen_run"],
            **{f"r_{k}": v for k, v in raw.items()},
        }
    )
    if spec.required in roles:
        table = table.filter(pc.invert(pc.fill_null(_is_blank(table[f"r_{spec.required}"]), True)))
    if "r_note" in table.column_names:  # the phone a description gives beside the person's name
        table = with_contact_phones(table, "r_phone", "r_note", "r_name")
    return _unplaced(table, spec, estates, as_of)


def _with_house(con, stream: BoundStream, data: pa.Table, as_of: dt.datetime) -> pa.Table:
    """Join the house parts of the registry's house stream (newest version of each house)."""
    house = stream.spec.house
    table = f"raw.{stream.source}__{house.stream}"
    if not has_table(con, table):
        return data
    cols = sorted({house.key, *house.columns.values()})
    params = {"as_of": as_of, "source": stream.source, "stream": house.stream}
    houses = con.sql(latest_sql(table, cols), params=params).to_arrow_table()
    con.register("_ib_people", data)
    con.register("_ib_houses", houses)
    try:
        picks = ", ".join(f'h."{col}" AS "{role}"' for role, col in house.columns.items())
        return con.sql(
            f'SELECT p.*, {picks} FROM _ib_people p LEFT JOIN _ib_houses h ON h."{house.key}" = p."{house.via}"'
        ).to_arrow_table()
    finally:
        con.unregister("_ib_people")
        con.unregister("_ib_houses")


_NORMALISE = (
    ("name", "name"),
    ("id_number", "id"),
    ("phone", "phone"),
    ("address", "address"),
    ("estate_code", "estate_code"),
    ("building", "building"),
    ("unit", "unit"),
    ("room", "room"),
)
_TEXT_OUTPUTS = (
    "name_key",
    "pinyin_key",
    "surname_pinyin",
    "given_pinyin",
    "house_key",
    "building",
    "unit",
    "room",
    "id_kind",
    "id_value",
    "id_passport",
    "id_prefix",
    "id_suffix",
)


def _features(table: pa.Table, stream: PersonStream, places: Places, as_of: dt.datetime) -> pa.Table:
    """The `FEATURES` of one stream's records (``r_<role>`` raw columns) through the shared normalisers."""
    return placed(_unplaced(table, stream, places.codes, as_of), places)


def placed(table: pa.Table, places: Places) -> pa.Table:
    """Records of `_unplaced` placed: an estate-less address by the one house of its grid with that room
    (`_grid_placed`), and every record's community; the columns ``r_grid`` and ``r_community`` go."""
    houses = _grid_placed(table["house_key"], table["room_key"], table["r_grid"].to_pylist(), places)
    community = _communities(houses.to_pylist(), table["r_community"].to_pylist(), places)
    table = table.set_column(table.schema.get_field_index("house_key"), "house_key", houses)
    table = table.set_column(table.schema.get_field_index("community"), "community", community)
    return table.drop_columns(["r_grid", "r_community"])


def _unplaced(
    table: pa.Table, stream: PersonStream, estates: Mapping[str, str], as_of: dt.datetime
) -> pa.Table:
    """`FEATURES` before `placed` (the house key as the address gives it, no community), with
    ``as_of_bound``, ``r_grid`` and ``r_community``: what the registry's places change from day to day is
    applied after the rows that did not change are reused (`identity.reuse`)."""
    spec = {f"r_{role}": kind for role, kind in _NORMALISE if f"r_{role}" in table.column_names}
    if stream.spreadsheet and "r_id_number" in spec:
        spec["r_id_number"] = "spreadsheet_id"
    norm = normalize_table(table, spec, known_estates=estates)
    n = norm.num_rows
    col = {
        name: norm[name] if name in norm.column_names else pa.nulls(n, pa.string()) for name in _TEXT_OUTPUTS
    }
    declared = _column(table, "r_birth_date", n)
    col["id_value"] = pa.array(  # a 15-digit number's century, read from the record itself (values.py)
        [
            legacy_century(v, d, as_of) if k == "legacy15_upgraded" and v else v
            for k, v, d in zip(col["id_kind"].to_pylist(), col["id_value"].to_pylist(), declared, strict=True)
        ],
        pa.string(),
    )
    constant = {
        "system": pa.array([stream.system] * n, pa.string()),
        "is_home": pa.array([stream.address_is_home] * n, pa.bool_()),
        "born_by": pa.array([born_by(as_of, stream.min_age)] * n, pa.string()),
    }
    statuses = _column(table, "r_status", n)
    scopes = [stream.scope(k, st) for k, st in zip(table["record_key"].to_pylist(), statuses, strict=True)]
    rooms = pc.binary_join_element_wise(
        col["building"], col["unit"], col["room"], "|", null_handling="emit_null"
    )
    return (
        pa.table(
            {
                "uid": pa.nulls(n, pa.int64()),
                "system": constant["system"],
                "record_key": table["record_key"],
                "first_seen_run": table["first_seen_run"],
                "last_seen_run": table["last_seen_run"],
                **{name: col[name] for name in ("name_key", "pinyin_key", "surname_pinyin", "given_pinyin")},
                **_id_columns(col, _column(table, "r_id_number", n)),
                **_birth_and_sex(norm, table, col["id_value"]),
                "phones": norm["phone_e164"]
                if "phone_e164" in norm.column_names
                else pa.nulls(n, pa.list_(pa.string())),
                "house_key": col["house_key"],
                "room_key": rooms,
                "scope": pa.array(scopes, pa.string()),
                "is_home": constant["is_home"],
                "born_by": constant["born_by"],
                "community": pa.nulls(n, pa.string()),
                "registered": pa.array([stream.is_register] * n, pa.bool_()),
            },
            schema=FEATURES,
        )
        .append_column(  # what reads the as-of besides born_by: a legacy number's century (`legacy_century`)
            "as_of_bound", pc.fill_null(pc.equal(col["id_kind"], "legacy15_upgraded"), False)
        )
        .append_column("r_grid", pa.array(_column(table, "r_grid", n), pa.string()))
        .append_column("r_community", pa.array(_column(table, "r_community", n), pa.string()))
    )


def _communities(house_keys: list, named: list, places: Places) -> pa.Array:
    """The community of each record: its estate's, else the one it names (blanks removed), else None."""
    out = []
    for house, name in zip(house_keys, named, strict=True):
        community = places.communities.get(house.split("|", 1)[0]) if house else None
        if community is None and isinstance(name, str):
            community = drop_blanks(fold(name)) or None
        out.append(community)
    return pa.array(out, pa.string())


def _id_columns(col: Mapping[str, pa.ChunkedArray], raw_ids: list) -> dict[str, pa.Array]:
    kinds, values = col["id_kind"].to_pylist(), col["id_value"].to_pylist()
    return {
        "id_full": _id_full(values, col["id_passport"].to_pylist()),
        "id_ps": _id_ps(kinds, values, col["id_prefix"].to_pylist(), col["id_suffix"].to_pylist()),
        "id_digits": pa.array(
            [id_digits(r) if k == "invalid_checksum" else None for k, r in zip(kinds, raw_ids, strict=True)],
            pa.string(),
        ),
    }


def _birth_and_sex(norm: pa.Table, table: pa.Table, numbers: pa.Array) -> dict[str, pa.Array]:
    """Birth date and sex from a valid ID number when there is one (it is checked), else as declared."""
    n = norm.num_rows
    id_birth = [
        None if b is None else f"{v[6:10]}-{v[10:12]}-{v[12:14]}"
        for b, v in zip(_column(norm, "id_birth_date", n), numbers.to_pylist(), strict=True)
    ]
    births = [
        parse_birth(d) if b is None else (b, b[:7])
        for b, d in zip(id_birth, _column(table, "r_birth_date", n), strict=True)
    ]
    sexes = [
        s or parse_sex(d) for s, d in zip(_column(norm, "id_sex", n), _column(table, "r_sex", n), strict=True)
    ]
    return {
        "birth": pa.array([b[0] for b in births], pa.string()),
        "birth_ym": pa.array([b[1] for b in births], pa.string()),
        "sex": pa.array(sexes, pa.string()),
    }


def _id_full(values: list, passports: list) -> pa.Array:
    return pa.array(
        [v if v else (f"P:{p}" if p else None) for v, p in zip(values, passports, strict=True)], pa.string()
    )


def _id_ps(kinds: list, values: list, prefixes: list, suffixes: list) -> pa.Array:
    """Region prefix and last four characters: what a full number and the vendor's mask both show."""
    out = []
    for kind, value, prefix, suffix in zip(kinds, values, prefixes, suffixes, strict=True):
        if value:
            out.append(value[:6] + value[-4:])
        elif kind == "masked" and prefix and suffix and len(prefix) >= 6 and len(suffix) >= 4:
            out.append(prefix[:6] + suffix[-4:])
        else:
            out.append(None)
    return pa.array(out, pa.string())


def _column(table: pa.Table, name: str, n: int) -> list:
    return table[name].to_pylist() if name in table.column_names else [None] * n


def _is_blank(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.equal(pc.utf8_trim_whitespace(column), "")


def _grid_placed(house_keys: pa.ChunkedArray, room_keys: pa.Array, grids: list, places: Places) -> pa.Array:
    """House keys, with an estate-less address placed by the one house of its grid with that room."""
    out = []
    for house, room, grid in zip(house_keys.to_pylist(), room_keys.to_pylist(), grids, strict=True):
        if house is None and room and isinstance(grid, str):
            house = places.grid_houses.get((drop_blanks(fold(grid)), room))
        out.append(house)
    return pa.array(out, pa.string())


def _check_ident(name: str) -> None:
    if not _IDENT.match(name):
        raise ValueError(f"source name {name!r} cannot name a warehouse table (letters, digits and _ only)")
