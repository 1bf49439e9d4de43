"""Table definitions as data: one per source stream, with its grain, columns, PII classes, key and suite.

Each ``raw_<system>.yml`` beside this module describes the raw tables one connector kind lands (every
column text, exactly as the source sent it, plus ``_record_key``), and the quality suite of each table.
Canonical tables will follow in ``canonical_*.yml`` with the same shape (``layer: canonical``).

A table::

    t_jm:
      label: 居民 registry residents  # what people call it, shown in reports instead of `t_jm`
      grain: one row per resident row (jmid) per version landed in a run
      key: [jmid]
      volume: population          # population | flow | none: how "far fewer rows" is judged
      columns:
        sfzh: {pii: direct, mask: id, description: ID-card number}
        zt:   {pii: none, description: status}
      suite:
        - {id: zt_known, kind: in_set, column: zt, values: ['1', '2', '3'], severity: row}

PII classes: ``direct`` (names, ID numbers, phones, bank cards, addresses, free text), ``quasi`` (birth
dates, sex, house, household facts), ``none``. Values of ``direct`` and ``quasi`` columns never reach a
quality report; ``mask`` (name, phone, id, card) says how ``quarantine show`` may display a direct one.

Column roles: ``role`` says what a column *is*, whatever the source calls it, so that no module outside
the connectors names a source's columns. A role is unique within a table. The roles (`ROLES`):

- person identifiers: ``name``, ``id_number`` (a resident ID-card or passport number), ``phone``,
  ``bank_card``, ``birth_date`` (a full date or a year-month), ``address`` (a free-text home or incident
  address), ``sex``;
- ``status``: a register row's living / moved out / deceased status (the registry's ``zt``, whose
  ``1`` marks the one living row of a resident); ``moved_in`` and ``moved_out``: the dates a register
  row's stay at its flat began and ended (``rzrq``, ``zxrq``);
- places: ``estate_code``, ``building``, ``unit``, ``room`` (the parts of a flat), ``grid`` (a grid code),
  ``community`` (a community's name, as a roster row names it);
- ``note``: free text that may name the record's person and give their phone (an incident's
  description); the identity step reads it from the vault for the number written beside that person's
  name (`islandbridge.identity.contacts`).

``vault: true`` files the column in the identifier vault under its role as the vault field (only for
`VAULT_ROLES`); a table with a vault column is person-bearing. From these the code derives the vault's
field map (`TableSchema.vault_fields`), the identity step's matching columns, the connectors' column
lists and keys, the ID-number and name columns the loader treats specially, and the identifier column
names the analyst snapshot drops. Example::

    sfzh: {pii: direct, mask: id, role: id_number, vault: true, description: ID-card number}

Severities: ``critical`` stops the run, ``warning`` is recorded and shown, ``row`` quarantines the
failing rows and lets the others through. The check kinds are listed in ``CHECK_KINDS``; what each one
means is in ``islandbridge.quality.rowchecks`` and docs/quality.md.

Example::

    table = load_tables()["sql_registry", "t_jm"]
    table.pii_columns()            # ('xm', 'sfzh', 'lxdh', ...)
    table.roles()["id_number"]     # 'sfzh'
    table.vault_fields()           # {'name': 'xm', 'id_number': 'sfzh', 'phone': 'lxdh', 'birth_date': 'csrq'}
    table_of("resident_registry", "t_jm")   # the same table, found by source system instead of connector

The core tables and marts are described in ``core/<table>.yml``; the SQL that builds them sits beside
it in ``core/<table>.sql`` (``core/<table>.<step>.sql`` for a further statement of one table,
``core/_ib_<name>.sql`` for a staging temp table several tables read). `core_sql` loads one by name;
``$name`` in it is a DuckDB parameter, ``{name}`` a fragment the caller fills in (identifiers,
constants, shared joins: never a value).
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cache, lru_cache
from importlib import resources
from typing import Any

import yaml

from islandbridge.errors import ConfigError, count, noun
from islandbridge.yamlfile import describe, load_yaml

RECORD_KEY = "_record_key"  # the column every raw table adds: the stable key of one source record

PII_CLASSES = ("direct", "quasi", "none")
SEVERITIES = ("critical", "warning", "row")
VOLUMES = ("population", "flow", "none")
MASKS = ("name", "phone", "id", "card")
# What a column is (see the module docstring); the vault files the first six under the role's name.
ROLES = (
    "name",
    "id_number",
    "phone",
    "bank_card",
    "birth_date",
    "address",
    "sex",
    "status",
    "moved_in",
    "moved_out",
    "estate_code",
    "building",
    "unit",
    "room",
    "grid",
    "community",
    "note",
)
VAULT_ROLES = ("name", "id_number", "phone", "bank_card", "birth_date", "address")
# kind -> (required parameters, optional parameters)
CHECK_KINDS: Mapping[str, tuple[tuple[str, ...], tuple[str, ...]]] = {
    "not_null": (("column",), ()),
    "unique": (("columns",), ()),
    "in_set": (("column", "values"), ()),
    "regex": (("column", "pattern"), ()),
    "pair_equal": (("columns",), ()),
    "date_between": (("column", "formats", "min", "max"), ("strict_max", "tz")),
    "date_format": (("column", "formats"), ()),
    "epoch_ms_between": (("column", "min", "max"), ("strict_max",)),
    "number_between": (("column", "min", "max"), ()),
    "id_valid": (("column", "kinds"), ()),
    "phone_valid": (("column",), ()),
    "no_identifier": (("column",), ()),
    "exists_in": (("column", "ref"), ()),
    "roster_totals": (("sums",), ("optional_sums",)),
}
TABLE_LEVEL_KINDS = ("roster_totals",)
LIST_PARAMS = ("columns", "values", "formats", "kinds", "sums", "optional_sums")
_RELATIVE_BOUND = re.compile(r"^(?:as_of|arrival)(?:[+-][0-9]+d)?$")
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")  # a fragment in a core/*.sql file
# Checks every table gets without declaring them (their severity can still be configured); the last two
# only streams of a file-based source (quality/validation.py, `_source_files`).
IMPLICIT_CHECKS = ("columns_match", "volume", "quarantine_share", "source_files_read", "unknown_columns")


class SchemaError(ConfigError):
    """A table definition is malformed; every problem of every file is listed."""


@dataclass(frozen=True)
class Column:
    name: str
    pii: str
    description: str = ""
    mask: str | None = None
    scrub: bool = False  # free text kept in the warehouse only after scrubbing (the original is sealed)
    role: str | None = None  # what the column is (`ROLES`), whatever the source calls it
    vault: bool = False  # filed in the identifier vault, under its role as the field name


@dataclass(frozen=True)
class Check:
    """One expectation of a table's suite: ``kind`` with its parameters, a ``severity`` and ``mostly``;
    ``reason``, when given, says what a failing row means (``quarantine show`` prints it)."""

    id: str
    kind: str
    severity: str
    params: Mapping[str, Any] = field(default_factory=dict)
    mostly: float | None = None
    reason: str = ""

    @property
    def column(self) -> str | None:
        return self.params.get("column")

    @property
    def columns(self) -> tuple[str, ...]:
        """Every source column the check reads (for PII decisions and the GX frame)."""
        cols = self.params.get("columns") or ([self.column] if self.column else [])
        return tuple(cols) + tuple(self.params.get("sums", ())) + tuple(self.params.get("optional_sums", ()))

    @property
    def is_row_level(self) -> bool:
        return self.kind not in TABLE_LEVEL_KINDS


#: Source systems whose files people type in Excel (SPEC section C): an 18-digit ID ending in ``000`` there
#: is what Excel leaves of a number cell, not an ID (`islandbridge.transforms.normalize.ids`).
SPREADSHEET_SYSTEMS = frozenset({"civil_affairs"})


@dataclass(frozen=True)
class TableSchema:
    """One landed table: where it comes from, its grain, columns, key and quality suite."""

    connector: str
    system: str
    layer: str
    stream: str
    grain: str
    key: tuple[str, ...]
    volume: str
    columns: tuple[Column, ...]
    suite: tuple[Check, ...]
    label: str = ""

    @property
    def title(self) -> str:
        """The table's name for people (its ``label``), or the stream name when it has none."""
        return self.label or self.stream

    @property
    def column_names(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns)

    @property
    def spreadsheet(self) -> bool:
        """The rows come from files typed in Excel (`SPREADSHEET_SYSTEMS`)."""
        return self.system in SPREADSHEET_SYSTEMS

    def column(self, name: str) -> Column | None:
        return next((c for c in self.columns if c.name == name), None)

    def pii(self, name: str) -> str:
        """The PII class of a column; unknown columns count as ``direct`` (never shown)."""
        col = self.column(name)
        return col.pii if col else "direct"

    def pii_columns(self) -> tuple[str, ...]:
        return tuple(c.name for c in self.columns if c.pii != "none")

    def roles(self) -> dict[str, str]:
        """Role -> column, for every column that declares a role (in column order)."""
        return {c.role: c.name for c in self.columns if c.role}

    def columns_with_role(self, *roles: str) -> tuple[str, ...]:
        """The columns whose role is one of ``roles``, in column order."""
        return tuple(c.name for c in self.columns if c.role in roles)

    def vault_fields(self) -> dict[str, str]:
        """Vault field -> column of the columns filed in the vault (the field is the column's role)."""
        return {c.role: c.name for c in self.columns if c.vault and c.role}

    @property
    def person_bearing(self) -> bool:
        """Whether the table's records name a person: it files identifiers in the vault."""
        return any(c.vault for c in self.columns)

    def check(self, check_id: str) -> Check:
        for c in self.suite:
            if c.id == check_id:
                return c
        known = ", ".join(c.id for c in self.suite)
        raise KeyError(f"{self.connector}.{self.stream} has no check {check_id!r}; its suite: {known}")


Tables = Mapping[tuple[str, str], TableSchema]


@lru_cache(maxsize=1)
def load_tables() -> Tables:
    """Every raw table definition shipped with the package, keyed by ``(connector kind, stream)``.

    Raises ``SchemaError`` listing every problem found in every file.
    """
    texts = {
        f.name: f.read_text(encoding="utf-8")
        for f in resources.files(__name__).iterdir()
        if f.name.endswith((".yml", ".yaml"))
    }
    return parse_tables(texts)


def core_sql(name: str, **fill: object) -> str:
    """The statement in ``core/<name>.sql``, each ``{placeholder}`` replaced by ``str(fill[placeholder])``.

    Keys of ``fill`` the statement does not use are ignored (callers pass one set of fragments to many
    statements); a placeholder without a value raises `SchemaError`.
    """
    text = _core_sql_text(name)
    missing = sorted({p for p in _PLACEHOLDER.findall(text) if p not in fill})
    if missing:
        raise SchemaError(f"core/{name}.sql: no value for {', '.join('{' + p + '}' for p in missing)}")
    return _PLACEHOLDER.sub(lambda m: str(fill[m.group(1)]), text)


@cache
def _core_sql_text(name: str) -> str:
    return resources.files(__name__).joinpath("core", f"{name}.sql").read_text(encoding="utf-8")


def stream_label(source: str, stream: str, kind: str | None = None, tables: Tables | None = None) -> str:
    """The name people know a stream by (``居民标签 registry tags`` for ``t_jm_bq``), for reports.

    The table is found by connector ``kind`` when given, else by the stream name if only one system has
    it, else by a system whose name starts like ``source`` (``iot`` -> ``iot_platform``); the bare stream
    name when none is found.
    """
    tables = tables if tables is not None else load_tables()
    found = [t for t in tables.values() if t.stream == stream and (kind is None or t.connector == kind)]
    if len(found) > 1:
        found = [t for t in found if t.system.split("_")[0] == source.split("_")[0]] or found[:0]
    return found[0].title if len(found) == 1 else stream


def table_of(system: str, stream: str, tables: Tables | None = None) -> TableSchema | None:
    """The table of a source ``system`` (``resident_registry``, ...) and stream, or None."""
    for table in (tables if tables is not None else load_tables()).values():
        if table.system == system and table.stream == stream:
            return table
    return None


def parse_tables(texts: Mapping[str, str]) -> Tables:
    """Table definitions from YAML texts (file name -> text); see the module docstring for the shape."""
    problems: list[str] = []
    tables: dict[tuple[str, str], TableSchema] = {}
    for name, text in sorted(texts.items()):
        try:
            doc = load_yaml(text)
        except yaml.YAMLError as exc:
            problems.append(f"{name}: not valid YAML: {describe(exc)}")
            continue
        for table in _parse_file(name, doc, problems):
            if (table.connector, table.stream) in tables:
                problems.append(f"{name}: {table.connector}.{table.stream} is defined twice")
            tables[table.connector, table.stream] = table
    if problems:
        raise SchemaError(
            f"{count(len(problems), 'problem')} in the table definitions:\n  - " + "\n  - ".join(problems)
        )
    return tables


def _parse_file(name: str, doc: Any, problems: list[str]) -> list[TableSchema]:
    if not isinstance(doc, Mapping) or not isinstance(doc.get("tables"), Mapping):
        problems.append(f"{name}: expected a mapping with connector, system and tables")
        return []
    connector, system = str(doc.get("connector", "")), str(doc.get("system", ""))
    if not connector:
        problems.append(f"{name}: connector is required (the connector kind that lands these tables)")
    tables = [
        _parse_table(
            f"{name}: {stream}", connector, system, str(doc.get("layer", "raw")), str(stream), body, problems
        )
        for stream, body in doc["tables"].items()
    ]
    _check_refs(name, tables, problems)
    return tables


def _check_refs(name: str, tables: list[TableSchema], problems: list[str]) -> None:
    """``exists_in`` refers to a column of another table of the same file (the same source)."""
    by_stream = {t.stream: t for t in tables}
    for table in tables:
        for check in (c for c in table.suite if c.kind == "exists_in"):
            ref = check.params.get("ref")
            target = by_stream.get(ref.get("stream")) if isinstance(ref, Mapping) else None
            if target is None or ref.get("column") not in target.column_names:
                problems.append(
                    f"{name}: {table.stream} ({check.id}): ref must be {{stream, column}} naming a "
                    f"declared column of a table in this file, got {ref!r}"
                )


def _parse_table(
    where: str, connector: str, system: str, layer: str, stream: str, body: Any, problems: list[str]
) -> TableSchema:
    body = body if isinstance(body, Mapping) else {}
    columns = tuple(
        _parse_column(f"{where}.{c}", str(c), spec, problems)
        for c, spec in (body.get("columns") or {}).items()
    )
    names = {c.name for c in columns}
    roles = [c.role for c in columns if c.role]
    for dup in sorted({r for r in roles if roles.count(r) > 1}):
        problems.append(f"{where}: role {dup!r} is given to more than one column")
    key = tuple(str(k) for k in body.get("key") or ())
    if not key or not set(key) <= names:
        problems.append(f"{where}: key {list(key)} must name declared columns")
    volume = str(body.get("volume", "population"))
    if volume not in VOLUMES:
        problems.append(f"{where}: volume {volume!r}; expected one of {', '.join(VOLUMES)}")
    suite = tuple(
        _parse_check(f"{where}.suite[{n}]", spec, names, problems)
        for n, spec in enumerate(body.get("suite") or ())
    )
    ids = [c.id for c in suite]
    for dup in sorted({i for i in ids if ids.count(i) > 1 or i in IMPLICIT_CHECKS}):
        problems.append(f"{where}: check id {dup!r} is used twice or is reserved")
    return TableSchema(
        connector,
        system,
        layer,
        stream,
        str(body.get("grain", "")),
        key,
        volume,
        columns,
        suite,
        str(body.get("label", "") or ""),
    )


def _parse_column(where: str, name: str, spec: Any, problems: list[str]) -> Column:
    spec = spec if isinstance(spec, Mapping) else {}
    pii, mask = str(spec.get("pii", "")), spec.get("mask")
    if pii not in PII_CLASSES:
        problems.append(f"{where}: pii {pii!r}; expected one of {', '.join(PII_CLASSES)}")
    if mask is not None and mask not in MASKS:
        problems.append(f"{where}: mask {mask!r}; expected one of {', '.join(MASKS)}")
    scrub = spec.get("scrub", False)
    if not isinstance(scrub, bool) or (scrub and pii != "direct"):
        problems.append(f"{where}: scrub is true or false, and only for a pii: direct free-text column")
    role, vault = spec.get("role"), spec.get("vault", False)
    if role is not None and role not in ROLES:
        problems.append(f"{where}: role {role!r}; expected one of {', '.join(ROLES)}")
    if not isinstance(vault, bool) or (vault and role not in VAULT_ROLES):
        problems.append(
            f"{where}: vault is true or false, and only for a column whose role is one of {', '.join(VAULT_ROLES)}"
        )
    unknown = sorted(set(spec) - {"pii", "mask", "scrub", "description", "role", "vault"})
    if unknown:
        problems.append(f"{where}: unknown {noun(len(unknown), 'key')} {', '.join(map(str, unknown))}")
    return Column(
        name,
        pii,
        str(spec.get("description", "")),
        mask,
        scrub is True,
        None if role is None else str(role),
        vault is True,
    )


def _parse_check(where: str, spec: Any, columns: set[str], problems: list[str]) -> Check:
    spec = dict(spec) if isinstance(spec, Mapping) else {}
    check_id, kind = str(spec.pop("id", "")), str(spec.pop("kind", ""))
    severity, mostly = str(spec.pop("severity", "")), spec.pop("mostly", None)
    reason = str(spec.pop("reason", ""))
    if not check_id:
        problems.append(f"{where}: id is required")
    if kind not in CHECK_KINDS:
        problems.append(f"{where} ({check_id}): kind {kind!r}; known kinds: {', '.join(CHECK_KINDS)}")
        return Check(check_id, kind, severity, spec, mostly)
    required, optional = CHECK_KINDS[kind]
    missing, unknown = set(required) - set(spec), set(spec) - set(required) - set(optional)
    if missing or unknown:
        problems.append(
            f"{where} ({check_id}): missing {sorted(missing)}, unknown {sorted(unknown)}; "
            f"{kind} takes {', '.join(required + optional)}"
        )
    if severity not in SEVERITIES:
        problems.append(
            f"{where} ({check_id}): severity {severity!r}; expected one of {', '.join(SEVERITIES)}"
        )
    if mostly is not None and (severity == "row" or not 0 < float(mostly) <= 1):
        problems.append(f"{where} ({check_id}): mostly must be in (0, 1] and cannot go with severity row")
    for key in LIST_PARAMS:
        if key in spec and (not isinstance(spec[key], list) or not spec[key]):
            problems.append(f"{where} ({check_id}): {key} must be a non-empty list")
    for key in ("min", "max"):
        if key in spec and not _is_bound(spec[key]):
            problems.append(
                f"{where} ({check_id}): {key} {spec[key]!r} is not a number, an ISO date, as_of[+-Nd] or arrival[+-Nd]"
            )
    check = Check(check_id, kind, severity, spec, None if mostly is None else float(mostly), reason)
    for col in check.columns:
        if col not in columns:
            problems.append(f"{where} ({check_id}): column {col!r} is not declared")
    return check


def _is_bound(value: Any) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, (int, float)) or _RELATIVE_BOUND.match(str(value)):
        return True
    try:
        dt.datetime.fromisoformat(str(value))
    except ValueError:
        return False
    return True
