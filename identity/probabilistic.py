"""Probabilistic record linkage with Splink (Fellegi-Sunter on DuckDB), and the evidence rules around it.

The model compares two records on six fields, each with levels from most to least alike:

========  =====================================================================================
name      exact simplified name (term-frequency adjusted) · same pinyin (TF) · Jaro-Winkler of
          the pinyin ≥ 0.9 · different
birth     same date · same year-month where one side has the month only (高龄补贴's 出生年月) ·
          different
id        same full number · masked number consistent with the other (region prefix and last four
          characters) · a number whose check digit fails within two edits of the other · different
phone     a shared number · none shared
house     same flat (estate, building, unit, room) · same building/unit/room where one side has no
          estate · different, where one is an incident's place rather than a home · different
sex       same · different
========  =====================================================================================

Blocking (`blocking_rules`) keeps the candidate pairs near-linear in the number of records: equal full
number; equal masked signature; pinyin with room, with birth month or with a phone; surname with
birth date; given name with flat. At 300,000 residents each block holds a household or a handful of
namesakes, never a district.

`train_model` estimates the parameters (random-sampled u, the match prior from near-certain rules, EM
for m on three blockings) and returns the model as a JSON-able dict: no data values, only levels and
probabilities. `predict_pairs` scores the candidate pairs with a saved model. Splink runs on its own
in-memory DuckDB connection, so normalised names and numbers never touch the warehouse file.

`pair_evidence` is the plain-Python reading of a pair that the precision rules use: a link needs name,
birth date or ID-number agreement in addition to whatever the phone and the flat say
(`has_identity_evidence`), because a shared phone or flat is what a household has in common.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, NamedTuple

import pyarrow as pa

from islandbridge import storage

log = logging.getLogger(__name__)

MODEL_FORMAT = "islandbridge-identity/1"  # bump when the features or comparisons change: forces a retrain
MATCH_PROBABILITY = 0.98  # a link is made at or above this (and with identity evidence)
REVIEW_PROBABILITY = 0.5  # pairs between this and MATCH_PROBABILITY go to review, not into a person
SPLINK_COLUMNS = (
    "uid",
    "name_key",
    "pinyin_key",
    "surname_pinyin",
    "given_pinyin",
    "id_full",
    "id_ps",
    "id_digits",
    "birth",
    "birth_ym",
    "sex",
    "phones",
    "house_key",
    "room_key",
    "is_home",
)
U_SAMPLE_PAIRS = 5e6
EM_MAX_PAIRS = 2e6
SEED = 20261120


def _level(sql: str, label: str, **options: Any) -> dict[str, Any]:
    return {"sql_condition": sql, "label_for_charts": label, **options}


def _null(sql: str) -> dict[str, Any]:
    return _level(sql, "null", is_null_level=True)


COMPARISONS: tuple[tuple[str, tuple[dict[str, Any], ...]], ...] = (
    (
        "name",
        (
            _null("name_key_l IS NULL OR name_key_r IS NULL"),
            _level("name_key_l = name_key_r", "exact", tf_adjustment_column="name_key"),
            _level("pinyin_key_l = pinyin_key_r", "same pinyin", tf_adjustment_column="pinyin_key"),
            _level("jaro_winkler_similarity(pinyin_key_l, pinyin_key_r) >= 0.9", "similar pinyin"),
            _level("ELSE", "different"),
        ),
    ),
    (
        "birth",
        (
            _null("birth_ym_l IS NULL OR birth_ym_r IS NULL"),
            _level("birth_l = birth_r", "same date"),
            _level("birth_ym_l = birth_ym_r AND (birth_l IS NULL OR birth_r IS NULL)", "same month"),
            _level("ELSE", "different"),
        ),
    ),
    (
        "id",
        (
            _null(
                "coalesce(id_full_l, id_ps_l, id_digits_l) IS NULL OR coalesce(id_full_r, id_ps_r, id_digits_r) IS NULL"
            ),
            _level("id_full_l = id_full_r", "same number"),
            _level("id_ps_l = id_ps_r AND (id_full_l IS NULL OR id_full_r IS NULL)", "masked consistent"),
            _level(
                "(id_digits_l IS NOT NULL OR id_digits_r IS NOT NULL) AND "
                "levenshtein(coalesce(id_full_l, id_digits_l), coalesce(id_full_r, id_digits_r)) <= 2",
                "near",
            ),
            _level("ELSE", "different"),
        ),
    ),
    (
        "phone",
        (
            _null("coalesce(len(phones_l), 0) = 0 OR coalesce(len(phones_r), 0) = 0"),
            _level("len(list_intersect(phones_l, phones_r)) >= 1", "shared"),
            _level("ELSE", "different"),
        ),
    ),
    (
        "house",
        (
            _null("room_key_l IS NULL OR room_key_r IS NULL"),
            _level("house_key_l = house_key_r", "same flat"),
            _level("room_key_l = room_key_r AND (house_key_l IS NULL OR house_key_r IS NULL)", "same room"),
            _level("NOT (is_home_l AND is_home_r)", "different, one is a place"),
            _level("ELSE", "different"),
        ),
    ),
    (
        "sex",
        (
            _null("sex_l IS NULL OR sex_r IS NULL"),
            _level("sex_l = sex_r", "same"),
            _level("ELSE", "different"),
        ),
    ),
)


# The candidate pairs' blocking (see the module docstring): records equal on every column of a rule are
# paired; `EXPLODED` columns are lists, paired on any shared element. `scoring.neighbourhood` reads it.
BLOCKING: tuple[tuple[str, ...], ...] = (
    ("id_full",),
    ("id_ps",),
    ("pinyin_key", "room_key"),
    ("pinyin_key", "birth_ym"),
    ("pinyin_key", "phones"),
    ("surname_pinyin", "birth"),
    ("given_pinyin", "house_key"),
)
EXPLODED = ("phones",)
# The columns whose term frequencies adjust the name levels' weights.
TF_COLUMNS = tuple(
    level["tf_adjustment_column"]
    for _, levels in COMPARISONS
    for level in levels
    if "tf_adjustment_column" in level
)


def blocking_rules() -> list:
    """The rules that generate candidate pairs (`BLOCKING`)."""
    from splink import block_on

    return [
        block_on(*rule, arrays_to_explode=[c for c in rule if c in EXPLODED] or None) for rule in BLOCKING
    ]


PRIOR_RECALL = 0.8


def prior_rules() -> tuple:
    """Near-certain rules whose matches, over their assumed recall (`PRIOR_RECALL`), give the match prior."""
    from splink import block_on

    return (block_on("id_full"), block_on("name_key", "birth"), block_on("name_key", "house_key"))


def model_settings() -> dict[str, Any]:
    """The untrained Splink settings: comparisons, blocking rules and the unique id column."""
    from splink import SettingsCreator
    from splink.comparison_library import CustomComparison

    creator = SettingsCreator(
        link_type="dedupe_only",
        unique_id_column_name="uid",
        comparisons=[CustomComparison(list(levels), output_column_name=name) for name, levels in COMPARISONS],
        blocking_rules_to_generate_predictions=blocking_rules(),
        retain_matching_columns=False,
        retain_intermediate_calculation_columns=False,
        probability_two_random_records_match=1e-4,
        linker_uid="islandbridge",
    )
    return creator.get_settings("duckdb").as_dict()


def train_model(records: pa.Table, *, seed: int = SEED) -> dict[str, Any]:
    """Estimate the model's parameters on ``records`` (`records.FEATURES`); returns the Splink model dict.

    u from a seeded random sample of pairs; the match prior from `prior_rules` (equal number, name with
    birth date, name with flat) over an assumed recall of `PRIOR_RECALL`; m by EM blocked on pinyin, on
    birth date and on flat, so that each comparison is trained on pairs it does not block on. Raises
    ``ValueError`` with fewer than two records.
    """
    from splink import block_on

    if records.num_rows < 2:
        raise ValueError("cannot train a linkage model on fewer than two records; sync the sources first")
    with _linker(records, model_settings()) as (linker, _):
        linker.training.estimate_probability_two_random_records_match(
            list(prior_rules()), recall=PRIOR_RECALL
        )
        linker.training.estimate_u_using_random_sampling(max_pairs=U_SAMPLE_PAIRS, seed=seed)
        for name, rule in (
            ("pinyin_key", block_on("pinyin_key")),
            ("birth", block_on("birth")),
            ("house_key", block_on("house_key")),
        ):
            _expectation_maximisation(linker, name, rule)
        return linker.misc.save_model_to_json()


def _expectation_maximisation(linker, name: str, rule) -> None:
    """One EM session blocked on ``rule``; a session whose estimate of some m underflows to 0 is dropped.

    On a small or very clean street a level may see no matching pair in a session (e.g. no two records
    of one person with different names among the pairs blocked on birth date): the estimate of its m is
    then 0, which Splink refuses (a ValueError in the middle of the session, after the session has
    already removed its blocked comparison from the linker's settings). The other sessions still train
    every comparison this one would have, so the session is dropped: the settings go back to what they
    were before it, and a warning says so (counts only, no data).
    """
    saved = linker._settings_obj.core_model_settings.copy()  # the session mutates it before it can fail
    try:
        linker.training.estimate_parameters_using_expectation_maximisation(rule, max_pairs=EM_MAX_PAIRS)
    except ValueError as exc:
        if "below the minimum allowed value" not in str(exc):
            raise
        linker._settings_obj.core_model_settings = saved
        log.warning(
            "linkage training: the EM session blocked on %s estimated an m probability of 0 (a level no "
            "matching pair showed); that session is left out, the others train its comparisons",
            name,
        )


def predict_pairs(
    records: pa.Table,
    model: Mapping[str, Any],
    threshold: float = REVIEW_PROBABILITY,
    frequencies: Mapping[str, pa.Table] | None = None,
) -> pa.Table:
    """Scored candidate pairs at or above ``threshold``: uid_l < uid_r, match_weight, match_probability.

    ``frequencies`` (`term_frequencies`, by column of `TF_COLUMNS`): the name frequencies to weigh name
    agreement with; without them Splink counts them in ``records``. Deterministic for a model, its
    frequencies and a record table; with given frequencies a pair's score depends on its two records
    only. The pairs are sorted by (uid_l, uid_r).
    """
    if records.num_rows < 2:
        return pa.table(
            {
                "uid_l": pa.array([], pa.int64()),
                "uid_r": pa.array([], pa.int64()),
                "match_weight": pa.array([], pa.float64()),
                "match_probability": pa.array([], pa.float64()),
            }
        )
    with _linker(records, dict(model), frequencies) as (linker, con):
        scored = linker.inference.predict(threshold_match_probability=threshold, warning_mode="never")
        return con.sql(
            f"SELECT least(uid_l, uid_r) AS uid_l, greatest(uid_l, uid_r) AS uid_r, match_weight, "
            f"match_probability FROM {scored.physical_name} ORDER BY 1, 2"
        ).to_arrow_table()


def term_frequencies(records: pa.Table, model: Mapping[str, Any]) -> dict[str, pa.Table]:
    """Each `TF_COLUMNS` column's term frequencies in ``records``, as Splink counts them when it predicts
    (``<column>, tf_<column>``: a value's share of the non-null values), sorted by value."""
    with _linker(records, dict(model)) as (linker, _):
        return {
            column: linker.table_management.compute_tf_table(column).as_pyarrow_table().sort_by(column)
            for column in TF_COLUMNS
        }


class _linker:
    """A Splink linker over an in-memory DuckDB holding only the matching columns (and the name
    frequencies to use, when given); closed on exit.

    Splink's own progress messages (counts and parameters, never data) are held to warnings while it
    runs: at INFO they would drown the pipeline's log.
    """

    def __init__(
        self, records: pa.Table, settings: dict[str, Any], frequencies: Mapping[str, pa.Table] | None = None
    ) -> None:
        from splink import DuckDBAPI, Linker

        self._splink_log = logging.getLogger("splink")
        self._level = self._splink_log.level
        self._splink_log.setLevel(logging.ERROR)
        self._con = storage.connect()
        api = DuckDBAPI(self._con)
        self._linker = Linker(api.register(records.select(list(SPLINK_COLUMNS))), settings, log_level=None)
        for column, table in (frequencies or {}).items():
            self._linker.table_management.register_term_frequency_lookup(api.register(table), column)

    def __enter__(self):
        return self._linker, self._con

    def __exit__(self, *exc: object) -> None:
        self._con.close()
        self._splink_log.setLevel(self._level)


class Evidence(NamedTuple):
    """What two records agree or disagree on, field by field: 'same', 'similar', 'different' or None."""

    name: str | None
    birth: str | None
    id: str | None
    phone: str | None
    house: str | None


def pair_evidence(a: Mapping[str, Any], b: Mapping[str, Any]) -> Evidence:
    """Read a pair of records (dicts of `records.FEATURES`) field by field; symmetric in ``a`` and ``b``.

    >>> pair_evidence({"name_key": "张伟", "phones": ["+8613800138000"]},
    ...               {"name_key": "张伟", "phones": ["+8613800138000"]}).phone
    'same'
    """
    return Evidence(_name(a, b), _birth(a, b), _id(a, b), _phone(a, b), _house(a, b))


def has_identity_evidence(evidence: Evidence) -> bool:
    """True when the pair agrees on the name, the birth date or the ID number, not only phone or flat."""
    return evidence.name == "same" or evidence.birth == "same" or evidence.id == "same"


def _name(a, b) -> str | None:
    if not a.get("name_key") or not b.get("name_key"):
        return None
    if a["name_key"] == b["name_key"] or (a.get("pinyin_key") and a.get("pinyin_key") == b.get("pinyin_key")):
        return "same"
    return "different"


def _birth(a, b) -> str | None:
    if a.get("birth") and b.get("birth"):
        return "same" if a["birth"] == b["birth"] else "different"
    if a.get("birth_ym") and b.get("birth_ym"):
        return "similar" if a["birth_ym"] == b["birth_ym"] else "different"
    return None


def _id(a, b) -> str | None:
    if a.get("id_full") and b.get("id_full"):
        return "same" if a["id_full"] == b["id_full"] else "different"
    if a.get("id_ps") and b.get("id_ps"):
        return "same" if a["id_ps"] == b["id_ps"] else "different"
    return None


def _phone(a, b) -> str | None:
    left, right = set(a.get("phones") or ()), set(b.get("phones") or ())
    if not left or not right:
        return None
    return "same" if left & right else "different"


def _house(a, b) -> str | None:
    if a.get("house_key") and b.get("house_key"):
        return "same" if a["house_key"] == b["house_key"] else "different"
    if a.get("room_key") and b.get("room_key"):
        return "similar" if a["room_key"] == b["room_key"] else "different"
    return None
