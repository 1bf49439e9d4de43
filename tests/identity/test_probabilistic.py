"""The model's name comparison: a common name is weak evidence, a rare one strong (term frequencies).

The frequencies are the street's own: Splink counts each name among the records it scores. A model with
fixed m and u probabilities is enough to show it; no training is needed. Every name is synthetic.
"""

from __future__ import annotations

from islandbridge.identity.probabilistic import model_settings, predict_pairs
from tests.identity.strategies import record, table


def _fixed_model() -> dict:
    """The untrained settings with every non-null level given the same m and u (the name levels too)."""
    model = model_settings()
    for comparison in model["comparisons"]:
        levels = [level for level in comparison["comparison_levels"] if not level.get("is_null_level")]
        for i, level in enumerate(levels):
            level["m_probability"] = 0.9 if i == 0 else 0.1 / (len(levels) - 1)
            level["u_probability"] = 0.01 if i == 0 else 0.99 / (len(levels) - 1)
    model["probability_two_random_records_match"] = 0.001
    return model


def test_a_rare_name_shared_in_a_flat_weighs_more_than_a_common_one():
    common = [("张伟", "zhangwei", "zhang", "wei")] * 12
    rows = [
        record(i, name_key=n, pinyin_key=p, surname_pinyin=s, given_pinyin=g, house_key=f"XQ001|{i}|1|101")
        for i, (n, p, s, g) in enumerate(common)
    ]
    rows[1]["house_key"], rows[1]["room_key"] = (
        rows[0]["house_key"],
        rows[0]["room_key"],
    )  # two 张伟, one flat
    for uid in (12, 13):
        rows.append(
            record(
                uid,
                name_key="努尔古丽",
                pinyin_key="nuerguli",
                surname_pinyin="nu",
                given_pinyin="erguli",
                house_key="XQ002|1|1|101",
            )
        )
    scored = predict_pairs(table(rows), _fixed_model(), threshold=0.0).to_pylist()
    weight = {(p["uid_l"], p["uid_r"]): p["match_weight"] for p in scored}
    assert weight[(12, 13)] > weight[(0, 1)] + 2  # 2 of 14 records vs 12 of 14: log2(6) ≈ 2.6 bits


def test_an_em_session_whose_m_underflows_is_left_out_and_the_settings_are_restored(caplog):
    """Splink refuses an m of 0 in the middle of a session, after the session has already dropped its
    blocked comparison from the linker's settings: the session is left out and the settings restored."""
    import types

    from islandbridge.identity.probabilistic import _expectation_maximisation

    class Settings:
        def __init__(self, comparisons):
            self.comparisons = comparisons

        def copy(self):
            return Settings(list(self.comparisons))

    linker = types.SimpleNamespace(_settings_obj=types.SimpleNamespace(core_model_settings=None))
    linker._settings_obj.core_model_settings = Settings(["name", "birth", "house"])

    def failing_session(rule, max_pairs):
        linker._settings_obj.core_model_settings.comparisons = ["name", "house"]  # as Splink does first
        raise ValueError("m_probability value 0.0 is below the minimum allowed value of 1e-300.")

    linker.training = types.SimpleNamespace(
        estimate_parameters_using_expectation_maximisation=failing_session
    )
    _expectation_maximisation(linker, "birth", rule=None)
    assert linker._settings_obj.core_model_settings.comparisons == ["name", "birth", "house"]
    assert "blocked on birth" in caplog.text

    def other_error(rule, max_pairs):
        raise ValueError("something else")

    linker.training.estimate_parameters_using_expectation_maximisation = other_error
    try:
        _expectation_maximisation(linker, "birth", rule=None)
    except ValueError as exc:
        assert "something else" in str(exc)
    else:
        raise AssertionError("another ValueError must propagate")
