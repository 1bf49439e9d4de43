"""The ``islandbridge`` command: the pipeline's steps, the simulator and the demo, without a scheduler.

    islandbridge simulate OUT --residents 3000 --seed 1       write a simulated street and its truth
    islandbridge serve OUT                                     serve its grid and IoT APIs on loopback
    islandbridge sync --config islandbridge.yml --as-of 2026-11-20
    islandbridge extract --config F --as-of T --source grid    one step at a time, as the DAG does
    islandbridge validate --config F --as-of T                 the quality gate over what was extracted
    islandbridge load --config F --as-of T
    islandbridge reconcile --config F --as-of T                stable person keys over the warehouse
    islandbridge linkage train --config F                      train and save a new linkage model version
    islandbridge eval linkage --config F --truth STREET/truth  score the identity map against a truth
    islandbridge eval reports --config F --truth STREET/truth  score every department report against it
    islandbridge quarantine list|show|replay --config F        rows the quality gate set aside
    islandbridge build --config F --as-of T                    the core model and the department marts
    islandbridge export --config F --as-of T                   each department's reports, as its policy allows
    islandbridge reveal --config F --department D --ref R --columns name --purpose "..."   audited lookup
    islandbridge keys status|add|rotate|retire --config F      vault and quarantine keys, rotated
    islandbridge snapshot list|publish|rollback --config F     the analysts' read-only snapshots
    islandbridge privacy scan --street S --root DIR            look for a simulated street's identifiers in files
    islandbridge runs --config F                               the recent runs and their accounting
    islandbridge sql --config F "SELECT ..."                   a read-only query on the warehouse
    islandbridge demo                                          everything, end to end, through Airflow

Exit status: 0 success, 2 bad usage or configuration, 3 a retriable source failure (run again later),
4 any other pipeline error, 5 the quality gate stopped the run (nothing was loaded). Errors print one clear line; ``-v`` adds the traceback.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import os
import sys
from pathlib import Path

from islandbridge.errors import ConfigError, IslandbridgeError


def main(argv: list[str] | None = None) -> int:
    parser = _parser()
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose > 1 else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    try:
        return args.func(args) or 0
    except IslandbridgeError as exc:
        return _fail(args, exc, exc.exit_status)


def _fail(args, exc: Exception, code: int) -> int:
    if args.verbose:
        logging.exception("failed")
    print(f"islandbridge: error: {exc}", file=sys.stderr)
    return code


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="islandbridge", description=__doc__.split("\n\n")[0])
    p.add_argument("-v", "--verbose", action="count", default=0, help="more logging; -v shows tracebacks")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("simulate", help="write a deterministic simulated street with all four systems")
    s.add_argument("out", type=Path)
    s.add_argument("--residents", type=int, default=3000)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--as-of", default="2026-11-20", help="the street's date (YYYY-MM-DD)")
    s.set_defaults(func=_simulate)

    s = sub.add_parser("serve", help="serve a simulated street's grid and IoT APIs until interrupted")
    s.add_argument("street", type=Path)
    s.add_argument("--grid-port", type=int, default=8701)
    s.add_argument("--iot-port", type=int, default=8702)
    s.set_defaults(func=_serve)

    for name, func, text in (("sync", _sync, "extract and load every source for one as-of"),
                             ("extract", _extract, "extract one source into the landing zone"),
                             ("validate", _validate, "run the quality gate over the extracted sources"),
                             ("reconcile", _reconcile, "reconcile identities over the loaded warehouse"),
                             ("build", _build, "build the core model and the department marts"),
                             ("load", _load, "load the extracted sources of one as-of")):
        s = sub.add_parser(name, help=text)
        _config_args(s)
        s.add_argument("--as-of", required=True, help="end of the data interval: YYYY-MM-DD (its end) or ISO")
        s.add_argument("--source", action="append", help="limit to these sources (repeatable)")
        s.set_defaults(func=func)

    s = sub.add_parser("linkage", help="the probabilistic linkage model")
    lsub = s.add_subparsers(dest="action", required=True)
    s = lsub.add_parser("train", help="train on the newest (or given) as-of and save a new model version")
    _config_args(s)
    s.add_argument("--as-of", help="train on the records as of this time (default: the newest run)")
    s.set_defaults(func=_linkage_train)

    s = sub.add_parser("eval", help="score results against a simulated street's truth")
    esub = s.add_subparsers(dest="what", required=True)
    s = esub.add_parser("linkage", help="pairwise precision/recall/F1 per system pair, false merges and splits")
    _config_args(s)
    s.add_argument("--truth", type=Path, required=True, help="the truth/ folder of a simulated street")
    s.set_defaults(func=_eval_linkage)

    s = esub.add_parser("reports", help="precision/recall of every department report against a street's truth")
    _config_args(s)
    s.add_argument("--truth", type=Path, required=True, help="the truth/ folder of a simulated street")
    s.set_defaults(func=_eval_reports)

    q = sub.add_parser("quarantine", help="rows the quality gate set aside: list, show, replay")
    qsub = q.add_subparsers(dest="action", required=True)
    s = qsub.add_parser("list", help="quarantined rows: keys and failed checks, never the row itself")
    _config_args(s)
    s.add_argument("--run"), s.add_argument("--source"), s.add_argument("--stream")
    s.add_argument("--all", action="store_true", help="include rows already replayed")
    s.set_defaults(func=_quarantine_list)
    s = qsub.add_parser("show", help="one quarantined row: the failed checks and masked field values")
    _config_args(s)
    for name in ("run", "source", "stream", "record_key"):
        s.add_argument(name)
    s.add_argument("--seq", type=int, default=1)
    s.set_defaults(func=_quarantine_show)
    s = qsub.add_parser("replay", help="re-check a source's quarantined rows and load those that now pass")
    _config_args(s)
    s.add_argument("source")
    s.add_argument("--run")
    s.set_defaults(func=_quarantine_replay)

    s = sub.add_parser("export", help="write every department's exports for one as-of, as its policy allows")
    _config_args(s)
    s.add_argument("--as-of", required=True, help="end of the data interval: YYYY-MM-DD (its end) or ISO")
    s.set_defaults(func=_export)
    s = sub.add_parser("reveal", help="show a department's identifiers of some persons, for a stated purpose (audited)")
    _config_args(s)
    s.add_argument("--department", required=True)
    who = s.add_mutually_exclusive_group(required=True)
    who.add_argument("--ref", dest="refs", action="append", help="a person_ref of the department (repeatable)")
    who.add_argument("--person-key", dest="person_keys", action="append", help="a person_key (repeatable)")
    s.add_argument("--columns", required=True, help="vault fields the department's policy allows, e.g. name,phone")
    s.add_argument("--purpose", required=True, help="why; written to the audit log")
    s.add_argument("--actor", help="who asks (default: the login name)")
    s.add_argument("--masked", action="store_true", help="show 张*伟, 138****8000")
    s.set_defaults(func=_reveal)

    k = sub.add_parser("keys", help="vault and quarantine keys: status, add a key, rotate to it, retire an old one")
    ksub = k.add_subparsers(dest="action", required=True)
    s = ksub.add_parser("status", help="configured key ids and how many sealed values each protects")
    _config_args(s)
    s.add_argument("--purpose", default="vault", choices=("vault", "quarantine"))
    s.set_defaults(func=_keys_status)
    s = ksub.add_parser("add", help="put a fresh key first in a keyring file (never printed)")
    _config_args(s)
    s.add_argument("--purpose", default="vault")
    s.add_argument("--kid", help="the new key id (default: random)")
    s.set_defaults(func=_keys_add)
    s = ksub.add_parser("rotate", help="re-encrypt the vault (or the quarantined rows) under the active key; "
                                       "person keys do not change")
    _config_args(s)
    s.add_argument("--purpose", default="vault", choices=("vault", "quarantine"))
    s.add_argument("--batch-size", type=int, default=5000)
    s.set_defaults(func=_keys_rotate)
    s = ksub.add_parser("retire", help="remove an old key once no sealed value needs it")
    _config_args(s)
    s.add_argument("--purpose", default="vault")
    s.add_argument("--kid", required=True)
    s.set_defaults(func=_keys_retire)

    sn = sub.add_parser("snapshot", help="analysts' read-only snapshots: list, publish, roll back")
    snsub = sn.add_subparsers(dest="action", required=True)
    s = snsub.add_parser("list", help="kept snapshots, newest first; * marks current.duckdb")
    _config_args(s)
    s.set_defaults(func=_snapshot_list)
    s = snsub.add_parser("publish", help="publish a run's snapshot and run report (sync does this)")
    _config_args(s)
    s.add_argument("--as-of", required=True)
    s.set_defaults(func=_snapshot_publish)
    s = snsub.add_parser("rollback", help="point current.duckdb at an earlier kept snapshot")
    _config_args(s)
    s.add_argument("--run", required=True, help="a run id from `islandbridge snapshot list`")
    s.set_defaults(func=_snapshot_rollback)

    pv = sub.add_parser("privacy", help="privacy checks over what runs produced")
    pvsub = pv.add_subparsers(dest="privacy_command", required=True)
    s = pvsub.add_parser("scan", help="look for a simulated street's names, IDs, phones, bank cards in a folder")
    s.add_argument("--street", type=Path, required=True, help="the simulated street (where the needles come from)")
    s.add_argument("--root", type=Path, required=True, help="folder to scan, read-only")
    s.add_argument("--exclude", type=Path, action="append", default=[], help="file or folder to leave out")
    s.add_argument("--allow", action="append", default=[], metavar="FILE_GLOB[::LOCATION_GLOB]",
                   help="hits expected here, e.g. a policy column of an export")
    s.add_argument("--allow-term", action="append", default=[], help="innocent word a name hit may lie inside")
    s.add_argument("--show", type=int, default=50, help="masked hits to print")
    s.add_argument("--json", type=Path, help="write the whole (masked) result as JSON")
    s.set_defaults(func=_privacy_scan)

    s = sub.add_parser("runs", help="list recent runs and their accounting")
    _config_args(s)
    s.add_argument("--limit", type=int, default=10)
    s.set_defaults(func=_runs)

    s = sub.add_parser("sql", help="run one read-only query against the warehouse and print the result")
    _config_args(s)
    s.add_argument("query")
    s.add_argument("--max-rows", type=int, default=50)
    s.set_defaults(func=_sql)

    s = sub.add_parser("bench", help="benchmarks: numbers to report, not pass/fail")
    s.add_argument("suite", choices=["connectors", "pipeline", "reconcile", "quality", "normalize"], nargs="?",
                   default="connectors", help="connectors: rows/s and memory of each extraction; pipeline: every "
                   "step of one run; reconcile: identity alone; quality: the gate; normalize: 1M rows")
    s.add_argument("--sizes", type=int, nargs="+", default=[3000, 30000], help="street sizes (residents)")
    s.add_argument("--workdir", type=Path, default=Path("var/bench"))
    s.add_argument("--sources", nargs="+", default=["registry", "grid", "civil", "iot"],
                   help="which connectors to measure")
    s.add_argument("--json", type=Path, help="also write the results to this file")
    s.set_defaults(func=_bench)

    s = sub.add_parser("demo", help="simulate a street, serve it, and run the DAG through Airflow")
    s.add_argument("--workdir", type=Path, default=Path("var/demo"))
    s.add_argument("--residents", type=int, default=3000)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--as-of", default="2026-11-20")
    s.add_argument("--dags-folder", type=Path, default=Path("dags"))
    s.set_defaults(func=_demo)
    return p


def _config_args(s: argparse.ArgumentParser) -> None:
    s.add_argument("--config", type=Path, default=Path(os.environ.get("ISLANDBRIDGE_CONFIG", "islandbridge.yml")),
                   help="configuration file (default: $ISLANDBRIDGE_CONFIG or ./islandbridge.yml)")


def _settings(args, with_sources: bool = True):
    from islandbridge.config import load_settings

    return load_settings(args.config, environ=os.environ, with_sources=with_sources)


def _simulate(args) -> int:
    from islandbridge.simulator import generate

    summary = generate(args.out, residents=args.residents, seed=args.seed,
                       as_of=dt.date.fromisoformat(args.as_of))
    print(json.dumps(summary, ensure_ascii=False, indent=1, default=str))
    return 0


def _serve(args) -> int:
    from islandbridge.simulator.servers import serve_forever

    client_id = os.environ.get("IB_GRID_CLIENT_ID", "islandbridge")
    secret, key = os.environ.get("IB_GRID_CLIENT_SECRET"), os.environ.get("IB_IOT_API_KEY")
    if not secret or not key:
        raise ConfigError("set IB_GRID_CLIENT_SECRET and IB_IOT_API_KEY: the simulated APIs' credentials")
    print(f"grid: http://127.0.0.1:{args.grid_port}/api/v2   iot: http://127.0.0.1:{args.iot_port}/iot/v1")
    serve_forever(args.street, grid_port=args.grid_port, iot_port=args.iot_port,
                  client_id=client_id, client_secret=secret, api_key=key)
    return 0


def _sync(args) -> int:
    from islandbridge import pipeline
    from islandbridge.config import parse_as_of

    summary = pipeline.sync(_settings(args), parse_as_of(args.as_of), args.source)
    print(json.dumps(summary, ensure_ascii=False, indent=1))
    return 0


def _extract(args) -> int:
    from islandbridge import pipeline
    from islandbridge.config import parse_as_of

    settings = _settings(args)
    for source in args.source or pipeline.plan(settings):
        print(json.dumps(pipeline.extract(settings, source, parse_as_of(args.as_of)), ensure_ascii=False))
    return 0


def _validate(args) -> int:
    from islandbridge import pipeline
    from islandbridge.config import parse_as_of

    settings = _settings(args)
    gate = pipeline.validate(settings, parse_as_of(args.as_of), args.source or pipeline.plan(settings))
    print(json.dumps(gate, ensure_ascii=False, indent=1, default=str))
    return 0


def _quarantine_list(args) -> int:
    from islandbridge.warehouse.quality.commands import format_entries, quarantine_list

    entries = quarantine_list(_settings(args), run_id=args.run, source=args.source, stream=args.stream,
                              include_replayed=args.all)
    print(format_entries(entries))
    return 0


def _quarantine_show(args) -> int:
    from islandbridge.warehouse.quality.commands import quarantine_show

    settings = _settings(args)
    row = quarantine_show(settings, args.run, args.source, args.stream, args.record_key, args.seq, settings.quality)
    print(json.dumps(row, ensure_ascii=False, indent=1, default=str))
    return 0


def _quarantine_replay(args) -> int:
    from islandbridge.warehouse.quality.commands import quarantine_replay

    settings = _settings(args)
    print(json.dumps(quarantine_replay(settings, args.source, run_id=args.run, quality_config=settings.quality)))
    return 0


def _reconcile(args) -> int:
    from islandbridge import pipeline
    from islandbridge.config import parse_as_of

    print(json.dumps(pipeline.reconcile(_settings(args), parse_as_of(args.as_of)), ensure_ascii=False, indent=1))
    return 0


def _build(args) -> int:
    from islandbridge import pipeline
    from islandbridge.config import parse_as_of

    print(json.dumps(pipeline.build(_settings(args, with_sources=False), parse_as_of(args.as_of)), indent=1))
    return 0


def _linkage_train(args) -> int:
    from islandbridge.config import parse_as_of
    from islandbridge.reconcile import train_linkage

    as_of = parse_as_of(args.as_of) if args.as_of else None
    print(json.dumps(train_linkage(_settings(args), as_of), ensure_ascii=False, indent=1, default=str))
    return 0


def _eval_linkage(args) -> int:
    from islandbridge.reconcile import evaluate_linkage

    try:
        scores = evaluate_linkage(_settings(args), args.truth)
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from None
    print(json.dumps(scores, ensure_ascii=False, indent=1, default=str))
    return 0


def _eval_reports(args) -> int:
    from islandbridge.warehouse import raw
    from islandbridge.warehouse.reports_eval import score_reports

    if not (args.truth / "persons.csv").exists():
        raise ConfigError(f"no truth files in {args.truth}; pass the truth/ folder of a simulated street")
    con = raw.connect(str(_settings(args, with_sources=False).warehouse_path), read_only=True)
    try:
        print(json.dumps(score_reports(con, args.truth), ensure_ascii=False, indent=1, default=str))
    finally:
        con.close()
    return 0


def _load(args) -> int:
    from islandbridge import pipeline
    from islandbridge.config import parse_as_of

    settings = _settings(args)
    summary = pipeline.load(settings, parse_as_of(args.as_of), args.source or pipeline.plan(settings))
    print(json.dumps(summary, ensure_ascii=False, indent=1))
    return 0


def _export(args) -> int:
    from islandbridge import pipeline
    from islandbridge.config import parse_as_of

    print(json.dumps(pipeline.export(_settings(args, with_sources=False), parse_as_of(args.as_of)),
                     ensure_ascii=False, indent=1))
    return 0


def _reveal(args) -> int:
    import getpass

    from islandbridge.warehouse.reveal import reveal

    found = reveal(_settings(args, with_sources=False), department=args.department, person_refs=args.refs,
                   person_keys=args.person_keys, columns=[c for c in args.columns.split(",") if c.strip()],
                   purpose=args.purpose, actor=args.actor or getpass.getuser(), masked=args.masked)
    print(json.dumps({"audit_entry": found.audit_seq, "rows": list(found.rows)}, ensure_ascii=False, indent=1))
    return 0


def _keys_status(args) -> int:
    from islandbridge.warehouse import keyops

    print(json.dumps(keyops.status(_settings(args, with_sources=False), args.purpose), indent=1))
    return 0


def _keys_add(args) -> int:
    from islandbridge.warehouse import keyops

    print(json.dumps(keyops.add_key(_settings(args, with_sources=False), args.purpose, args.kid), indent=1))
    return 0


def _keys_rotate(args) -> int:
    from islandbridge.warehouse import keyops

    print(json.dumps(keyops.rotate(_settings(args, with_sources=False), args.purpose, batch_size=args.batch_size),
                     indent=1))
    return 0


def _keys_retire(args) -> int:
    from islandbridge.warehouse import keyops

    print(json.dumps(keyops.retire_key(_settings(args, with_sources=False), args.purpose, args.kid), indent=1))
    return 0


def _snapshot_list(args) -> int:
    from islandbridge.warehouse.snapshot import list_snapshots

    for s in list_snapshots(_settings(args, with_sources=False).snapshots_dir):
        print(f"{'*' if s.is_current else ' '} {s.run_id}  published {s.published_at:%Y-%m-%d %H:%M:%S}Z  "
              f"{s.size_bytes / 1e6:.1f} MB")
    return 0


def _snapshot_publish(args) -> int:
    from islandbridge import pipeline
    from islandbridge.config import parse_as_of

    print(json.dumps(pipeline.publish(_settings(args, with_sources=False), parse_as_of(args.as_of)), indent=1))
    return 0


def _snapshot_rollback(args) -> int:
    from islandbridge.warehouse.snapshot import rollback

    print(rollback(_settings(args, with_sources=False).snapshots_dir, args.run))
    return 0


def _privacy_scan(args) -> int:
    from islandbridge.warehouse.leakscan import command

    return command(args.street, args.root, exclude=args.exclude, allow=args.allow, terms=args.allow_term,
                   show=args.show, json_out=args.json)


def _runs(args) -> int:
    from islandbridge.warehouse import raw

    settings = _settings(args, with_sources=False)
    con = raw.connect(str(settings.warehouse_path), read_only=True)
    try:
        rows = con.execute(
            "SELECT run_id, as_of, status, finished_at FROM meta.runs ORDER BY as_of DESC LIMIT ?", [args.limit]
        ).fetchall()
        for run_id, as_of, status, finished in rows:
            print(f"{run_id}  as of {as_of}  {status}  finished {finished}")
            print(raw.format_accounting(raw.run_summary(con, run_id), indent="    "))
    finally:
        con.close()
    return 0


def _sql(args) -> int:
    import duckdb

    from islandbridge.warehouse import raw

    con = raw.connect(str(_settings(args, with_sources=False).warehouse_path), read_only=True)
    try:
        con.sql(args.query).show(max_rows=args.max_rows, max_width=200)
    except duckdb.Error as exc:
        raise ConfigError(f"query failed: {exc}") from None
    finally:
        con.close()
    return 0


def _bench(args) -> int:
    from islandbridge import bench

    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if args.suite == "connectors":
        results = bench.bench_connectors(workdir, args.sizes, sources=args.sources)
    elif args.suite == "pipeline":
        results = bench.bench_pipeline(workdir, args.sizes)
    elif args.suite == "reconcile":
        from islandbridge.reconcile import bench_reconcile

        results = [bench_reconcile(workdir / "reconcile", size) for size in args.sizes]
    elif args.suite == "quality":
        from islandbridge.warehouse.quality.bench import bench_quality

        results = bench_quality(workdir / "quality", residents=args.sizes[-1])
        print(json.dumps(results, ensure_ascii=False, indent=1))
    else:
        from islandbridge.transforms.normalize.bench import bench_normalize

        results = bench_normalize()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


def _demo(args) -> int:
    from islandbridge.demo import run_demo

    return run_demo(workdir=args.workdir.resolve(), residents=args.residents, seed=args.seed,
                    as_of=dt.date.fromisoformat(args.as_of), dags_folder=args.dags_folder.resolve())


if __name__ == "__main__":
    raise SystemExit(main())
