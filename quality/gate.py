"""The quality gate: validate a run's landed data before it is loaded, and stop bad data loudly.

For each source and stream of the run, on the Parquet in the landing zone (the warehouse is only read):

1. **columns** — the landed columns against the table definition (schema drift is critical);
2. **rows** — every row-level check in one DuckDB pass (``rowchecks``), then the same suite in GX
   (``suites``) on the same frame; the two counts must agree, or the check is broken;
3. **the stream as a whole** — its volume against earlier runs, the share it would quarantine, and for
   rosters their totals (``tablechecks``), each decided by a GX expectation on a small frame.

A failed ``critical`` check raises ``QualityGateError`` (source, expectation, observed value) after the
report is written; nothing else is touched, so the warehouse stays byte-for-byte as it was (the
pipeline's validate step then notes the stop, `record_stop`). Otherwise
rows failing ``row`` checks are sealed into ``meta.quality_quarantine``, the summary goes to
``meta.quality_results``, and the landing slice is rewritten without those rows (``slices``), so the
unchanged loader books them as quarantined. ``warning`` failures are recorded and reported.

Example (what the pipeline runs between extract and load)::

    gate = validate_run(settings, run_id, as_of, sources, quality_config=raw_config.get("quality"))
    load(settings, as_of, sources)           # loads only the rows that passed
    gate.report_path                         # <warehouse dir>/reports/<run_id>/quality.html
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import pyarrow as pa

from islandbridge.config import Settings
from islandbridge.errors import count, noun
from islandbridge.landing import raw
from islandbridge.landing.zone import RECORD_KEY, path_exists
from islandbridge.logs import quiet_third_party
from islandbridge.privacy.keys import KeyRing
from islandbridge.quality import quarantine, report
from islandbridge.quality.config import QualityConfig
from islandbridge.quality.errors import QualityConfigError, QualityGateError
from islandbridge.quality.results import COMMAND_LINE, CheckResult, GateResult, Redo
from islandbridge.quality.rowchecks import CheckContext
from islandbridge.quality.slices import QUALITY_DIR, LandingSlice
from islandbridge.quality.validation import StreamOutcome, validate_streams
from islandbridge.schemas import IMPLICIT_CHECKS, Tables, load_tables

log = logging.getLogger(__name__)

Clock = Callable[[], dt.datetime]


def utc_now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def validate_run(
    settings: Settings,
    run_id: str,
    as_of: dt.datetime,
    sources: Sequence[str],
    quality_config: Mapping | None = None,
    *,
    keyring: KeyRing | None = None,
    tables: Tables | None = None,
    clock: Clock = utc_now,
    redo: Redo = COMMAND_LINE,
) -> GateResult:
    """Validate the landed data of ``sources`` for ``run_id``; quarantine failing rows; return the result.

    ``quality_config`` is the configuration's ``quality:`` mapping (see ``config``); ``keyring`` defaults
    to ``keys.quarantine`` from the settings, needed only when rows must be quarantined. ``redo``: how
    the caller runs the day again, for a stop's advice (`gate_message`).
    Raises ``QualityGateError`` (a critical expectation failed; nothing changed),
    ``QualityCheckBrokenError`` (an expectation raised), ``QualityConfigError``, ``raw.LoadError``.
    """
    quiet_third_party()
    cfg = QualityConfig.from_mapping(quality_config)
    tables = load_tables() if tables is None else tables
    kinds = {s: settings.source(s).kind for s in sources}
    _check_overrides(cfg, {name: src.kind for name, src in settings.sources.items()}, tables)
    started, now = time.perf_counter(), clock()
    outcomes = validate_streams(settings, cfg, run_id, CheckContext(as_of, now=now), kinds, tables)
    results = [r for o in outcomes for r in o.results]
    gate = GateResult(run_id, as_of.isoformat(), not any(r.is_critical_failure for r in results), results)
    gate.quarantined = _nested(outcomes, lambda f: f.num_rows)
    gate.excluded_keys = _nested(outcomes, lambda f: f[RECORD_KEY].to_pylist())
    gate.connector_quarantined = _set_aside_by_connectors(outcomes)
    gate.labels = {o.id: o.table.title for o in outcomes if o.table is not None and o.table.label}
    gate.timings["validate_s"] = round(time.perf_counter() - started, 3)
    gate.timings.update({f"stream:{o.id}": o.seconds for o in outcomes})
    gate.report_path, gate.summary_path = report.write(
        gate, cfg.reports_root(settings.warehouse_path) / run_id, now
    )
    for warning in gate.warnings:
        log.warning("quality warning: %s", warning.describe())
    if not gate.passed:  # said once, by whoever reports the error (the command line, the task's log)
        raise QualityGateError(gate_message(gate, redo), gate)
    _commit(settings, cfg, gate, outcomes, list(kinds), keyring, clock)
    gate.timings["total_s"] = round(time.perf_counter() - started, 3)
    log.debug(
        "quality gate passed run %s: %s, %s, quarantined %s; report %s",
        run_id,
        count(len(results), "expectation"),
        count(len(gate.warnings), "warning"),
        gate.quarantined,
        gate.report_path,
    )
    return gate


STOPS_DDL = """
CREATE SCHEMA IF NOT EXISTS meta;
CREATE TABLE IF NOT EXISTS meta.gate_stops (
    run_id VARCHAR PRIMARY KEY, as_of TIMESTAMPTZ, stopped_at TIMESTAMPTZ, failed_checks VARCHAR[],
    report VARCHAR
);
"""


def record_stop(settings: Settings, gate: GateResult, as_of: dt.datetime, at: dt.datetime) -> None:
    """Note in ``meta.gate_stops`` that the gate stopped ``gate``'s run (nothing else is written): the
    names of its failed checks and its report's path, for ``islandbridge runs``. A later stop of the same
    run replaces the note; a later load of it leaves the note as history."""
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    with raw.open_warehouse(settings) as con:
        con.execute(STOPS_DDL)
        con.execute(
            "INSERT OR REPLACE INTO meta.gate_stops VALUES (?, ?, ?, ?, ?)",
            [
                gate.run_id,
                as_of,
                at,
                [r.name for r in gate.critical_failures],
                _beside(settings, gate.report_path),
            ],
        )


def _beside(settings: Settings, report: Path | None) -> str:
    """``report`` relative to the warehouse's folder when it lies in it (the default), so a copied, moved or
    restored warehouse names its own; `islandbridge runs` joins it to the folder it opened."""
    home = settings.warehouse_path.parent
    return report.relative_to(home).as_posix() if report and report.is_relative_to(home) else str(report)


def gate_message(gate: GateResult, redo: Redo = COMMAND_LINE) -> str:
    """The stop's message: each critical failure (a stopped quarantine share with the row checks whose
    rows it counts), the kept report, and what to do — ``redo`` says how the caller runs the day again."""
    lines = "\n  - ".join(_described(gate, r) for r in gate.critical_failures)
    ahead = max((r.observed.get("as_of_ahead_h", 0) for r in gate.critical_failures), default=0)
    sources = ", ".join(dict.fromkeys(r.source for r in gate.critical_failures))
    advice = (
        f"The run's as-of lies {ahead} h ahead of the clock: its day has not ended, and its volume was "
        "measured over the hours up to now; sync a day that has ended, or this one once it has."
        if ahead
        else f"Fix the source and {redo.extract.format(sources=sources)}; if the change is expected, make "
        f"the check a warning in the configuration, `{warning_override(gate.critical_failures)}` (its "
        "checks: entries go under the quality: section if there is one: a key given twice is refused), and "
        f"{redo.validate.format(sources=sources)}."
    )
    return (
        f"quality gate stopped run {gate.run_id}: {count(len(gate.critical_failures), 'critical failure')}, "
        f"nothing was loaded:\n  - {lines}\nReport (what each check found): {gate.report_path}; "
        f"`islandbridge runs` lists the stop. {advice}"
    )


def _described(gate: GateResult, failure: CheckResult) -> str:
    """A failure's line; a quarantine share names the row checks behind it, most rows first (e.g.
    ``sex_known on 性别: 41 rows``): the share alone does not say what to fix."""
    if failure.check != "quarantine_share":
        return failure.describe()
    behind = sorted(
        (
            r
            for r in gate.results
            if (r.source, r.stream) == (failure.source, failure.stream) and r.observed.get("quarantined")
        ),
        key=lambda r: -r.observed["quarantined"],
    )
    rows = ", ".join(f"{r.check} on {r.column}: {count(r.observed['quarantined'], 'row')}" for r in behind)
    return failure.describe() + (f"; quarantined by {rows}" if rows else "")


def warning_override(failures: Sequence[CheckResult]) -> str:
    """The ``quality:`` YAML (flow style, as `QualityConfig` reads it) that makes ``failures`` warnings,
    e.g. ``quality: {checks: {iot.events.volume: {severity: warning}}}``."""
    ids = (
        f"{r.source}.{r.stream}.{r.check.partition('.')[0]}" for r in failures
    )  # roster_totals.rows: one id
    checks = ", ".join(f"{name}: {{severity: warning}}" for name in dict.fromkeys(ids))
    return f"quality: {{checks: {{{checks}}}}}"


# --------------------------------------------------------------------------- committing a passed run


def _commit(
    settings: Settings,
    cfg: QualityConfig,
    gate: GateResult,
    outcomes: Sequence[StreamOutcome],
    sources: Sequence[str],
    keyring: KeyRing | None,
    clock: Clock,
) -> None:
    """Seal the quarantined rows, record results and quarantine in the warehouse, then rewrite landing."""
    failing = [o for o in outcomes if o.failing is not None and o.failing.num_rows]
    ring = keyring or (quarantine.keyring(settings, cfg.quarantine_key) if failing else None)
    sealed = [
        quarantine.seal(ring, gate.run_id, o.source, o.stream, o.failing, o.table.column_names)
        for o in failing
    ]
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    with raw.open_warehouse(settings) as con:
        con.execute(STOPS_DDL)  # empty until a stop, but there to query (`SELECT … FROM meta.gate_stops`)
        quarantine.record(con, gate.run_id, sources, results_table(gate), sealed, clock())
    for source in sources:
        keys = {o.stream: o.failing[RECORD_KEY] for o in failing if o.source == source}
        landing = LandingSlice.open(settings.landing_url, gate.run_id, source)
        if keys or _was_gated(landing):
            landing.apply(keys)


def _was_gated(landing: LandingSlice) -> bool:
    return path_exists(landing.fs, f"{landing.base}/{QUALITY_DIR}")


def results_table(gate: GateResult) -> pa.Table:
    """The rows of ``meta.quality_results`` (without ``validated_at``): numbers and names only."""
    rows = [
        {
            "run_id": gate.run_id,
            "source": r.source,
            "stream": r.stream,
            "expectation": r.check,
            "kind": r.kind,
            "gx_type": r.gx_type,
            "column_name": r.column,
            "severity": r.severity,
            "success": r.success,
            "element_count": r.element_count,
            "unexpected_count": r.unexpected_count,
            "observed_json": json.dumps(
                {**r.observed, **({"top_values": r.top_values} if r.top_values else {})},
                ensure_ascii=False,
                sort_keys=True,
                default=str,
            ),
            "engine": r.engine,
        }
        for r in gate.results
    ]
    schema = pa.schema(
        [
            (n, pa.string())
            for n in (
                "run_id",
                "source",
                "stream",
                "expectation",
                "kind",
                "gx_type",
                "column_name",
                "severity",
            )
        ]
        + [
            ("success", pa.bool_()),
            ("element_count", pa.int64()),
            ("unexpected_count", pa.int64()),
            ("observed_json", pa.string()),
            ("engine", pa.string()),
        ]
    )
    return pa.Table.from_pylist(rows, schema)


def _nested(outcomes: Sequence[StreamOutcome], value: Callable[[pa.Table], object]) -> dict:
    out: dict[str, dict] = {}
    for o in outcomes:
        if o.failing is not None and o.failing.num_rows:
            out.setdefault(o.source, {})[o.stream] = value(o.failing)
    return out


def _set_aside_by_connectors(outcomes: Sequence[StreamOutcome]) -> dict[str, dict[str, int]]:
    """Records each connector quarantined while extracting, per stream, as its landing manifest counts."""
    out: dict[str, dict[str, int]] = {}
    for o in outcomes:
        n = int(o.landing.streams.get(o.stream, {}).get("quarantined") or 0)
        if n:
            out.setdefault(o.source, {})[o.stream] = n
    return out


def _check_overrides(cfg: QualityConfig, kinds: Mapping[str, str], tables: Tables) -> None:
    problems = []
    for name in cfg.checks:
        source, stream, check = name.split(".")
        table = tables.get((kinds.get(source, ""), stream))
        if table is None:
            problems.append(
                f"quality.checks.{name}: no configured source {source!r} with a stream {stream!r}"
            )
        elif check not in IMPLICIT_CHECKS and check not in {c.id for c in table.suite}:
            known = ", ".join([*IMPLICIT_CHECKS, *(c.id for c in table.suite)])
            problems.append(
                f"quality.checks.{name}: {source}.{stream} has no check {check!r}; known: {known}"
            )
    if problems:
        raise QualityConfigError(
            f"quality configuration {noun(len(problems), 'problem')}:\n  - " + "\n  - ".join(problems)
        )
