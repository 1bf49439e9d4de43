"""The review queue: pairs of records the model was unsure of, a person's decision on each, and its effect.

Each reconcile writes the pairs it could not settle to ``core.identity_review`` (`clusters.Review`). A
person lists them (`list_pairs`), compares one pair's records side by side — masked values only, and
what else tells two people apart: birth year, sex, the flat, whether the names masked alike are the
same, the other records of each side's person (`show_pair`) — and decides: the same person, or different people (`decide`), or takes a decision back
(`withdraw`: the model and the rules decide the pair again). Decisions are kept in
``core.identity_decisions`` (append-only; the newest decision of a pair counts, a withdrawal included),
never deleted by a rewind, and every later reconcile applies them (`applicable`, `clusters.build_clusters`): ``same`` is a
hard link, ``different`` a cannot-link; a decided pair is not asked again. What a reconcile cannot honour
— a ``different`` pair with one valid ID number — is reported in its summary (``decisions.conflicts``).

A pair is named by a short stable id, a hash of its two records (`pair_id`), or by its two records,
``SYSTEM/RECORD_KEY~SYSTEM/RECORD_KEY`` (a pair the model linked, found through ``core.identity_map``).

    islandbridge review list                      # the latest run's pairs, open ones marked
    islandbridge review show 3f9a0c2b1d           # both records, masked, side by side (audited)
    islandbridge review decide 3f9a0c2b1d different --note "同名母女, 出生年不同"
    islandbridge review withdraw 3f9a0c2b1d --note "核实有误"   # the decision no longer applies

No name, ID number or phone is ever stored, logged or printed unmasked here; notes are scrubbed and
refused when they hold a run of six or more digits.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import duckdb
import pyarrow as pa

from islandbridge.config import Clock, Settings, utc_now
from islandbridge.errors import TerminalError
from islandbridge.identity import tables as identity
from islandbridge.identity.clusters import REASONS, Clustering
from islandbridge.identity.decided import Decisions
from islandbridge.identity.records import BoundStream, StreamPlan, load_records, person_streams
from islandbridge.landing import raw
from islandbridge.privacy.audit import AuditLog
from islandbridge.privacy.configured import open_vault
from islandbridge.privacy.masking import mask_id, mask_name, mask_phone, mask_typed
from islandbridge.privacy.pinyin import scrub_pinyin
from islandbridge.privacy.scrub import Scrubber
from islandbridge.privacy.sealing import KNOWN_NAMES, SealedColumns
from islandbridge.storage import has_table

log = logging.getLogger(__name__)

DECISIONS = ("same", "different")
WITHDRAWN = "withdrawn"  # stored like a decision: the pair's newest row, which puts no decision in force
COMMAND = "islandbridge review list"  # what a report names next to the count of open pairs
AUDIT_DEPARTMENT = "identity_review"  # the audit log's department for the review's entries
NOTE_MAX = 500
_LONG_NUMBER = re.compile(r"\d{6,}")

Record = tuple[str, str]  # (system, record_key)


class ReviewError(TerminalError):
    """A review command was refused (unknown pair, bad decision, a note holding a number); nothing changed.

    Terminal: the request must change."""

    exit_status = 2


def pair_id(left: Record, right: Record) -> str:
    """The short stable id of a pair of records, the same whichever side comes first."""
    a, b = sorted((tuple(left), tuple(right)))
    return hashlib.sha256(f"{a[0]}\x1f{a[1]}\x1e{b[0]}\x1f{b[1]}".encode()).hexdigest()[:10]


@dataclass(frozen=True)
class Decision:
    pair_id: str
    left: Record
    right: Record
    decision: str
    actor: str
    note: str | None
    decided_at: dt.datetime


def current_decisions(con: duckdb.DuckDBPyConnection) -> list[Decision]:
    """The decision in force for every decided pair (its newest, unless that is a withdrawal), oldest pair
    first."""
    if not has_table(con, "core.identity_decisions"):
        return []
    rows = con.execute(
        "SELECT * FROM (SELECT pair_id, system_l, record_key_l, system_r, record_key_r, decision, actor, note, "
        "decided_at, seq FROM core.identity_decisions "
        "QUALIFY row_number() OVER (PARTITION BY pair_id ORDER BY seq DESC) = 1) WHERE decision <> ? "
        "ORDER BY seq",
        [WITHDRAWN],
    ).fetchall()
    rows = [row[:-1] for row in rows]
    return [Decision(p, (sl, kl), (sr, kr), d, a, n, at) for p, sl, kl, sr, kr, d, a, n, at in rows]


# -- applying decisions in a reconcile --------------------------------------------------------------------


@dataclass(frozen=True)
class Applicable:
    """The decisions whose two records are in a run's record table, in its uids."""

    decisions: Decisions
    pair_ids: Mapping[tuple[int, int], str]  # (smaller uid, larger uid) -> pair id
    absent: int  # decisions with a record not in this run (gone from the sources, or not yet there)


def applicable(con: duckdb.DuckDBPyConnection, records: pa.Table) -> Applicable:
    """The decisions in force, as uid pairs of ``records`` (`records.FEATURES`)."""
    decided = current_decisions(con)
    if not decided:
        return Applicable(Decisions(), {}, 0)
    uid = {
        key: i
        for i, key in enumerate(
            zip(records["system"].to_pylist(), records["record_key"].to_pylist(), strict=True)
        )
    }
    same, different, ids, absent = [], [], {}, 0
    for d in decided:
        a, b = uid.get(d.left), uid.get(d.right)
        if a is None or b is None or a == b:
            absent += 1
            continue
        pair = (min(a, b), max(a, b))
        ids[pair] = d.pair_id
        (same if d.decision == "same" else different).append(pair)
    return Applicable(Decisions(tuple(same), tuple(different)), ids, absent)


def outcome(decided: Applicable, found: Clustering) -> dict[str, Any]:
    """What a run did with the decisions: applied, absent, and the conflicts (pair ids, no records)."""
    conflicts = [
        {
            "pair": decided.pair_ids[(min(c.uid_l, c.uid_r), max(c.uid_l, c.uid_r))],
            "decision": c.decision,
            "reason": c.reason,
        }
        for c in found.conflicts
    ]
    for c in conflicts:
        log.warning(
            "review decision %s (%s) not honoured: %s is stronger evidence; see `islandbridge review show %s`",
            c["pair"],
            c["decision"],
            c["reason"],
            c["pair"],
        )
    applied = len(decided.decisions.same) + len(decided.decisions.different) - len(conflicts)
    return {"applied": applied, "absent": decided.absent, "conflicts": conflicts}


# -- the queue --------------------------------------------------------------------------------------------


def latest_run(con: duckdb.DuckDBPyConnection) -> tuple[str, dt.datetime]:
    """(run_id, as_of) of the newest reconciled run; `ReviewError` when nothing is reconciled yet."""
    runs = identity.reconciled_runs(con) if has_table(con, "meta.identity_runs") else []
    if not runs:
        raise ReviewError("no run is reconciled yet: run `islandbridge reconcile` (or `sync`) first")
    return runs[-1]


def open_reviews(con: duckdb.DuckDBPyConnection, run_id: str | None = None) -> int:
    """How many pairs of ``run_id`` (default: the newest reconciled run) nobody has decided yet."""
    run_id = run_id or latest_run(con)[0]
    decided = {d.pair_id for d in current_decisions(con)}
    return sum(1 for row in _review_rows(con, run_id) if row["id"] not in decided)


def list_pairs(
    settings: Settings,
    *,
    run_id: str | None = None,
    reason: str | None = None,
    limit: int | None = None,
    open_only: bool = False,
) -> dict[str, Any]:
    """The pairs of ``run_id`` (default: the newest reconciled run), most probable first, each with its id,
    records, probability, reason and decision (None: open). Counts are of the whole run."""
    if reason is not None and reason not in REASONS:
        raise ReviewError(f"unknown reason {mask_typed(reason)!r}; reasons: {', '.join(REASONS)}")
    with raw.open_warehouse(settings, read_only=True) as con:
        run_id = run_id or latest_run(con)[0]
        if run_id not in {r for r, _ in identity.reconciled_runs(con)}:
            raise ReviewError(
                f"run {mask_typed(run_id)} is not reconciled; `islandbridge runs` lists the runs"
            )
        decided = {d.pair_id: d.decision for d in current_decisions(con)}
        rows = _review_rows(con, run_id)
    for row in rows:
        row["decided"] = decided.get(row["id"])
    chosen = [
        r for r in rows if (reason is None or r["reason"] == reason) and not (open_only and r["decided"])
    ]
    chosen.sort(
        key=lambda r: (-(r["match_probability"] if r["match_probability"] is not None else -1), r["id"])
    )
    return {
        "run_id": run_id,
        "pairs": len(rows),
        "open": sum(1 for r in rows if not r["decided"]),
        "listed": len(chosen),
        "rows": chosen[:limit] if limit else chosen,
    }


def _review_rows(con: duckdb.DuckDBPyConnection, run_id: str) -> list[dict[str, Any]]:
    rows = con.execute(
        "SELECT system_l, record_key_l, system_r, record_key_r, match_probability, reason "
        "FROM core.identity_review WHERE run_id = ?",
        [run_id],
    ).fetchall()
    return [
        {
            "id": pair_id((sl, kl), (sr, kr)),
            "left": (sl, kl),
            "right": (sr, kr),
            "match_probability": p,
            "reason": reason,
        }
        for sl, kl, sr, kr, p, reason in rows
    ]


def find_pair(con: duckdb.DuckDBPyConnection, ref: str) -> tuple[Record, Record]:
    """The two records a pair reference names: a pair id from `list_pairs` (or of a decided pair), or
    ``SYSTEM/RECORD_KEY~SYSTEM/RECORD_KEY`` of two records in the identity map."""
    ref = ref.strip()
    if "~" in ref:
        left, right = (_record_ref(part) for part in ref.split("~", 1))
        if left == right:
            raise ReviewError("a pair needs two different records")
        for record in (left, right):
            if _person_key(con, record) is None:
                raise ReviewError(f"no record {mask_typed('/'.join(record))} in core.identity_map")
        return left, right
    wanted = ref.lower()
    pairs = [
        (r["left"], r["right"]) for run, _ in identity.reconciled_runs(con) for r in _review_rows(con, run)
    ]
    pairs += _decided_pairs(con)
    for left, right in pairs:
        if pair_id(left, right) == wanted:
            return left, right
    raise ReviewError(
        f"no pair {mask_typed(ref)!r}: use an id from `islandbridge review list`, or name two records as "
        "SYSTEM/RECORD_KEY~SYSTEM/RECORD_KEY"
    )


def _decided_pairs(con: duckdb.DuckDBPyConnection) -> list[tuple[Record, Record]]:
    """Every pair anybody decided, a withdrawn decision included (its id is still the way to name it)."""
    if not has_table(con, "core.identity_decisions"):
        return []
    rows = con.execute(
        "SELECT DISTINCT system_l, record_key_l, system_r, record_key_r FROM core.identity_decisions"
    ).fetchall()
    return [((sl, kl), (sr, kr)) for sl, kl, sr, kr in rows]


def _record_ref(text: str) -> Record:
    system, sep, key = text.strip().partition("/")
    if not sep or not system or not key:
        raise ReviewError(
            f"{mask_typed(text)!r} is not SYSTEM/RECORD_KEY (e.g. resident_registry/t_jm:100345)"
        )
    return system, key


def _person_key(con: duckdb.DuckDBPyConnection, record: Record) -> str | None:
    rows = con.execute(
        "SELECT person_key FROM core.identity_map WHERE system = ? AND record_key = ?", list(record)
    ).fetchall()
    return rows[0][0] if rows else None


# -- deciding ---------------------------------------------------------------------------------------------


def decide(
    settings: Settings,
    ref: str,
    decision: str,
    *,
    actor: str,
    note: str | None = None,
    clock: Clock = utc_now,
) -> dict[str, Any]:
    """Record that the pair ``ref`` is the same person or different people; the next reconcile applies it.

    The decision is appended to ``core.identity_decisions`` (a later one for the same pair replaces it)
    and to the audit log. Raises `ReviewError` for an unknown pair or decision, an empty actor, or a note
    with a run of six or more digits (an identifier has no place in a note).
    """
    if decision not in DECISIONS:
        raise ReviewError(f"decide {' or '.join(DECISIONS)}, not {mask_typed(decision)!r}")
    pid, left, right, previous = _append_decision(
        settings, ref, decision, actor=actor, note=note, clock=clock
    )
    return {
        "pair": pid,
        "decision": decision,
        "replaces": previous,
        "left": "/".join(left),
        "right": "/".join(right),
        "applies": "at the next reconcile (`islandbridge reconcile` or `sync`)",
    }


def withdraw(
    settings: Settings, ref: str, *, actor: str, note: str | None = None, clock: Clock = utc_now
) -> dict[str, Any]:
    """Take back the decision in force on the pair ``ref``: from the next reconcile on, the model and the
    rules decide the pair as if nobody had (it may come back to the review list).

    Appended like a decision (the history keeps both) and audited. Raises `ReviewError` when the pair has
    no decision in force, and for the reasons `decide` does.
    """
    pid, left, right, previous = _append_decision(
        settings, ref, WITHDRAWN, actor=actor, note=note, clock=clock
    )
    return {
        "pair": pid,
        "withdrawn": previous,
        "left": "/".join(left),
        "right": "/".join(right),
        "applies": "at the next reconcile (`islandbridge reconcile` or `sync`)",
    }


def _append_decision(
    settings: Settings, ref: str, decision: str, *, actor: str, note: str | None, clock: Clock
) -> tuple[str, Record, Record, str | None]:
    """Append ``decision`` on the pair ``ref`` (audited); returns its id, records and the decision it
    replaces. A withdrawal needs a decision in force."""
    if not actor or not actor.strip():
        raise ReviewError("a decision needs an actor (who decided)")
    with raw.open_warehouse(settings) as con:
        identity.ensure_schema(con)
        left, right = sorted(find_pair(con, ref))
        # the vault is opened only for a note: a decision without one needs no vault key
        names = _pair_names(settings, con, (left, right)) if note and note.strip() else []
        note = clean_note(settings, note, names)
        pid = pair_id(left, right)
        previous = next((d.decision for d in current_decisions(con) if d.pair_id == pid), None)
        if decision == WITHDRAWN and previous is None:
            raise ReviewError(f"pair {pid} has no decision in force: nothing to withdraw")
        at = clock()
        verb = "withdrew the decision on" if decision == WITHDRAWN else "decided"
        what = previous if decision == WITHDRAWN else decision
        _audit(settings, actor, f"identity review: {verb} pair {pid} {what}", con, (left, right), [], at)
        seq = con.execute("SELECT coalesce(max(seq), 0) + 1 FROM core.identity_decisions").fetchall()[0][0]
        con.execute(
            "INSERT INTO core.identity_decisions VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            [seq, pid, *left, *right, decision, actor.strip(), note, at],
        )
    log.info("review: %s on pair %s (by %s)", decision, pid, actor.strip())
    return pid, left, right, previous


def clean_note(settings: Settings, note: str | None, pair_names: Sequence[str] = ()) -> str | None:
    """The note as stored: scrubbed (phones, ID and card numbers, the street's known names, and the names
    of the pair's persons, ``pair_names``, in characters or typed in pinyin: `privacy.pinyin`), or refused
    when it holds a run of six or more digits; None for no note."""
    if note is None or not note.strip():
        return None
    folded = unicodedata.normalize("NFKC", note)
    if _LONG_NUMBER.search(folded):
        raise ReviewError(
            "the note holds a run of six or more digits, which may be an identifier; say why without "
            "quoting numbers (e.g. 'same flat and birth year, roster typo in the name')"
        )
    if len(note) > NOTE_MAX:
        raise ReviewError(f"the note is longer than {NOTE_MAX} characters")
    return scrub_pinyin(Scrubber([*_known_names(settings), *pair_names])(note.strip()), pair_names)


def _pair_names(settings: Settings, con: duckdb.DuckDBPyConnection, pair: Iterable[Record]) -> list[str]:
    """The names the vault holds for the persons of the pair's records (as the newest reconcile mapped
    them): a note naming them in pinyin (`Zhang Xiaowei`) is scrubbed like one naming them in characters."""
    keys = [key for key in (_person_key(con, record) for record in pair) if key]
    if not keys or not settings.vault_path or not settings.vault_path.exists():
        return []
    with open_vault(settings) as vault:
        found = vault.get(keys, ["name"])
    return [value.value for person in found.values() for value in person.get("name", ())]


def _known_names(settings: Settings) -> list[str]:
    if not settings.vault_path or not settings.vault_path.exists():
        return []
    with open_vault(settings) as vault:
        return list(vault.sealed_list(KNOWN_NAMES))


def _audit(
    settings: Settings,
    actor: str,
    purpose: str,
    con: duckdb.DuckDBPyConnection,
    records: Iterable[Record],
    columns: list[str],
    at: dt.datetime,
) -> None:
    """One entry in the re-identification audit log: who looked at or decided which persons (their keys)."""
    if settings.audit_path is None:
        return
    keys = sorted({k for k in (_person_key(con, r) for r in records) if k})
    AuditLog(settings.audit_path).append(actor.strip(), purpose, AUDIT_DEPARTMENT, keys, columns, at)


# -- showing a pair ---------------------------------------------------------------------------------------

SHOWN = (
    "name",
    "id_number",
    "phones",
    "birth_year",
    "sex",
    "community",
    "estate",
    "building",
    "unit",
    "room",
)


def show_pair(settings: Settings, ref: str, *, actor: str, clock: Clock = utc_now) -> dict[str, Any]:
    """Both records of a pair side by side, masked (张*伟, 138****8000, 510104********5052), with birth
    year, sex, community and flat, whether their names are the same (``names``: masks alike say nothing
    of it), the run's probability and reason, any decision, and the other records of each side's person
    (as of the newest reconciled run). Audited: masked values leave the vault."""
    if not actor or not actor.strip():
        raise ReviewError("showing a pair needs an actor (who looks)")
    with raw.open_warehouse(settings, read_only=True) as con:
        run_id, as_of = latest_run(con)
        left, right = sorted(find_pair(con, ref))
        pid = pair_id(left, right)
        row = next((r for r in _review_rows(con, run_id) if r["id"] == pid), None)
        decision = next((d for d in current_decisions(con) if d.pair_id == pid), None)
        keys = {record: _person_key(con, record) for record in (left, right)}
        members = {record: _members(con, key) if key else [record] for record, key in keys.items()}
        wanted = {m for ms in members.values() for m in ms} | {left, right}
        with open_vault(settings) as vault:
            loaded = _loaded_records(con, person_streams(settings), as_of, wanted, SealedColumns(vault))
        found = {record: _masked(row) for record, row in loaded.items()}
        _audit(
            settings, actor, f"identity review: compared pair {pid}", con, (left, right), _COLUMNS, clock()
        )

    def side(record: Record) -> dict[str, Any]:
        others = [found.get(m, _absent(m)) for m in members[record] if m != record]
        return {**found.get(record, _absent(record)), "person_key": keys[record], "other_records": others}

    return {
        "pair": pid,
        "run_id": run_id,
        "match_probability": row["match_probability"] if row else None,
        "reason": row["reason"] if row else None,
        "same_person_now": keys[left] is not None and keys[left] == keys[right],
        "names": _names_compared(loaded.get(left), loaded.get(right)),
        "decided": None
        if decision is None
        else {
            "decision": decision.decision,
            "actor": decision.actor,
            "note": decision.note,
            "at": decision.decided_at,
        },
        "left": side(left),
        "right": side(right),
    }


_COLUMNS = ["name (masked)", "id_number (masked)", "phone (masked)"]


def _members(con: duckdb.DuckDBPyConnection, person_key: str) -> list[Record]:
    return [
        (s, k)
        for s, k in con.execute(
            "SELECT system, record_key FROM core.identity_map WHERE person_key = ? ORDER BY ALL", [person_key]
        ).fetchall()
    ]


def _absent(record: Record) -> dict[str, Any]:
    return {"system": record[0], "record_key": record[1], "absent": "not in the sources as of the run"}


@dataclass(frozen=True)
class _Picked(BoundStream):
    """A person stream read from a temporary table holding only the rows of the records wanted."""

    picked: str = ""

    @property
    def table(self) -> str:
        return self.picked


def _masked_records(
    con: duckdb.DuckDBPyConnection, plan: StreamPlan, as_of: dt.datetime, wanted: set[Record], sealed
) -> dict[Record, dict[str, Any]]:
    """The masked view of each wanted record, normalised as matching sees it (`records.load_records` on
    temporary copies of just their raw rows; the identifiers stay in memory and only masks leave)."""
    return {record: _masked(row) for record, row in _loaded_records(con, plan, as_of, wanted, sealed).items()}


def _names_compared(left: Mapping[str, Any] | None, right: Mapping[str, Any] | None) -> str | None:
    """Whether two records hold the same name, said without it: two names mask alike (彭伟 and 彭静 are
    both 彭*), and namesakes are what the reviewer must tell apart from a typo of one name."""
    if not left or not right or not left["name_key"] or not right["name_key"]:
        return None
    if left["name_key"] == right["name_key"]:
        return "the same"
    if left["pinyin_key"] == right["pinyin_key"]:
        return "different characters, the same in pinyin"
    return "different"


def _loaded_records(
    con: duckdb.DuckDBPyConnection, plan: StreamPlan, as_of: dt.datetime, wanted: set[Record], sealed
) -> dict[Record, dict[str, Any]]:
    """Each wanted record as `records.load_records` normalises it, unmasked: for this module only."""
    picked = []
    for i, stream in enumerate(plan.streams):
        keys = sorted(k for s, k in wanted if s == stream.spec.system)
        if not keys or not has_table(con, stream.table):
            continue
        name = f"_ib_review_{i}"
        con.execute(
            f"CREATE OR REPLACE TEMP TABLE {name} AS SELECT * FROM {stream.table} "
            "WHERE _record_key IN (SELECT unnest(?::VARCHAR[]))",
            [keys],
        )
        picked.append(_Picked(stream.source, stream.spec, picked=f"main.{name}"))
    table = load_records(con, StreamPlan(tuple(picked), plan.registers), as_of, sealed)
    return {(r["system"], r["record_key"]): r for r in table.to_pylist()}


def _masked(row: Mapping[str, Any]) -> dict[str, Any]:
    if row["house_key"]:
        estate, building, unit, room = (row["house_key"].split("|") + [None] * 4)[:4]
    else:
        estate, (building, unit, room) = None, ((row["room_key"] or "").split("|") + [None] * 3)[:3]
    birth = row["birth"] or row["birth_ym"]
    return {
        "system": row["system"],
        "record_key": row["record_key"],
        "name": mask_name(row["name_key"]),
        "id_number": _masked_number(row),
        "phones": [mask_phone(p) for p in row["phones"] or []],
        "birth_year": birth[:4] if birth else None,
        "sex": row["sex"],
        "community": row["community"],
        "estate": estate,
        "building": building or None,
        "unit": unit or None,
        "room": room or None,
    }


def _masked_number(row: Mapping[str, Any]) -> str | None:
    """A full number as 510104********5052; a vendor-masked one by the same parts; a passport hidden."""
    full, ps = row["id_full"], row["id_ps"]
    if full:
        return "P:***" if full.startswith("P:") else mask_id(full)
    if ps and len(ps) == 10:
        return f"{ps[:6]}********{ps[6:]}"
    return mask_id(row["id_digits"]) if row["id_digits"] else None
