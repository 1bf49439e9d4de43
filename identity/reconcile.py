"""The identity step: link every person-bearing source record to a stable, pseudonymous ``person_key``.

Runs after ``load`` for the same as-of instant T, and returns counts only (no personal data)::

    summary = reconcile(settings, parse_as_of("2026-11-20"))
    summary["persons"], summary["churn"]

1. build the record table from the newest version of each raw record (`transforms.identity.records`);
2. link equal valid full ID numbers (`deterministic`), score candidate pairs with the saved Splink
   model (`probabilistic`; a pair of two records unchanged since the last run keeps its score,
   `scoring`; the first run with no saved model trains and saves version 1, and says so;
   `train_linkage` trains a new version on purpose), cluster under hard constraints (`clusters`);
   People's decisions on review pairs (``islandbridge review decide``, `review`) join the constraints:
   ``same`` a hard link, ``different`` a cannot-link; those it cannot honour are in ``decisions``;
3. keep each person's key from the previous run by maximum overlap, derive new ones by HMAC of an
   anchor (`keys`), and write the map, events, redirects, open review pairs and run accounting in one
   transaction (`warehouse.identity`).

`evaluate_linkage` scores the map against a simulated street's truth; `bench_reconcile` measures time
and memory. See docs/identity.md.
"""

from __future__ import annotations

import datetime as dt
import logging
import time
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from islandbridge.config import Clock, Settings, utc_now
from islandbridge.errors import count
from islandbridge.identity import churn, remembered, review, stays
from islandbridge.identity import clusters as clustering
from islandbridge.identity import keys as key_assignment
from islandbridge.identity import tables as identity
from islandbridge.identity.deterministic import id_links
from islandbridge.identity.evaluate import person_pair_counts
from islandbridge.identity.filing import sync_vault
from islandbridge.identity.links import Kept, fingerprints, kept_links, link_uids, links_table
from islandbridge.identity.pairing import Pairing, pair
from islandbridge.identity.probabilistic import MODEL_FORMAT, train_model
from islandbridge.identity.records import (
    load_records,
    person_streams,
)
from islandbridge.identity.reuse import Reuse
from islandbridge.identity.scoring import Scoring
from islandbridge.landing import raw
from islandbridge.perf import collector_paused
from islandbridge.privacy.configured import open_vault, person_mac_key
from islandbridge.privacy.keys import Key
from islandbridge.privacy.sealing import SealedColumns
from islandbridge.privacy.vault import Vault

log = logging.getLogger(__name__)


def reconcile(
    settings: Settings, as_of: dt.datetime, clock: Clock = utc_now, *, full: bool = False
) -> dict[str, Any]:
    """Reconcile identities as of ``as_of`` and persist them; returns counts and timings only.

    Identities are reconciled in as-of order, each run from the map after the one before it, so any day
    can be run again:

    - a re-run of ``as_of``, or of a day before later reconciled days, first forgets the reconciled runs
      at or after it (`tables.rewind`) and starts from the map before it, exactly as an in-order run did;
      the later days are then reconciled again, in order, when they (or any later day) run;
    - days loaded but not reconciled before ``as_of`` (e.g. after such a rewind) are reconciled first,
      in order (``caught_up`` in the result), so the map of ``as_of`` is always the in-order one.

    Records unchanged since the last run keep their normalised form (`reuse`), and pairs of two unchanged
    records their score (`scoring`, under the model's kept name frequencies); ``full`` normalises every
    record and scores every pair again (same result, for when the kept forms are in doubt).

    Raises ``ConfigError`` without a ``person_key`` key and ``IdentityStateError`` when nothing is loaded
    as of ``as_of`` or the history needed to re-run it is not kept.
    """
    mac_key = person_mac_key(settings)
    con = raw.open_warehouse(settings)
    vault = open_vault(settings)
    try:
        identity.ensure_schema(con)
        _require_synced(con, as_of)
        forgotten = identity.rewind(con, as_of)
        # the run's own earlier reconciliation is replaced now: only days after it wait for a later run
        later = [run for run in forgotten if run != raw.run_id_for(as_of)]
        if later:  # the run's publish (or `sync`) warns the operator, once, with what to do next
            log.info(
                "re-running as of %s: forgot the identities of %s (%s); they are "
                "reconciled again, in order and keeping their person keys, when a later day runs",
                as_of.isoformat(),
                count(len(later), "later reconciled run"),
                ", ".join(later),
            )
        caught_up = [
            _reconcile_one(settings, con, vault, mac_key, q, clock, full)["run_id"]
            for q in _unreconciled(con, as_of)
        ]
        result = _reconcile_one(settings, con, vault, mac_key, as_of, clock, full)
    finally:
        vault.close()
        con.close()
    return {**result, "forgotten": list(forgotten), "caught_up": caught_up}


def _reconcile_one(
    settings: Settings, con, vault: Vault, mac_key: Key, as_of: dt.datetime, clock: Clock, full: bool = False
) -> dict[str, Any]:
    """Reconcile one run from the current map (the map after the newest reconciled run before it)."""
    run_id = raw.run_id_for(as_of)
    sealed = SealedColumns(vault)
    base = identity.run_base(con, run_id, as_of)
    timings: dict[str, float] = {}
    reuse = Reuse(vault, as_of, full=full)
    scoring = Scoring(vault, full=full)
    with _timed(timings, "normalise"):
        records = load_records(con, person_streams(settings), as_of, sealed, reuse)
    with _timed(timings, "train"):
        version, model, trained = _model(con, records, run_id, clock)
    # the match builds a few objects per record and link (prints, kept links, profiles, links): the cyclic
    # collector rescanning them over and over was a fifth of the phase at 300,000 (they make no cycles)
    with _timed(timings, "match"), collector_paused():
        decided = review.applicable(con, records)
        previous_links = identity.current_links(con)
        prints = fingerprints(mac_key, records)
        ends = link_uids(previous_links, records)
        kept = kept_links(previous_links, records, prints, clustering.identity_evidence, ends)
        together = stays.together(con, person_streams(settings), as_of, records)
        found = _match(records, scoring(records, model or {}), decided, kept, together)
    with _timed(timings, "keys"):
        paired = pair(base.previous, records)
        result = _assign(mac_key, records, found, base, paired, remembered.hints(con, run_id, records))
    keys = result.per_record
    new_map = _identity_map(records, found, keys)
    rekeys = remembered.lost(con, run_id, new_map, base.previous)
    with _timed(timings, "churn"):
        changes, churn_summary = _churn(
            records, (base.previous, new_map, paired), result, (previous_links, ends, prints, decided)
        )
    summary = {
        **_summary(records, found, result, keys, version),
        "rekeyed": sum(event == "rekey" for event, _, _ in rekeys),
        "decisions": review.outcome(decided, found),
        "changes": churn_summary,
    }
    with _timed(timings, "write"):
        identity.write_run(
            con,
            run_id,
            as_of,
            base,
            new_map,
            [(e.event, e.old_key, e.new_key) for e in result.events] + rekeys,
            _reviews(records, found),
            summary,
            clock(),
            links=links_table(records, found.links, prints),
            changes=changes,
        )
    with _timed(timings, "vault"):
        summary["vault"] = sync_vault(con, vault, person_streams(settings), as_of)
    log.debug(
        "reconciled run %s: %d records, %d persons, %d merges, %d splits, churn %d, %d for review",
        run_id,
        summary["records"],
        summary["persons"],
        summary["merges"],
        summary["splits"],
        summary["churn"],
        summary["reviews"],
    )
    return {
        "run_id": run_id,
        "as_of": as_of.isoformat(),
        **summary,
        "model_trained": trained,
        "normalised": reuse.counts,
        "scored": scoring.counts,
        "timings_s": {k: round(v, 2) for k, v in timings.items()},
    }


def _unreconciled(con, as_of: dt.datetime) -> list[dt.datetime]:
    """As-ofs of loaded runs after the newest reconciled one and before ``as_of``, oldest first.

    None before the first reconciled run: a warehouse reconciled for the first time starts at ``as_of``.
    """
    runs = identity.reconciled_runs(con)
    if not runs:
        return []
    rows = con.execute(
        "SELECT as_of FROM meta.runs WHERE status = 'loaded' AND as_of < ? AND as_of > ? ORDER BY as_of",
        [as_of, runs[-1][1]],
    ).fetchall()
    return [r[0] for r in rows]


def train_linkage(
    settings: Settings, as_of: dt.datetime | None = None, clock: Clock = utc_now
) -> dict[str, Any]:
    """Train the linkage model on the records as of ``as_of`` (default: the newest run) and save a new version.

    Runs use the newest saved version from then on. Returns the version and the record count.
    """
    con = raw.open_warehouse(settings)
    vault = open_vault(settings)
    sealed = SealedColumns(vault)
    try:
        identity.ensure_schema(con)
        as_of = as_of or _newest_as_of(con)
        _require_synced(con, as_of)
        records = load_records(con, person_streams(settings), as_of, sealed)
        model = train_model(records)
        version = identity.save_model(
            con, model, MODEL_FORMAT, raw.run_id_for(as_of), records.num_rows, clock()
        )
        Scoring(vault).frequencies(records, model)  # the model's name frequencies: those of its records
    finally:
        vault.close()
        con.close()
    log.info(
        "trained linkage model version %d on %d records (run %s)",
        version,
        records.num_rows,
        raw.run_id_for(as_of),
    )
    return {"model_version": version, "records": records.num_rows, "trained_on_run": raw.run_id_for(as_of)}


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
            f"no run loaded as of {as_of.isoformat()}; run `islandbridge sync` for this as-of first"
        )


def _newest_as_of(con) -> dt.datetime:
    row = con.execute("SELECT max(as_of) FROM meta.runs").fetchall()[0][0]
    if row is None:
        raise identity.IdentityStateError("no run loaded yet; run `islandbridge sync` first")
    return row


def _model(
    con, records: pa.Table, run_id: str, clock: Clock
) -> tuple[int | None, dict[str, Any] | None, bool]:
    saved = identity.latest_model(con, MODEL_FORMAT, run_id) or identity.first_model(con, MODEL_FORMAT)
    if saved is not None:
        return saved[0], saved[1], False
    if records.num_rows < 2:  # nothing to learn from, nor to link: every record is its own person
        return None, None, False
    model = train_model(records)
    version = identity.save_model(con, model, MODEL_FORMAT, run_id, records.num_rows, clock())
    log.warning(
        "no saved linkage model (%s): trained version %d on %d records of run %s and saved it; "
        "later runs use it until `islandbridge linkage train` makes a new one",
        MODEL_FORMAT,
        version,
        records.num_rows,
        run_id,
    )
    return version, model, True


def _match(
    records: pa.Table,
    pairs: pa.Table,
    decided: review.Applicable | None = None,
    kept: Kept | None = None,
    together: list[tuple[int, int]] | None = None,
) -> clustering.Clustering:
    decisions = decided.decisions if decided else None
    return clustering.build_clusters(
        records, id_links(records), pairs, decisions=decisions, kept=kept, together=together or ()
    )


def _churn(records, maps: tuple[pa.Table, pa.Table, Pairing], result, evidence: tuple):
    """Why keys changed (per record), and the run's churn summary with its splits explained or not.

    ``maps``: the map before and now, paired; ``evidence``: the previous links, their ends' uids
    (`links.link_uids`), this run's fingerprints and the decisions applied."""
    previous, new_map, paired = maps
    previous_links, ends, prints, _ = evidence
    changes = churn.changes_paired(previous, new_map, paired, result.events)
    splits = _explained_splits(records, previous, new_map, result, evidence)
    return changes, churn.summary(changes, splits, churn.prints_changed(previous_links, ends, prints))


def _explained_splits(records, previous: pa.Table, new_map: pa.Table, result, evidence: tuple) -> list[dict]:
    """`churn.explain_splits`; its dictionaries of every record are built only on a day with a split."""
    if not any(e.event == "split" for e in result.events):
        return []
    previous_links, _, prints, decided = evidence
    current = new_map.select(["system", "record_key", "person_key"]).to_pandas().astype(object)
    keys = list(zip(records["system"].to_pylist(), records["record_key"].to_pylist(), strict=True))
    touched = {keys[u] for pair in (decided.pair_ids if decided else {}) for u in pair}
    now = dict(zip(keys, prints, strict=True))
    before = _link_prints(previous_links)
    return churn.explain_splits(
        previous.to_pandas().astype(object), current, result.events, before, now, touched
    )


def _link_prints(previous_links: pd.DataFrame) -> dict[tuple[str, str], str]:
    """The fingerprint stored with each linked record's links (a record on several links: its last)."""
    before: dict[tuple[str, str], str] = {}
    for side in ("l", "r"):
        ends = (previous_links[f"{c}_{side}"].tolist() for c in ("system", "record_key", "fingerprint"))
        before.update({(s, k): f for s, k, f in zip(*ends, strict=True)})
    return before


def _assign(
    mac_key: Key,
    records: pa.Table,
    found: clustering.Clustering,
    base: identity.Base,
    paired: Pairing,
    hints: pa.Array | None = None,
) -> key_assignment.KeyAssignment:
    """Keys by overlap with the previous map, read through the pairing the churn reads after it, then
    with the keys a rewind forgot (``hints``, `remembered`)."""
    clusters = np.asarray(found.cluster, dtype=np.int64)
    current = records.select(["system", "record_key", "id_full"])
    return key_assignment.assign_paired(
        mac_key, current, clusters, base.previous, paired, base.retired, hints
    )


def _identity_map(records: pa.Table, found: clustering.Clustering, person_keys: pa.Array) -> pa.Table:
    return pa.table(
        {
            "system": records["system"],
            "record_key": records["record_key"],
            "person_key": person_keys,
            "matched_by": pa.array(found.matched_by, pa.string()),
            # Six places: the model's scores differ in the last bits from run to run (the order DuckDB adds
            # floats in); rounded, an unchanged record has an unchanged row and adds no history.
            "match_probability": pc.round(pa.array(found.probability, pa.float64()), 6),
            "first_seen_run": records["first_seen_run"],
            "last_seen_run": records["last_seen_run"],
        }
    )


def _reviews(records: pa.Table, found: clustering.Clustering) -> pa.Table:
    systems, keys = records["system"].to_pylist(), records["record_key"].to_pylist()
    rows = found.reviews
    return pa.table(
        {
            "system_l": pa.array([systems[r.uid_l] for r in rows], pa.string()),
            "record_key_l": pa.array([keys[r.uid_l] for r in rows], pa.string()),
            "system_r": pa.array([systems[r.uid_r] for r in rows], pa.string()),
            "record_key_r": pa.array([keys[r.uid_r] for r in rows], pa.string()),
            "match_probability": pa.array([r.match_probability for r in rows], pa.float64()),
            "reason": pa.array([r.reason for r in rows], pa.string()),
        }
    )


def _summary(
    records: pa.Table,
    found: clustering.Clustering,
    result: key_assignment.KeyAssignment,
    person_keys: pa.Array,
    version: int | None,
) -> dict[str, Any]:
    counts, persons = person_pair_counts(records["system"], person_keys)
    return {
        "records": records.num_rows,
        "persons": persons,
        "links": {pair: n for pair, n in counts.items() if n},
        "merges": result.count("merge"),
        "splits": result.count("split"),
        "retired": result.count("retire"),
        "churn": result.churn,
        "reviews": len(found.reviews),
        "model_version": version,
    }
