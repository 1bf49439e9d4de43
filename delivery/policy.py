"""Export policies: which columns each department may receive, written down and versioned.

One YAML file per department under ``schemas/policies/`` (package data) says, for each of the
department's reports, the ordered output columns and where each comes from:

- ``mart:<column>`` — a column of the report's mart (``marts.<report>`` in the warehouse);
- ``vault:<field>`` — an identifier from the vault (a field of ``vault.FIELDS``), looked up by the row's
  ``person_key``: this is re-identification, and the exporter records it in the audit log;
- ``person_ref`` — the department's own pseudonym of the row's ``person_key``.

A column may also carry ``mask: name|phone|id`` (shown masked, as ``张*伟``) or ``suppress_below: 5``
(a count under the threshold is shown as ``<5``). ``withheld`` lists the mart's columns the department
does not receive. What staff read on a workbook's 说明 sheet is in Chinese: a report's ``definition``
(its English ``description`` stays beside it) and each column's ``description``, its meaning; a
``definition`` or column ``description`` without a Chinese character is refused. A mart column that is
neither exported nor withheld makes the exporter refuse the report, so a column added to a mart never
reaches a department unnoticed.

The code holds a floor that no policy file can lower (``DEPARTMENTS``, from DEPARTMENTS.md): the known
departments and their reports, and the identifiers each may receive at all. A policy is refused when it
names an unknown department or report, a name that is not ``^[a-z][a-z0-9_]*$`` (names become paths
under ``exports/``), an identifier outside that floor or in its own ``forbidden`` list, ``person_key``,
or identifiers or person_refs for an aggregates-only department.

Example::

    policies = load_policies()                     # every shipped policy, checked
    report = policies["grid_centre"].reports["elderly_alerts"]
    [c.name for c in report.columns]               # ['person_ref', 'name', 'phone', ...]
    report.vault_fields()                          # ('name', 'phone')
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from islandbridge.errors import ConfigError, count, noun
from islandbridge.privacy import vault
from islandbridge.yamlfile import describe, load_yaml

NAME = re.compile(r"[a-z][a-z0-9_]*")
MASKS = ("name", "phone", "id")
PERSON_REF = "person_ref"
PERSON_KEY = "person_key"
# Identifiers that may only come from the vault, never from a mart (DEPARTMENTS.md, "Analysts").
DIRECT_IDENTIFIERS = ("name", "id_number", "phone", "bank_card", "birth_date")
_ORDER = re.compile(
    r"(?P<column>[a-z][a-z0-9_]*)(?:\s+(?P<direction>asc|desc))?"
    r"(?:\s+nulls\s+(?P<nulls>first|last))?"
)
_COLUMN_KEYS = {"name", "source", "mask", "suppress_below", "description", "label", "if_empty", "cell_labels"}
_REPORT_KEYS = {"description", "definition", "label", "order_by", "columns", "withheld"}
# Text a clerk reads (a report's definition, a column's meaning) is Chinese: it holds a CJK character.
_CHINESE = re.compile(r"[\u4e00-\u9fff]")
# YAML folds a long text's line break into a space; between two Chinese characters or marks it is dropped.
_WIDE = r"[\u2018-\u201d\u3000-\u303f\u4e00-\u9fff\uff00-\uffef]"
_FOLDED = re.compile(rf"(?<={_WIDE}) (?={_WIDE})")
_POLICY_KEYS = {"department", "version", "description", "forbidden", "reports"}


class PolicyError(ConfigError):
    """A policy file is malformed or asks for more than its department may receive; nothing is exported."""


@dataclass(frozen=True)
class Department:
    """What DEPARTMENTS.md grants a department, whatever its policy file says."""

    name: str
    reports: tuple[str, ...]
    may_receive: frozenset[str]  # vault fields this department may ever be given
    aggregate_only: bool = False  # no person_ref, no identifiers, no person_key in its marts


DEPARTMENTS: Mapping[str, Department] = {
    d.name: d
    for d in (
        Department(
            "grid_centre", ("elderly_alerts", "no_device_coverage"), frozenset({"name", "phone", "address"})
        ),
        Department(
            "civil_affairs",
            ("senior_allowance_gaps", "subsidy_after_exit", "unmatched_roster_rows"),
            frozenset({"name", "id_number", "birth_date"}),
        ),
        Department(
            "street_office", ("island_coverage", "incidents_by_building"), frozenset(), aggregate_only=True
        ),
    )
}


@dataclass(frozen=True)
class ColumnRule:
    """One output column: its name, where it comes from, and how it is shown."""

    name: str
    kind: str  # "mart" | "vault" | "person_ref"
    field: str | None = None  # the mart column or vault field
    mask: str | None = None
    suppress_below: int | None = None
    label: str = ""  # the header staff read (Chinese); the English name stays in the data dictionary
    description: str = ""  # the meaning, in Chinese: the 说明 sheet's 说明 meaning column
    if_empty: str | None = None  # what a text cell without a value shows (e.g. 社区不明), instead of a blank
    # (code, Chinese label) pairs: what the workbook's cell shows for a code (no_candidate -> 无候选人员);
    # the CSV and Parquet, read by programs, keep the code
    cell_labels: tuple[tuple[str, str], ...] = ()

    @property
    def source(self) -> str:
        return self.kind if self.field is None else f"{self.kind}:{self.field}"

    @property
    def header(self) -> str:
        """What a spreadsheet shows above the column: the label, or the name where the policy gives none."""
        return self.label or self.name

    def cell_label(self, value: object) -> object:
        """What a workbook cell shows for ``value``: its label from ``cell_labels``, else the value."""
        if value is None or not self.cell_labels:
            return value
        return dict(self.cell_labels).get(str(value), value)


@dataclass(frozen=True)
class OrderKey:
    """One sort key of a report, over an output column; ties keep the mart's own order."""

    column: str
    descending: bool = False
    nulls_first: bool = False


@dataclass(frozen=True)
class ReportPolicy:
    """The columns of one report, in output order, and its row order."""

    name: str
    columns: tuple[ColumnRule, ...]
    order_by: tuple[OrderKey, ...]
    withheld: tuple[str, ...] = ()
    description: str = ""  # in English, for whoever maintains the export
    label: str = ""  # the report's title for staff (Chinese), e.g. 应享未享
    definition: str = ""  # what the report lists, in Chinese, for the clerk: the 说明 sheet's 定义

    def mart_columns(self) -> tuple[str, ...]:
        return tuple(c.field for c in self.columns if c.kind == "mart")

    def vault_fields(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(c.field for c in self.columns if c.kind == "vault"))

    def needs_person_key(self) -> bool:
        return any(c.kind in ("vault", PERSON_REF) for c in self.columns)


@dataclass(frozen=True)
class Policy:
    """A department's whole policy: version, forbidden identifiers, and its reports."""

    department: str
    version: int
    forbidden: tuple[str, ...]
    reports: Mapping[str, ReportPolicy]
    origin: str  # the file it came from, for messages
    sha256: str  # of the file's bytes, recorded in each manifest

    def vault_fields(self) -> tuple[str, ...]:
        """Every identifier this policy lets its department receive, in first-use order."""
        return tuple(dict.fromkeys(f for r in self.reports.values() for f in r.vault_fields()))


def load_policies(directory: str | Path | None = None) -> dict[str, Policy]:
    """Every ``*.yml`` policy in ``directory`` (default: the shipped ``schemas/policies``), checked.

    Raises ``PolicyError`` listing every problem of every file; nothing is returned half-checked.
    """
    root = resources.files("islandbridge.schemas") / "policies" if directory is None else Path(directory)
    texts = {f.name: f.read_bytes() for f in root.iterdir() if f.name.endswith((".yml", ".yaml"))}
    return parse_policies(texts)


def parse_policies(texts: Mapping[str, bytes]) -> dict[str, Policy]:
    """Policies from file name -> YAML bytes; the file's stem must be its department's name."""
    problems: list[str] = []
    policies: dict[str, Policy] = {}
    for filename in sorted(texts):
        policy = _parse_file(filename, texts[filename], problems)
        if policy is not None:
            policies[policy.department] = policy
    if not texts:
        problems.append("no policy files found; expected one <department>.yml per department")
    if problems:
        raise PolicyError(f"{count(len(problems), 'policy problem')}:\n  - " + "\n  - ".join(problems))
    return policies


def check_policy(policy: Policy) -> None:
    """Check a ``Policy`` object again against ``DEPARTMENTS`` (one built in code skipped the file checks).

    Raises ``PolicyError`` listing every problem.
    """
    problems: list[str] = []
    department = None
    if not isinstance(policy.department, str) or not NAME.fullmatch(policy.department):
        problems.append(f"{policy.origin}: department {policy.department!r} must match ^{NAME.pattern}$")
    elif policy.department not in DEPARTMENTS:
        problems.append(
            f"{policy.origin}: unknown department {policy.department!r}; known: {', '.join(DEPARTMENTS)}"
        )
    else:
        department = DEPARTMENTS[policy.department]
    for name, report in policy.reports.items():
        where = f"{policy.origin}: report {name!r}"
        if name != report.name or not NAME.fullmatch(name) or (department and name not in department.reports):
            problems.append(f"{where}: unknown or unsafe report name")
        _check_chinese(where, "definition", report.definition or None, problems)
        for rule in report.columns:
            at = f"{where}, column {rule.name!r}"
            _check_names(at, rule, problems)
            _check_identifier(at, rule, department, policy.forbidden, problems)
            _check_display(at, rule, problems)
            _check_chinese(at, "description", rule.description or None, problems)
    if problems:
        raise PolicyError(f"{count(len(problems), 'policy problem')}:\n  - " + "\n  - ".join(problems))


def check_mart_columns(policy: Policy, report: ReportPolicy, mart_columns: Sequence[str]) -> None:
    """Refuse a mart whose columns the report's policy does not account for, or that lacks one it needs.

    ``person_key`` is consumed (never exported); every other mart column must be exported or withheld.
    Raises ``PolicyError`` naming the columns and the policy file to change.
    """
    where = f"{policy.origin}: report {report.name!r} (marts.{report.name})"
    present = set(mart_columns)
    needed = set(report.mart_columns()) | ({PERSON_KEY} if report.needs_person_key() else set())
    missing = sorted(needed - present)
    unknown = [c for c in mart_columns if c not in needed | set(report.withheld) | {PERSON_KEY}]
    if DEPARTMENTS[policy.department].aggregate_only and PERSON_KEY in present:
        raise PolicyError(
            f"{where}: the mart has a person_key column, but {policy.department} receives "
            "aggregates only; aggregate the mart or export it to another department"
        )
    if unknown:
        raise PolicyError(
            f"{where}: the mart has {noun(len(unknown), 'column')} {unknown} that the policy does not allow; "
            "add each to the report's columns (if the department may see it) or to 'withheld', "
            "and bump the policy's version"
        )
    if missing:
        raise PolicyError(
            f"{where}: the policy needs mart {noun(len(missing), 'column')} {missing}, which the mart lacks "
            f"(it has {list(mart_columns)})"
        )


def _parse_file(filename: str, data: bytes, problems: list[str]) -> Policy | None:
    try:
        raw = load_yaml(data.decode("utf-8"))
    except UnicodeDecodeError:
        problems.append(f"{filename}: not a UTF-8 text file")
        return None
    except yaml.YAMLError as exc:
        problems.append(f"{filename}: not valid YAML: {describe(exc)}")
        return None
    if not isinstance(raw, Mapping):
        problems.append(f"{filename}: expected a mapping with keys {sorted(_POLICY_KEYS)}")
        return None
    before = len(problems)
    department = _department(filename, raw, problems)
    version = raw.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        problems.append(f"{filename}: 'version' must be a whole number >= 1, got {version!r}")
    _unknown_keys(f"{filename}", raw, _POLICY_KEYS, problems)
    forbidden = _names(filename, "forbidden", raw.get("forbidden", []), problems)
    reports = _reports(filename, department, forbidden, raw.get("reports"), problems)
    if len(problems) > before or department is None:
        return None
    digest = hashlib.sha256(data).hexdigest()
    return Policy(department.name, version, tuple(forbidden), reports, filename, digest)


def _department(filename: str, raw: Mapping[str, Any], problems: list[str]) -> Department | None:
    name = raw.get("department")
    stem = filename.rsplit(".", 1)[0]
    if not isinstance(name, str) or not NAME.fullmatch(name):
        problems.append(f"{filename}: 'department' must match ^{NAME.pattern}$, got {name!r}")
        return None
    if name != stem:
        problems.append(f"{filename}: names department {name!r}; a policy file must be called {name}.yml")
    if name not in DEPARTMENTS:
        problems.append(f"{filename}: unknown department {name!r}; known: {', '.join(DEPARTMENTS)}")
        return None
    return DEPARTMENTS[name]


def _reports(
    filename: str, department: Department | None, forbidden: Sequence[str], raw: Any, problems: list[str]
) -> dict[str, ReportPolicy]:
    if not isinstance(raw, Mapping) or not raw:
        problems.append(f"{filename}: 'reports' must map each report name to its columns")
        return {}
    reports = {}
    for name, body in raw.items():
        where = f"{filename}: report {name!r}"
        if not isinstance(name, str) or not NAME.fullmatch(name):
            problems.append(f"{where}: a report name must match ^{NAME.pattern}$")
            continue
        if department is not None and name not in department.reports:
            problems.append(
                f"{where}: unknown report for {department.name}; known: {', '.join(department.reports)}"
            )
            continue
        report = _report(where, name, department, forbidden, body, problems)
        if report is not None:
            reports[name] = report
    return reports


def _report(
    where: str,
    name: str,
    department: Department | None,
    forbidden: Sequence[str],
    body: Any,
    problems: list[str],
) -> ReportPolicy | None:
    if not isinstance(body, Mapping) or not isinstance(body.get("columns"), list) or not body["columns"]:
        problems.append(f"{where}: needs 'columns', a list of {{name: ..., source: ...}}")
        return None
    _unknown_keys(where, body, _REPORT_KEYS, problems)
    columns = [
        c
        for c in (
            _column(where, n, raw, department, forbidden, problems)
            for n, raw in enumerate(body["columns"], 1)
        )
        if c is not None
    ]
    names = [c.name for c in columns]
    if len(set(names)) != len(names):
        problems.append(f"{where}: an output column name appears twice: {names}")
    withheld = _names(where, "withheld", body.get("withheld", []), problems)
    for column in sorted(set(withheld) & set(DIRECT_IDENTIFIERS + (PERSON_KEY,))):
        problems.append(f"{where}: withheld column {column!r} must not be in a mart at all")
    order_by = _order_by(where, body.get("order_by", []), names, problems)
    _check_chinese(where, "definition", body.get("definition"), problems)
    return ReportPolicy(
        name,
        tuple(columns),
        order_by,
        tuple(withheld),
        str(body.get("description", "")),
        str(body.get("label", "")),
        _unfold(str(body.get("definition", ""))),
    )


def _column(
    where: str, n: int, raw: Any, department: Department | None, forbidden: Sequence[str], problems: list[str]
) -> ColumnRule | None:
    at = f"{where}, column {n}"
    if not isinstance(raw, Mapping) or not all(isinstance(raw.get(k), str) for k in ("name", "source")):
        problems.append(f"{at}: expected {{name: ..., source: mart:<column> | vault:<field> | person_ref}}")
        return None
    _unknown_keys(at, raw, _COLUMN_KEYS, problems)
    name, source = raw["name"], raw["source"]
    at = f"{where}, column {name!r}"
    kind, _, field = source.partition(":")
    rule = ColumnRule(
        name,
        kind,
        field or None,
        raw.get("mask"),
        raw.get("suppress_below"),
        str(raw.get("label", "")),
        _unfold(str(raw.get("description", ""))),
        raw.get("if_empty"),
        _cell_labels(at, raw.get("cell_labels", {}), problems),
    )
    before = len(problems)
    _check_names(at, rule, problems)
    _check_identifier(at, rule, department, forbidden, problems)
    _check_display(at, rule, problems)
    _check_chinese(at, "description", raw.get("description"), problems)
    return rule if len(problems) == before else None


def _check_names(at: str, rule: ColumnRule, problems: list[str]) -> None:
    if not NAME.fullmatch(rule.name):
        problems.append(f"{at}: an output column name must match ^{NAME.pattern}$")
    if rule.kind == PERSON_REF and rule.field is None:
        return
    if rule.kind == "mart" and rule.field and NAME.fullmatch(rule.field):
        if rule.field == PERSON_KEY:
            problems.append(f"{at}: person_key never leaves the warehouse; export 'person_ref' instead")
        return
    if rule.kind == "vault" and rule.field in vault.FIELDS:
        return
    problems.append(
        f"{at}: source {rule.source!r} must be mart:<column>, person_ref, or vault:<field> "
        f"with a field of {', '.join(vault.FIELDS)}"
    )


def _check_identifier(
    at: str, rule: ColumnRule, department: Department | None, forbidden: Sequence[str], problems: list[str]
) -> None:
    """An identifier comes from the vault only, and only if the department may have it."""
    if department is None:
        return
    if rule.kind == PERSON_REF and department.aggregate_only:
        problems.append(f"{at}: {department.name} receives aggregates only; it gets no person_ref")
    if rule.kind == "mart" and rule.field in DIRECT_IDENTIFIERS:
        problems.append(
            f"{at}: {rule.field!r} is an identifier; it may come only from the vault (vault:{rule.field})"
        )
    if rule.name in DIRECT_IDENTIFIERS and rule.source != f"vault:{rule.name}":
        problems.append(f"{at}: a column named {rule.name!r} must have source vault:{rule.name}")
    named = sorted({rule.name, rule.field} & set(forbidden))
    if named:
        problems.append(f"{at}: names forbidden identifier {named[0]!r} (the policy's own 'forbidden' list)")
    elif rule.kind == "vault" and rule.field not in department.may_receive:
        allowed = ", ".join(sorted(department.may_receive)) or "none"
        problems.append(
            f"{at}: names forbidden identifier {rule.field!r}: {department.name} may receive "
            f"{allowed} (DEPARTMENTS.md)"
        )


def _check_display(at: str, rule: ColumnRule, problems: list[str]) -> None:
    if rule.mask is not None and rule.mask not in MASKS:
        problems.append(f"{at}: mask must be one of {', '.join(MASKS)}, got {rule.mask!r}")
    threshold = rule.suppress_below
    whole = isinstance(threshold, int) and not isinstance(threshold, bool)
    if threshold is not None and (not whole or threshold < 2):
        problems.append(f"{at}: suppress_below must be a whole number >= 2, got {threshold!r}")
    if threshold is not None and rule.kind != "mart":
        problems.append(f"{at}: suppress_below applies to counts from the mart only")
    if rule.if_empty is not None and (rule.kind != "mart" or not isinstance(rule.if_empty, str)):
        problems.append(
            f"{at}: if_empty is a text shown in a mart column's empty cells, got {rule.if_empty!r}"
        )
    if rule.if_empty is not None and (rule.suppress_below is not None or rule.mask is not None):
        problems.append(
            f"{at}: if_empty is for a text column shown as it is, not with suppress_below or mask"
        )
    if rule.cell_labels and (rule.kind != "mart" or rule.suppress_below is not None or rule.mask is not None):
        problems.append(f"{at}: cell_labels are for a mart column of codes, not with suppress_below or mask")


def _cell_labels(at: str, raw: Any, problems: list[str]) -> tuple[tuple[str, str], ...]:
    """``{no_candidate: 无候选人员, 2: 2 迁出}`` -> pairs of code (as text) and label; each label Chinese."""
    if not isinstance(raw, Mapping) or not all(
        isinstance(k, str | int) and isinstance(v, str) and _CHINESE.search(v) for k, v in raw.items()
    ):
        problems.append(f"{at}: cell_labels maps each code to the Chinese text a workbook cell shows")
        return ()
    return tuple((str(k), v) for k, v in raw.items())


def _unfold(text: str) -> str:
    return _FOLDED.sub("", text)


def _check_chinese(where: str, key: str, value: Any, problems: list[str]) -> None:
    """A text staff read (a report's ``definition``, a column's ``description``) must be Chinese text."""
    if value is not None and not (isinstance(value, str) and _CHINESE.search(value)):
        problems.append(
            f"{where}: '{key}' is read by department staff and must be Chinese text, got {value!r}"
        )


def _order_by(where: str, raw: Any, names: Sequence[str], problems: list[str]) -> tuple[OrderKey, ...]:
    """``['hours_silent desc nulls first', 'person_ref']`` -> two ``OrderKey``s (nulls last by default)."""
    if not isinstance(raw, list):
        problems.append(f"{where}: 'order_by' must be a list such as ['hours_silent desc', 'person_ref']")
        return ()
    keys = []
    for item in raw:
        match = _ORDER.fullmatch(str(item).strip().lower())
        if not match or match["column"] not in names:
            problems.append(
                f"{where}: order_by entry {item!r} must be '<output column> [asc|desc] "
                f"[nulls first|last]' with a column of {list(names)}"
            )
            continue
        keys.append(OrderKey(match["column"], match["direction"] == "desc", match["nulls"] == "first"))
    return tuple(keys)


def _names(where: str, key: str, raw: Any, problems: list[str]) -> list[str]:
    if not isinstance(raw, list) or not all(isinstance(v, str) and NAME.fullmatch(v) for v in raw):
        problems.append(f"{where}: '{key}' must be a list of names matching ^{NAME.pattern}$")
        return []
    return list(raw)


def _unknown_keys(where: str, raw: Mapping[str, Any], known: Iterable[str], problems: list[str]) -> None:
    extra = sorted(set(map(str, raw)) - set(known))
    if extra:
        problems.append(
            f"{where}: unknown {noun(len(extra), 'key')} {extra}; known: {', '.join(sorted(known))}"
        )
