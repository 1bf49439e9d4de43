"""Department exports: each department's reports as its policy allows, published atomically per day.

For each department policy (``islandbridge.delivery.policy``) and each of its reports, the exporter
reads the report's mart (``marts.<report>``), replaces ``person_key`` by the department's ``person_ref``,
fills the identifier columns the policy allows from the vault, sorts the rows, masks, suppresses small
counts, neutralises spreadsheet formulas, and writes::

    <exports_dir>/<department>/<YYYY-MM-DD>/<report>.csv       UTF-8 with BOM, CRLF line ends
    <exports_dir>/<department>/<YYYY-MM-DD>/<report>.parquet   zstd, fixed writer options, no timestamps
    <exports_dir>/<department>/<YYYY-MM-DD>/manifest.json      files, rows, sha256, policy, run, made_at

``YYYY-MM-DD`` is the date of the as-of instant T in Asia/Shanghai (``export_day``). The day folder is
written under a hidden temporary name beside it and swapped in whole, so a half-written export is never
visible and a re-run of the same T replaces the day exactly. Identifiers leave the vault only here (and
through ``reveal``): one audit entry per report that revealed any, appended before the swap, to a log
that must verify first (against the anchors in ``meta.audit_anchors``); each manifest records the log's
length and head after its department's entries.

Rules worth knowing (docs/exports.md has them all):

- Everything is checked before anything is written: every policy, every mart's columns against its
  report's policy, every target path. A refusal raises ``PolicyError`` / ``ExportError`` and writes nothing.
- Several vault values for one field (one per source record): only usable values compete (a damaged
  or mistyped ID number, a placeholder phone are never shown, see ``display_identifier``); the one
  from ``resident_registry`` wins, then ``civil_affairs``, ``grid_platform``, ``iot_platform``; within a
  system the greatest record key (digit runs compared as numbers: ``t_jm:100010`` > ``t_jm:99999``).
- Rows are ordered by the policy's ``order_by``, then in the mart's own order (deterministic: the
  marts end their ``ORDER BY`` with a unique key), so equal marts give equal bytes.
- A text cell that begins with ``=``, ``+``, ``-``, ``@``, tab or carriage return gets a leading ``'``
  (OWASP, CSV injection), in the CSV and the Parquet alike; numbers, dates and times are not text.

Example::

    summary = export_run(settings, con, as_of, run_id)
    summary["departments"]["grid_centre"]["reports"]     # {'elderly_alerts': 12, 'no_device_coverage': 3}
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
import secrets
import shutil
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import phonenumbers
import pyarrow as pa
from phonenumbers import PhoneNumberFormat

from islandbridge import storage
from islandbridge.config import LOCAL_TZ, Settings
from islandbridge.delivery.durable import fsync_dir, locked, swap_dirs
from islandbridge.delivery.files import write_json, write_report_files
from islandbridge.delivery.policy import (
    NAME,
    PERSON_KEY,
    OrderKey,
    Policy,
    PolicyError,
    ReportPolicy,
    check_mart_columns,
    check_policy,
    load_policies,
)
from islandbridge.delivery.workbook import WorkbookMeta
from islandbridge.errors import TerminalError
from islandbridge.privacy.audit import AuditLog, recorded_anchors
from islandbridge.privacy.keys import Key, Keys, load_keys
from islandbridge.privacy.masking import mask_id, mask_name, mask_phone
from islandbridge.privacy.pseudonymise import person_refs
from islandbridge.privacy.vault import Vault, VaultValue
from islandbridge.transforms.normalize import drop_blanks, fold, is_placeholder
from islandbridge.transforms.normalize.ids import normalize_id
from islandbridge.transforms.normalize.phones import normalize_phones
from islandbridge.warehouse.marts import report_notes, require_marts_of

log = logging.getLogger(__name__)

DEFAULT_ACTOR = "islandbridge-exporter"
FORMULA_LEADS = ("=", "+", "-", "@", "\t", "\r")
SYSTEM_PREFERENCE = ("resident_registry", "civil_affairs", "grid_platform", "iot_platform")
MASKS: Mapping[str, Callable[[object], str | None]] = {"name": mask_name, "phone": mask_phone, "id": mask_id}
_LEFTOVER = re.compile(r"\.\d{4}-\d{2}-\d{2}\.(?:tmp|old)-[0-9a-f]{8}")
_DIGITS = re.compile(r"[0-9]+|[^0-9]+")

Clock = Callable[[], dt.datetime]


class ExportError(TerminalError):
    """An export was refused or could not be published; the department's previous export is untouched.

    Terminal: every cause (a missing mart or vault, a link in the export folder, a column the policy
    cannot export) needs a person or an earlier step; a retry meets the same files."""


@dataclass(frozen=True)
class _Report:
    """One report ready to write: its final table and what it revealed."""

    name: str
    table: pa.Table
    revealed_refs: tuple[str, ...]
    revealed_columns: tuple[str, ...]


def _utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def export_day(as_of: dt.datetime) -> str:
    """The export folder's name for a run: the date of ``as_of`` in Asia/Shanghai (``--as-of 2026-11-20``
    is T = 2026-11-21 00:00+08:00, the day the lists are for, so ``2026-11-21``)."""
    if as_of.tzinfo is None:
        raise ExportError("as_of must be a timezone-aware datetime")
    return as_of.astimezone(LOCAL_TZ).date().isoformat()


def export_run(
    settings: Settings,
    con: duckdb.DuckDBPyConnection,
    as_of: dt.datetime,
    run_id: str,
    *,
    actor: str = DEFAULT_ACTOR,
    clock: Clock = _utc_now,
    policies: Mapping[str, Policy] | None = None,
) -> dict[str, Any]:
    """Export every department's reports for the run ending at ``as_of``; returns counts and paths only.

    ``con`` is the warehouse (read-only is enough: only ``marts.*`` is read). ``policies`` defaults to the
    shipped ones. Raises ``PolicyError`` (a policy or a mart's columns refused), ``ExportError`` (unsafe
    path, missing mart or vault), key and vault errors — before anything is written. A failure while
    publishing one department (disk full, audit log unwritable) leaves that department's previous
    export as it was; departments published before it stay published.
    """
    policies = _checked(load_policies() if policies is None else policies)
    day = export_day(as_of)
    # a department would act on the wrong day's list
    require_marts_of(con, run_id, as_of, "export", ExportError, where=f" (exports/<department>/{day})")
    notes = report_notes(con, run_id)  # e.g. M's roster has not arrived: said on the 说明 sheet and manifest
    root = Path(settings.exports_dir).resolve()
    targets = {d: department_dir(root, d) for d in sorted(policies)}
    for target in targets.values():
        _replaceable(target / day)
    marts = {
        (d, r): read_mart(con, policies[d], report)
        for d in targets
        for r, report in policies[d].reports.items()
    }
    keys = export_keys(settings, policies)
    AuditLog(settings.audit_path).require_intact(recorded_anchors(con))  # never append to a broken log
    summary: dict[str, Any] = {
        "run_id": run_id,
        "as_of": as_of.astimezone(LOCAL_TZ).isoformat(),
        "day": day,
        "exports_dir": str(root),
        "departments": {},
    }
    with (
        _VaultReader(settings, keys) as vault,
        contextlib.closing(storage.connect(resources=settings.duckdb)) as scratch,
    ):
        built = {
            d: _build_department(
                policies[d], {r: marts[d, r] for r in policies[d].reports}, keys, vault, scratch
            )
            for d in targets
        }
    for department, target in targets.items():
        summary["departments"][department] = _publish(
            settings, policies[department], built[department], target, day, as_of, run_id, actor, clock, notes
        )
    summary["audit_length"], summary["audit_head"] = AuditLog(settings.audit_path).tip()
    return summary


def _checked(policies: Mapping[str, Policy]) -> dict[str, Policy]:
    for name, policy in policies.items():
        if name != policy.department:
            raise PolicyError(
                f"policy {policy.origin} is for {policy.department!r} but was given as {name!r}"
            )
        check_policy(policy)
    return dict(sorted(policies.items()))


def department_dir(exports_dir: Path, department: str) -> Path:
    """``exports_dir/department``, refused unless the name is a plain policy name that stays inside."""
    if not isinstance(department, str) or not NAME.fullmatch(department):
        raise ExportError(
            f"refusing export path for department {department!r}: names must match ^{NAME.pattern}$"
        )
    root = exports_dir.resolve()
    path = root / department
    if path.resolve() != path or (path.exists() and not path.is_dir()):
        raise ExportError(
            f"refusing export path {path}: it is a link or not a folder, and could lead "
            f"outside {root}; remove it and run again"
        )
    return path


def read_mart(con: duckdb.DuckDBPyConnection, policy: Policy, report: ReportPolicy) -> pa.Table:
    """``marts.<report>`` as Arrow, after checking its columns against the policy (``PolicyError``)."""
    columns = [
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'marts' AND table_name = ? "
            "ORDER BY ordinal_position",
            [report.name],
        ).fetchall()
    ]
    if not columns:
        raise ExportError(
            f"mart marts.{report.name} does not exist in the warehouse; build the marts first "
            f"(needed by {policy.department}'s policy {policy.origin})"
        )
    check_mart_columns(policy, report, columns)
    return con.sql(f'SELECT * FROM marts."{report.name}"').arrow().read_all()


def neutralise(text: str | None) -> str | None:
    """``'`` before a cell a spreadsheet would run as a formula (``=``, ``+``, ``-``, ``@``, tab, CR)."""
    if text and text.startswith(FORMULA_LEADS):
        return "'" + text
    return text


def pick_identifier(field: str, values: Iterable[VaultValue]) -> str | None:
    """The value of ``field`` a report shows when several source records hold one (module docstring).

    Only usable values compete (``display_identifier``); among them the preferred system wins, then the
    greatest record key. None when no record holds a usable value.
    """
    usable = [(shown, v) for v in values if (shown := display_identifier(field, v.value)) is not None]
    if not usable:
        return None
    best = min(_system_rank(v) for _, v in usable)
    contenders = [(shown, v) for shown, v in usable if _system_rank(v) == best]
    return max(contenders, key=lambda sv: _natural(sv[1].record_key))[0]


def display_identifier(field: str, raw: str | None) -> str | None:
    """An identifier as a department sees it, or None when the source's value is unusable.

    ``id_number``: the canonical 18 characters (a 15-digit number upgraded) or a passport number; a
    masked, Excel-damaged, mistyped or garbage number is unusable and never shown as if it were one.
    ``phone``: each valid number, mobiles as 11 digits, landlines with their area code (``/`` between).
    ``birth_date``: ``YYYY-MM-DD`` (``YYYY-MM`` from a roster's ``YYYY.MM``). ``name`` and the rest: trimmed,
    padding inside removed (``陈  佳`` -> ``陈佳``), placeholders such as ``无`` unusable.
    """
    if raw is None:
        return None
    text = drop_blanks(fold(raw))
    if not text or is_placeholder(text):
        return None
    return _DISPLAY.get(field, lambda t: t)(text)


def _display_id(text: str) -> str | None:
    found = normalize_id(text)
    return found.value if found.kind in ("full", "legacy15_upgraded") else found.passport


def _display_phone(text: str) -> str | None:
    numbers = normalize_phones(text).numbers
    national = [
        phonenumbers.format_number(phonenumbers.parse(n), PhoneNumberFormat.NATIONAL) for n in numbers
    ]
    return "/".join(drop_blanks(n) for n in national) or None


def _display_birth_date(text: str) -> str | None:
    for pattern, shape in _BIRTH_DATES:
        if pattern.fullmatch(text):
            try:
                return dt.datetime.strptime(text, shape).strftime("%Y-%m-%d" if "%d" in shape else "%Y-%m")
            except ValueError:
                return None
    return None


_DISPLAY: Mapping[str, Callable[[str], str | None]] = {
    "id_number": _display_id,
    "phone": _display_phone,
    "birth_date": _display_birth_date,
}
_BIRTH_DATES = (
    (re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}"), "%Y-%m-%d"),
    (re.compile(r"[0-9]{8}"), "%Y%m%d"),
    (re.compile(r"[0-9]{4}\.[0-9]{1,2}"), "%Y.%m"),
)


def _system_rank(value: VaultValue) -> tuple[int, str]:
    known = value.system in SYSTEM_PREFERENCE
    return (SYSTEM_PREFERENCE.index(value.system) if known else len(SYSTEM_PREFERENCE), value.system)


def _natural(record_key: str) -> tuple[tuple[int, int, str], ...]:
    return tuple((0, int(p), "") if p.isdigit() else (1, 0, p) for p in _DIGITS.findall(record_key))


# -- building -------------------------------------------------------------------------------------------


def export_keys(settings: Settings, policies: Mapping[str, Policy]) -> Keys | None:
    """The keys the export of ``policies`` needs (None for aggregates only); raises ``KeyringError``."""
    wanted = [d for d, p in sorted(policies.items()) if any(r.needs_person_key() for r in p.reports.values())]
    return load_keys(settings.keys, wanted, settings.unresolved_keys) if wanted else None


class _VaultReader:
    """Opens the vault on first use only: aggregate-only exports need neither the file nor its key."""

    def __init__(self, settings: Settings, keys: Keys | None) -> None:
        self.path, self.keys, self._vault = Path(settings.vault_path), keys, None

    def get(self, person_keys: list[str], fields: tuple[str, ...]) -> dict[str, dict[str, tuple]]:
        if not person_keys or not fields:
            return {}
        if self._vault is None:
            if not self.path.exists() or self.keys is None:
                raise ExportError(
                    f"the identifier vault {self.path} does not exist; the load step creates it"
                )
            self._vault = Vault.open(self.path, self.keys.vault)
        return self._vault.get(person_keys, fields)

    def __enter__(self) -> _VaultReader:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._vault is not None:
            self._vault.close()


def _build_department(
    policy: Policy,
    marts: Mapping[str, pa.Table],
    keys: Keys | None,
    vault: _VaultReader,
    scratch: duckdb.DuckDBPyConnection,
) -> list[_Report]:
    dept_key = keys.department(policy.department) if keys and policy.department in keys.departments else None
    wanted = sorted(
        {
            pk
            for r, t in marts.items()
            if policy.reports[r].vault_fields()
            for pk in t.column(PERSON_KEY).to_pylist()
            if pk
        }
    )
    identifiers = vault.get(wanted, policy.vault_fields())
    return [
        _build_report(report, marts[name], dept_key, identifiers, scratch)
        for name, report in policy.reports.items()
    ]


def _build_report(
    report: ReportPolicy,
    mart: pa.Table,
    dept_key: Key | None,
    identifiers: Mapping[str, Mapping[str, tuple]],
    scratch: duckdb.DuckDBPyConnection,
) -> _Report:
    keys = mart.column(PERSON_KEY).to_pylist() if report.needs_person_key() else []
    refs = person_refs(dept_key, keys) if report.needs_person_key() else None
    columns: dict[str, pa.Array | pa.ChunkedArray] = {}
    for rule in report.columns:
        if rule.kind == "mart":
            columns[rule.name] = _plain(mart.column(rule.field))
        elif rule.kind == "person_ref":
            columns[rule.name] = refs
        else:
            columns[rule.name] = pa.array(
                [
                    pick_identifier(rule.field, identifiers.get(pk, {}).get(rule.field, ())) if pk else None
                    for pk in keys
                ],
                pa.string(),
            )
    table = _sorted(scratch, pa.table(columns), report.order_by)
    vault_columns = [c.name for c in report.columns if c.kind == "vault"]
    revealed = _revealed_refs(pa.table(columns), vault_columns, refs)
    shown = tuple(
        c.name + (f" (masked: {c.mask})" if c.mask else "") for c in report.columns if c.kind == "vault"
    )
    return _Report(report.name, _display(table, report), revealed, shown if revealed else ())


def _revealed_refs(table: pa.Table, vault_columns: list[str], refs: pa.Array | None) -> tuple[str, ...]:
    """The person_refs of the rows that received at least one identifier from the vault."""
    if not vault_columns or refs is None:
        return ()
    cells = zip(*(table.column(c).to_pylist() for c in vault_columns), strict=True)
    filled = [any(v is not None for v in row) for row in cells]
    return tuple(sorted({r for r, f in zip(refs.to_pylist(), filled, strict=True) if f and r}))


def _plain(column: pa.ChunkedArray) -> pa.ChunkedArray:
    """Dictionary and view strings as plain values, so that types do not depend on how the mart was built."""
    kind = column.type
    if pa.types.is_dictionary(kind):
        column, kind = column.cast(kind.value_type), kind.value_type
    if pa.types.is_large_string(kind) or pa.types.is_string_view(kind):
        column = column.cast(pa.string())
    if pa.types.is_nested(column.type) or pa.types.is_binary(column.type):
        raise ExportError(f"a mart column of type {column.type} cannot be exported; marts hold plain values")
    return column


def _sorted(scratch: duckdb.DuckDBPyConnection, table: pa.Table, order_by: tuple[OrderKey, ...]) -> pa.Table:
    """Rows in the policy's order, ties (and everything without ``order_by``) in the mart's own order.

    The marts are built with an ``ORDER BY`` that ends in a unique tie-break and DuckDB keeps a table's
    insertion order for a plain scan, so equal marts give equal row orders. Sorted by an in-memory
    DuckDB (``scratch``), which orders text by its bytes whatever the locale.
    """
    keys = [
        f'"{k.column}" {"DESC" if k.descending else "ASC"} NULLS {"FIRST" if k.nulls_first else "LAST"}'
        for k in order_by
    ]
    indexed = table.append_column("__mart_row", pa.array(range(table.num_rows), pa.int64()))
    scratch.register("report", indexed)
    try:
        order = [
            r[0]
            for r in scratch.execute(
                f"SELECT __mart_row FROM report ORDER BY {', '.join([*keys, '__mart_row'])}"
            ).fetchall()
        ]
    finally:
        scratch.unregister("report")
    return table.take(pa.array(order, pa.int64()))


def _display(table: pa.Table, report: ReportPolicy) -> pa.Table:
    """Masks, small-count suppression, empty-cell texts and formula neutralisation, column by column."""
    arrays, fields = [], []
    for rule in report.columns:
        column = table.column(rule.name)
        if rule.if_empty is not None and not pa.types.is_string(column.type):
            raise ExportError(  # a count or date would turn to text in the CSV and break the workbook
                f"{report.name}.{rule.name}: if_empty applies to a text column; the mart's is {column.type}"
            )
        if rule.mask:
            column = _texts([MASKS[rule.mask](v) for v in column.to_pylist()])
        if rule.suppress_below:
            column = _suppressed(column, rule.suppress_below, f"{report.name}.{rule.name}")
        if pa.types.is_timestamp(column.type) and column.type.tz:
            column = column.cast(pa.timestamp(column.type.unit, tz=str(LOCAL_TZ)))
        if pa.types.is_string(column.type):
            column = _texts([neutralise(rule.if_empty if v is None else v) for v in column.to_pylist()])
        arrays.append(column)
        fields.append(pa.field(rule.name, column.type))
    return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _suppressed(column: pa.ChunkedArray, threshold: int, where: str) -> pa.ChunkedArray:
    """A count column as text, with every count under ``threshold`` shown as ``<threshold``."""
    kind = column.type
    if not (pa.types.is_integer(kind) or (pa.types.is_decimal(kind) and kind.scale == 0)):
        raise ExportError(f"{where}: suppress_below needs a whole-number count column, the mart has {kind}")
    return _texts(
        [
            None if v is None else (f"<{threshold}" if v < threshold else str(int(v)))
            for v in column.to_pylist()
        ]
    )


def _texts(values: list[str | None]) -> pa.ChunkedArray:
    return pa.chunked_array([pa.array(values, pa.string())])


# -- writing ----------------------------------------------------------------------------------------------


def _publish(
    settings: Settings,
    policy: Policy,
    reports: list[_Report],
    target: Path,
    day: str,
    as_of: dt.datetime,
    run_id: str,
    actor: str,
    clock: Clock,
    notes: Mapping[str, list[str]],
) -> dict[str, Any]:
    """Stage the day folder, audit what it reveals, then swap it in; returns counts and the path."""
    target.mkdir(parents=True, exist_ok=True)
    final = department_dir(target.parent, policy.department) / day
    with locked(target):
        _remove_leftovers(target)
        stage = target / f".{day}.tmp-{secrets.token_hex(4)}"
        try:
            stage.mkdir(mode=0o750)
            notes = {r.name: notes[r.name] for r in reports if notes.get(r.name)}
            files = [
                entry
                for r in reports
                for entry in write_report_files(
                    stage,
                    r.name,
                    r.table,
                    policy.reports[r.name],
                    WorkbookMeta(
                        policy.department, day, run_id, policy.version, tuple(notes.get(r.name, ()))
                    ),
                )
            ]
            audited = _audit(settings, policy, reports, actor, clock())
            audit = AuditLog(settings.audit_path).tip()
            manifest = _manifest(policy, day, as_of, run_id, files, clock(), audit)
            write_json(stage / "manifest.json", {**manifest, "notes": notes} if notes else manifest)
            fsync_dir(stage)
            swap_dirs(stage, _replaceable(final))
        finally:
            if stage.exists():
                shutil.rmtree(stage)
    rows = {r.name: r.table.num_rows for r in reports}
    log.info("exported %s for %s to %s: %s (audit entries: %d)", policy.department, day, final, rows, audited)
    return {"path": str(final), "policy_version": policy.version, "reports": rows, "audit_entries": audited}


def _manifest(
    policy: Policy,
    day: str,
    as_of: dt.datetime,
    run_id: str,
    files: list[dict[str, Any]],
    made_at: dt.datetime,
    audit: tuple[int, str],
) -> dict[str, Any]:
    return {
        "department": policy.department,
        "day": day,
        "as_of": as_of.astimezone(LOCAL_TZ).isoformat(),
        "run_id": run_id,
        "files": files,
        "made_at": made_at.astimezone(dt.UTC).isoformat(),
        "policy": {"file": policy.origin, "version": policy.version, "sha256": policy.sha256},
        "audit": {"entries": audit[0], "head": audit[1]},  # an anchor `islandbridge audit verify` checks
    }


def _audit(settings: Settings, policy: Policy, reports: list[_Report], actor: str, at: dt.datetime) -> int:
    """One entry per report that revealed identifiers, appended before anything is published."""
    log_ = AuditLog(settings.audit_path)
    entries = 0
    for report in reports:
        if report.revealed_refs:
            log_.append(
                actor=actor,
                purpose=f"export {policy.department}/{report.name}",
                department=policy.department,
                person_refs=report.revealed_refs,
                columns=report.revealed_columns,
                at=at,
            )
            entries += 1
    return entries


def _replaceable(day_folder: Path) -> Path:
    """A day folder the exporter may replace: absent, or a real folder (a link could lead elsewhere)."""
    if day_folder.is_symlink() or (day_folder.exists() and not day_folder.is_dir()):
        raise ExportError(
            f"refusing to replace {day_folder}: it is a link or a file, not an export folder; "
            "remove it and run again"
        )
    return day_folder


def _remove_leftovers(folder: Path) -> None:
    """Stage and old folders left by an exporter that was killed (we hold the department's lock)."""
    for entry in folder.iterdir():
        if _LEFTOVER.fullmatch(entry.name) and entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry)
