"""Erasing sealed source-record versions from the vault file, for retention.

The vault's ``records`` table holds one sealed row per version of a source record (``source, stream,
run_id, record_key``). Retention (`islandbridge.warehouse.retention`) decides which versions no run in
its window can read again; this module lists the versions (key columns only: nothing is decrypted, so no
keyring is needed) and erases the chosen ones. Erasing means more than ``DELETE``: the file is then
rewritten (``COPY FROM DATABASE`` into a fresh file while the vault is still locked, fsynced, renamed over the old one), so the deleted
ciphertexts are not left behind in freed blocks of the old file.

Example::

    versions = sealed_versions(settings.vault_path)              # source, stream, run_id, record_key
    erased = erase_versions(settings.vault_path, versions.slice(0, 10))
"""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow as pa

from islandbridge import storage
from islandbridge.config import DuckDBResources
from islandbridge.storage import owner_only, registered, transaction

VERSION_COLUMNS = ("source", "stream", "run_id", "record_key")


def sealed_versions(path: Path, resources: DuckDBResources | None = None) -> pa.Table:
    """The key columns of every sealed record version in the vault at ``path`` (empty without a vault)."""
    if not Path(path).is_file():
        return pa.table({c: pa.array([], pa.string()) for c in VERSION_COLUMNS})
    con = storage.connect(str(path), read_only=True, resources=resources)
    try:
        if not storage.has_table(con, "main.records"):
            return pa.table({c: pa.array([], pa.string()) for c in VERSION_COLUMNS})
        return con.sql(f"SELECT {', '.join(VERSION_COLUMNS)} FROM records").to_arrow_table()
    finally:
        con.close()


def erase_versions(path: Path, versions: pa.Table, resources: DuckDBResources | None = None) -> int:
    """Delete the sealed record versions listed in ``versions`` (its key columns) and rewrite the file so
    their ciphertexts are gone from it. Returns how many rows were erased (0: the file is left as it is).

    The vault stays locked by this process from the delete to the copy, so no other step writes to the
    old file meanwhile; the fresh copy then replaces it (an atomic rename)."""
    if not versions.num_rows or not Path(path).is_file():
        return 0
    path = Path(path)
    fresh = path.with_name(f".{path.name}.rewrite")
    fresh.unlink(missing_ok=True)
    con = storage.connect(str(path), resources=resources)
    try:
        keys = versions.select(list(VERSION_COLUMNS))
        with transaction(con), registered(con, "_ib_erase", keys):
            erased = con.execute(
                "SELECT count(*) FROM records SEMI JOIN _ib_erase USING (source, stream, run_id, record_key)"
            ).fetchone()[0]
            con.execute(
                "DELETE FROM records WHERE (source, stream, run_id, record_key) IN "
                "(SELECT source, stream, run_id, record_key FROM _ib_erase)"
            )
        if erased:
            _copy(con, fresh)
    except BaseException:
        fresh.unlink(missing_ok=True)
        raise
    finally:
        con.close()
    if erased:
        owner_only(fresh, 0o600)
        with fresh.open("rb") as f:
            os.fsync(f.fileno())
        os.replace(fresh, path)
    return erased


def _copy(con, fresh: Path) -> None:
    """Copy the database ``con`` has open into a new file at ``fresh``: only its live rows are written."""
    (name,) = con.execute("SELECT current_database()").fetchone()
    con.execute(f"ATTACH '{_quoted(fresh)}' AS _ib_fresh")
    try:
        con.execute(f'COPY FROM DATABASE "{name}" TO _ib_fresh')
    finally:
        con.execute("DETACH _ib_fresh")


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")
