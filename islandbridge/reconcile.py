"""The identity step: link every person-bearing source record to a stable, pseudonymous ``person_key``.

Runs after ``load`` for the same as-of instant T, and returns counts only (no personal data)::

    summary = reconcile(settings, parse_as_of("2026-11-20"))
    summary["persons"], summary["churn"]

1. build the record table from the newest version of each raw record (`transforms.identity.records`);
2. link equal valid full ID numbers (`deterministic`), score candidate pairs with the saved Splink
   model (`probabilistic`; the first run with no saved model trains and saves version 1, and says so;
   `train_linkage` trains a new version on purpose), cluster under hard constraints (`clusters`);
3. keep each person's key from the previous run by maximum overlap, derive new ones by HMAC of an
   anchor (`keys`), and write the map, events, redirects, review pairs and run accounting in one
   transaction (`warehouse.identity`).

`evaluate_linkage` scores the map against a simulated street's truth; `bench_reconcile` measures time
and memory. See docs/identity.md.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa

from islandbridge.config import Settings
from islandbridge.pipeline import Clock, open_vault, utc_now
from islandbridge.transforms.identity import clusters as clustering
from islandbridge.transforms.identity import keys as key_assignment
from islandbridge.transforms.identity.deterministic import id_links
from islandbridge.transforms.identity.evaluate import cross_id_merges, pair_counts, score_assignment
from islandbridge.transforms.identity.probabilistic import MODEL_FORMAT, predict_pairs, train_model
from islandbridge.transforms.identity.records import (
    StreamPlan,
    has_table,
    latest_rows,
    load_records,
    person_streams,
)
from islandbridge.warehouse import identity, raw
from islandbridge.warehouse.keys import PERSON_KEY, Key, KeyRing
from islandbridge.warehouse.sealing import SealedColumns
from islandbridge.warehouse.vault import Vault

log = logging.getLogger(__name__)


def person_mac_key(settings: Settings) -> Key:
    """The configured ``person_key`` MAC key; a clear `ConfigError` naming the key reference when absent."""
    secret = settings.key(
        PERSON_KEY, f"identity reconciliation derives every person_key from it. Add `{PERSON_KEY}: "
        "{env: IB_PERSON_KEY}` under `keys:` and set IB_PERSON_KEY to a key made with `python -c \"from "
        "islandbridge.warehouse.keys import new_keyring_text; print(new_keyring_text(kid='pk1'))\"` "
        "(see docs/privacy.md)")
    return KeyRing.from_secret(secret, PERSON_KEY).single()


def reconcile(settings: Settings, as_of: dt.datetime, clock: Clock = utc_now) -> dict[str, Any]:
    """Reconcile identities as of ``as_of`` and persist them; returns counts and timings only.

    Re-running the same as-of replaces its results (it starts again from the map before it). Raises
    ``ConfigError`` without a ``person_key`` key and ``IdentityStateError`` for nothing synced yet or an
    as-of older than the latest reconciled run.
    """
    mac_key = person_mac_key(settings)
    run_id = raw.run_id_for(as_of)
    con = raw.connect(str(settings.warehouse_path))
    vault = open_vault(settings)
    sealed = SealedColumns(vault)
    try:
        identity.ensure_schema(con)
        _require_synced(con, as_of)
        base = identity.run_base(con, run_id, as_of)
        timings: dict[str, float] = {}
        with _timed(timings, "normalise"):
            records = load_records(con, person_streams(settings), as_of, sealed)
        with _timed(timings, "train"):
            version, model, trained = _model(con, records, run_id, clock)
        with _timed(timings, "match"):
            found = _match(records, model)
        with _timed(timings, "keys"):
            result, keys = _assign(mac_key, records, found, base)
        summary = _summary(records, found, result, keys, version)
        with _timed(timings, "write"):
            identity.write_run(con, run_id, as_of, base, _identity_map(records, found, keys),
                               [(e.event, e.old_key, e.new_key) for e in result.events],
                               _reviews(records, found), summary, clock())
        with _timed(timings, "vault"):
            summary["vault"] = sync_vault(con, vault, person_streams(settings), as_of)
    finally:
        vault.close()
        con.close()
    log.info("reconciled run %s: %d records, %d persons, %d merges, %d splits, churn %d, %d for review",
             run_id, summary["records"], summary["persons"], summary["merges"], summary["splits"],
             summary["churn"], summary["reviews"])
    return {"run_id": run_id, "as_of": as_of.isoformat(), **summary, "model_trained": trained,
            "timings_s": {k: round(v, 2) for k, v in timings.items()}}


def train_linkage(settings: Settings, as_of: dt.datetime | None = None, clock: Clock = utc_now) -> dict[str, Any]:
    """Train the linkage model on the records as of ``as_of`` (default: the newest run) and save a new version.

    Runs use the newest saved version from then on. Returns the version and the record count.
    """
    con = raw.connect(str(settings.warehouse_path))
    vault = open_vault(settings)
    sealed = SealedColumns(vault)
    try:
        identity.ensure_schema(con)
        as_of = as_of or _newest_as_of(con)
        _require_synced(con, as_of)
        records = load_records(con, person_streams(settings), as_of, sealed)
        model = train_model(records)
        version = identity.save_model(con, model, MODEL_FORMAT, raw.run_id_for(as_of), records.num_rows, clock())
    finally:
        vault.close()
        con.close()
    log.info("trained linkage model version %d on %d records (run %s)", version, records.num_rows,
             raw.run_id_for(as_of))
    return {"model_version": version, "records": records.num_rows, "trained_on_run": raw.run_id_for(as_of)}


def evaluate_linkage(settings: Settings, truth_dir: str | Path) -> dict[str, Any]:
    """Score ``core.identity_map`` against ``truth_dir/records.csv`` of a simulated street.

    Pairwise precision, recall and F1 overall and per system pair, false merges and splits, and the
    number of persons holding two different valid full ID numbers (must be 0). Raises
    ``FileNotFoundError`` naming the missing truth file.
    """
    truth_file = Path(truth_dir) / "records.csv"
    if not truth_file.exists():
        raise FileNotFoundError(f"no truth file at {truth_file}; pass the truth/ folder of a simulated street")
    truth = pd.read_csv(truth_file, dtype=str)
    con = raw.connect(str(settings.warehouse_path), read_only=True)
    vault = open_vault(settings)
    sealed = SealedColumns(vault)
    try:
        run = con.execute("SELECT run_id, as_of FROM meta.identity_runs ORDER BY as_of DESC LIMIT 1").fetchall()
        if not run:
            raise identity.IdentityStateError("no reconciled run to evaluate; run `islandbridge reconcile` first")
        predicted = con.sql("SELECT system, record_key, person_key FROM core.identity_map").df()
        records = load_records(con, person_streams(settings), run[0][1], sealed)
    finally:
        vault.close()
        con.close()
    scores = score_assignment(predicted, truth)
    ids = records.select(["system", "record_key", "id_full"]).to_pandas()
    return {"run_id": run[0][0], **scores, "cross_id_merges": cross_id_merges(predicted, ids)}


# Which report identifiers each person-bearing stream gives the vault: vault field -> raw column.
VAULT_FIELDS: dict[tuple[str, str], dict[str, str]] = {
    ("resident_registry", "t_jm"): {"name": "xm", "id_number": "sfzh", "phone": "lxdh", "birth_date": "csrq"},
    ("grid_platform", "residents"): {"name": "name", "id_number": "id_card", "phone": "phone", "address": "address"},
    ("grid_platform", "events"): {"name": "reporter_name", "phone": "reporter_phone"},
    ("civil_affairs", "dibao"): {"name": "户主姓名", "id_number": "身份证号码", "phone": "联系电话",
                                 "address": "家庭住址"},
    ("civil_affairs", "senior"): {"name": "姓名", "id_number": "身份证号", "bank_card": "银行卡号",
                                  "birth_date": "出生年月"},
    ("iot_platform", "cardholders"): {"name": "name", "phone": "phone"},
}


SYNCED_THROUGH = "identifiers_synced_through"  # vault mark: the run whose records the identifiers reflect


def sync_vault(con, vault: Vault, plan: StreamPlan, as_of: dt.datetime) -> dict[str, int]:
    """File every mapped record's identifiers in the vault under its current person_key.

    Rows of a record whose person_key changed (a merge or split) move: the old ones are deleted, the new
    ones sealed. Only records that may have changed since the last completed sync are read back and
    compared (the vault's ``identifiers_synced_through`` mark): those whose newest version came after
    that run (or in it, when this is a re-run of it), those that just moved, and those with nothing
    filed. A re-filed record loses the fields its newest version leaves blank (a cleared phone is not
    kept). The mark is set last, so a sync killed half-way is redone from the same point by the next.
    Unchanged values are left as they are. Returns counts only.
    """
    run_id = raw.run_id_for(as_of)
    current = con.execute("SELECT system, record_key, person_key FROM core.identity_map").fetchall()
    person_of = {(s, r): p for s, r, p in current}
    moved = vault.forget_persons(current)
    since, filed = vault.mark(SYNCED_THROUGH), vault.filed_records()

    def newer(last_seen_run: str) -> bool:  # run ids sort as their as-of; a re-run redoes its own slice
        return since is None or last_seen_run > since or (last_seen_run == since == run_id)

    rows, refiled = [], []
    sealed = SealedColumns(vault)
    for stream in plan.streams:
        system, fields = stream.spec.system, VAULT_FIELDS.get((stream.spec.system, stream.spec.stream))
        if not fields or not has_table(con, stream.table):
            continue
        data = latest_rows(con, stream, as_of, fields.values())  # the warehouse's columns; sealed ones below
        stale = [i for i, (record_key, last) in enumerate(zip(data["record_key"].to_pylist(),
                                                              data["last_seen_run"].to_pylist(), strict=True))
                 if (system, record_key) in person_of
                 and (newer(last) or (system, record_key) not in filed)]
        data = data.take(pa.array(stale, pa.int64()))
        data = sealed.fill(data, source=stream.source, stream=stream.spec.stream,
                           columns=[c for c in fields.values() if c not in data.column_names])
        columns = {f: data[c].to_pylist() for f, c in fields.items()}
        for i, record_key in enumerate(data["record_key"].to_pylist()):
            refiled.append((system, record_key))
            for f, values in columns.items():
                value = values[i].strip() if isinstance(values[i], str) else None
                if value:
                    rows.append((person_of[(system, record_key)], f, system, record_key, value))
    put = vault.put_many(rows)
    cleared = vault.forget_fields(refiled, [(r[2], r[3], r[1]) for r in rows])
    vault.set_mark(SYNCED_THROUGH, run_id)
    return {"records_refiled": len(refiled), "inserted": put.inserted, "replaced": put.replaced,
            "unchanged": put.unchanged, "cleared": cleared, "moved": moved}


def bench_reconcile(workdir: str | Path, residents: int = 30_000, seed: int = 1) -> dict[str, Any]:
    """Wall time and peak RSS of one reconcile (normalise + match + keys) on a simulated street.

    Not a test: generates the street under ``workdir`` (kept for re-use), syncs it through the
    pipeline with the IoT event log emptied (door events name no person; at 300,000 residents they would
    make the sync, not the reconcile, the thing measured), then reconciles in a fresh process so that its
    peak RSS is its own. Prints and returns the numbers.
    """
    config, environ = _bench_street(Path(workdir), residents, seed)
    code = f"from islandbridge.reconcile import _bench_child; _bench_child({str(config)!r})"
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", code], env={**os.environ, **environ}, check=True,
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    child = json.loads(done.stdout.strip().splitlines()[-1])
    summary = child["summary"]
    result = {"residents": residents, "records": summary["records"], "persons": summary["persons"],
              "wall_s": round(wall, 1), "peak_rss_mib": round(child["peak_rss_mib"]),
              "timings_s": summary["timings_s"], "model_trained": summary["model_trained"]}
    print(f"[bench] {result}", flush=True)
    return result


def _bench_child(config: str) -> None:
    """The measured process of `bench_reconcile`: reconcile, then print the summary and its own peak RSS."""
    from islandbridge.config import load_settings, parse_as_of
    from islandbridge.perf import peak_rss_mib

    summary = reconcile(load_settings(config, os.environ), parse_as_of("2026-11-20"))
    print(json.dumps({"summary": summary, "peak_rss_mib": peak_rss_mib()}))


def _bench_street(workdir: Path, residents: int, seed: int) -> tuple[Path, dict[str, str]]:
    from islandbridge.config import load_settings, parse_as_of
    from islandbridge.demo import write_config
    from islandbridge.pipeline import sync
    from islandbridge.simulator import generate
    from islandbridge.simulator.servers import GridServer, IotServer

    street, config = workdir / f"street-{residents}", workdir / f"run-{residents}" / "islandbridge.yml"
    environ = {"IB_GRID_CLIENT_SECRET": "bench", "IB_IOT_API_KEY": "bench"}
    if not (street / "truth" / "records.csv").exists():
        generate(street, residents=residents, seed=seed)
        (street / "iot" / "events.jsonl").write_text("", encoding="utf-8")
    with GridServer(street / "grid", client_id="islandbridge-demo", client_secret="bench") as grid, \
            IotServer(street / "iot", api_key="bench") as iot:
        config.parent.mkdir(parents=True, exist_ok=True)
        write_config(config, street=street, grid_url=grid.base_url, iot_url=iot.base_url)
        settings = load_settings(config, {**os.environ, **environ})
        if settings.warehouse_path.exists():
            settings.warehouse_path.unlink()
        sync(settings, parse_as_of("2026-11-20"), reconcile_identities=False)
    return config, environ


class _timed:
    def __init__(self, into: dict[str, float], name: str) -> None:
        self.into, self.name = into, name

    def __enter__(self) -> None:
        self.start = time.perf_counter()

    def __exit__(self, *exc: object) -> None:
        self.into[self.name] = self.into.get(self.name, 0.0) + time.perf_counter() - self.start


def _require_synced(con, as_of: dt.datetime) -> None:
    if not con.execute("SELECT count(*) FROM meta.runs WHERE as_of <= ?", [as_of]).fetchall()[0][0]:
        raise identity.IdentityStateError(
            f"no run loaded as of {as_of.isoformat()}; run `islandbridge sync` for this as-of first")


def _newest_as_of(con) -> dt.datetime:
    row = con.execute("SELECT max(as_of) FROM meta.runs").fetchall()[0][0]
    if row is None:
        raise identity.IdentityStateError("no run loaded yet; run `islandbridge sync` first")
    return row


def _model(con, records: pa.Table, run_id: str, clock: Clock) -> tuple[int | None, dict[str, Any] | None, bool]:
    saved = identity.latest_model(con, MODEL_FORMAT)
    if saved is not None:
        return saved[0], saved[1], False
    if records.num_rows < 2:  # nothing to learn from, nor to link: every record is its own person
        return None, None, False
    model = train_model(records)
    version = identity.save_model(con, model, MODEL_FORMAT, run_id, records.num_rows, clock())
    log.warning("no saved linkage model (%s): trained version %d on %d records of run %s and saved it; "
                "later runs use it until `islandbridge linkage train` makes a new one",
                MODEL_FORMAT, version, records.num_rows, run_id)
    return version, model, True


def _match(records: pa.Table, model: dict[str, Any] | None) -> clustering.Clustering:
    pairs = predict_pairs(records, model or {})
    return clustering.build_clusters(records, id_links(records), pairs)


def _assign(mac_key: Key, records: pa.Table, found: clustering.Clustering,
            base: identity.Base) -> tuple[key_assignment.KeyAssignment, list[str]]:
    current = records.select(["system", "record_key", "id_full"]).to_pandas().astype(object)
    current["cluster"] = found.cluster
    result = key_assignment.assign_keys(mac_key, current, base.previous, base.retired)
    return result, current["cluster"].map(result.keys).tolist()


def _identity_map(records: pa.Table, found: clustering.Clustering, person_keys: list[str]) -> pa.Table:
    return pa.table({
        "system": records["system"], "record_key": records["record_key"],
        "person_key": pa.array(person_keys, pa.string()),
        "matched_by": pa.array(found.matched_by, pa.string()),
        "match_probability": pa.array(found.probability, pa.float64()),
        "first_seen_run": records["first_seen_run"], "last_seen_run": records["last_seen_run"],
    })


def _reviews(records: pa.Table, found: clustering.Clustering) -> pa.Table:
    systems, keys = records["system"].to_pylist(), records["record_key"].to_pylist()
    rows = found.reviews
    return pa.table({
        "system_l": pa.array([systems[r.uid_l] for r in rows], pa.string()),
        "record_key_l": pa.array([keys[r.uid_l] for r in rows], pa.string()),
        "system_r": pa.array([systems[r.uid_r] for r in rows], pa.string()),
        "record_key_r": pa.array([keys[r.uid_r] for r in rows], pa.string()),
        "match_probability": pa.array([r.match_probability for r in rows], pa.float64()),
        "reason": pa.array([r.reason for r in rows], pa.string()),
    })


def _summary(records: pa.Table, found: clustering.Clustering, result: key_assignment.KeyAssignment,
             person_keys: list[str], version: int | None) -> dict[str, Any]:
    data = pd.DataFrame({"system": records["system"].to_pylist(), "person_key": person_keys})
    links = {pair: n for pair, n in pair_counts(data, ["person_key"], sorted(data["system"].unique())).items() if n}
    return {"records": records.num_rows, "persons": int(data["person_key"].nunique()), "links": links,
            "merges": result.count("merge"), "splits": result.count("split"), "retired": result.count("retire"),
            "churn": result.churn, "reviews": len(found.reviews), "model_version": version}
