"""Person keys a rewind forgot, remembered until the runs that issued them are reconciled again.

Syncing a day before later reconciled days forgets their identities (`tables.rewind`), and the next run
reconciles them again, in order. By overlap a person keeps the key it had the day before; a person new
to the re-reconciled map is named by the anchor of its records (`keys`). That alone re-keys people when
the day synced is *before the first synced day*: there it sees fewer records of a person (a card holder
before their registry row), names them by another anchor, and every later day keeps that key. The
analysts' saved keys would then lead nowhere.

So `rewind` first copies the rows the forgotten runs wrote to the map's history into
``meta.identity_keys_forgotten`` (``run_id, system, record_key, person_key``; proportional to change,
like the history; record keys, so never in an analysts' snapshot). A run reconciled while rows are
remembered gives a person who kept no key from the day before the key its records carried at the
earliest forgotten run at or after it (`hints`; never a key issued to someone else). Once a run is
reconciled again, its rows and the earlier ones are dropped (`tables.write_run`); a key of theirs that
neither the new map nor a later remembered run carries is not lost: `lost` makes it a ``rekey`` event
(redirected in ``core.person_key_redirects`` to the key most of its records carry now) or, its records
gone, a ``retire``.
"""

from __future__ import annotations

from collections.abc import Iterable

import duckdb
import pyarrow as pa

from islandbridge.identity.pairing import pair

DDL = """
CREATE TABLE IF NOT EXISTS meta.identity_keys_forgotten (
    run_id VARCHAR NOT NULL, system VARCHAR NOT NULL, record_key VARCHAR NOT NULL, person_key VARCHAR NOT NULL
);
"""


def remember(con: duckdb.DuckDBPyConnection, runs: Iterable[str]) -> None:
    """Copy the history rows of ``runs`` (about to be forgotten) that gave a record a key. Call inside the
    rewind's transaction."""
    runs = list(runs)
    marks = ", ".join("?" * len(runs))
    con.execute(f"DELETE FROM meta.identity_keys_forgotten WHERE run_id IN ({marks})", runs)
    con.execute(
        "INSERT INTO meta.identity_keys_forgotten SELECT run_id, system, record_key, person_key "
        f"FROM core.identity_map_changes WHERE run_id IN ({marks}) AND NOT removed AND person_key IS NOT NULL",
        runs,
    )


def hints(con: duckdb.DuckDBPyConnection, run_id: str, records: pa.Table) -> pa.Array | None:
    """Each record's remembered key (null: none), from the earliest forgotten run at or after ``run_id``;
    None when nothing is remembered (every day but one after a rewind)."""
    remembered = con.sql(
        "SELECT system, record_key, arg_min(person_key, run_id) AS person_key "
        "FROM meta.identity_keys_forgotten WHERE run_id >= $run GROUP BY system, record_key",
        params={"run": run_id},
    ).to_arrow_table()
    if not remembered.num_rows:
        return None
    return pair(remembered, records).old_of_current(remembered["person_key"])


def lost(
    con: duckdb.DuckDBPyConnection, run_id: str, new_map: pa.Table, previous_map: pa.Table
) -> list[tuple[str, str, str | None]]:
    """Events (``rekey``, old, new) or (``retire``, old, None) for the remembered keys of the runs up to
    ``run_id`` that the map after it (``new_map``: system, record_key, person_key) no longer carries, nor
    the previous map (its own events tell where those went), nor a later remembered run. None (at once)
    on a day with nothing remembered up to it."""
    if not con.execute(
        "SELECT count(*) FROM meta.identity_keys_forgotten WHERE run_id <= ?", [run_id]
    ).fetchall()[0][0]:
        return []
    con.register("_ib_new_keys", new_map.select(["system", "record_key", "person_key"]))
    con.register("_ib_previous_keys", previous_map.select(["person_key"]))
    try:
        rows = con.execute(
            """
            WITH gone AS (
                SELECT system, record_key, person_key FROM meta.identity_keys_forgotten f
                WHERE run_id <= $run
                  AND person_key NOT IN (SELECT person_key FROM _ib_new_keys)
                  AND person_key NOT IN (SELECT person_key FROM _ib_previous_keys)
                  AND person_key NOT IN (
                      SELECT person_key FROM meta.identity_keys_forgotten WHERE run_id > $run)
            ), went AS (
                SELECT g.person_key AS old_key, n.person_key AS new_key, count(n.person_key) AS records
                FROM gone g LEFT JOIN _ib_new_keys n USING (system, record_key) GROUP BY ALL
            )
            SELECT old_key, arg_max(new_key, (records, new_key)) FILTER (WHERE new_key IS NOT NULL)
            FROM went GROUP BY old_key ORDER BY old_key
            """,
            {"run": run_id},
        ).fetchall()
    finally:
        con.unregister("_ib_new_keys")
        con.unregister("_ib_previous_keys")
    return [("rekey", old, new) if new else ("retire", old, None) for old, new in rows]


def forget(con: duckdb.DuckDBPyConnection, run_id: str) -> None:
    """Drop the remembered rows of ``run_id`` and earlier runs: reconciled again, their keys live on in
    the map or in `lost`'s events. Call inside the run's write transaction."""
    con.execute("DELETE FROM meta.identity_keys_forgotten WHERE run_id <= ?", [run_id])
