"""Scored candidate pairs kept between runs: a pair whose two records are unchanged is not scored again.

Splink scores a pair from its two records, the model and the name frequencies (`probabilistic.TF_COLUMNS`:
how common a name is weighs its agreement). Counted afresh from each day's records, the frequencies
would move every name's weight a little every day, and every pair would have to be scored again. So the
frequencies belong to the model: counted once, on the records the model is first used on (the records it
was trained on, for a model trained by the identity step or ``islandbridge linkage train``), and kept
with it until the next training. A name the frequencies do not hold (new since) takes its level's
average weight (Splink's rule for a value without a frequency). They hold names, so they are kept
sealed under the vault key beside it: ``<vault dir>/linkage/frequencies-<model hash>.sealed``
(owner-only, `privacy.sealed_files`), one file per model, so a past day re-run with an older model
finds its own; a run re-seals them under the vault's active key when a rotation left them under an
older one. A frequencies file that cannot be opened is counted again from the run's records, with a
warning (the scores may then move a little, as after a retraining).

With the frequencies fixed, a pair's score depends on its two records only. After scoring, a run keeps
(``<vault dir>/linkage/scores.sealed``) each record's key and a hash of the columns Splink reads
(`probabilistic.SPLINK_COLUMNS`), and the pairs it scored at or above the review threshold, by record
keys. The next run scores only the pairs with a new or changed record: Splink runs on the changed
records and their *neighbourhood* (every record sharing a blocking key with one of them,
`probabilistic.BLOCKING`), which yields every candidate pair the whole table would give them; pairs of
two unchanged records take their kept score. A day without change scores nothing. The kept scores belong
to a *context* (the model's hash, its frequencies file, the code of this module and of
`probabilistic`, the Splink and DuckDB versions); another context scores everything again, and so does
``full=True`` (``islandbridge reconcile --full``). The pairs are the same either way
(tests/test_living_reuse.py compares incremental and full runs day by day).

Example::

    scoring = Scoring(vault)
    pairs = scoring(records, model)     # as `probabilistic.predict_pairs`
    scoring.counts                      # {"kept": 4210, "scored": 35, "changed": 96}
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa

from islandbridge.config import DuckDBResources
from islandbridge.identity import probabilistic
from islandbridge.identity.probabilistic import BLOCKING, EXPLODED, SPLINK_COLUMNS, predict_pairs
from islandbridge.privacy.sealed_files import (
    SealedFileError,
    read_tables,
    sealed_kid,
    spill_folder,
    write_tables,
)
from islandbridge.privacy.vault import Vault
from islandbridge.storage import connect, registered

log = logging.getLogger(__name__)

FORMAT = "1"
_LABEL = "islandbridge-linkage"
_KEYS = ("system", "record_key")


def code_version() -> str:
    """A hash of the code that scores a pair (this module, `probabilistic`) and of Splink's and DuckDB's
    versions: kept scores never outlive it."""
    files = [Path(__file__), Path(probabilistic.__file__)]
    versions = json.dumps([(name, metadata.version(name)) for name in ("splink", "duckdb")]).encode("utf-8")
    return hashlib.sha256(b"".join(f.read_bytes() for f in files) + versions).hexdigest()


def model_hash(model: Mapping[str, Any]) -> str:
    return hashlib.sha256(json.dumps(model, sort_keys=True).encode("utf-8")).hexdigest()


def kept_files(vault_path: Path) -> list[tuple[Path, bytes]]:
    """The kept scores and every model's name frequencies beside the vault at ``vault_path``, each with the
    associated data it is sealed with: what `keys rotate` re-seals under a new vault key."""
    folder = vault_path.parent / "linkage"
    found = [(p, _aad("frequencies")) for p in sorted(folder.glob("frequencies-*.sealed"))]
    return found + [(p, _aad("scores")) for p in [folder / "scores.sealed"] if p.is_file()]


def _aad(what: str) -> bytes:
    return json.dumps([_LABEL, FORMAT, what]).encode("utf-8")


class Scoring:
    """Scores a run's candidate pairs, reusing the kept scores of pairs of unchanged records (see the
    module docstring); ``counts`` says how many pairs were kept and scored, and how many records changed."""

    def __init__(self, vault: Vault, *, full: bool = False) -> None:
        self.vault, self.full = vault, full
        self.directory = vault.path.parent / "linkage"
        self.counts = {"kept": 0, "scored": 0, "changed": 0}
        # It holds the matching columns (names in pinyin), so it spills only into the vault's own folder.
        self._con = connect(resources=DuckDBResources.default(spill_folder(self.directory)))

    def __call__(self, records: pa.Table, model: Mapping[str, Any]) -> pa.Table:
        """The scored pairs of ``records`` under ``model``, as `probabilistic.predict_pairs` gives them."""
        if records.num_rows < 2 or not model:
            return predict_pairs(records, model)
        frequencies, stamp = self.frequencies(records, model)
        context = json.dumps([FORMAT, model_hash(model), stamp, code_version()])
        now = self._prints(records)
        kept = None if self.full or not _blocks_as_coded(model) else self._load(context)
        if kept is None:
            changed = np.ones(records.num_rows, bool)
            pairs = predict_pairs(records, model, frequencies=frequencies)
        else:
            changed, pairs = self._rescore(records, model, frequencies, now, kept)
        self.counts["changed"] = int(changed.sum())
        self.counts["scored"] = pairs.num_rows - self.counts["kept"]
        if kept is None or changed.any() or kept["records"].num_rows != records.num_rows:
            self._store(context, now, pairs)
        return pairs

    def frequencies(self, records: pa.Table, model: Mapping[str, Any]) -> tuple[dict[str, pa.Table], str]:
        """The model's kept name frequencies and their stamp; counted on ``records`` and kept when the
        model has none yet (or they cannot be opened)."""
        path = self.directory / f"frequencies-{model_hash(model)}.sealed"
        if path.is_file():
            try:
                tables, stamp = read_tables(self.vault.keyring, path, self._aad("frequencies"))
                if sealed_kid(path) != self.vault.keyring.active.kid:  # a rotated key: keep them readable
                    write_tables(self.vault.keyring, path, self._aad("frequencies"), tables, context=stamp)
                return tables, stamp
            except SealedFileError as exc:
                log.warning(
                    "the linkage model's kept name frequencies cannot be read (%s); counting them again on "
                    "this run's records",
                    type(exc.__cause__).__name__,
                )
        tables = probabilistic.term_frequencies(records, model)
        stamp = uuid.uuid4().hex
        write_tables(self.vault.keyring, path, self._aad("frequencies"), tables, context=stamp)
        return tables, stamp

    def _rescore(self, records, model, frequencies, now: pa.Table, kept: Mapping[str, pa.Table]):
        """(changed mask, pairs): fresh scores for pairs with a changed record, kept ones for the rest."""
        con = self._con
        with registered(con, "now_prints", now), registered(con, "kept_prints", kept["records"]):
            changed = con.sql(
                "SELECT n.uid, k.print IS NULL AS changed FROM now_prints n LEFT JOIN kept_prints k "
                "ON k.system = n.system AND k.record_key = n.record_key AND k.print = n.print ORDER BY n.uid"
            ).to_arrow_table()
        changed = changed["changed"].to_numpy(zero_copy_only=False)
        pairs = _kept_pairs(con, now, changed, kept["pairs"])
        self.counts["kept"] = pairs.num_rows
        if changed.any():
            near = neighbourhood(con, records, changed)
            fresh = predict_pairs(records.filter(pa.array(near)), model, frequencies=frequencies)
            touching = changed[fresh["uid_l"].to_numpy()] | changed[fresh["uid_r"].to_numpy()]
            pairs = pa.concat_tables([pairs, fresh.filter(pa.array(touching))])
        return changed, pairs.sort_by([("uid_l", "ascending"), ("uid_r", "ascending")])

    def _prints(self, records: pa.Table) -> pa.Table:
        """``uid, system, record_key, print``: an MD5 of each record's matching columns."""
        columns = [c for c in SPLINK_COLUMNS if c != "uid"]
        packed = ", ".join(f'"{c}" := r."{c}"' for c in columns)
        with registered(self._con, "r", records.select(["uid", *_KEYS, *columns])):
            return self._con.sql(
                f"SELECT uid, system, record_key, md5(CAST(to_json(struct_pack({packed})) AS VARCHAR)) AS print "
                "FROM r r ORDER BY uid"
            ).to_arrow_table()

    def _load(self, context: str) -> dict[str, pa.Table] | None:
        path = self.directory / "scores.sealed"
        if not path.is_file():
            return None
        try:
            tables, kept_context = read_tables(self.vault.keyring, path, self._aad("scores"))
        except SealedFileError as exc:
            log.warning("the kept linkage scores cannot be read (%s); scoring every pair again", exc)
            return None
        return tables if kept_context == context else None

    def _store(self, context: str, now: pa.Table, pairs: pa.Table) -> None:
        left, right = pairs["uid_l"], pairs["uid_r"]
        by_keys = {
            f"{column}_{side}": now[column].take(uids)
            for side, uids in (("l", left), ("r", right))
            for column in _KEYS
        }
        kept_pairs = pa.table(
            {
                **by_keys,
                "match_weight": pairs["match_weight"],
                "match_probability": pairs["match_probability"],
            }
        )
        tables = {"records": now.select([*_KEYS, "print"]), "pairs": kept_pairs}
        write_tables(
            self.vault.keyring, self.directory / "scores.sealed", self._aad("scores"), tables, context
        )

    @staticmethod
    def _aad(what: str) -> bytes:
        return _aad(what)


def neighbourhood(con, records: pa.Table, changed: np.ndarray) -> np.ndarray:
    """Which records are changed or share every column of a blocking rule (`BLOCKING`) with a changed
    one: the records whose candidate pairs include every pair of a changed record."""

    def side(rule: tuple[str, ...]) -> str:
        columns = ", ".join(f'unnest("{c}") AS "{c}"' if c in EXPLODED else f'"{c}"' for c in rule)
        return f"(SELECT uid, changed, {columns} FROM r)"

    joins = [
        f"SELECT o.uid FROM {side(rule)} o JOIN {side(rule)} c ON c.changed AND "
        + " AND ".join(f'o."{col}" = c."{col}"' for col in rule)
        for rule in BLOCKING
    ]
    columns = sorted({c for rule in BLOCKING for c in rule})
    table = records.select(["uid", *columns]).append_column("changed", pa.array(changed))
    with registered(con, "r", table):
        near = con.sql(" UNION ".join(["SELECT uid FROM r WHERE changed", *joins])).to_arrow_table()
    mask = np.zeros(records.num_rows, bool)
    mask[near["uid"].to_numpy()] = True
    return mask


def _kept_pairs(con, now: pa.Table, changed: np.ndarray, kept: pa.Table) -> pa.Table:
    """The kept pairs whose two records are present and unchanged, by this run's uids."""
    unchanged = now.select(["uid", *_KEYS]).filter(pa.array(~changed))
    with registered(con, "unchanged", unchanged), registered(con, "kept_pairs", kept):
        return con.sql(
            "SELECT least(a.uid, b.uid) AS uid_l, greatest(a.uid, b.uid) AS uid_r, p.match_weight, "
            "p.match_probability FROM kept_pairs p "
            "JOIN unchanged a ON a.system = p.system_l AND a.record_key = p.record_key_l "
            "JOIN unchanged b ON b.system = p.system_r AND b.record_key = p.record_key_r"
        ).to_arrow_table()


def _blocks_as_coded(model: Mapping[str, Any]) -> bool:
    """Whether ``model`` blocks on `BLOCKING` (the neighbourhood reads it); a model that blocks otherwise
    has every pair scored. Compared with the rules as Splink saves them (`saved_blocking`), so that a day
    without change need not import Splink."""
    saved = model.get("blocking_rules_to_generate_predictions")
    return json.dumps(saved, sort_keys=True) == json.dumps(saved_blocking(), sort_keys=True)


def saved_blocking() -> list[dict[str, Any]]:
    """`BLOCKING` as a saved Splink model lists it (``blocking_rules_to_generate_predictions``)."""
    rules = []
    for rule in BLOCKING:
        terms = [f'l."{c}" = r."{c}"' for c in rule]
        sql = terms[0] if len(terms) == 1 else " AND ".join(f"({t})" for t in terms)
        exploded = [c for c in rule if c in EXPLODED]
        rules.append(
            {
                "blocking_rule": sql,
                "sql_dialect": "duckdb",
                **({"arrays_to_explode": exploded} if exploded else {}),
            }
        )
    return rules
