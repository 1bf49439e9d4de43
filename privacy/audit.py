"""The re-identification audit log: who turned pseudonyms back into people, when, why, and which.

Every time identifiers leave the vault (an export with names, a lookup by an operator) one entry is
appended: actor, time, purpose, department, the person_refs or person_keys concerned and the columns
revealed. The log is a JSON-lines file opened only for appending, and a hash chain: each entry holds
``prev`` (the hash of the entry before it; 64 zeros for the first) and ``hash``, the SHA-256 of its
own canonical JSON (sorted keys, no spaces, UTF-8) without the ``hash`` field. Editing, deleting or
reordering any entry breaks the chain at that entry, and ``verify`` names it.

A chain alone cannot notice the newest entries being cut off, nor a whole chain recomputed by someone
with write access. So every command that appends records an *anchor* — the number of entries and the
head hash — where the writer of this file does not write it: the warehouse (``meta.audit_anchors``, one
row per export run and per reveal, ``record_anchor``) and each export's ``manifest.json``. ``verify(
anchors=...)`` checks that entry N still has the hash recorded for it.

``append`` verifies the whole chain first (under the lock) and refuses to add to a broken one
(``AuditBrokenError``); ``require_intact(anchors)`` does the same check up front, before a command has
done anything it would have to audit.

Example::

    log = AuditLog("var/audit/reidentification.jsonl")
    log.append("wang.li", "welfare visit list", "grid_centre", ["gc_8d01…"], ["name", "phone"], at=as_of)
    log.verify()          # Verification(ok=True, entries=1, head='…')
    log.verify(anchors=recorded_anchors(con))     # also: nothing cut off since the warehouse recorded it
"""

from __future__ import annotations

import datetime as dt
import fcntl
import hashlib
import json
import os
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import NamedTuple

import duckdb

from islandbridge.errors import TerminalError
from islandbridge.storage import has_table

GENESIS = "0" * 64
_FIELDS = ("seq", "at", "actor", "purpose", "department", "person_refs", "columns", "prev", "hash")


class AuditError(TerminalError, ValueError):
    """An entry was refused (empty purpose or actor, naive time) or the log's tail cannot be read.

    Terminal: the request must change, or a person must verify and repair the log."""


class AuditBrokenError(AuditError):
    """The log's chain is broken (an entry edited, deleted, moved) or cut off below a recorded anchor.

    Terminal: nothing more is appended to it, so exports with identifiers and reveals stop until a person
    restores the log (from a backup) and ``islandbridge audit verify`` passes."""


class Anchor(NamedTuple):
    """``entries`` entries were in the log, the last with hash ``head``, as recorded at ``where``."""

    entries: int
    head: str
    where: str


@dataclass(frozen=True)
class AuditEntry:
    seq: int
    at: str  # ISO 8601, UTC
    actor: str
    purpose: str
    department: str
    person_refs: tuple[str, ...]
    columns: tuple[str, ...]
    prev: str
    hash: str


@dataclass(frozen=True)
class Verification:
    """The outcome of ``AuditLog.verify``; true when the chain is intact."""

    ok: bool
    entries: int  # entries checked and found good
    head: str  # hash of the last good entry
    bad_line: int | None = None
    reason: str | None = None

    def __bool__(self) -> bool:
        return self.ok


class AuditLog:
    """An append-only, hash-chained audit file; created on the first ``append``."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def append(
        self,
        actor: str,
        purpose: str,
        department: str,
        person_refs: Iterable[str],
        columns: Iterable[str],
        at: dt.datetime,
    ) -> AuditEntry:
        """Append one entry and return it. ``at`` is the time of the re-identification (timezone-aware).

        Raises ``AuditError`` for an empty purpose, actor or department or a naive ``at``, and
        ``AuditBrokenError`` (nothing appended) when the chain as it stands does not verify.
        """
        body = _body(actor, purpose, department, person_refs, columns, at)
        self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        with os.fdopen(fd, "a", encoding="utf-8") as out:
            fcntl.flock(out, fcntl.LOCK_EX)  # two writers must not both chain onto the same entry
            self.require_intact()
            last = self._last_entry()
            body.update(seq=last.seq + 1 if last else 1, prev=last.hash if last else GENESIS)
            body["hash"] = _digest(body)
            out.write(_canonical(body) + "\n")
            out.flush()
            os.fsync(out.fileno())
        return _entry(body)

    def entries(self) -> Iterator[AuditEntry]:
        """Every entry in file order, as written (``verify`` says whether to trust them)."""
        for _, line in self._lines():
            yield _entry(json.loads(line))

    def head(self) -> str:
        """The hash of the newest entry (``GENESIS`` for an empty log): the value to anchor elsewhere."""
        last = self._last_entry()
        return last.hash if last else GENESIS

    def tip(self) -> tuple[int, str]:
        """How many entries the log has and the newest one's hash (``0, GENESIS`` when empty): an anchor."""
        last = self._last_entry()
        return (last.seq, last.hash) if last else (0, GENESIS)

    def verify(self, expected_head: str | None = None, anchors: Iterable[Anchor] = ()) -> Verification:
        """Check the whole chain; the first entry that was edited, removed or moved is reported.

        ``expected_head`` is a hash recorded earlier: it must still be in the chain, which catches the
        newest entries being cut off. Each of ``anchors`` says entry ``entries`` had hash ``head``: it
        must still be there with that hash (a log cut off and written on again fails too).
        """
        prev, seen_head = GENESIS, expected_head in (None, GENESIS)
        count = 0
        wanted: dict[int, list[Anchor]] = {}
        for anchor in anchors:
            wanted.setdefault(int(anchor.entries), []).append(anchor)
        for number, line in self._lines():
            problem = _check(number, line, prev)
            if problem:
                return Verification(False, count, prev, number, problem)
            prev, count = json.loads(line)["hash"], count + 1
            seen_head = seen_head or prev == expected_head
            for anchor in wanted.pop(number, ()):
                if anchor.head != prev:
                    return Verification(
                        False,
                        count,
                        prev,
                        number,
                        f"entry {number} is not the one recorded in {anchor.where}: the log was cut off "
                        "there and written on again, or rewritten",
                    )
        cut = sorted(a for n, found in wanted.items() if n > 0 for a in found)
        if cut:
            return Verification(
                False,
                count,
                prev,
                count + 1,
                f"the log has {count} entries but {cut[-1].where} recorded {cut[-1].entries}: "
                "entries were cut off the end",
            )
        if not seen_head:
            return Verification(
                False,
                count,
                prev,
                count + 1,
                f"the anchored entry {expected_head} is missing: entries were cut off the end",
            )
        return Verification(True, count, prev)

    def require_intact(self, anchors: Iterable[Anchor] = ()) -> Verification:
        """``verify(anchors=anchors)``, raising ``AuditBrokenError`` naming the first problem."""
        result = self.verify(anchors=anchors)
        if not result:
            raise AuditBrokenError(
                f"the re-identification audit log {self.path} does not verify: {result.reason}; nothing "
                "was revealed or appended. Restore it from a backup, then run `islandbridge audit verify`"
            )
        return result

    def _lines(self) -> Iterator[tuple[int, str]]:
        if not self.path.exists():
            return
        with self.path.open(encoding="utf-8", newline="\n") as f:
            for number, line in enumerate(f, 1):
                yield number, line.rstrip("\n")

    def _last_entry(self) -> AuditEntry | None:
        line = _last_line(self.path)
        if line is None:
            return None
        try:
            return _entry(json.loads(line))
        except (ValueError, KeyError, TypeError):
            raise AuditError(f"the last line of {self.path} is not a readable entry; run verify()") from None


def _body(
    actor: str, purpose: str, department: str, refs: Iterable[str], columns: Iterable[str], at: dt.datetime
) -> dict:
    for name, value in (("actor", actor), ("purpose", purpose), ("department", department)):
        if not isinstance(value, str) or not value.strip():
            raise AuditError(
                f"an audit entry needs a non-empty {name}; re-identification without one is refused"
            )
    if not isinstance(at, dt.datetime) or at.tzinfo is None:
        raise AuditError("an audit entry's time must be a timezone-aware datetime")
    return {
        "at": at.astimezone(dt.UTC).isoformat(),
        "actor": actor.strip(),
        "purpose": purpose.strip(),
        "department": department.strip(),
        "person_refs": [str(r) for r in refs],
        "columns": [str(c) for c in columns],
    }


def _check(number: int, line: str, prev: str) -> str | None:
    """Why line ``number`` breaks the chain, or None."""
    try:
        body = json.loads(line)
        if not isinstance(body, dict) or set(body) != set(_FIELDS):
            return f"line {number} is not an audit entry (fields differ)"
    except ValueError:
        return f"line {number} is not valid JSON (edited or half-written)"
    if body["hash"] != _digest(body):
        return f"entry at line {number} (seq {body['seq']}) was edited: its content does not match its hash"
    if body["seq"] != number:
        return (
            f"line {number} holds entry {body['seq']}, expected entry {number}: "
            "an entry was deleted, inserted or moved"
        )
    if body["prev"] != prev:
        return (
            f"entry {number} (line {number}) does not chain onto entry {number - 1}: "
            f"entry {number - 1} was replaced, or its hash rewritten"
        )
    return None


def _digest(body: dict) -> str:
    content = {k: v for k, v in body.items() if k != "hash"}
    return hashlib.sha256(_canonical(content).encode("utf-8")).hexdigest()


def _canonical(body: dict) -> str:
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _entry(body: dict) -> AuditEntry:
    values = {k: body[k] for k in _FIELDS}
    values["person_refs"], values["columns"] = tuple(values["person_refs"]), tuple(values["columns"])
    return AuditEntry(**values)


def _last_line(path: Path, block: int = 4096) -> str | None:
    """The file's last non-empty line, read from the end (the log may be large)."""
    try:
        f = path.open("rb")
    except FileNotFoundError:
        return None
    with f:
        f.seek(0, os.SEEK_END)
        end = pos = f.tell()
        data = b""
        while pos > 0 and data.rstrip(b"\n").count(b"\n") < 1:
            pos = max(0, pos - block)
            f.seek(pos)
            data = f.read(end - pos)
    text = data.rstrip(b"\n")
    return text.rsplit(b"\n", 1)[-1].decode("utf-8") if text else None


ANCHORS_DDL = """
CREATE SCHEMA IF NOT EXISTS meta;
CREATE TABLE IF NOT EXISTS meta.audit_anchors (
    recorded_at TIMESTAMPTZ NOT NULL, command VARCHAR NOT NULL, run_id VARCHAR,
    entries BIGINT NOT NULL, head VARCHAR NOT NULL
);
"""


def record_anchor(
    con: duckdb.DuckDBPyConnection,
    entries: int,
    head: str,
    command: str,
    at: dt.datetime,
    run_id: str | None = None,
) -> None:
    """Write the log's entry count and head (the newest entry's ``seq`` and ``hash``) into the warehouse
    on ``con`` (a write connection): an anchor ``audit verify`` checks the log against."""
    con.execute(ANCHORS_DDL)
    con.execute("INSERT INTO meta.audit_anchors VALUES (?, ?, ?, ?, ?)", [at, command, run_id, entries, head])


def recorded_anchors(con: duckdb.DuckDBPyConnection) -> list[Anchor]:
    """Every anchor in the warehouse on ``con`` (none before the first one was recorded)."""
    if not has_table(con, "meta.audit_anchors"):
        return []
    rows = con.execute(
        "SELECT entries, head, command, coalesce(run_id, ''), recorded_at FROM meta.audit_anchors ORDER BY 1"
    ).fetchall()
    return [
        Anchor(
            n, head, f"meta.audit_anchors ({command} {run_id} at {at:%Y-%m-%d %H:%M:%S})".replace("  ", " ")
        )
        for n, head, command, run_id, at in rows
    ]
