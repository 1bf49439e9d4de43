"""The step functions of a run, one per DAG task: plan, extract, validate, load, reconcile, build,
export, publish (and prune, which publish runs).

Each takes the resolved ``Settings``, the run's as-of and plain values, and returns a small JSON-able
dict of paths and counts. `islandbridge.pipeline.run` sequences them for the command line; the DAG calls
them one task each.
"""

from __future__ import annotations

import datetime as dt
import logging
import posixpath
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import Any

from islandbridge import storage
from islandbridge.config import Clock, Settings, utc_now
from islandbridge.connectors import ExtractContext, build_connector
from islandbridge.delivery import retention
from islandbridge.delivery.export import export_keys, export_run
from islandbridge.delivery.policy import load_policies
from islandbridge.delivery.run_report import write_run_report
from islandbridge.delivery.snapshot import current_run, publish_snapshot
from islandbridge.errors import count, one_line
from islandbridge.identity.reconcile import reconcile as run_reconcile
from islandbridge.identity.review import COMMAND as REVIEW_COMMAND
from islandbridge.landing import raw, raw_parts
from islandbridge.landing.zone import COUNT_FIELDS, LandingWriter, open_root, remove_abandoned
from islandbridge.logs import progress, timed
from islandbridge.pipeline import notices
from islandbridge.privacy.audit import record_anchor
from islandbridge.privacy.configured import open_vault, quarantine_keyring
from islandbridge.privacy.scrub import Scrubber
from islandbridge.privacy.sealing import KNOWN_NAMES, LoadPrivacy, landed_names, stream_privacy
from islandbridge.privacy.vault import Vault
from islandbridge.quality import QualityGateError, Redo, validate_run
from islandbridge.quality.config import QualityConfig
from islandbridge.quality.gate import record_stop
from islandbridge.quality.results import COMMAND_LINE
from islandbridge.warehouse.core import build_core, require_identities_of
from islandbridge.warehouse.device_events import EventStore
from islandbridge.warehouse.marts import build_marts, require_marts_of
from islandbridge.warehouse.retention import check_window

log = logging.getLogger(__name__)

#: How many sources `sync` extracts at once: the DAG's ``max_active_tis_per_dagrun`` of its extract task.
EXTRACT_THREADS = 4


def plan(settings: Settings) -> list[str]:
    """The names of the sources a run syncs, in configuration order."""
    return list(settings.sources)


def plan_run(settings: Settings, as_of: dt.datetime | None = None, clock: Clock = utc_now) -> list[str]:
    """The sources of a whole run (`plan`), once the keys its later steps need are configured and readable:
    ``person_key``, the vault's and each department's its policy needs. A missing or misspelt one then
    fails the run's first step (the DAG's plan_sources), not its export after the extract and load.
    Raises ``KeyringError`` naming each key. With ``as_of``, warns when the run's day has not ended yet
    (`warn_when_ahead`: a manual trigger's ``as_of`` of today)."""
    export_keys(settings, load_policies())
    if as_of is not None:
        notices.warn_when_ahead(as_of, clock)
    return plan(settings)


def extract(settings: Settings, source: str, as_of: dt.datetime) -> dict[str, Any]:
    """Extract one source for the run ending at ``as_of`` into the landing zone.

    Raises the connector's ``RetriableError`` / ``FatalSourceError`` with what went wrong; nothing in the
    warehouse changes, so the task can simply be retried. The half-written slice is deleted first.
    """
    _check_window(settings, as_of)
    return _extract_from(settings, source, as_of, *_resume_point(settings, source, as_of))


def extract_sources(
    settings: Settings, sources: Sequence[str], as_of: dt.datetime, *, threads: int = EXTRACT_THREADS
) -> list[dict[str, Any]]:
    """Extract ``sources`` for the run ending at ``as_of``, up to ``threads`` at once, as the DAG runs its
    mapped extract tasks; returns each one's `extract` result, in ``sources`` order.

    Each extraction has its own connector (HTTP client, database engine), landing writer and dedupe
    DuckDB; the states they start from are read from the warehouse here first, one after another. Every
    extraction runs to its end: a failed one is discarded (as `extract` does), the others stay landed, as
    when one mapped task of the DAG fails. Then each failure is logged with its source, and the first in
    ``sources`` order is raised (its type unchanged, so the exit status is the source's), noting its source.
    """
    _check_window(settings, as_of)
    for name in sources:  # a misspelt --source fails here, before any other source is extracted
        settings.source(name)
    states = {name: _resume_point(settings, name, as_of) for name in sources}
    workers = max(1, min(threads, len(sources)))
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="ib-extract") as pool:
        running = {name: pool.submit(_extract_from, settings, name, as_of, *states[name]) for name in sources}
        for _ in progress(as_completed(running.values()), desc="extract", total=len(running)):
            pass
    failed = [(name, future.exception()) for name, future in running.items() if future.exception()]
    for name, exc in failed:
        log.error("extract %s failed: %s: %s", name, type(exc).__name__, one_line(exc))
    if failed:
        name, exc = failed[0]
        landed = ", ".join(n for n in sources if not running[n].exception())
        exc.add_note(
            f"while extracting source {name!r}, whose slice was discarded"
            + (f"; extracted but not loaded: {landed}" if landed else "")
        )
        raise exc
    return [running[name].result() for name in sources]


def _extract_from(
    settings: Settings, source: str, as_of: dt.datetime, state: dict[str, Any], read_from: dt.datetime | None
) -> dict[str, Any]:
    """`extract` from the committed ``state`` already read (committed as of ``read_from``)."""
    connector = build_connector(settings.source(source))
    run_id = raw.run_id_for(as_of)
    writer = LandingWriter.open(
        settings.landing_url, run_id, source, connector.streams(), resources=settings.duckdb
    )
    log.debug("extracting %s for run %s (as of %s)", connector.describe(), run_id, as_of.isoformat())
    with timed("extract", source, log) as step:
        try:
            new_state = connector.extract(
                ExtractContext(run_id=run_id, as_of=as_of, state=state, sink=writer)
            )
            manifest = writer.close(new_state, read_from)
        except BaseException:
            writer.discard()  # half an extraction, identifiers in clear, never loadable: not left on disk
            raise
        counts = {s: {k: c[k] for k in COUNT_FIELDS} for s, c in manifest["streams"].items()}
        step.rows = sum(c["landed"] for c in counts.values())
        step.details["streams"] = len(counts)
    return {"source": source, "run_id": run_id, "landing": writer.base, "counts": counts}


def validate(
    settings: Settings,
    as_of: dt.datetime,
    sources: Sequence[str],
    clock: Clock = utc_now,
    *,
    redo: Redo = COMMAND_LINE,
) -> dict[str, Any]:
    """Run the quality gate over the landed sources of the run ending at ``as_of`` (an as-of ahead of
    ``clock``: an event log's volume is measured up to it). ``redo``: how the caller runs the day again,
    for a stop's advice (the DAG: which task to clear).

    Raises ``QualityGateError`` (critical failure: nothing was loaded, the stop is noted in
    ``meta.gate_stops``, `quality.gate.record_stop`) or ``QualityCheckBrokenError``
    (a check itself failed). Returns the gate's summary: counts, warnings and the report's path.
    """
    with timed("validate", ", ".join(sources), log) as step:
        try:
            gate = validate_run(
                settings,
                raw.run_id_for(as_of),
                as_of,
                list(sources),
                settings.quality,
                clock=clock,
                redo=redo,
            )
        except QualityGateError as stopped:  # nothing loaded; `islandbridge runs` lists the stop
            try:
                record_stop(settings, stopped.result, as_of, clock())
            except Exception as exc:  # noqa: BLE001 - the note must not hide the stop (e.g. a locked file)
                log.warning(
                    "the quality gate's stop could not be noted for `islandbridge runs`: %s", one_line(exc)
                )
            raise
        step.details.update(
            expectations=len(gate.results),
            warnings=len(gate.warnings),
            quarantined=sum(n for streams in gate.quarantined.values() for n in streams.values()),
        )
    return gate.to_dict()


def load(
    settings: Settings, as_of: dt.datetime, sources: Sequence[str], clock: Clock = utc_now
) -> dict[str, Any]:
    """Commit every extracted source of the run into the warehouse; returns the run's accounting.

    Rows are pseudonymised on the way in: direct identifiers are sealed in the vault, free text is
    scrubbed, connector quarantine is sealed (`islandbridge.privacy.sealing`). Each source's landed
    extract is deleted once its load has committed, and so are the slices earlier runs left behind (an
    extraction that failed, a run the quality gate stopped). Then the rows runs quarantined only for a
    missing reference are re-checked, not loaded: ``references_ready`` counts those that now find it.
    """
    run_id = raw.run_id_for(as_of)
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    quarantine_ring = quarantine_keyring(settings)
    # Every extract must be complete (else LoadError) before the vault or the warehouse is touched
    manifests = raw.read_manifests(settings.landing_url, run_id, sources)
    # the warehouse before the vault, as reconcile, review and explain take them: a load waiting for one
    # while holding the other would stall against them until the vault's wait ran out
    with timed("load", ", ".join(sources), log) as step, raw.open_warehouse(settings) as con:
        with open_vault(settings) as vault:
            privacy = LoadPrivacy(
                vault,
                quarantine_ring,
                {s: settings.source(s).kind for s in sources},
                Scrubber(_known_names(settings, vault, run_id, manifests)),
            )
            raw.begin_run(con, run_id, as_of, list(sources), clock())
            raw.scrub_legacy(con, quarantine_ring, privacy.kinds)  # once a load, not once a source
            for source in progress(sources, desc="load"):
                raw.load_source(
                    con,
                    settings.landing_url,
                    run_id,
                    source,
                    as_of,
                    clock(),
                    privacy,
                    clean_landing=True,
                    parts_root=raw_parts_dir(settings),
                    manifest=manifests[source],
                )
            raw.finish_run(con, run_id, "loaded", clock())
            summary = dict(raw.run_summary(con, run_id))
        step.rows = sum(c["landed"] or 0 for c in summary.values())
        step.details["quarantined"] = sum(c["quarantined"] or 0 for c in summary.values())
        step.details["duplicates"] = sum(c["duplicates"] or 0 for c in summary.values())
    abandoned = remove_abandoned(settings.landing_url, run_id)
    if abandoned:
        log.info(
            "removed %s of earlier runs: %s", count(len(abandoned), "abandoned landing slice"), abandoned
        )
    found = notices.warn_references_ready(settings, sources, clock)
    return {
        "run_id": run_id,
        "as_of": as_of.isoformat(),
        "warehouse": str(settings.warehouse_path),
        "sources": summary,
    } | ({"references_ready": found} if found else {})


def events_dir(settings: Settings):
    """Where the device events live as Parquet, partitioned by day (exposed as ``core.device_events``)."""
    return settings.warehouse_path.parent / "events"


def raw_parts_dir(settings: Settings):
    """Where event logs' raw slices live as Parquet parts (the view ``raw.<iot>__events``)."""
    return settings.warehouse_path.parent / "raw"


def repoint(settings: Settings, *, lost_ok: bool = False, wait: bool = False) -> bool:
    """Point the warehouse's views over Parquet (``raw.<iot>__events``, ``core.device_events``) at the files
    beside it when it was copied, moved or restored and they still name the original's; whether they were.
    Only then is the warehouse opened for writing, and that connection does nothing else: no table is
    created or upgraded (`storage.connect`, not `raw.connect`), only the views are re-created
    (`raw_parts.rebase`, `EventStore.rebase`); a warehouse written by an earlier version also has the
    absolute paths of its raw parts made relative (as any step's first open does). Raises
    `EventFilesError` naming a day file that is not there (``lost_ok``: the view leaves it out, with a
    warning), and `duckdb.IOException` when another process holds the warehouse (a sync running; a step
    passes ``wait`` to wait for it, as `raw.open_warehouse` writing does)."""
    if not settings.warehouse_path.is_file():
        return False
    store = EventStore(events_dir(settings))
    with raw.open_warehouse(settings, read_only=True) as con:
        if not raw_parts.views_elsewhere(con, raw_parts_dir(settings)) and not store.view_elsewhere(con):
            return False
    wait_s = settings.warehouse_lock_wait_s if wait else 0.0
    with storage.connect(str(settings.warehouse_path), resources=settings.duckdb, lock_wait_s=wait_s) as con:
        raw_parts.rebase(con, raw_parts_dir(settings))
        store.rebase(con, lost_ok=lost_ok)
    log.info("the warehouse's views over Parquet now read the files beside %s", settings.warehouse_path)
    return True


def build(settings: Settings, as_of: dt.datetime, *, full: bool = False) -> dict[str, Any]:
    """Refresh the core model and the department marts for ``as_of``; returns row counts.

    ``full`` rebuilds the residency history from every version instead of the changed keys (the same
    table: docs/warehouse.md, "Daily builds"). Refuses (`CoreBuildError`) unless the identity map is the
    run's own (`require_identities_of`): a past day after later reconciled days is re-run by `sync`."""
    run_id = raw.run_id_for(as_of)
    _check_window(settings, as_of)
    with timed("build", "core model and marts", log) as step:
        with raw.open_warehouse(settings) as con:
            require_identities_of(con, run_id, as_of)
            core = build_core(con, as_of, run_id, events_dir(settings), full=full)
            marts = build_marts(con, as_of, run_id, settings.reports)
        step.details.update({"core tables": len(core), "report rows": sum(marts.values())})
    return {"run_id": run_id, "core": core, "marts": marts}


def export(settings: Settings, as_of: dt.datetime, clock: Clock = utc_now) -> dict[str, Any]:
    """Write every department's exports for ``as_of`` as its policy allows; returns paths and counts.

    Then the audit log's length and head are recorded in ``meta.audit_anchors`` for the run, so that
    entries cut off the log later are noticed (`islandbridge audit verify`, the next export or reveal)."""
    run_id = raw.run_id_for(as_of)
    with timed("export", "department reports", log) as step:
        with raw.open_warehouse(settings, read_only=True) as con:
            result = export_run(settings, con, as_of, run_id, clock=clock)
        step.details["departments"] = len(result.get("departments", result))
    with raw.open_warehouse(settings) as con:
        record_anchor(con, result["audit_length"], result["audit_head"], "export", clock(), run_id)
    return result


def publish(
    settings: Settings,
    as_of: dt.datetime,
    clock: Clock = utc_now,
    *,
    warn_later: bool = True,
    later: Sequence[dt.datetime] | None = None,
) -> dict[str, Any]:
    """Apply retention (unless ``retention.after_each_run`` is false), publish the analysts' read-only
    snapshot and write the run report; returns their paths, the run the analysts' ``current`` snapshot
    holds (a later one when ``as_of`` is a day before later loaded days) and what retention removed.
    With ``warn_later``, a day before later loaded days says so (`warn_earlier_day`); ``later``: those
    days when the caller has read them (`later_days`), else they are read here."""
    run_id = raw.run_id_for(as_of)
    _require_marts_of(settings, run_id, as_of)
    repoint(settings, wait=True)  # a snapshot copies the events its view reads: those beside this warehouse
    pruned = prune(settings, apply=True, clock=clock) if settings.retention.after_each_run else None
    with timed("publish", "snapshot and run report", log):
        snapshot = publish_snapshot(
            settings.warehouse_path,
            settings.snapshots_dir,
            run_id,
            settings.snapshots_keep,
            events_dir(settings),
            resources=settings.duckdb,
        )
        reports = QualityConfig.from_mapping(settings.quality).reports_root(settings.warehouse_path)
        kinds = {name: source.kind for name, source in settings.sources.items()}
        report = write_run_report(
            settings.warehouse_path, run_id, reports, settings.exports_dir, kinds, resources=settings.duckdb
        )
    result = {
        "run_id": run_id,
        "snapshot": str(snapshot),
        "current": current_run(settings.snapshots_dir),
        "report": str(report),
    }
    if warn_later:
        later = notices.later_days(settings, as_of) if later is None else later
        if later:
            notices.warn_earlier_day(settings, as_of, later)
    return result | ({"retention": pruned["removed"]} if pruned else {})


def _require_marts_of(settings: Settings, run_id: str, as_of: dt.datetime) -> None:
    """Refuse to publish ``run_id``'s snapshot from marts built for another run: analysts would read
    another day's reports under this run's id and as-of (``meta.snapshot_info``). Raises ``MartBuildError``."""
    if not settings.warehouse_path.exists():
        return  # publish_snapshot says there is no warehouse
    with raw.open_warehouse(settings, read_only=True) as con:
        require_marts_of(con, run_id, as_of, "publish", unbuilt_ok=True)


def prune(settings: Settings, *, apply: bool = False, clock: Clock = utc_now) -> dict[str, Any]:
    """What retention removes (``apply``) or would remove: the window and counts per item
    (`islandbridge.delivery.retention.prune`). Runs at the end of every run, and as ``islandbridge prune``."""
    with timed("prune", "retention", log) as step:
        result = retention.prune(settings, apply=apply, now=clock())
        step.rows, step.unit = sum(result["removed"].values()), "removed" if apply else "to remove"
        step.details.update({item: n for item, n in result["removed"].items() if n})
    return result


def _check_window(settings: Settings, as_of: dt.datetime) -> None:
    """Refuse (`RetentionError`) a run as of a day retention compacted away."""
    if not settings.warehouse_path.exists():
        return
    with raw.open_warehouse(settings, read_only=True) as con:
        check_window(con, as_of)


def reconcile(
    settings: Settings, as_of: dt.datetime, clock: Clock = utc_now, *, full: bool = False
) -> dict[str, Any]:
    """Reconcile identities over the loaded warehouse as of ``as_of``; returns counts only. ``full``
    normalises every record again (`identity.reuse`)."""
    _check_window(settings, as_of)
    with timed("reconcile", "identities", log) as step:
        result = run_reconcile(settings, as_of, clock, full=full)
        step.rows, step.unit = result.get("records"), "records"
        step.details.update(
            {
                "persons": result.get("persons", 0),
                f"pairs for review (`{REVIEW_COMMAND}`)": result.get("reviews", 0),
            }
        )
        unkept = len(result.get("decisions", {}).get("conflicts", ()))
        if unkept:
            step.details["review decisions not honoured"] = unkept
    return result


def _known_names(
    settings: Settings, vault: Vault, run_id: str, manifests: Mapping[str, Mapping[str, Any]]
) -> list[str]:
    """Every person name seen so far (sealed in the vault) plus this run's, for scrubbing free text;
    ``manifests``: each source's landing manifest (`raw.read_manifests`)."""
    fs, root = open_root(settings.landing_url)
    names = set(vault.sealed_list(KNOWN_NAMES))
    before = len(names)
    for source, manifest in manifests.items():
        base = posixpath.join(root, run_id, source)
        for stream, info in manifest["streams"].items():
            spec = stream_privacy(settings.source(source).kind, stream, info["columns"])
            if spec.name_columns and info.get("landed"):
                data = raw.landed_dataset(fs, posixpath.join(base, stream))
                names |= landed_names(data.to_batches(columns=list(spec.name_columns)), spec)
    if len(names) != before:
        vault.put_sealed_list(KNOWN_NAMES, names)
    log.debug("scrubbing free text for %d known person names", len(names))
    return sorted(names)


def _resume_point(
    settings: Settings, source: str, as_of: dt.datetime
) -> tuple[dict[str, Any], dt.datetime | None]:
    if not settings.warehouse_path.exists():
        return {}, None
    with raw.open_warehouse(settings, read_only=True, wait=True) as con:  # a step: waits as writers do
        return raw.resume_point(con, source, as_of)
