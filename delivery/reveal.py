"""Operator re-identification: turn a department's person_refs (or person_keys) back into identifiers.

The only way besides an export for identifiers to leave the vault. A reveal is refused without a
purpose and an actor, for a department without a policy, or for a field that department's policy does
not let it receive. Every reveal appends one audit entry (actor, time, purpose, department, the
person_refs concerned, the fields) *before* any value is returned; the purpose is free text, so it is
stored scrubbed (`privacy.scrub`: ID, card and phone numbers, the street's known names), and a purpose
that says nothing once they are out is refused. Values are never logged; the result's ``repr`` shows
counts only, so a stray ``log.info(result)`` leaks nothing.

Example::

    found = reveal(settings, department="grid_centre", person_refs=["gc_8d01…"], columns=["phone"],
                   purpose="resident reported a fall; calling the family", actor="wang.li")
    found.rows      # ({'person_ref': 'gc_8d01…', 'phone': '13800138000'},)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb

from islandbridge import storage
from islandbridge.config import Settings
from islandbridge.delivery.export import pick_identifier
from islandbridge.delivery.policy import Policy, load_policies
from islandbridge.delivery.snapshot import unopened
from islandbridge.errors import TerminalError, count, noun
from islandbridge.privacy.audit import AuditLog, record_anchor, recorded_anchors
from islandbridge.privacy.keys import load_keys
from islandbridge.privacy.masking import mask_id, mask_name, mask_phone, mask_typed
from islandbridge.privacy.pinyin import scrub_pinyin, typed_text
from islandbridge.privacy.pseudonymise import person_refs as make_refs
from islandbridge.privacy.scrub import FAILED, PLACEHOLDERS, Scrubber
from islandbridge.privacy.sealing import KNOWN_NAMES
from islandbridge.privacy.vault import Vault

log = logging.getLogger(__name__)

# Display masks per vault field, for ``masked=True``; a field without one is hidden whole.
FIELD_MASKS: Mapping[str, Callable[[object], str | None]] = {
    "name": mask_name,
    "phone": mask_phone,
    "id_number": mask_id,
}
_HIDDEN = "***"
ACTOR = re.compile(r"[A-Za-z0-9._@-]{1,64}")  # an account name: nothing that could forge a log line
PLACED = (*PLACEHOLDERS.values(), FAILED)  # what the scrubber puts in a purpose
# Spaces, zero-width spaces and middle dots between Chinese characters, taken out before scrubbing: a
# name typed spaced (黄 建 国, 黄·建·国) is found
_SPACED_HAN = re.compile(r"(?<=[\u3400-\u9fff])[\s\u200b-\u200d\u2060\ufeff·・]+(?=[\u3400-\u9fff])")
MIN_PURPOSE = 4  # characters other than spaces, two of them letters or digits


class RevealError(TerminalError):
    """A reveal was refused (no purpose, field not allowed, unknown person_ref); nothing was revealed.

    Terminal: the request itself must change; asking again the same way is refused again."""

    exit_status = 2


@dataclass(frozen=True, repr=False)
class Revealed:
    """The values revealed, one row per person asked for, and the audit entry that records it."""

    department: str
    columns: tuple[str, ...]
    rows: tuple[dict[str, str | None], ...]
    audit_seq: int

    def __repr__(self) -> str:
        return (
            f"Revealed(department={self.department!r}, columns={list(self.columns)}, "
            f"rows={len(self.rows)}, audit_seq={self.audit_seq})"
        )

    __str__ = __repr__


def reveal(
    settings: Settings,
    *,
    department: str,
    columns: Sequence[str],
    purpose: str,
    actor: str,
    person_refs: Iterable[str] | None = None,
    person_keys: Iterable[str] | None = None,
    masked: bool = False,
    con: duckdb.DuckDBPyConnection | None = None,
    policies: Mapping[str, Policy] | None = None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
) -> Revealed:
    """Reveal ``columns`` (vault fields) of the persons named by ``person_refs`` xor ``person_keys``.

    person_refs are resolved against the warehouse's person keys (``con``, or the warehouse opened for
    writing, which also gets the audit anchor of the entry in ``meta.audit_anchors``; a caller's ``con``
    does not). The audit log must verify, against the warehouse's anchors, before anything is appended
    (``AuditBrokenError``). Raises ``RevealError`` before revealing or auditing anything when the actor
    is not an account name (``ACTOR``), the purpose is empty or says nothing (fewer than ``MIN_PURPOSE``
    characters, only punctuation), the department has no policy, a field is not one its policy lets it
    receive, no person is named, or a person_ref or person_key is not in the warehouse.
    """
    _require_actor_and_purpose(actor, purpose)
    fields = _allowed_fields(department, columns, load_policies() if policies is None else policies)
    keys = load_keys(settings.keys, [department], settings.unresolved_keys)
    dept_key = keys.department(department)
    if (person_refs is None) == (person_keys is None):
        raise RevealError("name the persons by person_refs or by person_keys (exactly one of them)")
    with _warehouse(settings, con) as (warehouse, owned):
        known = _known_person_keys(warehouse)
        if person_keys is not None:
            wanted = list(dict.fromkeys(person_keys))
            _require_known(wanted, known)
            refs = dict(zip(wanted, make_refs(dept_key, wanted).to_pylist(), strict=True))
        else:
            refs = _resolve_refs(list(dict.fromkeys(person_refs or ())), department, dept_key, known)
        if not refs:
            raise RevealError("no person named; pass at least one person_ref or person_key")
        audit = AuditLog(settings.audit_path)
        audit.require_intact(recorded_anchors(warehouse))
        values, names, own = _vault_values(settings, keys.vault, list(refs), fields)
        stated = _scrubbed_purpose(purpose, names, own)
        shown = [f + (" (masked)" if masked else "") for f in fields]
        at = clock()
        entry = audit.append(
            actor=actor,
            purpose=f"reveal: {stated}",
            department=department,
            person_refs=list(refs.values()),
            columns=shown,
            at=at,
        )
        if owned:
            record_anchor(warehouse, entry.seq, entry.hash, "reveal", at)
    rows = tuple(
        {
            "person_ref": refs[pk],
            **{f: _show(f, pick_identifier(f, values.get(pk, {}).get(f, ())), masked) for f in fields},
        }
        for pk in refs
    )
    log.info(
        "reveal for %s by %s: %s, fields %s, audit entry %d",
        department,
        actor,
        count(len(rows), "person", "persons"),
        shown,
        entry.seq,
    )
    return Revealed(department, tuple(fields), rows, entry.seq)


def _require_actor_and_purpose(actor: str, purpose: str) -> None:
    """An actor is an account name, a purpose a reason someone can read back (not ``.`` or ``x``)."""
    for name, value in (("purpose", purpose), ("actor", actor)):
        if not isinstance(value, str) or not value.strip():
            raise RevealError(f"a reveal needs a stated {name}; nothing was revealed")
    if not ACTOR.fullmatch(actor):
        raise RevealError(
            f"a reveal needs a stated actor: an account name of 1 to 64 letters, digits or . _ @ -, "
            f"not {mask_typed(actor[:70])!r}; nothing was revealed"
        )
    if not _says_something(purpose):
        raise RevealError(
            f"a reveal needs a stated purpose of at least {MIN_PURPOSE} characters saying why "
            "(e.g. 'welfare visit'); nothing was revealed"
        )


def _says_something(text: str) -> bool:
    meaningful = [c for c in text if c.isalnum()]
    return len("".join(text.split())) >= MIN_PURPOSE and len(meaningful) >= 2


def _scrubbed_purpose(purpose: str, names: Iterable[str], own: Sequence[str] = ()) -> str:
    """The purpose as the audit log keeps it: its ID, card and phone numbers, known names and the revealed
    persons' own names (``own``), in characters or in pinyin, replaced by placeholders. A purpose that says
    nothing once they are out (only an ID number, a name and a phone) is no reason a reader of the log can
    check, so it is refused like an empty one."""
    typed = typed_text(purpose).strip()  # ｚｈａｎｇ is zhang, 秦\u200b光明 is 秦光明
    scrubbed = Scrubber([*names, *own])(_SPACED_HAN.sub("", typed))
    scrubbed = scrub_pinyin(scrubbed, own)
    left = scrubbed
    for mark in PLACED:
        left = left.replace(mark, " ")
    if not _says_something(left):
        raise RevealError(
            "a reveal needs a stated purpose saying why, beyond the ID numbers, phones or names in it "
            "(they are not written to the audit log, e.g. 'welfare visit'); nothing was revealed"
        )
    return scrubbed


def _allowed_fields(department: str, columns: Sequence[str], policies: Mapping[str, Policy]) -> list[str]:
    if department not in policies:
        raise RevealError(
            f"no export policy for department {mask_typed(department)!r}; known: {', '.join(sorted(policies))}"
        )
    allowed = policies[department].vault_fields()
    fields = [columns] if isinstance(columns, str) else list(dict.fromkeys(columns))
    refused = [f for f in fields if f not in allowed]
    if refused or not fields:
        raise RevealError(
            f"{department} may not be shown {[mask_typed(f) for f in refused] or 'nothing'}: its policy "
            f"({policies[department].origin}) allows {', '.join(allowed) or 'no identifier'}"
        )
    return fields


def _resolve_refs(wanted: list[str], department: str, dept_key, known: list[str]) -> dict[str, str]:
    """person_key -> person_ref for the wanted refs, by computing the refs of every known person."""
    by_ref = dict(zip(make_refs(dept_key, known).to_pylist(), known, strict=True))
    unknown = [r for r in wanted if r not in by_ref]
    if unknown:
        raise RevealError(
            f"{count(len(unknown), 'person_ref')} {noun(len(unknown), 'is', 'are')} not {department}'s refs of any person in the "
            f"warehouse (first: {', '.join(mask_typed(r) for r in unknown[:3])}); nothing was revealed"
        )
    return {by_ref[r]: r for r in wanted}


def _require_known(wanted: list[str], known: list[str]) -> None:
    present = set(known)
    unknown = [k for k in wanted if k not in present]
    if unknown:
        raise RevealError(
            f"{count(len(unknown), 'person_key')} {noun(len(unknown), 'is', 'are')} not in the warehouse (first: "
            f"{', '.join(repr(mask_typed(k[:40])) for k in unknown[:3])}); nothing was revealed or audited"
        )


def _known_person_keys(con: duckdb.DuckDBPyConnection) -> list[str]:
    query = "SELECT DISTINCT person_key FROM core.identity_map WHERE person_key IS NOT NULL ORDER BY 1"
    return [r[0] for r in con.execute(query).fetchall()]


@contextlib.contextmanager
def _warehouse(
    settings: Settings, con: duckdb.DuckDBPyConnection | None
) -> Iterator[tuple[duckdb.DuckDBPyConnection, bool]]:
    """``con``, or the warehouse opened for writing (the reveal's audit anchor goes in it); ``owned``.
    ``WarehouseBusyError`` only while another process holds its lock (`storage.lock_holder`); any other
    failure to open it is a ``RevealError`` saying why."""
    if con is not None:
        yield con, False
        return
    path = Path(settings.warehouse_path)
    if not path.is_file():
        raise RevealError(f"no warehouse at {path}; nothing to reveal")
    try:
        own = storage.connect(str(path), resources=settings.duckdb)
    except duckdb.Error as exc:  # busy only while a sync holds it; not a DuckDB file, damaged: RevealError
        raise unopened(exc, f"cannot open the warehouse {path}", "reveal again", RevealError) from None
    try:
        yield own, True
    finally:
        own.close()


def _vault_values(
    settings: Settings, keyring, person_keys: list[str], fields: list[str]
) -> tuple[dict, list[str], list[str]]:
    """The persons' values of ``fields`` (and their names), the street's known names and the names the
    persons' records hold (for scrubbing the purpose)."""
    path = Path(settings.vault_path)
    if not path.exists():
        raise RevealError(f"the identifier vault {path} does not exist; nothing to reveal")
    with Vault.open(path, keyring) as vault:
        values = vault.get(person_keys, list(dict.fromkeys([*fields, "name"])))
        own = [v.value for found in values.values() for v in found.get("name", ())]
        return values, vault.sealed_list(KNOWN_NAMES), own


def _show(field: str, value: str | None, masked: bool) -> str | None:
    if not masked or value is None:
        return value
    mask = FIELD_MASKS.get(field)
    return mask(value) if mask else _HIDDEN
