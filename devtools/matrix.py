"""A linkage evaluation over a matrix of simulated streets (``islandbridge eval matrix``).

One street a model was developed on says little about the next one. This generates streets that vary the
simulator's quirk rates (``simulator.quirks.PROFILES``) and seeds, runs each through the pipeline
(extract from the simulated servers, validate, load, reconcile) and scores the identity map against the
street's truth: pairwise precision and recall, recall per island pair, merges across two valid full ID
numbers, clusters mixing people who differ in a valid full ID, false merges and splits. The summary is
the **worst street per metric**, not the average: a change that raises one street and lowers another is
not progress.

Not on the runtime path (devtools). Streets are kept under ``workdir/street-<name>-<size>`` and reused
when their ``truth/meta.json`` says they were generated with the same seed, size and quirks.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from islandbridge.devtools.simulator.quirks import PROFILES, Quirks

AS_OF = "2026-11-20"
CREDS = {"IB_GRID_CLIENT_SECRET": "matrix-grid-secret", "IB_IOT_API_KEY": "matrix-iot-key"}

#: Island pairs reported in the table (short names); every pair is in the JSON.
PAIRS = {
    "reg~grid": "grid_platform~resident_registry",
    "grid~grid": "grid_platform~grid_platform",
    "grid~iot": "grid_platform~iot_platform",
    "civ~reg": "civil_affairs~resident_registry",
    "iot~reg": "iot_platform~resident_registry",
}
#: Pairs with fewer true pairs than this are left out of the worst pair (a 2-pair island pair is noise).
MIN_PAIRS = 20


@dataclass(frozen=True)
class Street:
    name: str  # the profile's name, or NAME:SEED when one profile is run with several seeds
    profile: str
    seed: int


#: The default matrix: two default streets (different people) and one for each family of quirks.
DEFAULT_STREETS = (
    Street("default", "default", 1),
    Street("default:2", "default", 2),
    Street("typos_low", "typos_low", 3),
    Street("typos_high", "typos_high", 4),
    Street("masked_none", "masked_none", 5),
    Street("masked_high", "masked_high", 6),
    Street("phones_missing", "phones_missing", 7),
    Street("addresses", "addresses", 8),
    Street("reporters", "reporters", 9),
    Street("namesakes", "namesakes", 10),
    Street("stale_phones", "stale_phones", 11),
    Street("hard", "hard", 12),
    Street("visitors", "visitors", 13),
    Street("homebound", "homebound", 14),
)


def streets_for(profiles: list[str] | None, seed: int | None = None) -> list[Street]:
    """The default matrix, or one street per named profile (seeds from ``seed``, default 1)."""
    if not profiles:
        return list(DEFAULT_STREETS)
    unknown = [p for p in profiles if p not in PROFILES]
    if unknown:
        raise ValueError(f"unknown quirks profile(s) {', '.join(unknown)}; known: {', '.join(PROFILES)}")
    base = 1 if seed is None else seed
    seen: dict[str, int] = {}
    out = []
    for i, name in enumerate(profiles):
        seen[name] = seen.get(name, 0) + 1
        out.append(Street(name if seen[name] == 1 else f"{name}:{seen[name]}", name, base + i))
    return out


def run_matrix(
    workdir: Path, sizes: list[int], streets: list[Street] | None = None, log=print
) -> dict[str, Any]:
    """Every street at every size: generate (or reuse), sync, reconcile, score. Returns
    ``{"streets": [row, ...], "worst": {size: {metric: {"value", "street"}}}}``."""
    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rows = []
    for size in sizes:
        for street in streets or DEFAULT_STREETS:
            t0 = time.perf_counter()
            row = run_street(workdir, street, size)
            row["seconds"] = round(time.perf_counter() - t0, 1)
            rows.append(row)
            log(format_row(row))
    return {
        "streets": rows,
        "worst": {str(size): worst([r for r in rows if r["residents"] == size]) for size in sizes},
    }


def run_street(workdir: Path, street: Street, size: int) -> dict[str, Any]:
    """Generate the street, run it through the pipeline on a fresh warehouse, and score the identity map."""
    from islandbridge.config import parse_as_of
    from islandbridge.devtools.demo import GRID_CLIENT_ID, write_config
    from islandbridge.devtools.linkage import linkage_frames
    from islandbridge.devtools.simulator.servers import GridServer, IotServer
    from islandbridge.pipeline import load_settings, sync

    quirks = PROFILES[street.profile]
    folder = workdir / f"street-{street.name.replace(':', '-')}-{size}"
    _generate(folder, size, street.seed, quirks)
    run_dir = workdir / f"run-{street.name.replace(':', '-')}-{size}"
    shutil.rmtree(run_dir / "warehouse", ignore_errors=True)
    shutil.rmtree(run_dir / "landing", ignore_errors=True)
    shutil.rmtree(run_dir / "private", ignore_errors=True)
    run_dir.mkdir(parents=True, exist_ok=True)
    with (
        GridServer(
            folder / "grid",
            client_id=GRID_CLIENT_ID,
            client_secret=CREDS["IB_GRID_CLIENT_SECRET"],
            rate_limit_per_s=None,
        ) as grid,
        IotServer(folder / "iot", api_key=CREDS["IB_IOT_API_KEY"]) as iot,
    ):
        config = run_dir / "islandbridge.yml"
        write_config(config, street=folder, grid_url=grid.base_url, iot_url=iot.base_url)
        settings = load_settings(config, {**os.environ, **CREDS})
        sync(settings, parse_as_of(AS_OF), deliver=False)
    run_id, predicted, ids = linkage_frames(settings)
    truth = pd.read_csv(folder / "truth" / "records.csv", dtype=str)
    persons = pd.read_csv(folder / "truth" / "persons.csv", dtype=str)
    return {
        "street": street.name,
        "profile": street.profile,
        "seed": street.seed,
        "residents": size,
        "quirks": quirks.changed(),
        **score_street(predicted, truth, persons, ids),
    }


def _generate(folder: Path, size: int, seed: int, quirks: Quirks) -> None:
    from islandbridge.devtools.simulator import generate

    meta_file = folder / "truth" / "meta.json"
    want = {"seed": seed, "residents": size, "quirks": quirks.changed() or None}
    if meta_file.exists():
        meta = json.loads(meta_file.read_text(encoding="utf-8"))
        have = {"seed": meta.get("seed"), "residents": meta.get("residents"), "quirks": meta.get("quirks")}
        if json.loads(json.dumps(want)) == have:
            return
    shutil.rmtree(folder, ignore_errors=True)
    generate(folder, residents=size, seed=seed, quirks=quirks)
    # The door and meter log names no person; emptied, it costs the sync nothing and changes no score.
    (folder / "iot" / "events.jsonl").write_text("", encoding="utf-8")


def score_street(
    predicted: pd.DataFrame, truth: pd.DataFrame, persons: pd.DataFrame, ids: pd.DataFrame
) -> dict[str, Any]:
    """The matrix's metrics for one street (DataFrames as ``identity.evaluate`` takes them, plus the
    truth's persons.csv for who holds which valid full ID)."""
    from islandbridge.devtools.simulator.formats import is_valid_id
    from islandbridge.identity.evaluate import cross_id_merges, score_assignment

    scores = score_assignment(predicted, truth)
    pairs = scores["by_system_pair"]
    # incidents apart from grid residents: the records the independent streets left unlinked
    split = score_assignment(_incidents_apart(predicted), _incidents_apart(truth))["by_system_pair"]
    incident = [v for k, v in split.items() if "grid_events" in k]
    incident_true = sum(v["true_pairs"] for v in incident)
    valid = persons.loc[persons["id_number"].fillna("").map(is_valid_id), ["person_id", "id_number"]]
    mixed = truth.merge(predicted, on=["system", "record_key"]).merge(valid, on="person_id")
    mixing = int((mixed.groupby("person_key")["id_number"].nunique() > 1).sum())
    worst_pair = min(
        ((k, v["recall"]) for k, v in pairs.items() if v["true_pairs"] >= MIN_PAIRS),
        key=lambda kv: kv[1],
        default=("", 1.0),
    )
    return {
        "precision": scores["overall"]["precision"],
        "recall": scores["overall"]["recall"],
        "true_pairs": scores["overall"]["true_pairs"],
        "pair_recall": {short: pairs[long]["recall"] for short, long in PAIRS.items() if long in pairs},
        "incident_recall": round(sum(v["correct_pairs"] for v in incident) / incident_true, 5)
        if incident_true
        else 1.0,
        "worst_pair": {"pair": worst_pair[0], "recall": worst_pair[1]},
        "cross_id_merges": cross_id_merges(predicted, ids),
        "clusters_mixing_valid_ids": mixing,
        "false_merges": scores["false_merges"],
        "splits": scores["splits"],
        "records": scores["records"],
        "by_system_pair": pairs,
    }


def _incidents_apart(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame.copy()
    events = (out["system"] == "grid_platform") & out["record_key"].str.startswith("events:")
    out.loc[events, "system"] = "grid_events"
    return out


#: metric -> (how to read it from a row, True if higher is better)
METRICS = {
    "precision": (lambda r: r["precision"], True),
    "recall": (lambda r: r["recall"], True),
    **{f"recall {short}": (lambda r, s=short: r["pair_recall"].get(s, 1.0), True) for short in PAIRS},
    "incident_recall": (lambda r: r["incident_recall"], True),
    "worst pair recall": (lambda r: r["worst_pair"]["recall"], True),
    "cross_id_merges": (lambda r: r["cross_id_merges"], False),
    "clusters_mixing_valid_ids": (lambda r: r["clusters_mixing_valid_ids"], False),
    "false_merges": (lambda r: r["false_merges"], False),
    "splits": (lambda r: r["splits"], False),
}


def worst(rows: list[dict]) -> dict[str, dict]:
    """Per metric, the worst street's value and name (lowest for rates, highest for counts)."""
    if not rows:
        return {}
    out = {}
    for metric, (read, higher_better) in METRICS.items():
        row = (min if higher_better else max)(rows, key=read)
        out[metric] = {"value": read(row), "street": row["street"]}
    return out


COLUMNS = ("P", "R", *PAIRS, "incid", "xID", "mixID", "fmerge", "split")


def format_row(row: dict) -> str:
    values = [
        f"{row['precision']:.5f}",
        f"{row['recall']:.5f}",
        *(f"{row['pair_recall'].get(s, 1.0):.4f}" for s in PAIRS),
        f"{row['incident_recall']:.4f}",
        str(row["cross_id_merges"]),
        str(row["clusters_mixing_valid_ids"]),
        str(row["false_merges"]),
        str(row["splits"]),
    ]
    return f"{row['street']:<16} {row['residents']:>7} " + " ".join(f"{v:>9}" for v in values)


def format_table(result: dict) -> str:
    """The matrix as text: one line per street, then the worst street per metric for each size."""
    header = f"{'street':<16} {'size':>7} " + " ".join(f"{c:>9}" for c in COLUMNS)
    lines = [header, "-" * len(header)]
    lines += [format_row(r) for r in result["streets"]]
    for size, worst_of in result["worst"].items():
        lines += ["", f"worst street per metric at {size} residents:"]
        lines += [f"  {metric:<26} {w['value']:<10} {w['street']}" for metric, w in worst_of.items()]
    return "\n".join(lines)
