"""The data dictionary: every raw, core and mart table with its grain, key and columns, as Markdown.

Sources: ``schemas/raw_*.yml`` (the landed tables, `islandbridge.schemas.load_tables`) and one YAML per
core table or mart under ``schemas/core/``::

    name: core.persons                 # schema.table
    kind: table                        # table | view
    layer: core                        # core | mart
    built_by: islandbridge.warehouse.core.build_core
    grain: one row per person (person_key) with a record in core.identity_map at T
    key: [person_key]
    description: free text
    columns:
      person_key: {type: VARCHAR, pii: none, description: the pseudonymous person key}
    report:                            # marts only: the department's report, as the exporter writes it
      department: grid_centre
      columns: [person_ref, name, phone, address]   # in order; person_ref is added by the exporter
      from_vault: [name, phone]        # identifiers the exporter reads from the vault by person_key
      order: hours_silent, longest first
      note: optional free text

``type`` is the DuckDB type as ``information_schema.columns`` names it; ``pii`` is ``none``, ``quasi`` or
``direct`` (the core holds no ``direct`` column). `load_core_tables` checks the shape and raises
`DictionaryError` listing every problem. Regenerate the document with::

    python -m islandbridge.delivery.dictionary docs/data-dictionary.md
"""

from __future__ import annotations

import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from islandbridge.delivery.policy import DIRECT_IDENTIFIERS
from islandbridge.errors import ConfigError, count, noun
from islandbridge.schemas import PII_CLASSES, TableSchema, load_tables
from islandbridge.yamlfile import load_yaml

LAYERS = ("core", "mart")
KINDS = ("table", "view")
EXPORTER_COLUMNS = ("person_ref",)
DEFAULT_OUT = Path("docs") / "data-dictionary.md"


class DictionaryError(ConfigError):
    """A core or mart table definition is malformed; every problem is listed."""


@dataclass(frozen=True)
class CoreColumn:
    name: str
    type: str
    pii: str
    description: str


@dataclass(frozen=True)
class CoreTable:
    """One table or view of schema ``core`` or ``marts`` as ``schemas/core/<table>.yml`` describes it."""

    name: str
    kind: str
    layer: str
    built_by: str
    grain: str
    key: tuple[str, ...]
    description: str
    columns: tuple[CoreColumn, ...]
    report: Mapping[str, Any] | None = None

    @property
    def schema(self) -> str:
        return self.name.split(".", 1)[0]

    @property
    def table(self) -> str:
        return self.name.split(".", 1)[1]


def load_core_tables() -> dict[str, CoreTable]:
    """Every ``schemas/core/*.yml``, keyed by ``schema.table``; raises `DictionaryError` on any problem."""
    folder = resources.files("islandbridge.schemas").joinpath("core")
    texts = {f.name: f.read_text(encoding="utf-8") for f in folder.iterdir() if f.name.endswith(".yml")}
    return parse_core_tables(texts)


def parse_core_tables(texts: Mapping[str, str]) -> dict[str, CoreTable]:
    problems: list[str] = []
    tables: dict[str, CoreTable] = {}
    for file, text in sorted(texts.items()):
        table = _parse(file, load_yaml(text), problems)
        if table is not None:
            if table.name in tables:
                problems.append(f"{file}: {table.name} is defined twice")
            tables[table.name] = table
    if problems:
        raise DictionaryError(
            f"{count(len(problems), 'problem')} in schemas/core:\n  - " + "\n  - ".join(problems)
        )
    return tables


def _parse(file: str, doc: Any, problems: list[str]) -> CoreTable | None:
    if not isinstance(doc, Mapping):
        problems.append(f"{file}: expected a mapping")
        return None
    missing = [k for k in ("name", "kind", "layer", "grain", "key", "columns") if not doc.get(k)]
    if missing:
        problems.append(f"{file}: missing {', '.join(missing)}")
        return None
    where = f"{file} ({doc['name']})"
    if doc["kind"] not in KINDS or doc["layer"] not in LAYERS or "." not in str(doc["name"]):
        problems.append(f"{where}: name is schema.table, kind one of {KINDS}, layer one of {LAYERS}")
    columns = tuple(_column(where, n, spec, problems) for n, spec in (doc["columns"] or {}).items())
    names = {c.name for c in columns}
    if not set(doc["key"]) <= names:
        problems.append(f"{where}: key {doc['key']} must name declared columns")
    report = doc.get("report")
    if doc["layer"] == "mart":
        _check_report(where, report, names, problems)
    return CoreTable(
        str(doc["name"]),
        str(doc["kind"]),
        str(doc["layer"]),
        str(doc.get("built_by", "")),
        str(doc["grain"]),
        tuple(doc["key"]),
        str(doc.get("description", "")),
        columns,
        report,
    )


def _column(where: str, name: str, spec: Any, problems: list[str]) -> CoreColumn:
    spec = spec if isinstance(spec, Mapping) else {}
    pii = str(spec.get("pii", ""))
    if pii not in PII_CLASSES:
        problems.append(f"{where}.{name}: pii {pii!r}; expected one of {', '.join(PII_CLASSES)}")
    if pii == "direct":
        problems.append(
            f"{where}.{name}: a core or mart column is never pii: direct (names, IDs and phones "
            "stay in the vault)"
        )
    if not spec.get("type") or not spec.get("description"):
        problems.append(f"{where}.{name}: type and description are required")
    extra = sorted(str(k) for k in spec if k not in ("type", "pii", "description"))
    if extra:  # an unquoted comma in a flow mapping silently cuts a description into keys
        problems.append(
            f"{where}.{name}: unknown {noun(len(extra), 'key')} {', '.join(extra)}; quote a description with commas"
        )
    return CoreColumn(name, str(spec.get("type", "")), pii, str(spec.get("description", "")))


def _check_report(where: str, report: Any, names: set[str], problems: list[str]) -> None:
    """A mart's report: the department, its columns as exported, and which come from the vault.

    Exported names may differ from mart columns (the policy maps them, ``schemas/policies/``); the
    identifiers must be vault fields and among the columns.
    """
    if not isinstance(report, Mapping) or not report.get("department") or not report.get("columns"):
        problems.append(f"{where}: a mart needs report: {{department, columns, from_vault, order}}")
        return
    for field in report.get("from_vault") or []:
        if field not in DIRECT_IDENTIFIERS or field not in report["columns"]:
            problems.append(
                f"{where}: from_vault {field!r} must be a vault field ({', '.join(DIRECT_IDENTIFIERS)}) "
                "and one of the report's columns"
            )


# -- rendering ---------------------------------------------------------------------------------------------------


def render(raw: Mapping[tuple[str, str], TableSchema], core: Mapping[str, CoreTable]) -> str:
    """The whole dictionary as Markdown (deterministic: tables and columns in a fixed order)."""
    lines = [
        "# Data dictionary",
        "",
        "Generated by `python -m islandbridge.delivery.dictionary` from `schemas/raw_*.yml` and",
        "`schemas/core/*.yml`; do not edit by hand. PII classes: `direct` (names, ID numbers, phones, bank",
        "cards, addresses, free text: sealed in the vault at load, never in the warehouse, except free text",
        "kept scrubbed), `quasi` (birth dates, sex, house, household facts), `none`.",
        "",
        "Contents: [core model](#core-model) · [marts](#marts) · [raw tables](#raw-tables)",
        "",
        "## Core model",
        "",
        "Schema `core`, rebuilt for each run's as-of by `islandbridge.warehouse.core.build_core` "
        "([docs/warehouse.md](warehouse.md)), and the person-key history each reconcile writes "
        "(`core.identity_events`, `core.person_key_redirects`). The analysts' snapshot carries every table "
        "here, less the columns named like an identifier or holding a record key (docs/analysts.md). The "
        "identity tables of one row per source record (`core.identity_map`, `identity_map_changes`, "
        "`identity_links`, `identity_review`, `identity_decisions`) are described in "
        "[docs/identity.md](identity.md) and are never in the snapshot.",
        "",
    ]
    for table in _ordered(core, "core"):
        lines += _core_section(table)
    lines += [
        "## Marts",
        "",
        "Schema `marts`, one table per department report, rebuilt by "
        "`islandbridge.warehouse.marts.build_marts`. Columns marked *vault* in a report are added by "
        "the exporter from the identifier vault; `person_ref` is the department's pseudonym.",
        "",
    ]
    for table in _ordered(core, "mart"):
        lines += _core_section(table)
    lines += [
        "## Raw tables",
        "",
        "Schema `raw`: one table `raw.<source>__<stream>` per configured source "
        "and stream, every column text as the source sent it, plus `_record_key` and `_run_id`; "
        "one slice per run (an event log, `volume: flow`, with nothing to seal is a view over its landed "
        "Parquet parts instead of a table: `islandbridge.landing.raw_parts`). `direct` columns are "
        "removed at load (sealed in the vault), except "
        "`scrub: true` free text, kept scrubbed; each `id_number` column gains `<column>__kind` and "
        "`<column>__birth_date` (the birth date a valid number states). *role* says what a column is, "
        "whatever the source calls it (see `islandbridge.schemas`); *vault* marks the columns filed in "
        "the identifier vault under their role.",
        "",
    ]
    for key in sorted(raw, key=lambda k: (raw[k].system, k[1])):
        lines += _raw_section(raw[key])
    return "\n".join(lines).rstrip() + "\n"


def _ordered(core: Mapping[str, CoreTable], layer: str) -> list[CoreTable]:
    return sorted((t for t in core.values() if t.layer == layer), key=lambda t: t.name)


def _core_section(table: CoreTable) -> list[str]:
    lines = [
        f"### `{table.name}`",
        "",
        f"*{table.kind}* — grain: {table.grain}. Key: " + ", ".join(f"`{k}`" for k in table.key) + ".",
        "",
    ]
    if table.description:
        lines += [table.description, ""]
    lines += ["| column | type | pii | description |", "|---|---|---|---|"]
    lines += [f"| `{c.name}` | {c.type} | {c.pii} | {_cell(c.description)} |" for c in table.columns]
    lines.append("")
    if table.report:
        report = table.report
        vault = set(report.get("from_vault") or [])
        shown = ", ".join(
            f"{c} (*vault*)" if c in vault else (f"{c} (*exporter*)" if c in EXPORTER_COLUMNS else c)
            for c in report["columns"]
        )
        lines += [f"Report for `{report['department']}`: {shown}. Order: {report.get('order', '')}."]
        if report.get("note"):
            lines.append(f"{report['note']}.")
        lines.append("")
    return lines


def _raw_section(table: TableSchema) -> list[str]:
    lines = [
        f"### `{table.system}` · `{table.stream}`",
        "",
        f"Connector `{table.connector}`, grain: {table.grain}. Key: "
        + ", ".join(f"`{k}`" for k in table.key)
        + ".",
        "",
        "| column | pii | role | description |",
        "|---|---|---|---|",
    ]
    for c in table.columns:
        note = " (kept scrubbed)" if getattr(c, "scrub", False) else ""
        role = (c.role or "") + (" (*vault*)" if c.vault else "")
        lines.append(f"| `{c.name}` | {c.pii}{note} | {role} | {_cell(c.description)} |")
    return [*lines, ""]


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def generate(out: Path = DEFAULT_OUT) -> Path:
    """Write the dictionary to ``out`` (only when its content changed); returns the path."""
    text = render(load_tables(), load_core_tables())
    out = Path(out)
    if not out.exists() or out.read_text(encoding="utf-8") != text:
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(text, encoding="utf-8")
    return out


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    print(generate(Path(args[0]) if args else DEFAULT_OUT))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
