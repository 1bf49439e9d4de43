"""Benchmarks: numbers to report, not pass/fail tests (``make bench`` / ``islandbridge bench``).

``connectors``: for each street size, generate (or reuse) a simulated street, serve it, and run each
connector's extraction in a child process of its own, so that the child's peak resident set size is the
connector's alone (the simulated servers run in this process). Reports rows/s and peak RSS, and the RSS
the child had after its imports (the floor every connector pays), so growth with the street is visible.

``iot``: for each street size, in one run against one simulated IoT platform, the bare paging loop (an
``httpx`` client paging through the event log, parsing each page with ``response.json()`` and discarding
it: the ceiling no connector can pass) and the real IoT extraction (`connectors.iot_rest` into the
landing zone, devices and card holders included), each in a child process of its own, alternating
``repeat`` times: events/s, the child's CPU seconds (user + system: the machine is shared) and peak
RSS, and the ratio extract / bare loop of the best run of each.

``pipeline``: for each street size, one whole run of a fresh warehouse in a child process — extract,
validate, load, reconcile (training the linkage model, as a first run does), build, export, publish —
with the seconds and the peak RSS of every step (the child's peak is reset before each step), and the
child's overall peak RSS.

The CLI also runs the benchmarks that live beside their subjects: ``reconcile``
(`islandbridge.devtools.linkage.bench_reconcile`), ``quality`` (`islandbridge.devtools.quality_bench`) and
``normalize`` (`islandbridge.devtools.normalize_bench`).
"""

from __future__ import annotations

import json
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

from islandbridge.devtools.demo import GRID_CLIENT_ID, write_config
from islandbridge.errors import TerminalError
from islandbridge.perf import peak_rss_mib, reset_peak_rss, rss_mib

SOURCES = ("registry", "grid", "civil", "iot")
BENCH_CREDS = {"IB_GRID_CLIENT_SECRET": "bench-grid-secret", "IB_IOT_API_KEY": "bench-iot-key"}
#: How much of a failed child's error output a benchmark shows (its last lines: the traceback's end).
STDERR_TAIL_LINES = 40


class BenchChildError(TerminalError):
    """A benchmark's child process failed; the message carries the end of its error output.

    Terminal: the step it measured failed (a bug, a limit too small); a developer must look."""


def bench_connectors(workdir: Path, sizes: list[int], seed: int = 1, sources=SOURCES) -> list[dict]:
    """Measure every connector at every size; returns one row per (size, source)."""
    from islandbridge.devtools.simulator.servers import GridServer, IotServer

    results = []
    for size in sizes:
        street = _street(workdir, size, seed)
        with (
            GridServer(
                street / "grid",
                client_id=GRID_CLIENT_ID,
                client_secret=BENCH_CREDS["IB_GRID_CLIENT_SECRET"],
                rate_limit_per_s=None,
            ) as grid,
            IotServer(street / "iot", api_key=BENCH_CREDS["IB_IOT_API_KEY"]) as iot,
        ):
            config = workdir / f"bench-{size}.yml"
            write_config(config, street=street, grid_url=grid.base_url, iot_url=iot.base_url)
            for source in sources:
                row = _run_child(config, source)
                row["residents"] = size
                results.append(row)
                print(
                    f"[bench] {size:>7} residents  {source:<8} {row['rows']:>9} rows  "
                    f"{row['rows_per_s']:>10,.0f} rows/s  peak RSS {row['peak_rss_mib']:.0f} MiB "
                    f"(after imports {row['base_rss_mib']:.0f} MiB)",
                    flush=True,
                )
    _print_flatness(results)
    return results


def bench_iot(workdir: Path, sizes: list[int], seed: int = 1, repeat: int = 1) -> list[dict]:
    """The IoT extraction against the bare paging loop on the same server; one row per street size."""
    from islandbridge.devtools.simulator.servers import IotServer

    results = []
    for size in sizes:
        street = _street(workdir, size, seed)
        runs: dict[str, list[dict]] = {"bare": [], "extract": []}
        with IotServer(street / "iot", api_key=BENCH_CREDS["IB_IOT_API_KEY"]) as iot:
            config = workdir / f"bench-iot-{size}.yml"
            write_config(config, street=street, grid_url="http://127.0.0.1:9", iot_url=iot.base_url)
            for _ in range(repeat):
                runs["bare"].append(_child("_bare", iot.base_url))
                runs["extract"].append(_child("_extract_iot", config))
        best = {k: max(v, key=lambda r: r["rows_per_s"]) for k, v in runs.items()}
        row = {
            "residents": size,
            "events": best["bare"]["rows"],
            "bare": best["bare"],
            "extract": best["extract"],
            "ratio": best["extract"]["rows_per_s"] / best["bare"]["rows_per_s"],
            "cpu_ratio": best["bare"]["cpu_s"] / best["extract"]["cpu_s"],
            "runs": runs,
        }
        results.append(row)
        for name in ("bare", "extract"):
            r = best[name]
            print(
                f"[bench] iot {size:>7} residents  {name:<8} {r['rows']:>9} events  "
                f"{r['rows_per_s']:>10,.0f} events/s  cpu {r['cpu_s']:.1f} s  peak RSS {r['peak_rss_mib']:.0f} MiB",
                flush=True,
            )
        print(
            f"[bench] iot {size:>7} residents  extract / bare loop: {row['ratio']:.2f} (wall), "
            f"{row['cpu_ratio']:.2f} (CPU); target >= 0.70",
            flush=True,
        )
    return results


def bench_pipeline(workdir: Path, sizes: list[int], seed: int = 1) -> list[dict]:
    """One full run per street size on a fresh warehouse; returns the seconds of each step and peak RSS."""
    import shutil

    from islandbridge.devtools.simulator.servers import GridServer, IotServer

    results = []
    for size in sizes:
        street = _street(workdir, size, seed)
        run_dir = workdir / f"pipeline-{size}"
        shutil.rmtree(run_dir, ignore_errors=True)
        run_dir.mkdir(parents=True)
        with (
            GridServer(
                street / "grid",
                client_id=GRID_CLIENT_ID,
                client_secret=BENCH_CREDS["IB_GRID_CLIENT_SECRET"],
                rate_limit_per_s=None,
            ) as grid,
            IotServer(street / "iot", api_key=BENCH_CREDS["IB_IOT_API_KEY"]) as iot,
        ):
            write_config(
                run_dir / "islandbridge.yml", street=street, grid_url=grid.base_url, iot_url=iot.base_url
            )
            row = _child("_pipeline", run_dir / "islandbridge.yml")
        row["residents"] = size
        results.append(row)
        rss = row.get("step_peak_rss_mib", {})
        steps = "  ".join(
            f"{k} {v:.1f} s" + (f" ({rss[k]} MiB)" if rss.get(k) is not None else "")
            for k, v in row["seconds"].items()
        )
        print(
            f"[bench] pipeline {size:>7} residents  {row['total_s']:.1f} s  peak RSS {row['peak_rss_mib']:.0f} MiB"
            f"\n        {steps}",
            flush=True,
        )
    return results


def _street(workdir: Path, size: int, seed: int) -> Path:
    from islandbridge.devtools.simulator import generate

    street = workdir / f"street-{size}"
    if not (street / "truth" / "meta.json").exists():
        t0 = time.perf_counter()
        generate(street, residents=size, seed=seed)
        print(f"[bench] generated {size} residents in {time.perf_counter() - t0:.1f} s", flush=True)
    return street


def _run_child(config: Path, source: str) -> dict:
    return _child("_one", config, source)


def _child(command: str, *args: object) -> dict:
    return run_child("islandbridge.devtools.bench", command, *args, env=BENCH_CREDS)


def run_child(module: str, command: str, *args: object, env: dict[str, str], what: str = "") -> dict:
    """Run ``python -m module command args...`` as a measured child with ``env`` added to the
    environment; returns the JSON object on its last line of output. A failing child raises
    `BenchChildError` with the end of its error output (``what`` names the step, else the command)."""
    out = subprocess.run(
        [sys.executable, "-m", module, command, *map(str, args)],
        env={**os.environ, **env},
        check=False,
        capture_output=True,
        text=True,
    )
    if out.returncode != 0:
        tail = "\n".join(out.stderr.rstrip().splitlines()[-STDERR_TAIL_LINES:]) or "(no error output)"
        raise BenchChildError(
            f"benchmark child {what or ' '.join([command, *map(str, args)])} exited with status "
            f"{out.returncode}; the end of its error output:\n{tail}"
        )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _pipeline(config: str) -> None:
    """Child process: every step of one run, timed; prints one JSON line."""
    from islandbridge import pipeline
    from islandbridge.config import parse_as_of
    from islandbridge.pipeline import load_settings

    settings = load_settings(config, environ=os.environ)
    as_of = parse_as_of("2026-11-20")
    names = pipeline.plan(settings)
    steps = [
        *((f"extract {n}", lambda n=n: pipeline.extract(settings, n, as_of)) for n in names),
        ("validate", lambda: pipeline.validate(settings, as_of, names)),
        ("load", lambda: pipeline.load(settings, as_of, names)),
        ("reconcile", lambda: pipeline.reconcile(settings, as_of)),
        ("build", lambda: pipeline.build(settings, as_of)),
        ("export", lambda: pipeline.export(settings, as_of)),
        ("publish", lambda: pipeline.publish(settings, as_of)),
    ]
    seconds, step_rss, peak = {}, {}, 0.0
    for name, step in steps:
        peak = max(peak, peak_rss_mib())
        resettable = reset_peak_rss()
        t0 = time.perf_counter()
        step()
        seconds[name] = round(time.perf_counter() - t0, 2)
        step_rss[name] = round(peak_rss_mib()) if resettable else None
    row = {
        "seconds": seconds,
        "total_s": round(sum(seconds.values()), 1),
        "peak_rss_mib": max(peak, peak_rss_mib()),
    }
    print(json.dumps(row | {"step_peak_rss_mib": step_rss}))


def _one(config: str, source: str) -> None:
    """Child process: one extraction, timed; prints one JSON line."""
    from islandbridge import pipeline
    from islandbridge.config import parse_as_of
    from islandbridge.pipeline import load_settings

    settings = load_settings(config, environ=os.environ)
    base_rss = rss_mib()
    # the benchmark extracts and never loads, so no state is committed: every call is a full extraction
    as_of = parse_as_of("2026-11-20")
    t0 = time.perf_counter()
    result = pipeline.extract(settings, source, as_of)
    seconds = time.perf_counter() - t0
    rows = sum(c["read"] for c in result["counts"].values())
    print(
        json.dumps(
            {
                "source": source,
                "rows": rows,
                "seconds": round(seconds, 3),
                "rows_per_s": rows / seconds if seconds else 0.0,
                "peak_rss_mib": peak_rss_mib(),
                "base_rss_mib": base_rss,
            }
        )
    )


def _bare(base_url: str) -> None:
    """Child process: page through the whole event log with a plain httpx client, parse each page and
    discard it; prints one JSON line. The events are counted from the parsed pages."""
    import httpx

    rows, cursor = 0, None
    t0, cpu0 = time.perf_counter(), _cpu_s()
    with httpx.Client(headers={"X-Api-Key": BENCH_CREDS["IB_IOT_API_KEY"]}, timeout=60) as client:
        while True:
            params = {"limit": 5000, **({"cursor": cursor} if cursor else {})}
            page = client.get(f"{base_url}/iot/v1/events", params=params).raise_for_status().json()
            rows += len(page["events"])
            if not page["has_more"]:
                break
            cursor = page["next_cursor"]
    _report({"source": "bare"}, rows, time.perf_counter() - t0, _cpu_s() - cpu0)


def _extract_iot(config: str) -> None:
    """Child process: the IoT source's whole extraction into the landing zone; prints one JSON line with
    the events read (devices and card holders are extracted and timed too, but not counted)."""
    from islandbridge import pipeline
    from islandbridge.config import parse_as_of
    from islandbridge.pipeline import load_settings

    settings = load_settings(config, environ=os.environ)
    as_of = parse_as_of("2026-11-20")
    _warm_imports()  # the bare loop imports httpx before its clock starts; this child does the same
    t0, cpu0 = time.perf_counter(), _cpu_s()
    result = pipeline.extract(settings, "iot", as_of)
    seconds, cpu = time.perf_counter() - t0, _cpu_s() - cpu0
    events = result["counts"]["events"]
    _report({"source": "extract", "counts": events}, events["read"], seconds, cpu)


def _warm_imports() -> None:
    """Import what an extraction imports on first use (without bytecode, ~1.5 s of compiling)."""
    import duckdb  # noqa: F401
    import httpx  # noqa: F401
    import pandas  # noqa: F401  (pyarrow.compute imports it at its first call with a Python scalar)
    import pyarrow.json  # noqa: F401
    import pyarrow.parquet  # noqa: F401

    import islandbridge.connectors.iot_rest  # noqa: F401
    import islandbridge.landing.zone  # noqa: F401


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _report(row: dict, rows: int, seconds: float, cpu: float) -> None:
    row.update(
        rows=rows,
        seconds=round(seconds, 3),
        cpu_s=round(cpu, 3),
        rows_per_s=rows / seconds if seconds else 0.0,
        peak_rss_mib=peak_rss_mib(),
    )
    print(json.dumps(row))


def _print_flatness(results: list[dict]) -> None:
    sizes = sorted({r["residents"] for r in results})
    if len(sizes) < 2:
        return
    small, large = sizes[0], sizes[-1]
    print(f"\n[bench] peak RSS ratio {large} / {small} residents (target for registry and iot: <= 1.5x)")
    for source in sorted({r["source"] for r in results}):
        a = next(r for r in results if r["residents"] == small and r["source"] == source)
        b = next(r for r in results if r["residents"] == large and r["source"] == source)
        print(f"  {source:<8} {b['peak_rss_mib'] / a['peak_rss_mib']:.2f}x")


def main(argv: list[str]) -> int:
    if argv[:1] == ["_one"]:
        _one(argv[1], argv[2])
        return 0
    if argv[:1] == ["_pipeline"]:
        _pipeline(argv[1])
        return 0
    if argv[:1] == ["_bare"]:
        _bare(argv[1])
        return 0
    if argv[:1] == ["_extract_iot"]:
        _extract_iot(argv[1])
        return 0
    raise SystemExit(
        "usage: python -m islandbridge.devtools.bench _one CONFIG SOURCE | _pipeline CONFIG | _bare URL | "
        "_extract_iot CONFIG (internal)"
    )


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
