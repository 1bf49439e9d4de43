"""``islandbridge bench registry``: the registry extract from PostgreSQL against dlt's ``sql_database``.

For each street size: the simulated registry is copied into a fresh PostgreSQL database of its own
(``load_registry``, then ``ANALYZE``), then two child processes read the same four tables, one after the other:

* islandbridge: the ``sql_registry`` connector's first (full) extraction into a landing zone, as a run
  does it (keyset pages, set-aside and deletion scans, landing Parquet, manifest);
* dlt: ``sql_database(backend="pyarrow")`` into DuckDB (``--peer parquet``: into Parquet files) —
  dlt's extract, normalise and load.

Each child reports its rows, seconds and CPU seconds (imports excluded) and peak RSS; the benchmark
prints rows/s, rows per CPU-second (steadier on a shared machine) and
the ratio islandbridge / dlt, checks both read the same number of rows per table, and drops the
database afterwards. dlt is not a dependency of the project: ``make bench`` installs it (the extra
``bench``, requirements-bench.lock); without it the benchmark says so and measures islandbridge alone.

The server: ``IB_BENCH_POSTGRES_URL`` (else ``IB_TEST_POSTGRES_URL``, else
``postgresql+psycopg://postgres@127.0.0.1:5432/postgres``), an account that may create databases.
"""

from __future__ import annotations

import datetime as dt
import importlib.util
import json
import os
import resource
import shutil
import sys
import tempfile
import time
import uuid
from contextlib import contextmanager
from pathlib import Path

from islandbridge.devtools.bench import run_child
from islandbridge.perf import peak_rss_mib

TABLES = ("t_xq", "t_fw", "t_jm", "t_jm_bq")
DEFAULT_ADMIN_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"


def dlt_missing() -> str | None:
    """Why dlt cannot be measured here, or ``None``."""
    if importlib.util.find_spec("dlt") is None:
        return "dlt is not installed (it is the extra `bench`: `make bench` installs requirements-bench.lock)"
    return None


def bench_registry(workdir: Path, sizes: list[int], seed: int = 1, peers: tuple[str, ...] = ("duckdb",)):
    """Measure both extractions at every size; returns one row per (size, tool)."""
    from islandbridge.devtools.simulator import load_registry

    missing = dlt_missing()
    if missing:
        print(f"[bench] registry: {missing}; measuring islandbridge alone", flush=True)
    results = []
    for size in sizes:
        sqlite = registry_file(workdir, size, seed)
        with _database() as url:
            t0 = time.perf_counter()
            load_registry(sqlite, url)
            _analyze(url)
            print(f"[bench] registry {size}: loaded into PostgreSQL in {time.perf_counter() - t0:.1f} s")
            rows = [_child("_islandbridge", url, workdir / f"registry-{size}")]
            if not missing:
                rows += [_child("_dlt", url, workdir / f"registry-{size}", peer) for peer in peers]
        for row in rows:
            row["residents"] = size
            print(
                f"[bench] registry {size:>7} residents  {row['tool']:<14} {row['rows']:>9} rows  "
                f"{row['seconds']:>7.1f} s  {row['rows_per_s']:>9,.0f} rows/s  "
                f"{row['cpu_s']:>7.1f} CPU-s  {row['rows_per_cpu_s']:>9,.0f} rows/CPU-s  "
                f"peak RSS {row['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
        ours = rows[0]
        for peer in rows[1:]:
            same = ours["tables"] == peer["tables"]
            ratio = ours["rows_per_s"] / peer["rows_per_s"] if peer["rows_per_s"] else float("nan")
            cpu = ours["rows_per_cpu_s"] / peer["rows_per_cpu_s"] if peer["rows_per_cpu_s"] else float("nan")
            peer["ratio_islandbridge_to_this"] = round(ratio, 3)
            peer["cpu_ratio_islandbridge_to_this"] = round(cpu, 3)
            peer["same_rows_per_table"] = same
            print(
                f"[bench] registry {size:>7} residents  islandbridge / {peer['tool']}: {ratio:.2f}x rows/s, "
                f"{cpu:.2f}x rows/CPU-s (target >= 1.0x); rows per table {'identical' if same else 'DIFFER'}: "
                f"{ours['tables']} vs {peer['tables']}",
                flush=True,
            )
        results += rows
    return results


def registry_file(workdir: Path, size: int, seed: int) -> Path:
    """The simulated registry of a street of ``size`` residents: a whole street's if the connectors'
    benchmark generated one, else the registry alone (the same file: the same seed draws it)."""
    from islandbridge.devtools.simulator.generator import build_street, sub_rng
    from islandbridge.devtools.simulator.registry import write_registry

    whole = workdir / f"street-{size}" / "registry" / "rrs.sqlite"
    if (workdir / f"street-{size}" / "truth" / "meta.json").exists():
        return whole
    alone = workdir / f"registry-street-{size}" / "rrs.sqlite"
    if not alone.exists():
        t0 = time.perf_counter()
        alone.parent.mkdir(parents=True, exist_ok=True)
        street = build_street(seed, size, dt.date(2026, 11, 20), "511403001")
        write_registry(sub_rng(seed, "registry"), street, alone.with_suffix(".tmp"))
        alone.with_suffix(".tmp").rename(alone)
        print(f"[bench] generated the registry of {size} residents in {time.perf_counter() - t0:.1f} s")
    return alone


def _analyze(url: str) -> None:
    """Give the planner its statistics, as a registry in service has them (autovacuum may not have run
    yet on a database just loaded; without them, PostgreSQL sorts the rest of a table for every page)."""
    import sqlalchemy as sa

    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            conn.execute(sa.text("ANALYZE"))
    finally:
        engine.dispose()


@contextmanager
def _database():
    """A fresh PostgreSQL database of the benchmark's own, dropped afterwards."""
    import sqlalchemy as sa

    admin_url = os.environ.get("IB_BENCH_POSTGRES_URL") or os.environ.get(
        "IB_TEST_POSTGRES_URL", DEFAULT_ADMIN_URL
    )
    name = f"ib_bench_{uuid.uuid4().hex[:10]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f"CREATE DATABASE \"{name}\" ENCODING 'UTF8' TEMPLATE template0"))
        try:
            yield sa.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()


def _child(command: str, *args: object) -> dict:
    # dlt's anonymous telemetry would wait on a network this benchmark does not have (and not measure it)
    env = {"RUNTIME__DLTHUB_TELEMETRY": "false"}
    return run_child("islandbridge.devtools.registry_bench", command, *args, env=env, what=command)


def _cpu_s() -> float:
    """CPU seconds of this process and of any it waited for (user + system): less sensitive than the
    wall clock to the other jobs of a shared machine."""
    own, children = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return own.ru_utime + own.ru_stime + children.ru_utime + children.ru_stime


def _report(tool: str, tables: dict[str, int], seconds: float, cpu_s: float) -> None:
    rows = sum(tables.values())
    print(
        json.dumps(
            {
                "tool": tool,
                "rows": rows,
                "tables": dict(sorted(tables.items())),
                "seconds": round(seconds, 3),
                "rows_per_s": rows / seconds if seconds else 0.0,
                "cpu_s": round(cpu_s, 3),
                "rows_per_cpu_s": rows / cpu_s if cpu_s else 0.0,
                "peak_rss_mib": peak_rss_mib(),
            }
        )
    )


def _islandbridge(url: str, out: str) -> None:
    """Child: the registry connector's first extraction into a landing zone of its own."""
    import psycopg  # noqa: F401 - the driver's import is not the extraction (the dlt child does the same)

    from islandbridge.config import SourceSettings, parse_as_of
    from islandbridge.connectors import ExtractContext, build_connector
    from islandbridge.landing.zone import LandingWriter

    landing = Path(out) / "landing"
    shutil.rmtree(landing, ignore_errors=True)
    as_of = parse_as_of("2026-11-20")
    t0, c0 = time.perf_counter(), _cpu_s()
    connector = build_connector(SourceSettings("registry", "sql_registry", {"url": url}))
    writer = LandingWriter.open(landing.as_uri(), "bench", "registry", connector.streams())
    manifest = writer.close(connector.extract(ExtractContext("bench", as_of, {}, writer)))
    seconds, cpu_s = time.perf_counter() - t0, _cpu_s() - c0
    _report("islandbridge", {t: c["read"] for t, c in manifest["streams"].items()}, seconds, cpu_s)


def _dlt(url: str, out: str, peer: str) -> None:
    """Child: dlt's sql_database source with the pyarrow backend into DuckDB or Parquet."""
    import dlt
    import psycopg  # noqa: F401
    from dlt.sources.sql_database import sql_database

    folder = Path(out) / f"dlt-{peer}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    if peer == "duckdb":
        destination = dlt.destinations.duckdb(str(folder / "peer.duckdb"))
    else:
        destination = dlt.destinations.filesystem((folder / "files").as_uri())
    t0, c0 = time.perf_counter(), _cpu_s()
    pipeline = dlt.pipeline(
        pipeline_name="ib_registry_bench",
        pipelines_dir=tempfile.mkdtemp(dir=folder),
        destination=destination,
        dataset_name="registry",
    )
    source = sql_database(url, table_names=list(TABLES), backend="pyarrow")
    kwargs = {"loader_file_format": "parquet"} if peer == "parquet" else {}
    pipeline.run(source, write_disposition="replace", **kwargs)
    seconds, cpu_s = time.perf_counter() - t0, _cpu_s() - c0
    counts = pipeline.last_trace.last_normalize_info.row_counts
    _report(f"dlt-{peer}", {t: int(counts.get(t, 0)) for t in TABLES}, seconds, cpu_s)


def main(argv: list[str]) -> int:
    if argv[:1] == ["_islandbridge"]:
        _islandbridge(argv[1], argv[2])
    elif argv[:1] == ["_dlt"]:
        _dlt(argv[1], argv[2], argv[3])
    else:
        raise SystemExit(
            "usage: python -m islandbridge.devtools.registry_bench _islandbridge|_dlt ... (internal)"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
