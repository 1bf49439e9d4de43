"""Validating one run's landed data, stream by stream, in three phases (the gate's engine room).

1. **columns** — for every stream at once: the landed columns against its table definition.
2. **rows** — per stream whose columns match: the DuckDB pass (``rowchecks``), then its GX suite on the
   same derived frame (or, above ``gx_max_rows``, on DuckDB's per-check counts), counts cross-checked.
3. **the streams as a whole** — volume and quarantine share for every stream at once, then every roster
   file at once (``tablechecks``), each decided by GX.

A GX call costs about 0.1 s however small its frame, so the table-level phases validate all streams in
one call each, with one expectation per stream restricted to its row.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from islandbridge import storage
from islandbridge.config import Settings
from islandbridge.landing.zone import RECORD_KEY
from islandbridge.quality import suites, tablechecks
from islandbridge.quality.config import QualityConfig
from islandbridge.quality.errors import QualityCheckBrokenError
from islandbridge.quality.results import CheckResult
from islandbridge.quality.rowchecks import (
    DERIVED_KINDS,
    LANDED,
    CheckContext,
    RowCheckOutcome,
    check_landed,
    land,
    q,
)
from islandbridge.quality.slices import LandingSlice
from islandbridge.schemas import Check, Tables, TableSchema

ROSTER_KIND = "roster_totals"


@dataclass
class StreamOutcome:
    """One stream's results, the rows it quarantines, and what the table-level phase needs."""

    source: str
    stream: str
    table: TableSchema | None
    landing: LandingSlice
    results: list[CheckResult] = field(default_factory=list)
    failing: pa.Table | None = None
    rows: int = 0
    volume: dict | None = None
    rosters: list[tuple[Check, pa.Table]] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def id(self) -> str:
        return f"{self.source}.{self.stream}"

    def add_result(self, check: str, kind: str, severity: str, success: bool, **found: Any) -> None:
        """Record one check's outcome on this stream (a `CheckResult`; ``found``: its optional fields)."""
        self.results.append(CheckResult(self.source, self.stream, check, kind, severity, success, **found))


def validate_streams(
    settings: Settings,
    cfg: QualityConfig,
    run_id: str,
    ctx: CheckContext,
    kinds: Mapping[str, str],
    tables: Tables,
) -> list[StreamOutcome]:
    """Every check of every stream of ``kinds``' sources; the warehouse is attached read-only, if any."""
    con = storage.connect(resources=settings.duckdb)
    con.execute("SET enable_progress_bar = false")  # a bar on stderr in every task log helps nobody
    try:
        attached = settings.warehouse_path.exists()
        if attached:  # read-only: a gate that stops the run must leave the file byte-for-byte as it was
            con.execute(
                f"ATTACH '{str(settings.warehouse_path).replace(chr(39), chr(39) * 2)}' AS wh (READ_ONLY)"
            )
        outcomes = []
        for source, kind in kinds.items():
            landing = LandingSlice.open(settings.landing_url, run_id, source)
            outcomes += [StreamOutcome(source, s, tables.get((kind, s)), landing) for s in landing.streams]
        _columns(cfg, outcomes)
        for o in outcomes:
            if o.results[0].success:
                folder = settings.source(o.source).options.get("path")
                _StreamValidator(con, cfg, ctx, o, attached, Path(str(folder)) if folder else None).run()
        _facts(cfg, outcomes)
        _rosters(outcomes)
        _source_files(cfg, outcomes)
        return outcomes
    finally:
        con.close()


def _severity(cfg: QualityConfig, o: StreamOutcome, check: str, default: str = "critical") -> str:
    return cfg.override(o.source, o.stream, check).severity or default


# --------------------------------------------------------------------------- phase 1: columns


def _columns(cfg: QualityConfig, outcomes: Sequence[StreamOutcome]) -> None:
    rows = {"stream_id": [], "column": []}
    expectations = []
    for o in outcomes:
        for name in o.landing.dataset(o.stream).schema.names:
            rows["stream_id"].append(o.id)
            rows["column"].append(name)
        if o.table is not None:
            expectations.append(suites.columns_expectation(o.id, [*o.table.column_names, RECORD_KEY]))
    gx = (
        {r["stream"]: r for r in suites.validate(pa.table(rows), expectations, "columns")}
        if expectations
        else {}
    )
    for o in outcomes:
        landed = o.landing.dataset(o.stream).schema.names
        severity = _severity(cfg, o, "columns_match")
        if o.table is None:
            o.add_result(
                "columns_match",
                "columns_match",
                severity,
                False,
                observed={"table_definition": "none in schemas/"},
                engine="schemas",
            )
            continue
        declared = [*o.table.column_names, RECORD_KEY]
        ok = gx[o.id]["success"]
        observed = (
            {"columns": len(landed)}
            if ok
            else {
                "undeclared": sorted(set(landed) - set(declared)),
                "missing": sorted(set(declared) - set(landed)),
            }
        )
        o.add_result(
            "columns_match",
            "columns_match",
            severity,
            ok,
            gx_type=gx[o.id]["gx_type"],
            observed=observed,
        )


# --------------------------------------------------------------------------- phase 2: rows


class _StreamValidator:
    def __init__(
        self,
        con,
        cfg: QualityConfig,
        ctx: CheckContext,
        out: StreamOutcome,
        attached: bool,
        folder: Path | None,
    ) -> None:
        self.con, self.cfg, self.ctx, self.out, self.attached, self.folder = (
            con,
            cfg,
            ctx,
            out,
            attached,
            folder,
        )
        self.table: TableSchema = out.table  # type: ignore[assignment]
        self.ctx = ctx.for_state(out.landing.state.get(out.stream))  # an ``arrival`` bound's reference

    def run(self) -> None:
        started = time.perf_counter()
        out = self.out
        checks = [self._resolve(c) for c in self.table.suite]
        dataset = out.landing.dataset(out.stream)
        try:
            # DuckDB holds only the columns the checks read, under its memory limit; Arrow only the rows
            # that fail and, up to gx_max_rows, the GX frame (a large stream does not fit in Arrow whole)
            out.rows = land(self.con, dataset, read_columns(checks))
            found = check_landed(
                self.con,
                dataset,
                self.table,
                checks,
                self.ctx,
                self._refs(checks),
                want_frame=0 < out.rows <= self.cfg.gx_max_rows,
                gx_columns=[x for c in checks if c.kind not in DERIVED_KINDS for x in c.columns],
            )
            out.failing = found.failing
            out.results += self._row_results([c for c in checks if c.is_row_level], found)
            out.volume = self._volume()
            out.rosters = [(c, self._roster(c)) for c in checks if c.kind == ROSTER_KIND]
        finally:
            self.con.execute(f"DROP TABLE IF EXISTS {LANDED}")
            out.seconds = round(time.perf_counter() - started, 3)

    def _resolve(self, check: Check) -> Check:
        o = self.cfg.override(self.out.source, self.out.stream, check.id)
        return replace(
            check,
            severity=o.severity or check.severity,
            mostly=o.mostly if o.mostly is not None else check.mostly,
        )

    def _refs(self, checks: Sequence[Check]) -> dict[str, str]:
        """Per exists_in check: the keys of the referenced stream, landed now or in the warehouse."""
        refs, source = {}, self.out.source
        for n, c in enumerate(checks):
            if c.kind != "exists_in":
                continue
            ref_stream, ref_col = c.params["ref"]["stream"], c.params["ref"]["column"]
            self.con.register("_refland", self.out.landing.dataset(ref_stream).to_table(columns=[ref_col]))
            parts = [f"SELECT {q(ref_col)} AS k FROM _refland"]
            if self.attached and storage.has_table(
                self.con, f"raw.{source}__{ref_stream}", database="wh", views=False
            ):
                parts.append(f"SELECT {q(ref_col)} FROM wh.raw.{q(source + '__' + ref_stream)}")
            self.con.execute(f"CREATE OR REPLACE TEMP TABLE _ref{n} AS " + " UNION ".join(parts))
            self.con.unregister("_refland")
            refs[c.id] = f"_ref{n}"
        return refs

    def _row_results(self, checks: Sequence[Check], found: RowCheckOutcome) -> list[CheckResult]:
        if not self.out.rows:
            return [self._result(c, found, None, "none (no rows)") for c in checks]
        where = self.out.id
        if found.frame is not None:
            gx = _by_check(
                suites.validate(found.frame, [suites.expectation(c, self.ctx) for c in checks], where)
            )
            self._agree(checks, found, gx)
            engine = "gx (rows) + duckdb (keys)"
        else:
            frame, expectations = suites.aggregated(checks, found.counts)
            gx = _by_check(suites.validate(frame, expectations, where))
            engine = "duckdb (rows) + gx (counts)"
        return [self._result(c, found, gx[c.id], engine) for c in checks]

    def _agree(self, checks: Sequence[Check], found: RowCheckOutcome, gx: Mapping[str, dict]) -> None:
        """GX and DuckDB implement each check twice; a disagreement means a check is broken."""
        for c in checks:
            theirs, ours = gx[c.id]["result"].get("unexpected_count"), found.counts[c.id].unexpected_count
            if theirs != ours:
                raise QualityCheckBrokenError(
                    f"quality check {self.out.id}.{c.id} ({gx[c.id]['gx_type']}): GX counted {theirs} failing "
                    f"rows, the DuckDB pass {ours}; the two definitions disagree, so the check is broken, not "
                    "the data: fix it in schemas/ or warehouse/quality/rowchecks.py"
                )

    def _result(self, c: Check, found: RowCheckOutcome, gx: dict | None, engine: str) -> CheckResult:
        count = found.counts[c.id]
        observed: dict = (
            {"success_ratio": round(count.success_ratio, 4), "mostly": c.mostly} if c.mostly else {}
        )
        # a share of a handful of values is one row's verdict (1 bad phone of 3 is 67%): below min_rows it is
        # judged as if the rest of min_rows were good, so a few bad rows wait and a wholly bad batch does not
        floor = self.cfg.mostly_min_rows
        unjudged = (
            bool(c.mostly)
            and count.nonnull_count < floor
            and (floor - (count.unexpected_count or 0)) / floor >= c.mostly
        )
        if unjudged:
            observed.update(judged=False, min_rows=self.cfg.mostly_min_rows)
        if c.severity == "row" and count.unexpected_count:
            observed["quarantined"] = count.unexpected_count
        percent = (
            None if not count.nonnull_count else round(100 * count.unexpected_count / count.nonnull_count, 4)
        )
        return CheckResult(
            self.out.source,
            self.out.stream,
            c.id,
            c.kind,
            c.severity,
            gx["success"] if gx and not unjudged else True,
            column=",".join(c.columns),
            gx_type=gx["gx_type"] if gx else None,
            element_count=count.element_count,
            unexpected_count=count.unexpected_count,
            unexpected_percent=percent,
            observed=observed,
            sample_keys=found.samples.get(c.id, []),
            top_values=found.top_values.get(c.id, []),
            engine=engine,
        )

    def _volume(self) -> dict | None:
        out = self.out
        if not self.attached or self.table.volume == "none":
            return None
        if self.table.volume == "flow":
            read = int(out.landing.streams[out.stream]["read"])
            return tablechecks.flow(
                self.con,
                out.source,
                out.stream,
                self.ctx.as_of,
                read,
                self.ctx.now,
                read_from=out.landing.read_from,
            )
        deleted = out.landing.deleted()
        self.con.register("_deleted", deleted.filter(pc.equal(deleted["stream"], out.stream)))
        try:
            return tablechecks.population(
                self.con, out.source, out.stream, out.landing.run_id, LANDED, "_deleted"
            )
        finally:
            self.con.unregister("_deleted")

    def _roster(self, c: Check) -> pa.Table:
        return tablechecks.roster_totals(
            self.con,
            LANDED,
            self.out.stream,
            self.out.landing.state,
            self.out.landing.connector_quarantine(),
            self.folder,
            c.params["sums"],
            c.params.get("optional_sums", ()),
        )


def read_columns(checks: Sequence[Check]) -> list[str]:
    """The landed columns the checks of a stream read: their own, the record key (samples, quarantine,
    population) and, for roster totals, the file each row came from."""
    files = ("file_sha256", "source_file") if any(c.kind == ROSTER_KIND for c in checks) else ()
    return list(dict.fromkeys([RECORD_KEY, *files, *(x for c in checks for x in c.columns)]))


def _by_check(results: Sequence[dict]) -> dict[str, dict]:
    return {r["check"]: r for r in results}


# --------------------------------------------------------------------------- phase 3: streams as a whole


def _facts(cfg: QualityConfig, outcomes: Sequence[StreamOutcome]) -> None:
    """Quarantine share and volume of every validated stream, in one GX call."""
    done = [o for o in outcomes if o.results[0].success]
    if not done:
        return
    min_kept = round(1 - cfg.max_drop, 6)
    frame = {"stream_id": [], "quarantine_share": [], "kept_share": []}
    expectations = []
    for o in done:
        failing = o.failing.num_rows if o.failing is not None else 0
        frame["stream_id"].append(o.id)
        frame["quarantine_share"].append(failing / o.rows if failing > cfg.quarantine_min_rows else 0.0)
        frame["kept_share"].append(o.volume.get("kept_share") if o.volume else None)
        expectations.append(
            suites.between_expectation(
                "quarantine_share", "quarantine_share", 0.0, cfg.max_quarantine_share, stream_id=o.id
            )
        )
        if o.volume and "kept_share" in o.volume:
            expectations.append(suites.between_expectation("volume", "kept_share", min_kept, stream_id=o.id))
    gx = {(r["stream"], r["check"]): r for r in suites.validate(pa.table(frame), expectations, "streams")}
    for o in done:
        failing = o.failing.num_rows if o.failing is not None else 0
        share = gx[o.id, "quarantine_share"]
        o.add_result(
            "quarantine_share",
            "quarantine_share",
            _severity(cfg, o, "quarantine_share"),
            share["success"],
            gx_type=share["gx_type"],
            element_count=o.rows,
            unexpected_count=failing,
            observed={
                "share": round(failing / o.rows, 4) if o.rows else 0.0,
                "max_share": cfg.max_quarantine_share,
                "min_rows": cfg.quarantine_min_rows,
            },
        )
        kind, severity = f"volume:{o.table.volume}", _severity(cfg, o, "volume")
        if o.volume is None or "kept_share" not in o.volume:  # no baseline, or none that applies
            o.add_result(
                "volume",
                kind,
                severity,
                True,
                observed=o.volume or {"baseline": "none yet"},
                engine="none (no baseline)",
            )
        else:
            volume = gx[o.id, "volume"]
            o.add_result(
                "volume",
                kind,
                severity,
                volume["success"],
                gx_type=volume["gx_type"],
                observed={**o.volume, "min_kept_share": min_kept},
            )


def _rosters(outcomes: Sequence[StreamOutcome]) -> None:
    """Every roster file's row count and totals, in one GX call."""
    pieces, expectations, plan = [], [], []
    for o in outcomes:
        for check, frame in o.rosters:
            summed = [*check.params["sums"], *check.params.get("optional_sums", ())]
            pairs = [("rows", "rows_accounted", "rows_in_file")]
            pairs += [(f"sum:{col}", f"sum_landed_{n}", f"sum_stated_{n}") for n, col in enumerate(summed)]
            sid = f"{o.id}.{check.id}"
            pieces.append(frame.append_column("stream_id", pa.array([sid] * frame.num_rows, pa.string())))
            expectations += [
                suites.pair_equal_expectation(check.id, a, b, part, stream_id=sid) for part, a, b in pairs
            ]
            plan.append((o, check, frame, sid, pairs))
    if not plan:
        return
    combined = pa.concat_tables(pieces, promote_options="default")
    gx = {(r["stream"], r["part"]): r for r in suites.validate(combined, expectations, "rosters")}
    for o, check, frame, sid, pairs in plan:
        rows = frame.to_pylist()
        for part, a, b in pairs:
            compared = [r for r in rows if r[a] is not None and r[b] is not None]
            wrong = [{"file": r["file"], a: r[a], b: r[b]} for r in compared if r[a] != r[b]]
            o.add_result(
                f"{check.id}.{part}",
                check.kind,
                check.severity,
                gx[sid, part]["success"],
                column=part.partition(":")[2] or None,
                gx_type=gx[sid, part]["gx_type"],
                element_count=len(rows),
                unexpected_count=len(wrong),
                observed={"files": len(rows), "files_compared": len(compared), "mismatched": wrong},
            )


def _source_files(cfg: QualityConfig, outcomes: Sequence[StreamOutcome]) -> None:
    """For a file-based source (its manifest lists files): a warning when a file of the stream was
    refused (the month keeps an older version, or has none: its reports are wrong for what the file
    changed) and when a landed file has columns the SPEC does not name (read from the connector's
    outcomes, so the names and reasons only, never a cell)."""
    for o in outcomes:
        files = [f for f in o.landing.manifest.get("files") or () if f.get("stream") == o.stream]
        if not files:
            continue
        refused = [{"file": f["file"], "reason": f["reason"]} for f in files if f["outcome"] == "refused"]
        kept = [f["file"] for f in files if f["outcome"] == "kept"]
        names = {f["file"] for f in files}
        unknown = {k: v for k, v in (o.landing.state.get("unknown_columns") or {}).items() if k in names}
        found = {  # counts of files, not rows: in ``observed``, so no message says "rows failed"
            "source_files_read": {"files": len(files), "refused": refused, "kept_instead": kept},
            "unknown_columns": {"files": len(files), "not_read": unknown},
        }
        for check, observed in found.items():
            failed = observed.get("refused") or observed.get("not_read")
            severity = _severity(cfg, o, check, "warning")
            o.add_result(check, "source_files", severity, not failed, observed=observed, engine="manifest")
