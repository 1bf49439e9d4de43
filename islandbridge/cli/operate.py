"""Operating the warehouse between and after runs: runs, quarantine, linkage model, reveal, keys,
snapshots, the audit log's verification and read-only SQL."""

from __future__ import annotations

import getpass
import sys
from pathlib import Path

import duckdb

from islandbridge import pipeline, storage
from islandbridge.cli.common import (
    AS_OF_HELP,
    at_least,
    command,
    given_config,
    group,
    local_time,
    print_json,
    settings_of,
)
from islandbridge.config import parse_as_of
from islandbridge.delivery.audit_check import verify_audit
from islandbridge.delivery.reveal import reveal
from islandbridge.delivery.run_steps import LOADING, describe_steps, run_steps, unfinished_load
from islandbridge.delivery.snapshot import list_snapshots, rollback
from islandbridge.errors import ConfigError
from islandbridge.identity import reuse, scoring
from islandbridge.identity.reconcile import train_linkage
from islandbridge.landing import raw
from islandbridge.privacy import keyops
from islandbridge.privacy.keys import VAULT
from islandbridge.privacy.masking import mask_typed
from islandbridge.quality.commands import format_entries, quarantine_list, quarantine_replay, quarantine_show
from islandbridge.quality.quarantine import CONNECTOR


def register(sub, after_quarantine=()) -> None:
    """The operator's commands; ``after_quarantine`` registers further groups in flow order (``review``)."""
    s = command(
        sub,
        "runs",
        _runs,
        "list recent runs, which of their steps are done, and their accounting (read, landed, quarantined, "
        "duplicates, deleted)",
        example="islandbridge runs --limit 3",
    )
    s.add_argument("--limit", type=at_least(1), default=10, help="how many runs, at least 1 (default: 10)")
    _quarantine(sub)
    for more in after_quarantine:
        more(sub)
    _linkage(sub)
    _reveal(sub)
    _keys(sub)
    _snapshots(sub)
    s = command(
        sub,
        "prune",
        _prune,
        "show what retention would remove (raw device-event slices, superseded identity history and vault "
        "versions, old exports, reports and landing leftovers); --apply removes it",
        example="islandbridge prune --config islandbridge.yml --apply",
    )
    s.add_argument("--apply", action="store_true", help="remove it (default: a dry run that changes nothing)")
    asub = group(sub, "audit", "the re-identification audit log")
    command(
        asub,
        "verify",
        _audit_verify,
        "check the log's hash chain, and that no entry was cut off since the warehouse and the export "
        "manifests recorded its length and head; exit status 4 when it was tampered with",
        example="islandbridge audit verify --config islandbridge.yml",
    )
    s = command(
        sub,
        "sql",
        _sql,
        "for operators of the warehouse: run one read-only query on the whole warehouse (raw tables with "
        "source ids and birth dates, the identity map from record keys to person keys) and print the "
        "result. Analysts use `islandbridge shell`, on the snapshot made for them (docs/analysts.md)",
        example='islandbridge sql "SELECT * FROM meta.run_sources"',
    )
    s.add_argument("query")
    s.add_argument("--max-rows", type=int, default=50, help="rows to print (default: 50)")


def _quarantine(sub) -> None:
    qsub = group(sub, "quarantine", "rows the connectors or the quality gate set aside: list, show, replay")
    s = command(
        qsub,
        "list",
        _quarantine_list,
        "quarantined rows, the connectors' and the quality gate's: key, stage and why (the connector's "
        "reason, scrubbed, or the checks failed), never the row itself",
        example="islandbridge quarantine list --source iot --stream events",
    )
    s.add_argument("--run", help="a run id (default: every run)")
    s.add_argument("--source", help="a source name from the configuration")
    s.add_argument("--stream", help="a stream of that source")
    s.add_argument("--all", action="store_true", help="include the gate's rows already replayed")
    s = command(
        qsub,
        "show",
        _quarantine_show,
        "one row the quality gate set aside: the failed checks and masked field values",
        example="islandbridge quarantine show ib_20261120T160000Z iot events RECORD_KEY",
    )
    for name in ("run", "source", "stream"):
        s.add_argument(name)
    s.add_argument(
        "record_key", help="as `islandbridge quarantine list` prints it (with any ~suffix), or whole"
    )
    s.add_argument("--seq", type=int, default=1)
    s = command(
        qsub,
        "replay",
        _quarantine_replay,
        "re-check a source's rows the quality gate set aside and load those that now pass",
        example="islandbridge quarantine replay registry --run ib_20261120T160000Z",
    )
    s.add_argument("source")
    s.add_argument("--run")


def _linkage(sub) -> None:
    lsub = group(sub, "linkage", "the probabilistic linkage model")
    s = command(
        lsub,
        "train",
        _linkage_train,
        "train on the newest (or given) as-of and save a new model version",
        example="islandbridge linkage train --as-of 2026-11-20",
    )
    s.add_argument("--as-of", help="train on the records as of this time (default: the newest run)")


def _reveal(sub) -> None:
    s = command(
        sub,
        "reveal",
        _reveal_cmd,
        "show a department's identifiers of some persons, for a stated purpose (audited)",
        example="islandbridge reveal --department civil_affairs --ref R "
        '--columns name,id_number --purpose "allowance check"',
    )
    s.add_argument("--department", required=True)
    who = s.add_mutually_exclusive_group(required=True)
    who.add_argument(
        "--ref", dest="refs", action="append", help="a person_ref of the department (repeatable)"
    )
    who.add_argument("--person-key", dest="person_keys", action="append", help="a person_key (repeatable)")
    s.add_argument(
        "--columns", required=True, help="vault fields the department's policy allows, e.g. name,phone"
    )
    s.add_argument(
        "--purpose", required=True, help="why; written to the audit log scrubbed (no ID, phone, known name)"
    )
    s.add_argument("--actor", help="who asks (default: the login name)")
    s.add_argument("--masked", action="store_true", help="show 张*伟, 138****8000")


def _keys(sub) -> None:
    ksub = group(sub, "keys", "vault and quarantine keys: status, add a key, rotate to it, retire an old one")
    s = command(
        ksub,
        "status",
        _keys_status,
        "configured key ids and how many sealed values each protects",
        example="islandbridge keys status --purpose vault",
    )
    s.add_argument("--purpose", default="vault", choices=(VAULT, keyops.QUARANTINE))
    s = command(
        ksub,
        "add",
        _keys_add,
        "put a fresh key first in a keyring file (never printed)",
        example="islandbridge keys add --purpose vault",
    )
    s.add_argument("--purpose", default="vault", choices=(VAULT, keyops.QUARANTINE))
    s.add_argument("--kid", help="the new key id (default: random)")
    s = command(
        ksub,
        "rotate",
        _keys_rotate,
        "re-encrypt the vault (or the quarantined rows) under the active key; person keys do not change",
        example="islandbridge keys rotate --purpose vault",
    )
    s.add_argument("--purpose", default="vault", choices=(VAULT, keyops.QUARANTINE))
    s.add_argument("--batch-size", type=int, default=5000)
    s = command(
        ksub,
        "retire",
        _keys_retire,
        "remove an old key once no sealed value needs it",
        example="islandbridge keys retire --purpose vault --kid OLD_KID",
    )
    s.add_argument("--purpose", default="vault", choices=(VAULT, keyops.QUARANTINE))
    s.add_argument("--kid", required=True)


def _prune(args) -> int:
    print_json(pipeline.prune(settings_of(args, with_sources=False), apply=args.apply))
    return 0


def _snapshots(sub) -> None:
    snsub = group(sub, "snapshot", "analysts' read-only snapshots: list, publish, roll back")
    command(
        snsub,
        "list",
        _snapshot_list,
        "kept snapshots, newest first; * marks current.duckdb",
        example="islandbridge snapshot list",
    )
    s = command(
        snsub,
        "publish",
        _snapshot_publish,
        "publish a run's snapshot and run report (sync does this)",
        example="islandbridge snapshot publish --as-of 2026-11-20",
    )
    s.add_argument("--as-of", required=True, help=AS_OF_HELP)
    s = command(
        snsub,
        "rollback",
        _snapshot_rollback,
        "point current.duckdb at an earlier kept snapshot",
        example="islandbridge snapshot rollback --run ib_20261119T160000Z",
    )
    s.add_argument("--run", required=True, help="a run id from `islandbridge snapshot list`")


def _runs(args) -> int:
    settings = settings_of(args, with_sources=False)
    with raw.open_warehouse(settings, read_only=True) as con:
        rows = con.execute("SELECT run_id, as_of, status, finished_at FROM meta.runs").fetchall()
        stops = _gate_stops(con, settings.warehouse_path.parent)
        known = {r[0] for r in rows}
        rows += [(run, as_of, STOPPED, at) for run, (as_of, at, _) in stops.items() if run not in known]
        rows = sorted(rows, key=lambda r: r[1], reverse=True)[: args.limit]
        if rows:
            print("times in Asia/Shanghai (+08:00)")
        for run_id, as_of, status, finished in rows:
            print(
                f"{run_id}  as of {local_time(as_of, 'seconds')}  {status}  "
                f"{'at' if status == STOPPED else 'finished'} {local_time(finished, 'seconds') or '-'}"
            )
            if run_id in stops:  # a run loaded after a stop, or re-run and stopped, keeps the stop's line
                print(f"    {stops[run_id][2]}{_stop_order(status, finished, stops[run_id][1])}")
            if status == "loaded":  # which steps after the load are done: a killed sync stops between them
                steps = run_steps(settings, con, run_id, as_of, finished)
                print("    " + describe_steps(steps, as_of, given_config(args)))
            elif status == LOADING:
                print("    " + unfinished_load(as_of, given_config(args)))
            if status != STOPPED:
                print(raw.format_accounting(raw.run_summary(con, run_id), indent="    "))
    return 0


STOPPED = "stopped: quality gate"


def _stop_order(status: str, finished: object, stopped: object) -> str:
    if status == STOPPED or finished is None:
        return ""
    return " (before this load)" if stopped < finished else " (a re-run; the load above stands)"


def _gate_stops(con, home: Path) -> dict[str, tuple]:
    """Per run the quality gate stopped (``meta.gate_stops``): its as-of, when, and a line naming its
    failed checks and its report (stored relative to the warehouse's folder ``home``; absolute before)."""
    if not storage.has_table(con, "meta.gate_stops"):
        return {}
    found = con.execute("SELECT run_id, as_of, stopped_at, failed_checks, report FROM meta.gate_stops")
    return {
        run_id: (
            as_of,
            at,
            f"stopped by the quality gate at {local_time(at, 'seconds')}: {', '.join(checks)}; report {home / report}",
        )
        for run_id, as_of, at, checks, report in found.fetchall()
    }


def _quarantine_list(args) -> int:
    entries = quarantine_list(
        settings_of(args, with_sources=False),
        run_id=args.run,
        source=args.source,
        stream=args.stream,
        include_replayed=args.all,
    )
    print(format_entries(entries))
    return 0


def _quarantine_show(args) -> int:
    settings = settings_of(args, with_sources=False)  # the source's kind and keys.quarantine, no secrets
    print_json(
        quarantine_show(
            settings, args.run, args.source, args.stream, args.record_key, args.seq, settings.quality
        )
    )
    return 0


def _quarantine_replay(args) -> int:
    settings = settings_of(args, with_sources=[args.source])  # that source's secrets only
    print_json(
        quarantine_replay(settings, args.source, run_id=args.run, quality_config=settings.quality),
        indent=None,
    )
    listed = quarantine_list(settings, run_id=args.run, source=args.source)
    aside = sum(e.stage == CONNECTOR for e in listed)
    if aside:  # listed beside the gate's rows, never replayed: say so rather than leave 'checked: 0'
        print(
            f"note: {aside} {'row' if aside == 1 else 'rows'} of {args.source} were set aside by the connector, "
            "which could not read them as rows (their reason in `quarantine list`): replay re-checks only the "
            "quality gate's rows; those come in when the source sends them readable",
            file=sys.stderr,
        )
    return 0


def _linkage_train(args) -> int:
    as_of = parse_as_of(args.as_of) if args.as_of else None
    print_json(train_linkage(settings_of(args, with_sources=False), as_of))  # keys.vault, no source secret
    return 0


def _reveal_cmd(args) -> int:
    found = reveal(
        settings_of(args, with_sources=False),
        department=args.department,
        person_refs=args.refs,
        person_keys=args.person_keys,
        columns=[c for c in args.columns.split(",") if c.strip()],
        purpose=args.purpose,
        actor=args.actor or getpass.getuser(),
        masked=args.masked,
    )
    print_json({"audit_entry": found.audit_seq, "rows": list(found.rows)})
    return 0


def _keys_status(args) -> int:
    print_json(keyops.status(settings_of(args, with_sources=False), args.purpose))
    return 0


def _keys_add(args) -> int:
    print_json(keyops.add_key(settings_of(args, with_sources=False), args.purpose, args.kid))
    return 0


def _keys_rotate(args) -> int:
    settings = settings_of(args, with_sources=False)
    kept = []
    if args.purpose == VAULT and settings.vault_path is not None:  # the identity step's files, sealed too
        kept = [*reuse.kept_files(settings.vault_path), *scoring.kept_files(settings.vault_path)]
    print_json(keyops.rotate(settings, args.purpose, batch_size=args.batch_size, kept_files=kept))
    return 0


def _keys_retire(args) -> int:
    print_json(keyops.retire_key(settings_of(args, with_sources=False), args.purpose, args.kid))
    return 0


def _snapshot_list(args) -> int:
    for s in list_snapshots(settings_of(args, with_sources=False).snapshots_dir):
        print(  # in Asia/Shanghai, as `runs`, the shell and the run report show times
            f"{'*' if s.is_current else ' '} {s.run_id}  published {local_time(s.published_at, 'seconds')}  "
            f"{s.size_bytes / 1e6:.1f} MB"
        )
    return 0


def _snapshot_publish(args) -> int:
    as_of = parse_as_of(args.as_of)
    print_json(pipeline.publish(settings_of(args, with_sources=False), as_of))
    return 0


def _snapshot_rollback(args) -> int:
    print(rollback(settings_of(args, with_sources=False).snapshots_dir, args.run))
    return 0


def _audit_verify(args) -> int:
    print_json(verify_audit(settings_of(args, with_sources=False)))
    return 0


def _sql(args) -> int:
    """One SELECT on the warehouse, opened read-only with file access, ATTACH, extensions and SET locked
    away (`islandbridge.storage.connect_sandboxed`): the operator sees tables and views, nothing else.

    The whole warehouse, ``raw`` and the identity map included: an operator's tool on the machine that
    runs the pipeline, not the analysts' (they use ``shell`` on the snapshot). A warehouse copied, moved or
    restored elsewhere first gets its views over Parquet pointed at its own files (`pipeline.repoint`: the
    one case it is opened for writing, for the views alone); while another process holds the warehouse (a
    sync running) that is skipped with a note, and the query is tried read-only as always."""
    settings = settings_of(args, with_sources=False)
    if not settings.warehouse_path.is_file():
        raise ConfigError(f"no warehouse at {settings.warehouse_path}; run a sync first")
    try:  # a copied or restored warehouse's views still read the original's files
        pipeline.repoint(
            settings, lost_ok=True
        )  # a lost file is left out with a warning: `sql` still answers
    except duckdb.IOException as exc:  # not a DuckDB file, unreadable: the read-only open below says so
        if storage.lock_holder(exc):
            print(
                "islandbridge: note: the views over Parquet were not re-pointed: another process holds the "
                "warehouse (a sync running?)",
                file=sys.stderr,
            )
    try:
        con = storage.connect_sandboxed(
            str(settings.warehouse_path),
            [pipeline.events_dir(settings), pipeline.raw_parts_dir(settings)],
            settings.duckdb,
        )
    except duckdb.Error as exc:
        if storage.lock_holder(exc):
            raise  # a sync holds it: busy (exit 3), said by the command line's main
        raise ConfigError(f"cannot open the warehouse {settings.warehouse_path} read-only: {exc}") from None
    try:
        query = storage.analyst_statement(con, args.query)
        con.sql(query).show(max_rows=args.max_rows, max_width=200)
    except duckdb.PermissionException:
        raise ConfigError(
            "query refused: it reads or writes files outside the warehouse; only tables and views are open"
        ) from None
    except duckdb.Error as exc:  # DuckDB adds "Did you mean …" and a caret line: the first line says it
        raise ConfigError(f"query failed: {mask_typed(str(exc).splitlines()[0])}") from None
    finally:
        con.close()
    return 0
