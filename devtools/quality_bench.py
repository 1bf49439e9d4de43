"""Benchmark of the quality gate: numbers to report, not a pass/fail test.

* ``street``: a simulated street of ``residents`` (30,000 by default) is generated (or reused), served,
  extracted into the landing zone, and the gate validates the whole run (every source, every stream).
* ``iot day``: one day of device events of a ``event_residents`` street (300,000 by default; about 10.8
  events per resident and day, as the simulator's street has), with its device list and card holders,
  is written straight into a landing slice, and the gate validates that source.

Each is run with the default configuration (GX validates the rows of streams up to ``gx_max_rows``, and
DuckDB's per-check counts above it) and with GX on every row (``gx_max_rows`` above the stream size),
so the cost of GX's pandas engine is visible. Run::

    .venv/bin/python -m islandbridge.devtools.quality_bench var/bench-quality --residents 30000
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import posixpath
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import pyarrow as pa

from islandbridge.config import parse_as_of
from islandbridge.landing import raw
from islandbridge.landing.zone import (
    DELETED,
    DELETED_SCHEMA,
    MANIFEST,
    QUARANTINE,
    QUARANTINE_SCHEMA,
    open_root,
    path_exists,
    write_manifest,
    write_part,
)
from islandbridge.perf import peak_rss_mib
from islandbridge.pipeline import load_settings

AS_OF = "2026-11-20"
EVENTS_PER_RESIDENT_DAY = 10.8
DEVICES_PER_RESIDENT, HOLDERS_PER_RESIDENT = 0.75, 0.6
CREDS = {"IB_GRID_CLIENT_SECRET": "bench-grid-secret", "IB_IOT_API_KEY": "bench-iot-key"}


def bench_quality(
    workdir: Path, *, residents: int = 30_000, event_residents: int = 300_000, seed: int = 1
) -> list[dict]:
    """Measure the gate on a street and on one day of IoT events; returns one row per measurement."""
    workdir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    from islandbridge.quality import suites

    suites._batch_definition()  # importing GX and making its context: once per process, not measured
    print(
        f"[bench] great_expectations imported and its context made in {time.perf_counter() - started:.1f} s"
    )
    rows = []
    settings = _street(workdir, residents, seed)
    for mode, cfg in _modes():
        rows.append(
            _measure(
                f"street {residents:,} residents, all sources", settings, list(settings.sources), cfg, mode
            )
        )
    settings = _iot_day(workdir, event_residents, seed)
    for mode, cfg in _modes():
        rows.append(_measure(f"iot day of {event_residents:,} residents", settings, ["iot"], cfg, mode))
    return rows


def _modes():
    return [("default (gx_max_rows 1,000,000)", {}), ("GX on every row", {"gx_max_rows": 100_000_000})]


def _measure(what: str, settings, sources: list[str], cfg: dict, mode: str) -> dict:
    from islandbridge.quality import validate_run
    from islandbridge.quality.quarantine import ephemeral_keyring
    from islandbridge.quality.slices import LandingSlice

    as_of = parse_as_of(AS_OF)
    run_id = raw.run_id_for(as_of)
    landed = sum(
        int(info["landed"]) + int(info.get("quarantined", 0))
        for s in sources
        for info in LandingSlice.open(settings.landing_url, run_id, s).streams.values()
    )
    started = time.perf_counter()
    gate = validate_run(settings, run_id, as_of, sources, cfg, keyring=ephemeral_keyring("bench"))
    elapsed = time.perf_counter() - started
    row = {
        "what": what,
        "mode": mode,
        "rows": landed,
        "seconds": round(elapsed, 2),
        "checks_s": gate.timings.get("validate_s"),
        "rows_per_s": round(landed / elapsed),
        "expectations": len(gate.results),
        "quarantined": sum(n for s in gate.quarantined.values() for n in s.values()),
        "peak_rss_mib": round(peak_rss_mib()),
    }
    print(
        f"[bench] {what:<40} {mode:<32} {landed:>10,} rows {elapsed:>7.1f} s "
        f"({row['rows_per_s']:>9,} rows/s) checks {row['checks_s']} s, quarantined {row['quarantined']}, "
        f"peak RSS {row['peak_rss_mib']} MiB",
        flush=True,
    )
    return row


def _street(workdir: Path, residents: int, seed: int):
    """A simulated street extracted into a landing zone (generated and extracted once, then reused)."""
    from islandbridge import pipeline
    from islandbridge.devtools.demo import GRID_CLIENT_ID, write_config
    from islandbridge.devtools.simulator import generate
    from islandbridge.devtools.simulator.servers import GridServer, IotServer

    street, config = workdir / f"street-{residents}", workdir / f"street-{residents}-run" / "islandbridge.yml"
    config.parent.mkdir(parents=True, exist_ok=True)
    if not (street / "truth" / "meta.json").exists():
        generate(street, residents=residents, seed=seed, as_of=dt.date.fromisoformat(AS_OF))
    with (
        GridServer(
            street / "grid",
            client_id=GRID_CLIENT_ID,
            client_secret=CREDS["IB_GRID_CLIENT_SECRET"],
            rate_limit_per_s=None,
        ) as grid,
        IotServer(street / "iot", api_key=CREDS["IB_IOT_API_KEY"]) as iot,
    ):
        write_config(config, street=street, grid_url=grid.base_url, iot_url=iot.base_url)
        settings = load_settings(config, {**os.environ, **CREDS})
        done = config.parent / "extracted"
        if not done.exists():
            started = time.perf_counter()
            for source in settings.sources:
                pipeline.extract(settings, source, parse_as_of(AS_OF))
            print(
                f"[bench] extracted the {residents:,}-resident street in {time.perf_counter() - started:.0f} s"
            )
            done.touch()
    return settings


def _iot_day(workdir: Path, residents: int, seed: int):
    """One day of a large street's device events, with its devices and card holders, as a landing slice."""
    from islandbridge.connectors.iot_rest import STREAMS
    from islandbridge.devtools.demo import write_config

    config = workdir / f"iot-day-{residents}" / "islandbridge.yml"
    config.parent.mkdir(parents=True, exist_ok=True)
    write_config(
        config, street=workdir / "unused", grid_url="http://127.0.0.1:9", iot_url="http://127.0.0.1:9"
    )
    settings = load_settings(config, {**os.environ, **CREDS})
    fs, root = open_root(settings.landing_url)
    base = posixpath.join(root, raw.run_id_for(parse_as_of(AS_OF)), "iot")
    if not path_exists(fs, posixpath.join(base, MANIFEST)):
        rng = np.random.default_rng(seed)
        tables = _iot_tables(rng, residents)
        for name, table in tables.items():
            write_part(fs, posixpath.join(base, name), 0, table)
        for folder, schema in ((QUARANTINE, QUARANTINE_SCHEMA), (DELETED, DELETED_SCHEMA)):
            write_part(fs, posixpath.join(base, folder), 0, schema.empty_table())
        manifest = {
            "streams": {
                s.name: {
                    "read": tables[s.name].num_rows,
                    "landed": tables[s.name].num_rows,
                    "quarantined": 0,
                    "duplicates": 0,
                    "deleted": 0,
                    "parts": 1,
                    "key": list(s.key_columns),
                    "columns": list(s.columns),
                }
                for s in STREAMS
            },
            "state": {},
        }
        write_manifest(fs, base, manifest)
    return settings


def _iot_tables(rng: np.random.Generator, residents: int) -> dict[str, pa.Table]:
    n_dev, n_hold = int(residents * DEVICES_PER_RESIDENT), int(residents * HOLDERS_PER_RESIDENT)
    n_ev = int(residents * EVENTS_PER_RESIDENT_DAY)
    kinds = np.array(["door_access", "water_meter", "electric_meter", "smoke_detector"])
    dev_ids = np.array([f"DV{i:07d}" for i in range(n_dev)])
    devices = {
        "device_id": dev_ids,
        "device_type": rng.choice(kinds, n_dev, p=[0.46, 0.35, 0.06, 0.13]),
        "estate_code": np.array([f"XQ{i % 400:03d}" for i in range(n_dev)]),
        "building": (rng.integers(1, 30, n_dev)).astype(str),
        "unit": (rng.integers(1, 5, n_dev)).astype(str),
        "room": (rng.integers(101, 2405, n_dev)).astype(str),
        "status": np.full(n_dev, "online"),
        "installed_at": np.full(n_dev, "2024-09-01T00:00:00Z"),
    }
    holder_ids = np.array([f"H{i:08d}" for i in range(n_hold)])
    holders = {
        "holder_id": holder_ids,
        "name": np.full(n_hold, None),
        "phone": np.full(n_hold, None),
        "estate_code": np.full(n_hold, "XQ001"),
        "building": np.full(n_hold, "1"),
        "unit": np.full(n_hold, "1"),
        "room": np.full(n_hold, "101"),
        "card_no": np.array([f"C{i:08d}" for i in range(n_hold)]),
        "face_enrolled": np.full(n_hold, "true"),
        "valid_until": np.full(n_hold, "2027-12-31"),
        "updated_at": np.full(n_hold, "2026-11-19T08:00:00Z"),
    }
    day_start = int(dt.datetime(2026, 11, 19, 16, tzinfo=dt.UTC).timestamp() * 1000)
    types = rng.choice(
        np.array(["meter_reading", "heartbeat", "access_granted", "access_denied", "alarm"]),
        n_ev,
        p=[0.675, 0.184, 0.1375, 0.003, 0.0005],
    )
    door = (types == "access_granted") | (types == "access_denied")
    device = dev_ids[rng.integers(0, n_dev, n_ev)]
    device[rng.random(n_ev) < 0.0005] = "XX0000000"  # events of devices the list does not have: quarantined
    events = {
        "event_id": np.array([str(uuid.UUID(int=int(x), version=4)) for x in rng.integers(0, 2**62, n_ev)]),
        "ts": (day_start + rng.integers(0, 86_400_000, n_ev)).astype(str),
        "device_id": device,
        "type": types,
        "holder_id": np.where(door, holder_ids[rng.integers(0, n_hold, n_ev)], None),
        "value": np.where(types == "meter_reading", np.round(rng.random(n_ev) * 1000, 3).astype(str), None),
        "alarm_code": np.where(types == "alarm", "LOW_BATTERY", None),
    }
    return {
        name: _text_table(cols)
        for name, cols in (("devices", devices), ("cardholders", holders), ("events", events))
    }


def _text_table(columns: dict) -> pa.Table:
    from islandbridge.connectors.iot_rest import STREAMS

    table = pa.table(
        {k: pa.array(list(v) if v.dtype == object else v, pa.string()) for k, v in columns.items()}
    )
    stream = next(s for s in STREAMS if s.columns == tuple(columns))
    keys = pa.array([f"{stream.name}:{k}" for k in columns[stream.key_columns[0]]], pa.string())
    return table.append_column("_record_key", keys)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m islandbridge.devtools.quality_bench")
    parser.add_argument("workdir", type=Path)
    parser.add_argument("--residents", type=int, default=30_000)
    parser.add_argument("--event-residents", type=int, default=300_000)
    args = parser.parse_args(argv)
    rows = bench_quality(args.workdir, residents=args.residents, event_residents=args.event_residents)
    print(json.dumps(rows, ensure_ascii=False, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
