"""``islandbridge bench days``: a living street synced day after day, and what each day costs and adds.

Simulates (or reuses) a street of ``residents`` living ``days`` days (`simulator.simulate`), serves it
(`LivingStreet`) and syncs each day in order through `islandbridge.pipeline.sync` — every step, retention
at the end of each run included — in a child process of its own, so the child's peak RSS is that day's.
After each day: wall time, peak RSS, the warehouse file and the vault file in bytes (what retention
bounds; the device-event Parquet, exports, reports and snapshots are reported beside them), and the
growth of warehouse + vault against the day before. ``unchanged`` more days then sync the street held at
its last day (no source changes, no new device events): what a day of no change adds. The results are
written to ``json_out`` after every day, so a run cut short still leaves its numbers.

The configuration's ``retention.days`` is ``retention_days`` (7 by default, so that a 10- or 30-day run
shows the window filling and then holding; the product's default is 35).

Example::

    islandbridge bench days --residents 3000 --days 10 --json var/bench/days.json
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
import time
from pathlib import Path

from islandbridge.devtools.bench import BENCH_CREDS, run_child
from islandbridge.devtools.demo import GRID_CLIENT_ID, write_config
from islandbridge.perf import peak_rss_mib

FIRST = dt.date(2026, 11, 20)
# The step functions `sync` calls through `islandbridge.pipeline.steps`, timed in the child (`_timed_steps`)
TIMED = ("extract_sources", "_extract_from", "validate", "load", "reconcile", "build", "export", "publish")


def bench_days(
    workdir: Path,
    residents: int,
    days: int,
    *,
    unchanged: int = 0,
    retention_days: int | None = 7,
    seed: int = 1,
    json_out: Path | None = None,
) -> dict:
    """Sync ``days`` days (then ``unchanged`` days of no change) of a living street under
    ``retention.days: retention_days`` (None: the default window); returns every day's row and the last
    day against the first."""
    import yaml

    from islandbridge.devtools.simulator import simulate
    from islandbridge.devtools.simulator.servers_days import LivingStreet

    street = workdir / f"street-{residents}x{days}"
    if not (street / "days.json").exists():
        t0 = time.perf_counter()
        simulate(street, residents=residents, seed=seed, days=days, as_of=FIRST)
        print(f"[bench] simulated {residents} residents x {days} days in {time.perf_counter() - t0:.0f} s")
    run_dir = workdir / f"days-{residents}x{days}"
    if run_dir.exists():
        import shutil

        shutil.rmtree(run_dir)
    run_dir.mkdir(parents=True)
    config = run_dir / "islandbridge.yml"
    plan = [(FIRST + dt.timedelta(days=i), FIRST + dt.timedelta(days=i)) for i in range(days)]
    last = plan[-1][1]
    plan += [(last + dt.timedelta(days=i + 1), last) for i in range(unchanged)]
    result: dict = {
        "residents": residents,
        "days": days,
        "unchanged": unchanged,
        "retention_days": retention_days,
        "rows": [],
    }
    with LivingStreet(
        street,
        day=FIRST,
        client_id=GRID_CLIENT_ID,
        client_secret=BENCH_CREDS["IB_GRID_CLIENT_SECRET"],
        api_key=BENCH_CREDS["IB_IOT_API_KEY"],
        grid_rate_limit_per_s=None,
    ) as served:
        write_config(config, street=served.live, grid_url=served.grid.base_url, iot_url=served.iot.base_url)
        text = yaml.safe_load(config.read_text(encoding="utf-8"))
        if unchanged:  # a day without new device events is expected here, not a source that broke
            text["quality"] = {"checks": {"iot.events.volume": {"severity": "warning"}}}
        if retention_days:
            text["retention"] = {"days": retention_days}
        config.write_text(yaml.safe_dump(text, allow_unicode=True), encoding="utf-8")
        for as_of_day, street_day in plan:
            served.set_day(street_day)
            row = _child(config, as_of_day)
            row |= {"day": as_of_day.isoformat(), "sources_changed": as_of_day == street_day}
            row |= _sizes(run_dir)
            _add_growth(result["rows"], row)
            result["rows"].append(row)
            _print_row(row)
            if json_out:
                json_out.parent.mkdir(parents=True, exist_ok=True)
                json_out.write_text(json.dumps(result | _summary(result["rows"]), indent=1), encoding="utf-8")
    result |= _summary(result["rows"])
    if "summary" in result:  # one day has nothing to compare with
        print(f"[bench] {result['summary']}", flush=True)
    return result


def _sizes(run_dir: Path) -> dict[str, int]:
    warehouse, vault = run_dir / "warehouse" / "warehouse.duckdb", run_dir / "private" / "vault.duckdb"
    sizes = {
        "warehouse_bytes": warehouse.stat().st_size if warehouse.exists() else 0,
        "vault_bytes": vault.stat().st_size if vault.exists() else 0,
        "device_events_bytes": _du(run_dir / "warehouse" / "events"),
        "exports_bytes": _du(run_dir / "exports"),
        "reports_bytes": _du(run_dir / "warehouse" / "reports"),
        "snapshots_bytes": _du(run_dir / "warehouse" / "snapshots"),
    }
    sizes["warehouse_vault_bytes"] = sizes["warehouse_bytes"] + sizes["vault_bytes"]
    # DuckDB grows a file in blocks and reuses freed ones: the blocks in use show the data itself
    sizes["warehouse_vault_used_bytes"] = _used(warehouse) + _used(vault)
    return sizes


def _used(path: Path) -> int:
    if not path.exists():
        return 0
    from islandbridge import storage

    with storage.connect(str(path), read_only=True) as con:
        block_size, used = con.execute(
            "SELECT block_size, used_blocks FROM pragma_database_size()"
        ).fetchone()
    return int(block_size) * int(used)


def _du(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file()) if path.exists() else 0


def _add_growth(rows: list[dict], row: dict) -> None:
    if rows:
        before = rows[-1]["warehouse_vault_bytes"]
        row["growth_bytes"] = row["warehouse_vault_bytes"] - before
        row["growth_pct"] = round(100 * row["growth_bytes"] / before, 2) if before else None


def _summary(rows: list[dict]) -> dict:
    if len(rows) < 2:
        return {}
    first, last = rows[0], rows[-1]
    changed = [r for r in rows if r["sources_changed"]]
    return {
        "summary": (
            f"day {len(rows)} ({last['day']}) warehouse + vault {last['warehouse_vault_bytes'] / 2**20:.1f} MiB "
            f"against day 1's {first['warehouse_vault_bytes'] / 2**20:.1f} MiB "
            f"({last['warehouse_vault_bytes'] / first['warehouse_vault_bytes']:.2f}x); "
            f"last changing day {changed[-1]['day']}: {changed[-1]['warehouse_vault_bytes'] / 2**20:.1f} MiB"
        ),
        "last_vs_first": round(last["warehouse_vault_bytes"] / first["warehouse_vault_bytes"], 3),
    }


def _print_row(row: dict) -> None:
    growth = f"{row['growth_pct']:+.2f}%" if row.get("growth_pct") is not None else "   -  "
    print(
        f"[bench] {row['day']} {'changed' if row['sources_changed'] else 'no change'}  {row['wall_s']:>6.1f} s  "
        f"peak RSS {row['peak_rss_mib']:>5.0f} MiB  warehouse {row['warehouse_bytes'] / 2**20:6.1f} MiB  "
        f"vault {row['vault_bytes'] / 2**20:5.1f} MiB  growth {growth}  "
        f"(blocks in use {row['warehouse_vault_used_bytes'] / 2**20:.1f} MiB)  "
        f"events {row['device_events_bytes'] / 2**20:.1f} MiB  steps {row.get('steps_s')}  "
        f"CPU {row.get('steps_cpu_s')}  "
        f"reconcile {row.get('reconcile_s')}",
        flush=True,
    )


def _child(config: Path, day: dt.date) -> dict:
    module = "islandbridge.devtools.bench_days"
    return run_child(module, "_sync", config, day.isoformat(), env=BENCH_CREDS, what=f"syncing {day}")


def _sync(config: str, day: str) -> None:
    """Child process: one whole run for ``day``; prints one JSON line."""
    from islandbridge import pipeline
    from islandbridge.config import parse_as_of

    steps, cpu = _timed_steps(pipeline.steps)
    t0 = time.perf_counter()
    summary = pipeline.sync(pipeline.load_settings(config, environ=os.environ), parse_as_of(day))
    retention = summary.get("published", {}).get("retention", {})
    print(
        json.dumps(
            {
                "wall_s": round(time.perf_counter() - t0, 1),
                "peak_rss_mib": peak_rss_mib(),
                "steps_s": {name: round(seconds, 1) for name, seconds in steps.items()},
                "steps_cpu_s": {name: round(seconds, 1) for name, seconds in cpu.items()},
                "reconcile_s": summary.get("identity", {}).get("timings_s", {}),
                "retention_removed": {k: v for k, v in retention.items() if v},
            }
        )
    )


def _timed_steps(module) -> tuple[dict[str, float], dict[str, float]]:
    """Wrap the step functions of ``module`` (`islandbridge.pipeline.steps`, through which `sync` calls
    them) so that each call adds its wall time to the first returned dict and the process's CPU time
    (every thread's, user + system) to the second: ``extract_sources`` (every source, extracted at
    once), ``validate``, ``load``, ``reconcile``, ``build``, ``export``, ``publish``; and each source's
    own wall time as ``extract:<source>`` (no CPU: the sources share the process). Only for this child
    process, which exits after one sync."""
    import functools

    steps: dict[str, float] = {}
    cpu: dict[str, float] = {}

    def timed(name: str, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            key = f"extract:{args[1]}" if name == "_extract_from" else name
            t0, c0 = time.perf_counter(), time.process_time()
            try:
                return fn(*args, **kwargs)
            finally:
                steps[key] = steps.get(key, 0.0) + time.perf_counter() - t0
                if name != "_extract_from":  # the sources run at once: the process's CPU is theirs together
                    cpu[key] = cpu.get(key, 0.0) + time.process_time() - c0

        return wrapper

    for name in TIMED:
        setattr(module, name, timed(name, getattr(module, name)))
    return steps, cpu


if __name__ == "__main__":
    if sys.argv[1:2] != ["_sync"]:
        raise SystemExit("usage: python -m islandbridge.devtools.bench_days _sync CONFIG DAY (internal)")
    _sync(sys.argv[2], sys.argv[3])
