"""Linkage tooling: score the identity map against a simulated street's truth, and benchmark reconcile.

Not on the runtime path: ``islandbridge eval linkage`` and ``islandbridge bench reconcile`` call these.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

from islandbridge.config import Settings
from islandbridge.identity import tables as identity
from islandbridge.identity.evaluate import cross_id_merges, score_assignment
from islandbridge.identity.reconcile import reconcile
from islandbridge.identity.records import load_records, person_streams
from islandbridge.privacy.configured import open_vault
from islandbridge.privacy.sealing import SealedColumns
from islandbridge.storage import connect


def evaluate_linkage(settings: Settings, truth_dir: str | Path) -> dict[str, Any]:
    """Score ``core.identity_map`` against ``truth_dir/records.csv`` of a simulated street.

    Pairwise precision, recall and F1 overall and per system pair, false merges and splits, and the
    number of persons holding two different valid full ID numbers (must be 0). Raises
    ``FileNotFoundError`` naming the missing truth file.
    """
    truth_file = Path(truth_dir) / "records.csv"
    if not truth_file.exists():
        raise FileNotFoundError(
            f"no truth file at {truth_file}; pass the truth/ folder of a simulated street"
        )
    truth = pd.read_csv(truth_file, dtype=str)
    run_id, predicted, ids = linkage_frames(settings)
    scores = score_assignment(predicted, truth)
    return {"run_id": run_id, **scores, "cross_id_merges": cross_id_merges(predicted, ids)}


def linkage_frames(settings: Settings) -> tuple[str, pd.DataFrame, pd.DataFrame]:
    """The newest reconciled run's id, its assignment (system, record_key, person_key) and each record's
    valid full ID number (system, record_key, id_full; null where none): what the scores are computed on."""
    con = connect(str(settings.warehouse_path), read_only=True, resources=settings.duckdb)
    vault = open_vault(settings)
    sealed = SealedColumns(vault)
    try:
        run = con.execute(
            "SELECT run_id, as_of FROM meta.identity_runs ORDER BY as_of DESC LIMIT 1"
        ).fetchall()
        if not run:
            raise identity.IdentityStateError(
                "no reconciled run to evaluate; run `islandbridge reconcile` first"
            )
        predicted = con.sql("SELECT system, record_key, person_key FROM core.identity_map").df()
        records = load_records(con, person_streams(settings), run[0][1], sealed)
    finally:
        vault.close()
        con.close()
    return run[0][0], predicted, records.select(["system", "record_key", "id_full"]).to_pandas()


def bench_reconcile(workdir: str | Path, residents: int = 30_000, seed: int = 1) -> dict[str, Any]:
    """Wall time and peak RSS of one reconcile (normalise + match + keys) on a simulated street.

    Not a test: generates the street under ``workdir`` (kept for re-use), syncs it through the
    pipeline with the IoT event log emptied (door events name no person; at 300,000 residents they would
    make the sync, not the reconcile, the thing measured), then reconciles in a fresh process so that its
    peak RSS is its own. Prints and returns the numbers.
    """
    config, environ = _bench_street(Path(workdir), residents, seed)
    code = f"from islandbridge.devtools.linkage import _bench_child; _bench_child({str(config)!r})"
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**os.environ, **environ},
        check=True,
        capture_output=True,
        text=True,
    )
    wall = time.perf_counter() - started
    child = json.loads(done.stdout.strip().splitlines()[-1])
    summary = child["summary"]
    result = {
        "residents": residents,
        "records": summary["records"],
        "persons": summary["persons"],
        "wall_s": round(wall, 1),
        "peak_rss_mib": round(child["peak_rss_mib"]),
        "timings_s": summary["timings_s"],
        "model_trained": summary["model_trained"],
    }
    print(f"[bench] {result}", flush=True)
    return result


def _bench_child(config: str) -> None:
    """The measured process of `bench_reconcile`: reconcile, then print the summary and its own peak RSS."""
    from islandbridge.config import parse_as_of
    from islandbridge.perf import peak_rss_mib
    from islandbridge.pipeline import load_settings

    summary = reconcile(load_settings(config, os.environ), parse_as_of("2026-11-20"))
    print(json.dumps({"summary": summary, "peak_rss_mib": peak_rss_mib()}))


def _bench_street(workdir: Path, residents: int, seed: int) -> tuple[Path, dict[str, str]]:
    from islandbridge.config import parse_as_of
    from islandbridge.devtools.demo import write_config
    from islandbridge.devtools.simulator import generate
    from islandbridge.devtools.simulator.servers import GridServer, IotServer
    from islandbridge.pipeline import load_settings, sync

    street, config = workdir / f"street-{residents}", workdir / f"run-{residents}" / "islandbridge.yml"
    environ = {"IB_GRID_CLIENT_SECRET": "bench", "IB_IOT_API_KEY": "bench"}
    if not (street / "truth" / "records.csv").exists():
        generate(street, residents=residents, seed=seed)
        (street / "iot" / "events.jsonl").write_text("", encoding="utf-8")
    with (
        GridServer(street / "grid", client_id="islandbridge-demo", client_secret="bench") as grid,
        IotServer(street / "iot", api_key="bench") as iot,
    ):
        config.parent.mkdir(parents=True, exist_ok=True)
        write_config(config, street=street, grid_url=grid.base_url, iot_url=iot.base_url)
        settings = load_settings(config, {**os.environ, **environ})
        if settings.warehouse_path.exists():
            settings.warehouse_path.unlink()
        sync(settings, parse_as_of("2026-11-20"), reconcile_identities=False)
    return config, environ
