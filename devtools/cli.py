"""The developer tools' commands: simulate and serve a street, the demo, scoring against a street's truth,
benchmarks and the leak scan. Registered with ``islandbridge`` through the ``islandbridge.commands`` entry
point, so the runtime never imports this package."""

from __future__ import annotations

import argparse
import datetime as dt
import functools
import json
import os
import sys
from pathlib import Path

from islandbridge.cli.common import command, group, print_json, settings_of
from islandbridge.devtools.simulator.quirks import PROFILES
from islandbridge.errors import ConfigError
from islandbridge.landing import raw


def register(sub) -> None:
    s = command(
        sub,
        "simulate",
        _simulate,
        "write a deterministic simulated street with all four systems",
        config=False,
        example="islandbridge simulate var/street --residents 3000 --seed 1 --days 7",
    )
    s.add_argument("out", type=Path)
    s.add_argument("--residents", type=int, default=3000, help="default: 3000")
    s.add_argument("--seed", type=int, default=1, help="default: 1")
    s.add_argument(
        "--as-of", default="2026-11-20", help="the street's (first) date (YYYY-MM-DD; default 2026-11-20)"
    )
    s.add_argument(
        "--days",
        type=int,
        help="write a living street of this many days from --as-of (docs/simulator.md, 'A street that "
        "lives'); without it, one day in generate's layout",
    )
    s.add_argument(
        "--quirks",
        default="default",
        metavar="PROFILE",
        help="named quirk rates (docs/simulator.md, 'Quirk rates as parameters'): " + ", ".join(PROFILES),
    )
    s.add_argument(
        "--quirk",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one rate of the profile, e.g. --quirk typos=2 --quirk masked_ids=0 "
        "--quirk address_styles=10/20/20/20/30 (repeatable)",
    )

    s = command(
        sub,
        "serve",
        _serve,
        "serve a simulated street's grid and IoT APIs until interrupted",
        config=False,
        example="islandbridge serve var/demo/street",
    )
    s.add_argument("street", type=Path)
    s.add_argument(
        "--day",
        help="a living street (simulate --days): the day to serve (default its first); write another "
        "day into STREET/live/day to move to it while serving",
    )
    s.add_argument("--grid-port", type=int, default=8701, help="default: 8701")
    s.add_argument("--iot-port", type=int, default=8702, help="default: 8702")
    s.add_argument(
        "--write-config",
        type=Path,
        metavar="PATH",
        help="first write a configuration that syncs what is served (a living street: its live/ folder), "
        "with keys made in secrets/ beside it and the APIs' secrets read from the environment",
    )

    s = command(
        sub,
        "demo",
        _demo,
        "simulate a street, serve it, and run the DAG through Airflow",
        config=False,
        example="islandbridge demo --workdir var/demo --residents 3000",
    )
    s.add_argument("--workdir", type=Path, default=Path("var/demo"))
    s.add_argument("--residents", type=int, default=3000)
    s.add_argument("--seed", type=int, default=1)
    s.add_argument("--as-of", default="2026-11-20")
    s.add_argument("--dags-folder", type=Path, default=Path("dags"))
    s.add_argument(
        "--grid-port",
        type=_port,
        default=8701,
        help="the simulated grid API's port (default 8701; 0: any free)",
    )
    s.add_argument(
        "--iot-port",
        type=_port,
        default=8702,
        help="the simulated IoT API's port (default 8702; 0: any free)",
    )

    esub = group(sub, "eval", "score results against a simulated street's truth")
    s = command(
        esub,
        "linkage",
        _eval_linkage,
        "pairwise precision/recall/F1 per system pair, false merges and splits",
        example="islandbridge eval linkage --config var/demo/islandbridge.yml --truth var/demo/street/truth",
    )
    s.add_argument("--truth", type=Path, required=True, help="the truth/ folder of a simulated street")
    s = command(
        esub,
        "reports",
        _eval_reports,
        "precision/recall of every department report against a street's truth",
        example="islandbridge eval reports --config var/demo/islandbridge.yml --truth var/demo/street/truth",
    )
    s.add_argument("--truth", type=Path, required=True, help="the truth/ folder of a simulated street")
    s = command(
        esub,
        "matrix",
        _eval_matrix,
        "linkage over a matrix of simulated streets varying the quirks: per street and the worst street",
        config=False,
        example="islandbridge eval matrix --sizes 3000 --json var/bench/linkage_matrix.json",
    )
    s.add_argument("--sizes", type=int, nargs="+", default=[3000], help="street sizes (default: 3000)")
    s.add_argument(
        "--profiles",
        nargs="+",
        metavar="PROFILE",
        help="one street per quirks profile (simulate --quirks), seeds from --seed; default: the matrix "
        "of docs/identity.md (14 streets)",
    )
    s.add_argument("--seed", type=int, help="first seed of --profiles' streets (default 1)")
    s.add_argument("--workdir", type=Path, default=Path("var/bench/matrix"), help="streets and runs")
    s.add_argument("--json", type=Path, help="also write the results to this file")

    s = command(
        sub,
        "bench",
        _bench,
        "benchmarks: numbers to report, not pass/fail",
        config=False,
        example="islandbridge bench pipeline --sizes 3000 --json var/bench/pipeline.json",
    )
    s.add_argument(
        "suite",
        choices=["connectors", "pipeline", "reconcile", "quality", "normalize", "registry", "days", "iot"],
        nargs="?",
        default="connectors",
        help="connectors: rows/s and memory of each extraction; pipeline: every "
        "step of one run; reconcile: identity alone; quality: the gate; normalize: 1M rows; "
        "iot: the IoT extraction against the bare paging loop on the same server; "
        "registry: the registry extract from PostgreSQL against dlt's sql_database; days: a "
        "living street synced day after day (time, memory, warehouse + vault size per day)",
    )
    s.add_argument(
        "--sizes", "--residents", type=int, nargs="+", default=[3000, 30000], help="street sizes (residents)"
    )
    s.add_argument(
        "--peer",
        nargs="+",
        choices=["duckdb", "parquet"],
        default=["duckdb"],
        help="registry: dlt's destination(s) to compare with (default duckdb)",
    )
    s.add_argument("--days", type=int, default=10, help="days: how many days to sync (default 10)")
    s.add_argument(
        "--unchanged", type=int, default=2, help="days: then this many days with no change (default 2)"
    )
    s.add_argument(
        "--retention-days", type=int, default=7, help="days: the run's retention.days window (default 7)"
    )
    s.add_argument("--workdir", type=Path, default=Path("var/bench"))
    s.add_argument(
        "--sources",
        nargs="+",
        default=["registry", "grid", "civil", "iot"],
        help="which connectors to measure",
    )
    s.add_argument("--repeat", type=int, default=1, help="iot: runs of each child, alternating; best kept")
    s.add_argument("--json", type=Path, help="also write the results to this file")

    pvsub = group(sub, "privacy", "privacy checks over what runs produced")
    s = command(
        pvsub,
        "scan",
        _privacy_scan,
        "look for a simulated street's names, IDs, phones, bank cards in a folder; the export columns a "
        "policy fills from the vault are allowed to hold them",
        config=False,
        example="islandbridge privacy scan --street var/demo/street --root var/demo",
    )
    s.add_argument(
        "--street",
        type=Path,
        required=True,
        help="the simulated street, the folder given to `simulate` (a living street's days/*/ included): "
        "where the needles come from",
    )
    s.add_argument("--root", type=Path, required=True, help="folder to scan, read-only")
    s.add_argument("--exclude", type=Path, action="append", default=[], help="file or folder to leave out")
    s.add_argument(
        "--allow",
        action="append",
        default=[],
        metavar="FILE_GLOB[::LOCATION_GLOB]",
        help="hits expected here too (the policies' export columns already are)",
    )
    s.add_argument(
        "--policies", type=Path, metavar="DIR", help="the departments' policies (default: the shipped ones)"
    )
    s.add_argument(
        "--no-policies",
        action="store_true",
        help="count the export columns a policy allows as hits too",
    )
    s.add_argument(
        "--allow-term", action="append", default=[], help="innocent word a name hit may lie inside"
    )
    s.add_argument("--show", type=int, default=50, help="masked hits to print")
    s.add_argument("--json", type=Path, help="write the whole (masked) result as JSON")


def _simulate(args) -> int:
    from islandbridge.devtools.simulator import generate, simulate
    from islandbridge.devtools.simulator.quirks import profile

    as_of = dt.date.fromisoformat(args.as_of)
    try:
        quirks = profile(args.quirks).with_values(args.quirk)
        if args.days is None:
            summary = generate(args.out, residents=args.residents, seed=args.seed, as_of=as_of, quirks=quirks)
        else:
            summary = simulate(
                args.out, residents=args.residents, seed=args.seed, as_of=as_of, days=args.days, quirks=quirks
            )
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    print(json.dumps(summary, ensure_ascii=False, indent=1, default=str))
    return 0


def _serve(args) -> int:
    from islandbridge.devtools.simulator.servers import PortUnavailable, serve_days, serve_forever

    client_id = os.environ.get("IB_GRID_CLIENT_ID", "islandbridge")
    secret, key = os.environ.get("IB_GRID_CLIENT_SECRET"), os.environ.get("IB_IOT_API_KEY")
    if not secret or not key:
        raise ConfigError(
            "set IB_GRID_CLIENT_SECRET and IB_IOT_API_KEY (and IB_GRID_CLIENT_ID, default 'islandbridge'): the "
            "credentials the simulated APIs accept. The demo's street, for var/demo/islandbridge.yml: "
            "IB_GRID_CLIENT_ID=islandbridge-demo IB_GRID_CLIENT_SECRET=$(cat var/demo/secrets/grid_client_secret) "
            "IB_IOT_API_KEY=$(cat var/demo/secrets/iot_api_key) islandbridge serve var/demo/street "
            "(docs/operations.md)"
        )
    living = (args.street / "days.json").exists()
    if args.day and not living:
        raise ConfigError(
            f"--day needs a living street (islandbridge simulate --days N); {args.street} is not one"
        )
    served = args.street / "live" if living else args.street
    ports = {"grid_port": args.grid_port, "iot_port": args.iot_port}
    credentials = {"client_id": client_id, "client_secret": secret, "api_key": key}
    ready = functools.partial(_serving, args, served, client_id)
    try:
        if not living:
            serve_forever(args.street, **ports, **credentials, on_ready=ready)
            return 0
        day = dt.date.fromisoformat(args.day) if args.day else None
        serve_days(args.street, day=day, **ports, **credentials, on_ready=ready)
    except PortUnavailable as exc:
        raise ConfigError(
            f"{exc.strerror}; serve on free ports with --grid-port and --iot-port "
            f"(now {args.grid_port} and {args.iot_port})"
        ) from None
    except ValueError as exc:  # a --day the living street does not have
        raise ConfigError(str(exc)) from None
    return 0


def _serving(args, served: Path, client_id: str, grid, iot) -> None:
    """Announce what is served (and write ``--write-config``) once both servers listen: a port that was
    taken fails before anything claims to serve on it."""
    print(f"grid: {grid.base_url}/api/v2   iot: {iot.base_url}/iot/v1", flush=True)
    if args.write_config:
        _serve_config(args.write_config, served, args, client_id)
        print(f"configuration: {args.write_config}", flush=True)
    if served != args.street:
        print(f"registry: {served / 'registry' / 'rrs.sqlite'}   civil: {served / 'civil'}")
        print(f"day: {served / 'day'} (write another day into it to move there)", flush=True)


def _serve_config(path: Path, street: Path, args, client_id: str) -> None:
    """``demo.write_config`` for the served street, its ports and the grid client id being served."""
    import yaml

    from islandbridge.devtools.demo import write_config

    path.parent.mkdir(parents=True, exist_ok=True)
    grid, iot = f"http://127.0.0.1:{args.grid_port}", f"http://127.0.0.1:{args.iot_port}"
    draft = path.with_name(f".{path.name}.draft")  # renamed into place whole: a reader never sees half
    write_config(draft, street=street.resolve(), grid_url=grid, iot_url=iot)
    config = yaml.safe_load(draft.read_text(encoding="utf-8"))
    config["sources"]["grid"]["client_id"] = client_id
    draft.write_text(
        "# islandbridge configuration for a simulated street, written by `islandbridge serve --write-config`."
        "\n# See docs/configuration.md for every key.\n"
        + yaml.safe_dump(config, allow_unicode=True, sort_keys=False),
        encoding="utf-8",
    )
    draft.replace(path)


def _port(text: str) -> int:
    """A TCP port for the demo's servers: 0 (any free one) to 65535."""
    try:
        port = int(text)
    except ValueError:
        port = -1
    if not 0 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"a port is a number from 0 (any free port) to 65535, not {text!r}")
    return port


def _demo(args) -> int:
    from islandbridge.devtools.demo import run_demo

    if args.grid_port and args.grid_port == args.iot_port:
        raise ConfigError(
            f"--grid-port and --iot-port are both {args.grid_port}: the two servers need two ports"
        )
    return run_demo(
        workdir=args.workdir.resolve(),
        residents=args.residents,
        seed=args.seed,
        as_of=dt.date.fromisoformat(args.as_of),
        verbose=getattr(args, "verbose", 0),
        dags_folder=args.dags_folder.resolve(),
        ports=(args.grid_port, args.iot_port),
    )


def _eval_linkage(args) -> int:
    from islandbridge.devtools.linkage import evaluate_linkage

    try:
        scores = evaluate_linkage(settings_of(args), args.truth)
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from None
    print_json(scores)
    return 0


def _eval_reports(args) -> int:
    from islandbridge.devtools.reports_eval import day_mismatch, score_reports

    if missing := [n for n in ("persons.csv", "meta.json") if not (args.truth / n).exists()]:
        raise ConfigError(
            f"no truth files ({', '.join(missing)}) in {args.truth}; pass the truth/ folder of a simulated street"
        )
    settings = settings_of(args, with_sources=False)
    con = raw.connect(str(settings.warehouse_path), read_only=True, resources=settings.duckdb)
    try:
        if why := day_mismatch(con, args.truth):
            print(f"islandbridge: warning: {why}", file=sys.stderr)
        print_json(score_reports(con, args.truth))
    finally:
        con.close()
    return 0


def _eval_matrix(args) -> int:
    from islandbridge.devtools.matrix import format_table, run_matrix, streets_for

    try:
        streets = streets_for(args.profiles, args.seed)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    result = run_matrix(args.workdir.resolve(), args.sizes, streets, log=lambda line: print(line, flush=True))
    print()
    print(format_table(result))
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=1, ensure_ascii=False), encoding="utf-8")
    return 0


def _bench(args) -> int:
    from islandbridge.devtools import bench

    workdir = args.workdir.resolve()
    workdir.mkdir(parents=True, exist_ok=True)
    if args.suite == "connectors":
        results = bench.bench_connectors(workdir, args.sizes, sources=args.sources)
    elif args.suite == "iot":
        results = bench.bench_iot(workdir, args.sizes, repeat=args.repeat)
    elif args.suite == "pipeline":
        results = bench.bench_pipeline(workdir, args.sizes)
    elif args.suite == "reconcile":
        from islandbridge.devtools.linkage import bench_reconcile

        results = [bench_reconcile(workdir / "reconcile", size) for size in args.sizes]
    elif args.suite == "quality":
        from islandbridge.devtools.quality_bench import bench_quality

        results = bench_quality(workdir / "quality", residents=args.sizes[-1])
        print_json(results)
    elif args.suite == "registry":
        from islandbridge.devtools.registry_bench import bench_registry

        results = bench_registry(workdir, args.sizes, peers=tuple(args.peer))
    elif args.suite == "days":
        from islandbridge.devtools.bench_days import bench_days

        results = bench_days(
            workdir,
            args.sizes[0],
            args.days,
            unchanged=args.unchanged,
            retention_days=args.retention_days,
            json_out=args.json,
        )
    else:
        from islandbridge.devtools.normalize_bench import bench_normalize

        results = bench_normalize()
    if args.json:
        args.json.write_text(json.dumps(results, indent=1), encoding="utf-8")
    return 0


def _privacy_scan(args) -> int:
    from islandbridge.devtools.privacy_scan import command as scan

    try:
        return scan(
            args.street,
            args.root,
            exclude=args.exclude,
            allow=args.allow,
            terms=args.allow_term,
            policies=not args.no_policies,
            policies_dir=args.policies,
            show=args.show,
            json_out=args.json,
        )
    except FileNotFoundError as exc:
        raise ConfigError(str(exc)) from None
