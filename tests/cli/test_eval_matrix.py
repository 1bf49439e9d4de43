"""`islandbridge eval matrix`: linkage over several simulated streets, per street and the worst per metric."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from islandbridge.cli import main
from islandbridge.devtools import matrix
from islandbridge.devtools.simulator.formats import make_id

ID_A = make_id("511403", pd.Timestamp("1950-01-02").date(), 11)
ID_B = make_id("511403", pd.Timestamp("1960-03-04").date(), 12)


def frames():
    """Two people: A (registry row, grid resident, an incident), B (registry row, a grid resident)."""
    truth = pd.DataFrame(
        [
            ("resident_registry", "t_jm:1", "P1"),
            ("grid_platform", "residents:G1", "P1"),
            ("grid_platform", "events:E1", "P1"),
            ("resident_registry", "t_jm:2", "P2"),
            ("grid_platform", "residents:G2", "P2"),
        ],
        columns=["system", "record_key", "person_id"],
    )
    persons = pd.DataFrame({"person_id": ["P1", "P2"], "id_number": [ID_A, ID_B]})
    ids = pd.DataFrame({"system": truth["system"], "record_key": truth["record_key"], "id_full": None})
    return truth, persons, ids


def predicted(keys):
    truth, _, _ = frames()
    return truth.assign(person_key=keys)[["system", "record_key", "person_key"]]


def test_a_perfect_assignment_scores_one_and_counts_nothing():
    truth, persons, ids = frames()
    row = matrix.score_street(predicted(["a", "a", "a", "b", "b"]), truth, persons, ids)
    assert (row["precision"], row["recall"], row["incident_recall"]) == (1.0, 1.0, 1.0)
    assert (row["clusters_mixing_valid_ids"], row["false_merges"], row["splits"]) == (0, 0, 0)


def test_an_unlinked_incident_costs_incident_and_grid_grid_recall():
    truth, persons, ids = frames()
    row = matrix.score_street(predicted(["a", "a", "x", "b", "b"]), truth, persons, ids)
    assert row["incident_recall"] == 0.0
    assert row["pair_recall"]["grid~grid"] == 0.0
    assert row["splits"] == 1 and row["precision"] == 1.0


def test_a_cluster_of_two_people_with_valid_ids_is_a_mixing_cluster():
    truth, persons, ids = frames()
    row = matrix.score_street(predicted(["a", "a", "a", "a", "b"]), truth, persons, ids)
    assert row["clusters_mixing_valid_ids"] == 1
    assert row["false_merges"] == 1 and row["precision"] < 1.0


def test_worst_takes_the_lowest_rate_and_the_highest_count():
    truth, persons, ids = frames()
    good = matrix.score_street(predicted(["a", "a", "a", "b", "b"]), truth, persons, ids)
    bad = matrix.score_street(predicted(["a", "a", "a", "a", "b"]), truth, persons, ids)
    rows = [{**good, "street": "good"}, {**bad, "street": "bad"}]
    worst = matrix.worst(rows)
    assert worst["precision"]["street"] == "bad"
    assert worst["clusters_mixing_valid_ids"] == {"value": 1, "street": "bad"}


def test_profiles_name_streets_and_unknown_ones_are_refused():
    streets = matrix.streets_for(["default", "default", "reporters"], seed=5)
    assert [(s.name, s.seed) for s in streets] == [("default", 5), ("default:2", 6), ("reporters", 7)]
    assert len(matrix.streets_for(None)) >= 8
    with pytest.raises(ValueError, match="unknown quirks profile"):
        matrix.streets_for(["nope"])


def test_eval_matrix_runs_two_small_streets_and_reports_the_worst(tmp_path, capsys):
    out = tmp_path / "matrix.json"
    code = main(
        [
            "eval",
            "matrix",
            "--sizes",
            "300",
            "--profiles",
            "default",
            "reporters",
            "--workdir",
            str(tmp_path / "work"),
            "--json",
            str(out),
        ]
    )
    assert code == 0
    result = json.loads(out.read_text(encoding="utf-8"))
    assert [(r["street"], r["residents"]) for r in result["streets"]] == [
        ("default", 300),
        ("reporters", 300),
    ]
    for row in result["streets"]:
        assert 0.9 <= row["precision"] <= 1.0 and 0.5 <= row["recall"] <= 1.0
        assert set(row["pair_recall"]) >= {"reg~grid", "grid~grid", "grid~iot", "civ~reg"}
        assert row["cross_id_merges"] == 0
    worst = result["worst"]["300"]
    recall = min(result["streets"], key=lambda r: r["recall"])
    assert worst["recall"] == {"value": recall["recall"], "street": recall["street"]}
    assert set(worst) >= {
        "precision",
        "recall",
        "recall grid~grid",
        "cross_id_merges",
        "clusters_mixing_valid_ids",
    }
    table = capsys.readouterr().out
    assert "worst street per metric at 300 residents" in table
    assert "reporters" in table and "grid~grid" in table
