"""Which records' identifiers the vault must file again: a digest per sealed version, and what was filed.

At load each sealed source-record version gets a keyed digest of its plaintext (``records.digest``,
`vault_columns.digest`); when the identity step files a record's identifiers under its person key it
notes, in ``filings``, the digest of the version it filed from, the person key, and a keyed digest of
the vault values the raw table holds itself (a birth date is quasi, so it stays in the warehouse). A later sync reads
back and compares only the records whose newest version's digest or person key differs from what
``filings`` says, so a day without change decrypts nothing. Nothing here decrypts: digests and keys only.
"""

from __future__ import annotations

import duckdb
import pyarrow as pa

from islandbridge.storage import registered

_VERSION = """LEFT JOIN records r ON r.source = $source AND r.stream = $stream
    AND r.run_id = {m}.last_seen_run AND r.record_key = {m}.record_key"""


def stale_records(
    con: duckdb.DuckDBPyConnection, source: str, stream: str, system: str, mapped: pa.Table
) -> pa.Table:
    """The rows of ``mapped`` (``record_key, last_seen_run, person_key, raw_digest``: a stream's mapped
    records at their newest version; ``raw_digest`` the keyed digest of the vault values the raw table
    holds itself, or null) whose identifiers must be filed again, by record key: the sealed version's
    digest or the raw digest is not the one filed, the person key changed, the version has no digest
    (sealed before digests were kept), or nothing of the record is filed."""
    with registered(con, "mapped", mapped):
        return con.sql(
            f"""SELECT m.* FROM mapped m {_VERSION.format(m="m")}
            LEFT JOIN filings f ON f.system = $system AND f.record_key = m.record_key
            WHERE r.digest IS NULL OR f.digest IS DISTINCT FROM r.digest
                OR f.person_key IS DISTINCT FROM m.person_key OR f.raw_digest IS DISTINCT FROM m.raw_digest
                OR m.record_key NOT IN (SELECT record_key FROM identifiers WHERE system = $system)
            ORDER BY m.record_key""",
            params={"source": source, "stream": stream, "system": system},
        ).to_arrow_table()


def note_filed(
    con: duckdb.DuckDBPyConnection, source: str, stream: str, system: str, filed: pa.Table
) -> None:
    """Remember which version (its digest) and person key the identifiers of ``filed`` (rows as from
    `stale_records`) now reflect, so that `stale_records` passes over them until either changes."""
    with registered(con, "filed", filed):
        con.execute(
            f"""INSERT OR REPLACE INTO filings SELECT $system, f.record_key, f.person_key, r.digest, f.raw_digest
            FROM filed f {_VERSION.format(m="f")}""",
            {"source": source, "stream": stream, "system": system},
        )


def version_digests(con: duckdb.DuckDBPyConnection, source: str, stream: str, wanted: pa.Table) -> pa.Array:
    """The digest of each sealed version ``wanted`` (``record_key, run_id``) names, in order; null if none."""
    numbered = wanted.select(["record_key", "run_id"]).append_column("pos", pa.array(range(wanted.num_rows)))
    with registered(con, "wanted_versions", numbered):
        found = con.sql(
            "SELECT r.digest FROM wanted_versions w LEFT JOIN records r ON r.source = $source "
            "AND r.stream = $stream AND r.run_id = w.run_id AND r.record_key = w.record_key ORDER BY w.pos",
            params={"source": source, "stream": stream},
        ).to_arrow_table()
    return (
        found["digest"].combine_chunks().cast(pa.binary()) if wanted.num_rows else pa.array([], pa.binary())
    )
