"""`islandbridge explain` and stable keys on the test street: every link names its rule, masked only; a
record whose non-identifying fields change keeps its key even when its score dips; a contradiction splits,
and the day's churn says why."""

from __future__ import annotations

import json

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from islandbridge.cli import main
from islandbridge.cli.explain import format_changes, format_person
from islandbridge.config import parse_as_of
from islandbridge.devtools.leakscan import needles_from_street
from islandbridge.identity import explain, review
from islandbridge.identity import scoring as scoring_module
from islandbridge.identity.reconcile import reconcile
from tests.identity.support import add_run, copy_version, land, person_key_of, unsealed
from tests.identity.test_review import _config

DAY2 = "2026-11-21"


@pytest.fixture(scope="module")
def needles(street):
    return needles_from_street(street.root / "street")


def _linked(settings, system: str, rule: str = "probabilistic", size: int | None = 2) -> tuple[str, str, str]:
    """(system, record_key, person_key) of a ``system`` record in a person of ``size`` records, linked by ``rule``."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(
            """SELECT m.system, m.record_key, m.person_key FROM core.identity_map m
            JOIN core.identity_links l ON l.ended_run IS NULL AND l.rule = ?
              AND ((l.system_l = m.system AND l.record_key_l = m.record_key)
                OR (l.system_r = m.system AND l.record_key_r = m.record_key))
            WHERE m.system = ? AND m.person_key IN (
                SELECT person_key FROM core.identity_map GROUP BY ALL HAVING ? IS NULL OR count(*) = ?)
            ORDER BY m.record_key LIMIT 1""",
            [rule, system, size, size],
        ).fetchall()[0]


def test_explain_shows_a_persons_records_masked_and_the_rule_of_each_link(warehouse_copy, needles):
    system, key, person = _linked(warehouse_copy, "iot_platform")
    shown = explain.explain_person(warehouse_copy, f"{system}/{key}", actor="tester")
    assert shown["person_key"] == person and len(shown["records"]) == 2
    (link,) = shown["links"]
    assert link["rule"] == "probabilistic" and link["match_probability"] >= 0.98
    text = format_person(shown)
    assert "probabilistic p=" in text and key in text
    assert "): 2 records, 1 link\n" in text  # counted in words, not "record(s)"
    assert all(r["name"] and "*" in r["name"] for r in shown["records"])
    assert not needles.find(text + json.dumps(shown, ensure_ascii=False, default=str))
    assert explain.explain_person(warehouse_copy, person, actor="tester")["records"] == shown["records"]


def test_explain_names_the_id_rule(warehouse_copy, needles):
    _, key, person = _linked(warehouse_copy, "civil_affairs", rule="id", size=None)
    shown = explain.explain_person(warehouse_copy, key, actor="tester")
    assert shown["person_key"] == person and "id" in {link["rule"] for link in shown["links"]}
    assert len(shown["links"]) >= len(shown["records"]) - 1  # every record is joined by some link
    assert not needles.find(format_person(shown))


def test_a_merged_key_is_followed_and_the_output_says_it_was_merged(warehouse_copy):
    _, _, person = _linked(warehouse_copy, "iot_platform")
    with duckdb.connect(str(warehouse_copy.warehouse_path)) as con:
        con.execute(
            "INSERT INTO core.person_key_redirects (old_key, new_key, run_id) VALUES ('pk_gone', ?, 'ib_x')",
            [person],
        )
    shown = explain.explain_person(warehouse_copy, "pk_gone", actor="tester")
    assert shown["person_key"] == person and shown["merged"] == {"from": "pk_gone", "run_id": "ib_x"}
    assert "pk_gone was merged into this person by run ib_x" in format_person(shown)
    assert "merged" not in explain.explain_person(warehouse_copy, person, actor="tester")


def test_a_different_decision_behind_a_split_is_named_with_who_decided_and_when(warehouse_copy, needles):
    """`review decide … different` on a linked pair: explain names the decision (pending, then kept
    apart by the next reconcile), the other record masked and its person now."""
    system, key, person = _linked(warehouse_copy, "iot_platform")
    (partner,) = (
        r
        for r in explain.explain_person(warehouse_copy, person, actor="t")["records"]
        if r["record_key"] != key
    )
    other = f"{partner['system']}/{partner['record_key']}"
    decided = review.decide(
        warehouse_copy, f"{system}/{key}~{other}", "different", actor="王科员", note="母女"
    )
    (pending,) = explain.explain_person(warehouse_copy, f"{system}/{key}", actor="t")["apart"]
    assert pending["status"] == "pending" and pending["other"]["person_key"] == person
    with duckdb.connect(str(warehouse_copy.warehouse_path)) as con:
        add_run(con, DAY2)
    reconcile(warehouse_copy, parse_as_of(DAY2))
    shown = explain.explain_person(warehouse_copy, f"{system}/{key}", actor="t")
    (apart,) = shown["apart"]
    assert (apart["pair"], apart["record"], apart["status"]) == (decided["pair"], f"{system}/{key}", "apart")
    assert apart["other"]["record_key"] == partner["record_key"] and "*" in apart["other"]["name"]
    assert apart["other"]["person_key"] not in (None, shown["person_key"])
    text = format_person(shown)
    assert f"≠ {other} (now {apart['other']['person_key']}): different by 王科员" in text
    assert "kept apart; note: 母女" in text
    assert not needles.find(text + json.dumps(shown, ensure_ascii=False, default=str))


def test_a_decisions_status_is_what_the_reconcile_recorded_not_what_the_clocks_say(warehouse_copy):
    """A `different` decision on a pair still together is `pending` when the newest reconcile did not name
    it a conflict, even when its clock reads earlier than the reconcile's or the reconcile's is unrecorded;
    `not_honoured` when it did; `unknown` when the reconcile recorded no decisions. One whose other record
    is not in the map is `absent`, not `kept apart`."""
    system, key, _ = _linked(warehouse_copy, "iot_platform")
    shown = explain.explain_person(warehouse_copy, f"{system}/{key}", actor="t")
    run, (partner,) = shown["run_id"], [r for r in shown["records"] if r["record_key"] != key]
    other = f"{partner['system']}/{partner['record_key']}"
    pair = review.decide(warehouse_copy, f"{system}/{key}~{other}", "different", actor="王科员")["pair"]

    def after(sql: str, params: list) -> dict:
        with duckdb.connect(str(warehouse_copy.warehouse_path)) as con:
            con.execute(sql, params)
        return explain.explain_person(warehouse_copy, f"{system}/{key}", actor="t")

    def statuses(found: dict) -> dict[str, str]:
        return {a["other"]["record_key"]: a["status"] for a in found["apart"]}

    skewed = "UPDATE core.identity_decisions SET decided_at = TIMESTAMPTZ '2000-01-01 00:00:00+00' WHERE pair_id = ?"
    assert statuses(after(skewed, [pair])) == {partner["record_key"]: "pending"}
    unrecorded = "UPDATE meta.identity_runs SET reconciled_at = NULL WHERE run_id = ?"
    assert statuses(after(unrecorded, [run])) == {partner["record_key"]: "pending"}
    conflict = {
        "applied": 0,
        "absent": 0,
        "conflicts": [{"pair": pair, "decision": "different", "reason": "same_id"}],
    }
    recorded = "UPDATE meta.identity_runs SET decisions = ? WHERE run_id = ?"
    assert statuses(after(recorded, [json.dumps(conflict), run])) == {partner["record_key"]: "not_honoured"}
    assert statuses(after(recorded, [None, run])) == {partner["record_key"]: "unknown"}
    gone = ("grid_platform", "residents:GONE")
    found = after(
        "INSERT INTO core.identity_decisions SELECT max(seq) + 1, ?, ?, ?, ?, ?, 'different', 'x', NULL, now() "
        "FROM core.identity_decisions",
        [review.pair_id((system, key), gone), system, key, *gone],
    )
    assert statuses(found) == {partner["record_key"]: "unknown", "residents:GONE": "absent"}
    assert "the other record is not in the newest reconcile" in format_person(found)


def test_an_unknown_target_is_refused_with_what_to_name(warehouse_copy):
    with pytest.raises(explain.ExplainError, match="SYSTEM/RECORD_KEY"):
        explain.explain_person(warehouse_copy, "no_such_system/nothing", actor="tester")


def test_a_status_change_keeps_the_key_and_links_even_when_the_score_dips(warehouse_copy, monkeypatch):
    """A grid incident whose status changed, scored below the threshold that day (as when term frequencies
    move), keeps its person and the link made on day 1: its identifying fields did not change."""
    system, key, person = _linked(warehouse_copy, "grid_platform")
    with duckdb.connect(str(warehouse_copy.warehouse_path)) as con:
        run1 = con.execute("SELECT max(_run_id) FROM raw.grid__events").fetchall()[0][0]
        run2, _ = add_run(con, DAY2)
        copy_version(con, "grid__events", key, run1, run2, warehouse_copy)
        con.execute(
            "UPDATE raw.grid__events SET status = CASE WHEN status = '已办结' THEN '处理中' ELSE '已办结' END "
            "WHERE _record_key = ? AND _run_id = ?",
            [key, run2],
        )
    scored = scoring_module.predict_pairs

    def dipped(records, model, **options):
        pairs = scored(records, model, **options)
        uid = records["record_key"].to_pylist().index(key)
        touches = pc.or_(pc.equal(pairs["uid_l"], uid), pc.equal(pairs["uid_r"], uid))
        low = pc.if_else(touches, pa.scalar(0.9), pairs["match_probability"])
        return pairs.set_column(pairs.schema.get_field_index("match_probability"), "match_probability", low)

    monkeypatch.setattr(scoring_module, "predict_pairs", dipped)
    summary = reconcile(warehouse_copy, parse_as_of(DAY2))
    with duckdb.connect(str(warehouse_copy.warehouse_path), read_only=True) as con:
        assert person_key_of(con, system, key) == person
        made = con.execute(
            "SELECT run_id FROM core.identity_links WHERE ended_run IS NULL AND ? IN (record_key_l, record_key_r)",
            [key],
        ).fetchall()
    assert made == [(run1,)]
    assert (summary["churn"], summary["splits"], summary["changes"]["records_with_changed_fields"]) == (
        0,
        0,
        0,
    )


def test_a_contradiction_splits_and_the_days_churn_explains_it(
    street, warehouse_copy, needles, monkeypatch, capsys, tmp_path
):
    """A card given to someone else (a new name): holder and resident part; the split is explained."""
    _, key, person = _linked(warehouse_copy, "iot_platform")
    (partner,) = (
        r
        for r in explain.explain_person(warehouse_copy, person, actor="t")["records"]
        if r["record_key"] != key
    )
    with duckdb.connect(str(warehouse_copy.warehouse_path)) as con:
        (row,) = unsealed(
            con,
            warehouse_copy,
            f"SELECT _record_key AS record_key, _run_id AS last_seen_run, * FROM raw.iot__cardholders "
            f"WHERE _record_key = '{key}' ORDER BY _run_id DESC LIMIT 1",
            source="iot",
            stream="cardholders",
            columns=["name", "phone"],
        )
        run2, _ = add_run(con, DAY2)
        fields = {
            c: v for c, v in row.items() if not c.startswith("_") and c not in ("record_key", "last_seen_run")
        }
        land(
            con, "iot__cardholders", run2, key, {**fields, "name": "欧阳测试", "phone": None}, warehouse_copy
        )
    summary = reconcile(warehouse_copy, parse_as_of(DAY2))
    with duckdb.connect(str(warehouse_copy.warehouse_path), read_only=True) as con:
        apart = {
            person_key_of(con, "iot_platform", key),
            person_key_of(con, partner["system"], partner["record_key"]),
        }
    assert len(apart) == 2 and person in apart  # one of them keeps the key, the other is split off
    assert summary["changes"]["splits_explained"] >= 1 and summary["changes"]["splits_unexplained"] == 0
    assert summary["changes"]["records_split"] == 1
    shown = explain.changes(warehouse_copy, parse_as_of(DAY2))
    split = [r["record_key"] for r in shown["changed_records"] if r["change"] == "split"]
    assert split in ([key], [partner["record_key"]])
    config = _config(street, warehouse_copy, tmp_path)
    assert main(["explain", "--changes", "--config", config]) == 0
    table = capsys.readouterr().out
    assert (
        run2 in table
        and "unexplained" in table
        and table == format_changes(explain.changes(warehouse_copy)) + "\n"
    )
    assert main(["explain", f"iot_platform/{key}", "--config", config, "--actor", "tester"]) == 0
    assert not needles.find(capsys.readouterr().out)


@pytest.mark.parametrize(
    ("typed", "shown"),
    [("511403194310287757", "511403********7757"), ("秦光明", "秦*明"), ("18798377461", "187****7461")],
)
def test_a_target_that_is_personal_data_is_masked_in_the_error(warehouse_copy, typed, shown):
    """Operators paste errors into tickets: an ID number, name or phone typed as the target comes back
    masked as `explain` masks values, never whole."""
    with pytest.raises(explain.ExplainError) as refused:
        explain.explain_person(warehouse_copy, typed, actor="tester")
    assert shown in str(refused.value) and typed not in str(refused.value)
