"""Why a person is who they are: their records (masked) and the rule behind every link; and what changed.

``islandbridge explain PERSON_KEY | SYSTEM/RECORD_KEY | RECORD_KEY`` (`explain_person`) reads the newest
reconciled map (``core.identity_map``) and the links that stand (``core.identity_links``, `links`):

    person pk_3f9a… (run 20261122T160000Z): 3 records, 2 links
      resident_registry/t_jm:100345   张*伟  510104********5052  138****8000  1951 F  matched_by id
      grid_platform/residents:GP00812 ...
      links:
      grid_platform/residents:GP00812 ~ resident_registry/t_jm:100345   probabilistic p=0.9987 since …
      decided apart (`islandbridge review decide … different`):
      resident_registry/t_jm:100345 ≠ civil_affairs/roster:R0042 (now pk_77c1…): different by 王科员 at …

A ``same`` decision shows as a link of rule ``decision``; a ``different`` one (``islandbridge review decide
… different``) keeps no link, so the records it holds apart are listed with who decided, when and the
(scrubbed) note, and what the newest reconcile did with it, as it recorded it (`_apart_status`).

Values come masked only (the same view as ``islandbridge review show``, `review._masked_records`), and the
look is written to the audit log (department ``identity_review``). ``explain --changes`` (`changes`)
gives each reconciled run's churn by reason (`churn`) — records new, merged, split, retired — the splits
explained by that day's data or not, and with ``--as-of`` the records of that run that changed key.
"""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import duckdb

from islandbridge.config import Clock, Settings, utc_now
from islandbridge.errors import TerminalError
from islandbridge.identity import tables as identity
from islandbridge.identity.records import person_streams
from islandbridge.identity.review import _audit, _masked_records, current_decisions, latest_run
from islandbridge.landing import raw
from islandbridge.privacy.configured import open_vault
from islandbridge.privacy.masking import mask_typed
from islandbridge.privacy.sealing import SealedColumns
from islandbridge.storage import existing_columns, has_table

_COLUMNS = ["name (masked)", "id_number (masked)", "phone (masked)"]


class ExplainError(TerminalError):
    """Nothing to explain under that name (no such person or record, or a record key of several systems).

    Terminal: the name asked for must change."""

    exit_status = 2


def explain_person(settings: Settings, target: str, *, actor: str, clock: Clock = utc_now) -> dict[str, Any]:
    """The person a person key or record names: its records (masked) and each link with its rule.

    ``target``: a ``person_key`` (a merged key is followed to today's, and ``merged`` says so: the key
    asked for and the run that merged it), ``SYSTEM/RECORD_KEY``, or a bare record key when one system
    has it. ``apart``: the records a person decided are someone else (`_decided_apart`), the other
    record masked like the person's own. Raises `ExplainError` when nothing matches. Audited.
    """
    if not actor or not actor.strip():
        raise ExplainError("explaining a person needs an actor (who looks)")
    with raw.open_warehouse(settings, read_only=True) as con:
        run_id, as_of = latest_run(con)
        person = _person_of(con, target.strip())
        members = con.execute(
            "SELECT system, record_key, matched_by, match_probability FROM core.identity_map "
            "WHERE person_key = ? ORDER BY system, record_key",
            [person],
        ).fetchall()
        links = _links(con, person)
        asked = target.strip()
        merged = _merged(con, asked) if asked.startswith("pk_") and asked != person else None
        wanted = {(s, k) for s, k, _, _ in members}
        apart = _decided_apart(con, person, wanted, run_id)
        looked = wanted | {a["other"] for a in apart}
        with open_vault(settings) as vault:
            masked = _masked_records(con, person_streams(settings), as_of, looked, SealedColumns(vault))
        _audit(settings, actor, f"identity explain: person {person}", con, sorted(looked), _COLUMNS, clock())
    records = [
        {
            **masked.get((s, k), {"system": s, "record_key": k}),
            "matched_by": by,
            "match_probability": p,
        }
        for s, k, by, p in members
    ]
    for a in apart:
        system, key = a["other"]
        bare = {"system": system, "record_key": key}
        a["other"] = {**masked.get((system, key), bare), "person_key": a.pop("other_person")}
    shown = {"person_key": person, "run_id": run_id, "records": records, "links": links, "apart": apart}
    return shown | ({"merged": merged} if merged else {})


def _merged(con: duckdb.DuckDBPyConnection, key: str) -> dict[str, Any] | None:
    """The merge that redirected ``key`` (its first hop, when redirects chain), or None."""
    found = con.execute("SELECT run_id FROM core.person_key_redirects WHERE old_key = ?", [key]).fetchall()
    return {"from": key, "run_id": found[0][0]} if found else None


def _person_of(con: duckdb.DuckDBPyConnection, target: str) -> str:
    if target.startswith("pk_"):
        found = con.execute(
            f"SELECT coalesce((SELECT person_key FROM ({identity.resolve_sql()}) WHERE old_key = ?), ?)",
            [target, target],
        ).fetchall()[0][0]
        if con.execute("SELECT count(*) FROM core.identity_map WHERE person_key = ?", [found]).fetchall()[0][
            0
        ]:
            return found
        raise ExplainError(f"no person {mask_typed(target)} in core.identity_map (retired, or never issued)")
    system, sep, key = target.partition("/")
    rows = con.execute(
        "SELECT system, person_key FROM core.identity_map WHERE record_key = ? AND (? = '' OR system = ?)",
        [key if sep else target, system if sep else "", system if sep else ""],
    ).fetchall()
    if len(rows) == 1:
        return rows[0][1]
    if not rows:
        raise ExplainError(
            f"no record {mask_typed(target)!r} in core.identity_map: name a person key (pk_…), SYSTEM/RECORD_KEY "
            "(e.g. resident_registry/t_jm:100345) or a record key"
        )
    systems = ", ".join(sorted(s for s, _ in rows))
    raise ExplainError(
        f"record key {mask_typed(target)!r} is in several systems ({systems}); write SYSTEM/RECORD_KEY"
    )


def _links(con: duckdb.DuckDBPyConnection, person: str) -> list[dict[str, Any]]:
    if not has_table(con, "core.identity_links"):  # reconciled before links were kept
        return []
    rows = con.execute(
        """SELECT l.system_l, l.record_key_l, l.system_r, l.record_key_r, l.rule, l.match_probability, l.run_id
        FROM core.identity_links l
        JOIN core.identity_map a ON a.system = l.system_l AND a.record_key = l.record_key_l
        JOIN core.identity_map b ON b.system = l.system_r AND b.record_key = l.record_key_r
        WHERE l.ended_run IS NULL AND a.person_key = ? AND b.person_key = ?
        ORDER BY ALL""",
        [person, person],
    ).fetchall()
    return [
        {
            "left": f"{sl}/{kl}",
            "right": f"{sr}/{kr}",
            "rule": rule,
            "match_probability": p,
            "since_run": since,
        }
        for sl, kl, sr, kr, rule, p, since in rows
    ]


def _decided_apart(
    con: duckdb.DuckDBPyConnection, person: str, members: set[tuple[str, str]], run_id: str
) -> list[dict[str, Any]]:
    """The ``different`` decisions in force on a record of ``person``: the pair, the other record (keys
    here; masked by the caller) and its person now, who decided, when, the note (scrubbed when stored), and
    its ``status`` in the newest reconcile (`_apart_status`)."""
    decided = [d for d in current_decisions(con) if d.decision == "different"]
    decided = [d for d in decided if d.left in members or d.right in members]
    if not decided:
        return []
    conflicts = _conflicts(con, run_id)
    shown = []
    for d in decided:
        mine, other = (d.left, d.right) if d.left in members else (d.right, d.left)
        now = con.execute(
            "SELECT person_key FROM core.identity_map WHERE system = ? AND record_key = ?", list(other)
        ).fetchall()
        other_person = now[0][0] if now else None
        shown.append(
            {
                "pair": d.pair_id,
                "record": "/".join(mine),
                "other": other,
                "other_person": other_person,
                "status": _apart_status(d.pair_id, other_person, person, conflicts),
                "actor": d.actor,
                "note": d.note,
                "decided_at": d.decided_at,
            }
        )
    return shown


def _apart_status(pair: str, other_person: str | None, person: str, conflicts: set[str] | None) -> str:
    """What the newest reconcile did with a ``different`` decision, from what it recorded — never from
    comparing wall clocks: ``absent`` (the other record is not in its map: gone from the sources, or not
    there yet), ``apart`` (the map holds them apart), ``not_honoured`` (together, and its summary names
    the pair under ``decisions.conflicts``: stronger evidence, such as one valid ID number, joined them),
    ``pending`` (together and not a conflict: the reconcile ran before the decision, the next applies it),
    ``unknown`` (together, and the reconcile recorded no decisions: ``conflicts`` is None)."""
    if other_person is None:
        return "absent"
    if other_person != person:
        return "apart"
    if conflicts is None:
        return "unknown"
    return "not_honoured" if pair in conflicts else "pending"


def _conflicts(con: duckdb.DuckDBPyConnection, run_id: str) -> set[str] | None:
    """The pairs of ``different`` decisions the run could not honour (``decisions.conflicts`` of its
    summary), or None when it recorded none (reconciled before decisions were kept)."""
    if "decisions" not in existing_columns(con, "meta.identity_runs"):
        return None
    (text,) = con.execute("SELECT decisions FROM meta.identity_runs WHERE run_id = ?", [run_id]).fetchall()[0]
    recorded = json.loads(text) if text else {}
    if "conflicts" not in recorded:
        return None
    return {c["pair"] for c in recorded["conflicts"] if c.get("decision") == "different"}


def changes(settings: Settings, as_of: dt.datetime | None = None) -> dict[str, Any]:
    """Each reconciled run's churn by reason (``meta.identity_runs``), oldest first; with ``as_of``, that
    run only, with the records whose key changed and why (``core.identity_map_changes``). Keys only."""
    with raw.open_warehouse(settings, read_only=True) as con:
        columns = existing_columns(con, "meta.identity_runs")
        why = "changes" if "changes" in columns else "NULL"  # reconciled before reasons were kept
        runs = (
            con.execute(
                f"SELECT run_id, as_of, persons, records, merges, splits, retired, churn, {why} "
                "FROM meta.identity_runs WHERE (? IS NULL OR run_id = ?) ORDER BY as_of",
                [*[raw.run_id_for(as_of) if as_of else None] * 2],
            ).fetchall()
            if columns
            else []
        )
        if as_of is not None and not runs:
            raise ExplainError(f"no reconciled run as of {as_of.isoformat()}; `islandbridge runs` lists them")
        records = []
        if as_of is not None:
            records = [
                {"system": s, "record_key": k, "person_key": p, "change": c}
                for s, k, p, c in con.execute(
                    "SELECT system, record_key, person_key, change FROM core.identity_map_changes "
                    "WHERE run_id = ? AND change IN ('merge', 'split', 'retire', 'removed') "
                    "ORDER BY change, system, record_key",
                    [runs[0][0]],
                ).fetchall()
            ]
    keys = ("run_id", "as_of", "persons", "records", "merges", "splits", "retired", "churn")
    rows = [
        {
            **dict(zip(keys, r[:8], strict=True)),
            "as_of": r[1].isoformat(),
            "changes": json.loads(r[8] or "{}"),
        }
        for r in runs
    ]
    return {"runs": rows, "changed_records": records}
