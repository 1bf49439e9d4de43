"""Vault filing: each person-bearing record's identifiers, sealed in the vault under its person_key.

Runs at the end of the identity step (`islandbridge.identity.reconcile`), once every record has its
person key: departments' exports and the audited reveal read identifiers from here, never from the
warehouse. Returns counts only.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from islandbridge.identity.records import StreamPlan, latest_rows
from islandbridge.privacy.sealing import SealedColumns
from islandbridge.privacy.vault import Vault
from islandbridge.schemas import load_tables
from islandbridge.storage import has_table, run_id_for

# Which report identifiers each person-bearing stream gives the vault: vault field -> raw column, from the
# columns its schema marks ``vault: true`` (the field is the column's role; see islandbridge.schemas).
VAULT_FIELDS: dict[tuple[str, str], dict[str, str]] = {
    (table.system, table.stream): table.vault_fields()
    for table in load_tables().values()
    if table.person_bearing
}


SYNCED_THROUGH = "identifiers_synced_through"  # vault mark: the run whose records the identifiers reflect


def sync_vault(con, vault: Vault, plan: StreamPlan, as_of: dt.datetime) -> dict[str, int]:
    """File every mapped record's identifiers in the vault under its current person_key.

    Rows of a record whose person_key changed (a merge or split) move: the old ones are deleted, the new
    ones sealed. Only records that may have changed since the last completed sync are read back and
    compared (the vault's ``identifiers_synced_through`` mark): those whose newest version came after
    that run (or in it, when this is a re-run of it), those that just moved, and those with nothing
    filed. A re-filed record loses the fields its newest version leaves blank (a cleared phone is not
    kept). The mark is set last, so a sync killed half-way is redone from the same point by the next.
    Unchanged values are left as they are. Returns counts only.
    """
    run_id = run_id_for(as_of)
    current = con.execute("SELECT system, record_key, person_key FROM core.identity_map").fetchall()
    person_of = {(s, r): p for s, r, p in current}
    moved = vault.forget_persons(current)
    since, filed = vault.mark(SYNCED_THROUGH), vault.filed_records()

    def newer(last_seen_run: str) -> bool:  # run ids sort as their as-of; a re-run redoes its own slice
        return since is None or last_seen_run > since or (last_seen_run == since == run_id)

    rows, refiled = [], []
    sealed = SealedColumns(vault)
    for stream in plan.streams:
        system, fields = stream.spec.system, VAULT_FIELDS.get((stream.spec.system, stream.spec.stream))
        if not fields or not has_table(con, stream.table):
            continue
        data = latest_rows(con, stream, as_of, fields.values())  # the warehouse's columns; sealed ones below
        stale = [
            i
            for i, (record_key, last) in enumerate(
                zip(data["record_key"].to_pylist(), data["last_seen_run"].to_pylist(), strict=True)
            )
            if (system, record_key) in person_of and (newer(last) or (system, record_key) not in filed)
        ]
        data = data.take(pa.array(stale, pa.int64()))
        data = sealed.fill(
            data,
            source=stream.source,
            stream=stream.spec.stream,
            columns=[c for c in fields.values() if c not in data.column_names],
        )
        columns = {f: data[c].to_pylist() for f, c in fields.items()}
        for i, record_key in enumerate(data["record_key"].to_pylist()):
            refiled.append((system, record_key))
            for f, values in columns.items():
                value = values[i].strip() if isinstance(values[i], str) else None
                if value:
                    rows.append((person_of[(system, record_key)], f, system, record_key, value))
    put = vault.put_many(rows)
    cleared = vault.forget_fields(refiled, [(r[2], r[3], r[1]) for r in rows])
    vault.set_mark(SYNCED_THROUGH, run_id)
    return {
        "records_refiled": len(refiled),
        "inserted": put.inserted,
        "replaced": put.replaced,
        "unchanged": put.unchanged,
        "cleared": cleared,
        "moved": moved,
    }
