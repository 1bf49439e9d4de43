"""Replaying quarantined rows after a fix: re-check each stored row, load the ones that now pass, once.

A row is quarantined because it failed a row check *at the time*: a house not yet in ``t_fw``, a code a
suite did not know. After the fix (the registry adds the house and the next sync lands it; the suite
learns the code), ``replay`` decrypts the source's pending rows, runs the current row checks of their
tables over them (the same DuckDB predicates as the gate; references are looked up in the warehouse,
which by then holds later runs), and for the rows that pass, in one transaction per stream and run:
inserts them into ``raw.<source>__<stream>`` under their original run, marks them replayed, and moves
them from ``quarantined`` to ``landed`` in ``meta.run_sources`` so the accounting still balances. An event
log kept as Parquet parts (``raw.iot__events`` is a view, `islandbridge.landing.raw_parts`) gets the rows
as one more content-addressed part of the run, listed in ``meta.raw_parts`` in that same transaction.

Exactly once: replayed rows are never picked again, and a row whose record key the run already holds in
the raw table is left in quarantine. Rows of runs not (yet) loaded are not replayed.

``references_ready`` runs after every load (`pipeline.load`): it re-checks, without loading
(``check_only``), the rows set aside only because a record they reference was not there (``exists_in``:
a backfill's grid visit whose resident's only version is dated after its as-of, landed by a later run),
so the run can say how many now find it and the command that loads them. It does not load them itself:
rows added to a past run after its reconciliation make a re-run of a later day differ from the in-order
run (`pipeline.sync`'s guarantee), so adding them stays an operator's decision.

Example::

    replay(settings, "registry")       # ReplayResult(checked=3, loaded=1, still_failing=2, ...)
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from islandbridge import storage
from islandbridge.config import Settings
from islandbridge.landing.raw_parts import RawParts, is_parts, parts_root
from islandbridge.logs import quiet_third_party
from islandbridge.privacy.configured import open_vault
from islandbridge.privacy.keys import KeyRing
from islandbridge.privacy.scrub import Scrubber
from islandbridge.privacy.sealing import KNOWN_NAMES, sealed_rows, stream_privacy, warehouse_batch
from islandbridge.privacy.vault import Vault
from islandbridge.quality import quarantine
from islandbridge.quality.config import QualityConfig
from islandbridge.quality.errors import QuarantineError
from islandbridge.quality.rowchecks import CheckContext, q, run_row_checks
from islandbridge.schemas import RECORD_KEY, Tables, TableSchema, load_tables
from islandbridge.storage import has_table, transaction


@dataclass
class ReplayResult:
    checked: int = 0
    loaded: int = 0
    still_failing: int = 0
    loaded_keys: dict[str, list[str]] = field(default_factory=dict)  # "run_id/stream" -> record keys

    def to_dict(self) -> dict:
        return {"checked": self.checked, "loaded": self.loaded, "still_failing": self.still_failing}


def replay(
    settings: Settings,
    source: str,
    *,
    run_id: str | None = None,
    quality_config: Mapping | None = None,
    keyring: KeyRing | None = None,
    tables: Tables | None = None,
    clock: Callable[[], dt.datetime] = lambda: dt.datetime.now(dt.UTC),
    referential_only: bool = False,
    check_only: bool = False,
) -> ReplayResult:
    """Re-check the pending quarantined rows of ``source`` (optionally of one run) and load those that pass;
    with ``referential_only``, only the rows whose every failed check is an ``exists_in`` reference; with
    ``check_only``, nothing is loaded or marked (``loaded`` then counts the rows that would be).

    Raises ``QuarantineError`` (no warehouse, a row that fails to decrypt), ``QualityConfigError``.
    """
    kind = settings.source(source).kind
    job = _Replay(settings, quality_config, keyring, tables, clock, referential_only, check_only)
    with job.attached() as con:
        return job.run(con, source, kind, run_id)


def references_ready(
    settings: Settings, sources: Sequence[str], clock: Callable[[], dt.datetime]
) -> dict[str, dict]:
    """After a load: per source of ``sources`` holding pending rows the gate set aside only for a missing
    reference, ``{"ready": rows that now find it, "waiting": rows that still do not}``; nothing is loaded
    (`replay` with ``referential_only`` and ``check_only``), and the warehouse is opened once for all."""
    kinds = {source: settings.source(source).kind for source in sources}
    job = _Replay(settings, settings.quality, None, None, clock, referential_only=True, check_only=True)
    found = {}
    with job.attached() as con:
        for source, kind in kinds.items():
            result = job.run(con, source, kind)
            if result.checked:
                found[source] = {"ready": result.loaded, "waiting": result.still_failing}
    return found


class _Replay:
    """One replay's configuration, run over one source at a time on a connection with the warehouse
    attached as ``wh`` (`attached`)."""

    def __init__(
        self,
        settings: Settings,
        quality_config: Mapping | None,
        keyring: KeyRing | None,
        tables: Tables | None,
        clock: Callable[[], dt.datetime],
        referential_only: bool,
        check_only: bool,
    ) -> None:
        quiet_third_party()
        self.settings, self.clock = settings, clock
        self.cfg = QualityConfig.from_mapping(quality_config)
        self.tables = load_tables() if tables is None else tables
        self.ring = keyring or quarantine.keyring(settings, self.cfg.quarantine_key)
        self.referential_only, self.check_only = referential_only, check_only

    @contextlib.contextmanager
    def attached(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """An in-memory connection with the warehouse attached as ``wh``; ``QuarantineError`` without one."""
        if not self.settings.warehouse_path.exists():
            raise QuarantineError(f"no warehouse at {self.settings.warehouse_path}: nothing to replay")
        con = storage.connect(resources=self.settings.duckdb)
        try:
            con.execute("SET enable_progress_bar = false")  # a bar on stderr in every task log helps nobody
            con.execute(f"ATTACH '{str(self.settings.warehouse_path).replace(chr(39), chr(39) * 2)}' AS wh")
            yield con
        finally:
            con.close()

    def run(self, con, source: str, kind: str, run_id: str | None = None) -> ReplayResult:
        """Replay (or only check) the pending rows of ``source``, of connector ``kind``, on ``con``."""
        result = ReplayResult()
        pending = {}
        for (run, stream, as_of), rows in _pending(con, source, run_id).items():
            checks = [_resolved(self.cfg, source, stream, c) for c in self.tables[kind, stream].suite]
            refs = {c.id for c in checks if c.kind == "exists_in"}
            rows = [r for r in rows if not self.referential_only or set(r["expectations_failed"]) <= refs]
            if rows:
                pending[run, stream, as_of] = (rows, checks)
        if not pending:
            return result
        vault = None if self.check_only else open_vault(self.settings)
        try:
            privacy = None if vault is None else _Pseudonymise(vault, kind)
            for (run, stream, as_of), (rows, checks) in pending.items():
                row_checks = [c for c in checks if c.severity == "row"]
                table = self.tables[kind, stream]
                _replay_group(
                    con, self.ring, table, source, run, as_of, rows, row_checks, self.clock(), result, privacy
                )
            return result
        finally:
            if vault is not None:
                vault.close()


class _Pseudonymise:
    """Replayed rows reach the warehouse as the loader's do: direct identifiers sealed, text scrubbed."""

    def __init__(self, vault: Vault, kind: str) -> None:
        self.vault, self.kind = vault, kind
        self.scrubber = Scrubber(vault.sealed_list(KNOWN_NAMES))

    def __call__(self, source: str, stream: str, run: str, rows: pa.Table) -> tuple[pa.Table, list[str]]:
        columns = [c for c in rows.column_names if c not in (RECORD_KEY, "_seq", "_nonce")]
        spec = stream_privacy(self.kind, stream, columns)
        batches = rows.to_batches()
        if spec.sealed:
            self.vault.seal_records(source, stream, run, sealed_rows(batches, spec), replace_slice=False)
        parts = [warehouse_batch(b, spec, columns, self.scrubber) for b in batches]
        kept = pa.concat_tables(parts) if parts else pa.table({})
        return kept, [c for c in kept.column_names if c != RECORD_KEY]


def _resolved(cfg: QualityConfig, source: str, stream: str, check):
    o = cfg.override(source, stream, check.id)
    return replace(check, severity=o.severity or check.severity)


def _pending(con, source: str, run_id: str | None) -> dict[tuple[str, str, dt.datetime], list[dict]]:
    if not has_table(con, "meta.quality_quarantine", database="wh", views=False):
        return {}
    cur = con.execute(
        "SELECT q.*, r.as_of AS run_as_of FROM wh.meta.quality_quarantine q JOIN wh.meta.runs r USING (run_id) "
        "WHERE q.source = $source AND q.replayed_at IS NULL AND r.status = 'loaded' "
        "AND ($run IS NULL OR q.run_id = $run) ORDER BY q.run_id, q.stream, q.record_key, q.seq",
        {"source": source, "run": run_id},
    )
    names = [d[0] for d in cur.description]
    groups: dict[tuple[str, str, dt.datetime], list[dict]] = {}
    for values in cur.fetchall():
        row = dict(zip(names, values, strict=True))
        groups.setdefault((row["run_id"], row["stream"], row["run_as_of"]), []).append(row)
    return groups


def _context(con, source: str, run: str, stream: str, as_of: dt.datetime) -> CheckContext:
    """The context the gate checked the run's rows in: its as-of, and the stream's state (the ``arrival``
    bound of a log the run read after its as-of, `CheckContext.for_state`)."""
    # fetchall, not fetchone: DuckDB 2 keeps a result read by fetchone open, and registering the rows to
    # check on this connection then fails ("connection has an unfinished result")
    rows = con.execute(
        "SELECT state_json FROM wh.meta.source_state WHERE source = ? AND run_id = ?", [source, run]
    ).fetchall()
    state = json.loads(rows[0][0]) if rows else {}
    return CheckContext(as_of).for_state(state.get(stream) if isinstance(state, dict) else None)


def _replay_group(
    con,
    ring: KeyRing,
    table: TableSchema,
    source: str,
    run: str,
    as_of: dt.datetime,
    entries: Sequence[dict],
    checks,
    now: dt.datetime,
    result: ReplayResult,
    privacy: _Pseudonymise | None,
) -> None:
    stream, target = table.stream, f"wh.raw.{q(source + '__' + table.stream)}"
    rows = pa.Table.from_pylist(
        [quarantine.unseal(ring, e) for e in entries],
        pa.schema([(c, pa.string()) for c in (*table.column_names, RECORD_KEY)]),
    )
    rows = rows.append_column("_seq", pa.array([e["seq"] for e in entries], pa.int32()))
    # the stored key is scrubbed, and keys that scrub alike share it: the nonce names the stored row
    rows = rows.append_column("_nonce", pa.array([bytes(e["nonce"]) for e in entries], pa.binary()))
    ctx = _context(con, source, run, stream, as_of)
    found = run_row_checks(con, rows, table, checks, ctx, _refs(con, source, checks), want_frame=False)
    bad = set(found.failing[RECORD_KEY].to_pylist())
    if _has_relation(con, f"{source}__{stream}"):  # exactly once: never a second copy in a run
        bad |= {
            r[0]
            for r in con.execute(f"SELECT {RECORD_KEY} FROM {target} WHERE _run_id = ?", [run]).fetchall()
        }
    passing = rows.filter(pc.invert(pc.is_in(rows[RECORD_KEY], value_set=pa.array(sorted(bad), pa.string()))))
    result.checked += rows.num_rows
    result.still_failing += rows.num_rows - passing.num_rows
    if passing.num_rows:
        if privacy is not None:  # else only checking
            _load(con, target, table, source, run, passing, now, privacy)
        result.loaded += passing.num_rows
        result.loaded_keys[f"{run}/{stream}"] = passing[RECORD_KEY].to_pylist()


def _refs(con, source: str, checks) -> dict[str, str]:
    refs = {}
    for n, c in enumerate(checks):
        if c.kind == "exists_in":
            ref_stream, ref_col = c.params["ref"]["stream"], c.params["ref"]["column"]
            body = (
                f"SELECT {q(ref_col)} AS k FROM wh.raw.{q(source + '__' + ref_stream)}"
                if _has_relation(con, f"{source}__{ref_stream}")
                else "SELECT NULL::VARCHAR AS k LIMIT 0"
            )
            con.execute(f"CREATE OR REPLACE TEMP TABLE _ref{n} AS {body}")
            refs[c.id] = f"_ref{n}"
    return refs


def _has_relation(con, name: str) -> bool:
    """Whether ``wh.raw.<name>`` exists as a table or as a view (an event log kept as parts)."""
    return has_table(con, f"raw.{name}", database="wh")


@contextlib.contextmanager
def _warehouse_default(con) -> Iterator[None]:
    """The attached warehouse as the default database for the block (`raw_parts` names relations unqualified)."""
    con.execute("USE wh")
    try:
        yield
    finally:
        con.execute("USE memory")


def _parts(con, source: str, stream: str) -> RawParts | None:
    """The parts behind ``raw.<source>__<stream>`` when it is a view over them, else ``None``."""
    relation = f"raw.{source}__{stream}"
    with _warehouse_default(con):
        root = parts_root(con, relation) if is_parts(con, relation) else None
    if root is None:
        return None
    return RawParts(root, source, stream)


def _load(
    con,
    target: str,
    table: TableSchema,
    source: str,
    run: str,
    passing: pa.Table,
    now: dt.datetime,
    privacy: _Pseudonymise,
) -> None:
    kept, columns = privacy(source, table.stream, run, passing)
    cols = ", ".join(q(c) for c in (*columns, RECORD_KEY))
    parts = _parts(con, source, table.stream)
    if parts:
        with _warehouse_default(con):
            staged = parts.stage_rows(con, run, kept)
    con.register("_passing", passing)
    con.register("_kept", kept)
    try:
        with transaction(con):
            if parts:  # an event log kept as Parquet parts: the rows become one more part of the run
                with _warehouse_default(con):
                    parts.append(con, staged)
            else:
                con.execute(f"INSERT INTO {target} ({cols}, _run_id) SELECT {cols}, ? FROM _kept", [run])
            con.execute(
                "UPDATE wh.meta.quality_quarantine q SET replayed_at = ? FROM _passing p "
                "WHERE q.run_id = ? AND q.source = ? AND q.stream = ? AND q.nonce = p._nonce AND q.seq = p._seq",
                [now, run, source, table.stream],
            )
            con.execute(
                "UPDATE wh.meta.run_sources SET landed = landed + ?, quarantined = quarantined - ? "
                "WHERE run_id = ? AND source = ? AND stream = ?",
                [passing.num_rows, passing.num_rows, run, source, table.stream],
            )
    finally:
        con.unregister("_passing")
        con.unregister("_kept")
