"""Load a run's landing zone into the warehouse's ``raw`` tables, with the run's bookkeeping.

One DuckDB transaction per source commits, together: the source's raw rows for the run, its quarantined
and deleted records, its accounting, and the state (cursor, watermark, file hashes) its connector
returned. A crash before the commit leaves the previous state and data; the next run re-extracts from the
previous state and completes it. Loading the same run again replaces the run's slice (rows are tagged
with ``_run_id``), so re-running an interval changes nothing.

Tables (schema ``raw``): ``{source}__{stream}``, the source's columns as text — without its direct
identifiers, which are sealed in the vault (`islandbridge.privacy.sealing`) — plus ``_record_key`` and
``_run_id``. Schema ``meta``: ``runs``, ``run_sources`` (accounting per run, source and stream),
``source_state``, ``quarantine``, ``deletions``, ``source_files`` (what became of each file a file-based
source found: landed, duplicate, superseded, refused or ignored, with the reason and its rows read).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import logging
import posixpath
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow.dataset as pads
import pyarrow.fs as pafs

from islandbridge import storage
from islandbridge.config import DuckDBResources, Settings
from islandbridge.connectors.base import kind_class
from islandbridge.errors import TerminalError, count
from islandbridge.landing import folder_owner, raw_parts
from islandbridge.landing.raw_parts import RawParts
from islandbridge.landing.zone import COUNT_FIELDS, DELETED, MANIFEST, QUARANTINE, RECORD_KEY, open_root
from islandbridge.privacy import rowseal
from islandbridge.privacy.keys import KeyRing
from islandbridge.privacy.scrub import Scrubber, scrub
from islandbridge.privacy.sealing import (
    LoadPrivacy,
    StreamPrivacy,
    seal_quarantine,
    sealed_rows,
    stream_privacy,
    warehouse_batch,
)
from islandbridge.schemas import load_tables
from islandbridge.storage import has_table, run_id_for, transaction  # noqa: F401 - callers use raw.run_id_for

log = logging.getLogger(__name__)

META_DDL = """
CREATE SCHEMA IF NOT EXISTS raw;
CREATE SCHEMA IF NOT EXISTS meta;
CREATE TABLE IF NOT EXISTS meta.runs (
    run_id VARCHAR PRIMARY KEY, as_of TIMESTAMPTZ NOT NULL, status VARCHAR NOT NULL,
    started_at TIMESTAMPTZ, finished_at TIMESTAMPTZ, sources VARCHAR[]
);
CREATE TABLE IF NOT EXISTS meta.run_sources (
    run_id VARCHAR, source VARCHAR, stream VARCHAR, read BIGINT, landed BIGINT, quarantined BIGINT,
    duplicates BIGINT, deleted BIGINT, loaded_at TIMESTAMPTZ, PRIMARY KEY (run_id, source, stream)
);
CREATE TABLE IF NOT EXISTS meta.source_state (
    source VARCHAR, as_of TIMESTAMPTZ, run_id VARCHAR, state_json VARCHAR, PRIMARY KEY (source, as_of)
);
-- The as-of of the state the extraction resumed from: what it read covers read_from..as_of (NULL: it
-- started from no state, or was loaded before this was recorded).
ALTER TABLE meta.source_state ADD COLUMN IF NOT EXISTS read_from TIMESTAMPTZ;
CREATE TABLE IF NOT EXISTS meta.quarantine (
    run_id VARCHAR, source VARCHAR, stream VARCHAR, record_key VARCHAR, reason VARCHAR,
    kid VARCHAR, nonce BLOB, ciphertext BLOB, seq INTEGER
);
-- Warehouses from before seq was stored numbered a record key's rows in insertion order: keep that number.
ALTER TABLE meta.quarantine ADD COLUMN IF NOT EXISTS seq INTEGER;
CREATE TABLE IF NOT EXISTS meta.deletions (run_id VARCHAR, source VARCHAR, stream VARCHAR, record_key VARCHAR);
CREATE TABLE IF NOT EXISTS meta.source_files (
    run_id VARCHAR, source VARCHAR, stream VARCHAR, file VARCHAR, outcome VARCHAR, reason VARCHAR,
    rows BIGINT, loaded_at TIMESTAMPTZ
);
"""

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class LoadError(TerminalError):
    """A landing slice cannot be loaded as it is (incomplete extraction, bad names).

    Terminal: the extraction must be (re)run or the names fixed first; loading again finds the same slice."""


def connect(
    path: str, read_only: bool = False, resources: DuckDBResources | None = None, *, lock_wait_s: float = 0.0
) -> duckdb.DuckDBPyConnection:
    """The warehouse, with the landing's run-accounting tables created (and upgraded) on a write connection;
    bounded by ``resources`` (``settings.duckdb``), see `storage.connect`. A write connection also takes
    the paths of the event logs' raw parts to this warehouse's folder (`raw_parts.rebase`): a copied,
    moved or restored warehouse reads its own parts, never the original's; and claims ``raw/`` when no
    other warehouse file uses it (`folder_owner.claim`). ``lock_wait_s``: see `storage.connect`."""
    con = storage.connect(path, read_only=read_only, resources=resources, lock_wait_s=lock_wait_s)
    if not read_only:
        try:
            con.execute(META_DDL)
            rowseal.number_legacy_rows(con)
            root = Path(path).absolute().parent / raw_parts.ROOT_NAME
            raw_parts.rebase(con, root)
            if root.is_dir():  # a warehouse from before the owner marker claims its raw/ (`folder_owner`)
                folder_owner.claim(con, root)
        except BaseException:
            con.close()
            raise
    return con


def open_warehouse(
    settings: Settings, read_only: bool = False, *, wait: bool | None = None
) -> duckdb.DuckDBPyConnection:
    """`connect` to the configured warehouse, bounded by ``settings.duckdb``. A step opens it for one
    block, which closes it however the block ends::

        with raw.open_warehouse(settings, read_only=True) as con:
            check_window(con, as_of)

    A write open (or any with ``wait``) waits up to ``settings.warehouse_lock_wait_s`` for another process
    holding the file (an operator's ``islandbridge sql`` during a sync); a read-only one fails at once, as
    the operator's readers (``sql``, ``runs``) should."""
    wait_s = settings.warehouse_lock_wait_s if (not read_only if wait is None else wait) else 0.0
    return connect(
        str(settings.warehouse_path), read_only=read_only, resources=settings.duckdb, lock_wait_s=wait_s
    )


def previous_state(con: duckdb.DuckDBPyConnection, source: str, as_of: dt.datetime) -> dict[str, Any]:
    """The state committed by the newest run *before* ``as_of`` (so re-running an interval re-reads it)."""
    return resume_point(con, source, as_of)[0]


def resume_point(
    con: duckdb.DuckDBPyConnection, source: str, as_of: dt.datetime
) -> tuple[dict[str, Any], dt.datetime | None]:
    """`previous_state` and the as-of it was committed at (``None`` without one): an extraction from it
    reads what changed from that as-of to its own, whichever days are loaded in between later."""
    if not has_table(con, "meta.source_state"):
        return {}, None
    row = con.execute(
        "SELECT state_json, as_of FROM meta.source_state WHERE source = ? AND as_of < ? "
        "ORDER BY as_of DESC LIMIT 1",
        [source, as_of],
    ).fetchone()
    return (json.loads(row[0]), row[1]) if row else ({}, None)


def begin_run(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    as_of: dt.datetime,
    sources: list[str],
    started_at: dt.datetime,
) -> None:
    """Mark the run ``loading`` (`islandbridge runs`: "load not finished") until `finish_run`.

    A load reads its sources' manifests first (`read_manifests`, which raises `LoadError` for a missing
    extract), so a load refused for one leaves ``meta.runs`` (a finished day stays finished) as it was.
    """
    con.execute(
        "INSERT OR REPLACE INTO meta.runs VALUES (?, ?, 'loading', ?, NULL, ?)",
        [run_id, as_of, started_at, sources],
    )


def finish_run(con: duckdb.DuckDBPyConnection, run_id: str, status: str, finished_at: dt.datetime) -> None:
    con.execute(
        "UPDATE meta.runs SET status = ?, finished_at = ? WHERE run_id = ?", [status, finished_at, run_id]
    )


def load_source(
    con: duckdb.DuckDBPyConnection,
    landing_url: str,
    run_id: str,
    source: str,
    as_of: dt.datetime,
    loaded_at: dt.datetime,
    privacy: LoadPrivacy | None = None,
    *,
    clean_landing: bool = False,
    parts_root: Path | None = None,
    manifest: Mapping[str, Any] | None = None,
) -> dict[str, dict[str, int]]:
    """Commit one source's landed slice, accounting and state atomically; returns counts per stream.

    With ``privacy`` (the pipeline always passes it) the rows are pseudonymised on the way in (see
    `islandbridge.privacy.sealing`): direct identifiers are sealed in the vault first (idempotently, per
    run slice), then the warehouse transaction commits. ``clean_landing`` deletes the source's landed
    extract once that commit has happened. With ``parts_root``, an event log (`kept_as_parts`) is not
    copied into a table: its landed parts are linked under ``parts_root`` (`islandbridge.landing.raw_parts`).
    ``manifest``: the slice's manifest when the caller has read it (`read_manifests`); read here otherwise.
    """
    fs, root = open_root(landing_url)
    base = posixpath.join(root, run_id, source)
    manifest = read_manifest(fs, base, source, run_id) if manifest is None else manifest
    _check_ident(source)
    specs, parts = {}, {}
    for stream, info in manifest["streams"].items():
        _check_ident(stream)
        if privacy is not None:
            spec = specs[stream] = stream_privacy(privacy.kinds[source], stream, info["columns"])
            if spec.sealed:
                data = landed_dataset(fs, posixpath.join(base, stream))
                privacy.vault.seal_records(source, stream, run_id, sealed_rows(data.to_batches(), spec))
            if parts_root is not None and kept_as_parts(privacy.kinds[source], stream, spec):
                store = RawParts(parts_root, source, stream)
                columns = [*(c for c in info["columns"] if c != RECORD_KEY), RECORD_KEY]
                parts[stream] = (store, store.stage(fs, posixpath.join(base, stream), run_id, columns))
    with transaction(con):
        for stream, info in manifest["streams"].items():
            if stream in parts:
                store, staged = parts[stream]
                store.adopt(con, run_id)
                store.publish(con, staged)
            else:
                _replace_stream(
                    con,
                    fs,
                    base,
                    source,
                    stream,
                    info["columns"],
                    run_id,
                    specs.get(stream),
                    privacy.scrubber if privacy else None,
                )
            con.execute(
                "INSERT OR REPLACE INTO meta.run_sources VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    run_id,
                    source,
                    stream,
                    info["read"],
                    info["landed"],
                    info["quarantined"],
                    info["duplicates"],
                    info["deleted"],
                    loaded_at,
                ],
            )
        _replace_quarantine(con, fs, base, run_id, source, privacy)
        _replace_side_table(con, fs, base, "deletions", DELETED, run_id, source, "stream, _record_key")
        con.execute("DELETE FROM meta.source_files WHERE run_id = ? AND source = ?", [run_id, source])
        files = manifest.get("files") or []
        if files:
            con.executemany(
                "INSERT INTO meta.source_files VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                [
                    [run_id, source, f["stream"], f["file"], f["outcome"], f["reason"], f["rows"], loaded_at]
                    for f in files
                ],
            )
        con.execute(
            "INSERT OR REPLACE INTO meta.source_state (source, as_of, run_id, state_json, read_from) "
            "VALUES (?, ?, ?, ?, ?)",
            [source, as_of, run_id, json.dumps(manifest["state"], sort_keys=True), read_from(manifest)],
        )
    for store, _ in parts.values():
        store.collect_garbage(con)
    if privacy is not None:
        _forget_deleted(con, privacy, run_id, source)
    if clean_landing:
        fs.delete_dir(base)
        log.debug("deleted the landed extract of %s for run %s after loading it", source, run_id)
    counts = {s: {k: info[k] for k in COUNT_FIELDS} for s, info in manifest["streams"].items()}
    log.debug("loaded %s for run %s: %s", source, run_id, {s: c["landed"] for s, c in counts.items()})
    return counts


def scrub_legacy(con: duckdb.DuckDBPyConnection, quarantine: KeyRing, kinds: Mapping[str, str]) -> None:
    """Store scrubbed what warehouses from before kept whole: the quarantine tables' record keys and
    reasons (re-sealed under ``quarantine``, `rowseal.scrub_stored_keys`) and the states of the sources in
    ``kinds`` (source -> connector kind) whose connector scrubs its state (`Connector.stored_state`: a
    roster's 序号). Running it again changes nothing."""
    rowseal.scrub_stored_keys(con, quarantine)
    for source, kind in kinds.items():
        connector = kind_class(kind)
        states = con.execute("SELECT as_of, state_json FROM meta.source_state WHERE source = ?", [source])
        for as_of, text in states.fetchall():
            state = json.loads(text)
            if connector is None or not isinstance(state, Mapping):
                continue
            if (stored := connector.stored_state(state, scrub)) != state:
                con.execute(
                    "UPDATE meta.source_state SET state_json = ? WHERE source = ? AND as_of = ?",
                    [json.dumps(stored, sort_keys=True), source, as_of],
                )


def kept_as_parts(kind: str, stream: str, spec: StreamPrivacy) -> bool:
    """An event log (``volume: flow``) with nothing to pseudonymise is kept as its landed Parquet parts."""
    schema = load_tables().get((kind, stream))
    return schema is not None and schema.volume == "flow" and not spec.needs_rewrite


def read_from(manifest: Mapping[str, Any]) -> dt.datetime | None:
    """The as-of of the state the slice's extraction resumed from (``None``: no state, or not recorded)."""
    text = manifest.get("read_from")
    return dt.datetime.fromisoformat(text) if isinstance(text, str) else None


def read_manifests(landing_url: str, run_id: str, sources: Sequence[str]) -> dict[str, dict[str, Any]]:
    """Each source's landing manifest for the run, read once for a whole load (its known names, then
    `load_source`). Raises `LoadError` for the first source whose extraction is not complete."""
    fs, root = open_root(landing_url)
    return {
        source: read_manifest(fs, posixpath.join(root, run_id, source), source, run_id) for source in sources
    }


def read_manifest(fs: pafs.FileSystem, base: str, source: str, run_id: str) -> dict[str, Any]:
    path = posixpath.join(base, MANIFEST)
    try:
        with fs.open_input_stream(path) as f:
            return json.loads(f.read())
    except FileNotFoundError:
        raise LoadError(
            f"no complete extraction of source {source!r} for run {run_id} (missing {MANIFEST}); "
            f"run `islandbridge extract --source {source}` for this as-of first"
        ) from None


def _replace_stream(
    con,
    fs,
    base: str,
    source: str,
    stream: str,
    columns: list[str],
    run_id: str,
    spec: StreamPrivacy | None = None,
    scrubber: Scrubber | None = None,
) -> None:
    table = f"raw.{source}__{stream}"
    landed = [c for c in columns if c != RECORD_KEY]
    cols = [*(spec.warehouse_columns(landed) if spec else landed), RECORD_KEY]
    con.execute(
        f"CREATE TABLE IF NOT EXISTS {table} ("
        + ", ".join(f'"{c}" VARCHAR' for c in cols)
        + ', "_run_id" VARCHAR)'
    )
    existing = {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = 'raw' AND table_name = ?",
            [f"{source}__{stream}"],
        ).fetchall()
    }
    for c in cols:
        if c not in existing:  # a column the connector now declares: earlier runs have it as NULL
            con.execute(f'ALTER TABLE {table} ADD COLUMN "{c}" VARCHAR')
    con.execute(f"DELETE FROM {table} WHERE _run_id = ?", [run_id])
    quoted = ", ".join(f'"{c}"' for c in cols)
    if spec is None or not spec.needs_rewrite:
        with _registered(con, fs, posixpath.join(base, stream)) as view:
            con.execute(f"INSERT INTO {table} ({quoted}, _run_id) SELECT {quoted}, ? FROM {view}", [run_id])
        return
    for batch in landed_dataset(fs, posixpath.join(base, stream)).to_batches():
        con.register("_pseudonymised", warehouse_batch(batch, spec, landed, scrubber or Scrubber()))
        try:
            con.execute(
                f"INSERT INTO {table} ({quoted}, _run_id) SELECT {quoted}, ? FROM _pseudonymised", [run_id]
            )
        finally:
            con.unregister("_pseudonymised")


def _replace_quarantine(con, fs, base: str, run_id: str, source: str, privacy: LoadPrivacy | None) -> None:
    """The connector's quarantined records, their raw JSON sealed under the quarantine keyring."""
    con.execute("DELETE FROM meta.quarantine WHERE run_id = ? AND source = ?", [run_id, source])
    rows = landed_dataset(fs, posixpath.join(base, QUARANTINE)).to_table()
    if not rows.num_rows:
        return
    if privacy is None:
        raise LoadError(
            f"{count(rows.num_rows, 'quarantined record')} of {source!r} in run {run_id} must be sealed: "
            "load them through the pipeline, which configures keys.quarantine"
        )
    con.register("_sealed_quarantine", seal_quarantine(privacy.quarantine, run_id, source, rows))
    try:
        con.execute(
            "INSERT INTO meta.quarantine (run_id, source, stream, record_key, reason, seq, kid, nonce, "
            "ciphertext) SELECT ?, ?, stream, _record_key, reason, seq, kid, nonce, ciphertext "
            "FROM _sealed_quarantine",
            [run_id, source],
        )
    finally:
        con.unregister("_sealed_quarantine")


def _forget_deleted(con, privacy: LoadPrivacy, run_id: str, source: str) -> None:
    """A record the source deleted is erased from the vault too (its history stays, pseudonymous)."""
    gone = con.execute(
        "SELECT stream, list(record_key) FROM meta.deletions WHERE run_id = ? AND source = ? GROUP BY stream",
        [run_id, source],
    ).fetchall()
    for stream, keys in gone:
        privacy.vault.forget_records(source, stream, keys)


def _replace_side_table(
    con, fs, base: str, table: str, folder: str, run_id: str, source: str, columns: str
) -> None:
    con.execute(f"DELETE FROM meta.{table} WHERE run_id = ? AND source = ?", [run_id, source])
    with _registered(con, fs, posixpath.join(base, folder)) as view:
        con.execute(f"INSERT INTO meta.{table} SELECT ?, ?, {columns} FROM {view}", [run_id, source])


def landed_dataset(fs: pafs.FileSystem, path: str) -> pads.Dataset:
    """A landed Parquet folder (on any pyarrow filesystem), read lazily."""
    return pads.dataset(path, filesystem=fs, format="parquet")


@contextlib.contextmanager
def _registered(con, fs: pafs.FileSystem, path: str):
    """Expose a landed Parquet dataset (on any pyarrow filesystem) to DuckDB as a streaming view."""
    name = "_landing_scan"
    con.register(name, landed_dataset(fs, path))
    try:
        yield name
    finally:
        con.unregister(name)


def _check_ident(name: str) -> None:
    if not _IDENT.match(name):
        raise LoadError(f"{name!r} cannot name a warehouse table (letters, digits and _ only)")


def format_accounting(summary: Mapping[str, Mapping[str, int]], indent: str = "") -> str:
    """A run's per-source accounting as an aligned text table (the demo and `islandbridge runs`): read =
    landed + quarantined + duplicates; ``deleted``, the keys no longer in the source, is apart from it."""
    head = f"{'source':<10} {'read':>9} {'landed':>9} {'quarantined':>12} {'duplicates':>11} {'deleted':>8}"
    lines = [f"{indent}{head}"]
    lines += [
        f"{indent}{source:<10} {c['read']:>9} {c['landed']:>9} {c['quarantined']:>12} {c['duplicates']:>11} "
        f"{c.get('deleted') or 0:>8}"
        for source, c in summary.items()
    ]
    return "\n".join(lines)


def run_summary(con: duckdb.DuckDBPyConnection, run_id: str) -> Mapping[str, Any]:
    """Per-source accounting of one run, for the CLI, the DAG's last task and the demo."""
    rows = con.execute(
        "SELECT source, sum(read), sum(landed), sum(quarantined), sum(duplicates), sum(deleted) "
        "FROM meta.run_sources WHERE run_id = ? GROUP BY source ORDER BY source",
        [run_id],
    ).fetchall()
    return {
        src: {"read": r, "landed": la, "quarantined": q, "duplicates": d, "deleted": de}
        for src, r, la, q, d, de in rows
    }
