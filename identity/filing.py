"""Vault filing: each person-bearing record's identifiers, sealed in the vault under its person_key.

Runs at the end of the identity step (`islandbridge.identity.reconcile`), once every record has its
person key: departments' exports and the audited reveal read identifiers from here, never from the
warehouse. Returns counts only.
"""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pyarrow.compute as pc

from islandbridge.identity.records import BoundStream, StreamPlan, latest_sql
from islandbridge.privacy.sealing import SealedColumns
from islandbridge.privacy.vault import PutResult, Vault
from islandbridge.schemas import load_tables
from islandbridge.storage import existing_columns, has_table

# Which report identifiers each person-bearing stream gives the vault: vault field -> raw column, from the
# columns its schema marks ``vault: true`` (the field is the column's role; see islandbridge.schemas).
VAULT_FIELDS: dict[tuple[str, str], dict[str, str]] = {
    (table.system, table.stream): table.vault_fields()
    for table in load_tables().values()
    if table.person_bearing
}


def sync_vault(con, vault: Vault, plan: StreamPlan, as_of: dt.datetime) -> dict[str, int]:
    """File every mapped record's identifiers in the vault under its current person_key.

    Rows of a record whose person_key changed (a merge or split) move: the old ones are deleted, the new
    ones sealed. Only records that changed since they were last filed are read back and compared
    (`Vault.stale_records`, by the keyed digest of each sealed version, without decrypting): those whose
    newest version is not the one filed, those that just moved, and those with nothing filed. A re-filed
    record loses the fields its newest version leaves blank (a cleared phone is not kept); unchanged
    values are left as they are. What was filed is noted last, so a sync killed half-way is redone by
    the next. Returns counts only.
    """
    current = con.sql("SELECT system, record_key, person_key FROM core.identity_map").to_arrow_table()
    moved = vault.forget_persons(current)
    refiled, put, cleared = 0, PutResult(), 0
    sealed = SealedColumns(vault)
    for stream in plan.streams:
        system, fields = stream.spec.system, VAULT_FIELDS.get((stream.spec.system, stream.spec.stream))
        if not fields or not has_table(con, stream.table):
            continue
        stale = _stale(con, vault, stream, as_of, fields)
        hidden = [c for c in fields.values() if c not in stale.column_names]
        data = sealed.fill(stale, source=stream.source, stream=stream.spec.stream, columns=hidden)
        rows = _identifier_rows(data, system, fields)
        put += vault.put_table(rows)
        systems = pa.array([system] * stale.num_rows, pa.string())
        cleared += vault.forget_fields(pa.table({"system": systems, "record_key": stale["record_key"]}), rows)
        vault.note_filed(stream.source, stream.spec.stream, system, stale)
        refiled += stale.num_rows
    return {
        "records_refiled": refiled,
        "inserted": put.inserted,
        "replaced": put.replaced,
        "unchanged": put.unchanged,
        "cleared": cleared,
        "moved": moved,
    }


def _stale(con, vault: Vault, stream: BoundStream, as_of: dt.datetime, fields) -> pa.Table:
    """The stream's mapped records (``record_key, last_seen_run, person_key, raw_digest`` and the vault
    columns the raw table holds) that must be filed again (`Vault.stale_records`)."""
    system = stream.spec.system
    have = existing_columns(con, stream.table)
    raw = [c for c in fields.values() if c in have]  # the vault columns the raw table holds, in field order
    # The newest versions joined with the map in DuckDB (an Arrow join of every record cost twice as much)
    latest = latest_sql(stream.table, sorted(set(raw)))
    mapped = con.sql(
        f"SELECT l.* EXCLUDE (first_seen_run), m.person_key FROM ({latest}) l "
        "JOIN core.identity_map m ON m.system = $system AND m.record_key = l.record_key",
        params={"as_of": as_of, "source": stream.source, "stream": stream.spec.stream, "system": system},
    ).to_arrow_table()
    mapped = mapped.append_column("raw_digest", vault.digests(_raw_part(mapped, raw)))
    return vault.stale_records(stream.source, stream.spec.stream, system, mapped)


def _raw_part(table: pa.Table, columns: list[str]) -> pa.Array:
    """Per row, the values of ``columns`` in one string (null for none), each marked null or set."""
    if not columns:
        return pa.nulls(table.num_rows, pa.string())
    parts = [
        pc.if_else(pc.is_null(table[c]), "\x00", pc.binary_join_element_wise("\x01", table[c], ""))
        for c in columns
    ]
    return pc.binary_join_element_wise(*parts, "\x02")


def _identifier_rows(data: pa.Table, system: str, fields: dict[str, str]) -> pa.Table:
    """One row per (record, field) with a value: ``person_key, field, system, record_key, value``, the value
    stripped of surrounding blanks (as `str.strip`), blank values left out."""
    parts = []
    for field, column in fields.items():
        values = pa.array(
            [v.strip() if isinstance(v, str) else None for v in data[column].to_pylist()], pa.string()
        )
        keep = pc.fill_null(pc.not_equal(values, ""), False)
        n = data.num_rows
        part = pa.table(
            {
                "person_key": data["person_key"],
                "field": pa.array([field] * n, pa.string()),
                "system": pa.array([system] * n, pa.string()),
                "record_key": data["record_key"],
                "value": values,
            }
        )
        parts.append(part.filter(keep))
    return pa.concat_tables(parts)
