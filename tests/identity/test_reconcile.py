"""The identity step end to end on a simulated 3,000-resident street synced through the pipeline."""

from __future__ import annotations

import dataclasses
import logging
import re
import sqlite3
from collections import Counter

import duckdb
import pytest

from islandbridge.config import parse_as_of
from islandbridge.devtools.linkage import evaluate_linkage
from islandbridge.errors import ConfigError
from islandbridge.identity.reconcile import reconcile, train_linkage
from islandbridge.privacy.keys import new_keyring_text
from islandbridge.transforms.normalize import normalize_id, normalize_phones
from tests.conftest import AS_OF
from tests.identity.support import add_run, copy_version, land, make_id, person_key_of, unsealed

DAY = AS_OF.isoformat()
IDENTITY_TABLES = (
    "core.identity_map",
    "core.identity_map_before",
    "core.identity_events",
    "core.person_key_redirects",
    "core.identity_review",
    "core.identity_decisions",
    "meta.identity_runs",
    "meta.linkage_models",
)


def _map(settings) -> list[tuple]:
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return con.execute(
            "SELECT system, record_key, person_key FROM core.identity_map ORDER BY ALL"
        ).fetchall()


def test_accuracy_meets_the_targets(street, reconciled):
    """Pairwise precision ≥ 0.995 and recall ≥ 0.97 overall, no person with two valid ID numbers."""
    scores = evaluate_linkage(street.settings, street.truth)
    assert scores["overall"]["precision"] >= 0.995, scores["overall"]
    assert scores["overall"]["recall"] >= 0.97, scores["overall"]
    assert scores["cross_id_merges"] == 0
    assert scores["records_unmapped"] == 0


def test_every_system_pair_is_precise(street, reconciled):
    """No system pair falls below the precision target on its own."""
    scores = evaluate_linkage(street.settings, street.truth)
    low = {pair: s["precision"] for pair, s in scores["by_system_pair"].items() if s["precision"] < 0.995}
    assert not low


def test_first_run_trains_saves_version_1_and_says_so(synced_copy, caplog):
    """With no saved model the first run trains version 1, logs it, and the next run reuses it."""
    with caplog.at_level(logging.INFO, logger="islandbridge"):
        first = reconcile(synced_copy, parse_as_of(DAY))
    assert (first["model_trained"], first["model_version"]) == (True, 1)
    assert "trained version 1" in caplog.text
    second = reconcile(synced_copy, parse_as_of(DAY))
    assert (second["model_trained"], second["model_version"]) == (False, 1)
    with duckdb.connect(str(synced_copy.warehouse_path), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM meta.linkage_models").fetchall() == [(1,)]


def test_training_on_purpose_makes_a_new_version_that_runs_use(warehouse_copy):
    """`train_linkage` saves version 2; the next reconcile uses it without retraining."""
    assert train_linkage(warehouse_copy)["model_version"] == 2
    summary = reconcile(warehouse_copy, parse_as_of(DAY))
    assert (summary["model_version"], summary["model_trained"]) == (2, False)


def test_unchanged_rerun_changes_no_key(warehouse_copy):
    """Re-running the same as-of, and a later as-of with nothing new, leave every key as it was."""
    before = _map(warehouse_copy)
    again = reconcile(warehouse_copy, parse_as_of(DAY))
    with duckdb.connect(str(warehouse_copy.warehouse_path)) as con:
        add_run(con, "2026-11-21")
    later = reconcile(warehouse_copy, parse_as_of("2026-11-21"))
    assert (again["churn"], again["merges"], again["splits"]) == (0, 0, 0)
    assert (later["churn"], later["merges"], later["splits"]) == (0, 0, 0)
    assert _map(warehouse_copy) == before


def test_a_new_record_joins_its_existing_person(warehouse_copy):
    """A new door-card holder with a resident's name, phone and flat gets that resident's key."""
    with duckdb.connect(str(warehouse_copy.warehouse_path)) as con:
        residents = unsealed(
            con,
            warehouse_copy,
            """
            SELECT j._record_key AS record_key, j._run_id AS last_seen_run, j.jmid, f.xqbm, f.ld, f.dy, f.fh
            FROM raw.registry__t_jm j JOIN raw.registry__t_fw f USING (fwbh) WHERE j.zt = '1'
            ORDER BY j.jmid""",
            source="registry",
            stream="t_jm",
            columns=["xm", "lxdh"],
        )
        names = Counter((r["xm"] or "").strip() for r in residents)
        pick = next(
            r
            for r in residents
            if re.fullmatch(r"1[0-9]{10}", r["lxdh"] or "")
            and len((r["xm"] or "").strip()) == 3
            and names[r["xm"].strip()] == 1
        )
        jmid, name, phone, estate, ld, dy, fh = (
            pick[c] for c in ("jmid", "xm", "lxdh", "xqbm", "ld", "dy", "fh")
        )
        expected = person_key_of(con, "resident_registry", f"t_jm:{jmid}")
        run_id, _ = add_run(con, "2026-11-21")
        land(
            con,
            "iot__cardholders",
            run_id,
            "cardholders:H9000001",
            {
                "holder_id": "H9000001",
                "name": name,
                "phone": phone,
                "estate_code": estate,
                "building": ld,
                "unit": dy,
                "room": fh,
                "updated_at": "2026-11-21T02:00:00Z",
            },
            warehouse_copy,
        )
    summary = reconcile(warehouse_copy, parse_as_of("2026-11-21"))
    with duckdb.connect(str(warehouse_copy.warehouse_path), read_only=True) as con:
        assert person_key_of(con, "iot_platform", "cardholders:H9000001") == expected
    assert summary["churn"] == 0


def test_new_evidence_linking_two_persons_records_a_merge_with_both_keys(warehouse_copy):
    """A grid record that gains a phone and a flat joins a card holder: one key survives, one redirects."""
    name, phone, number = "司徒晓岚", "19912345678", make_id()
    with duckdb.connect(str(warehouse_copy.warehouse_path)) as con:
        estate = con.execute("SELECT xqmc FROM raw.registry__t_xq WHERE xqbm = 'XQ001'").fetchall()[0][0]
        run2, _ = add_run(con, "2026-11-21")
        land(
            con,
            "iot__cardholders",
            run2,
            "cardholders:H9000002",
            {
                "holder_id": "H9000002",
                "name": name,
                "phone": phone,
                "estate_code": "XQ001",
                "building": "1",
                "unit": "1",
                "room": "101",
            },
            warehouse_copy,
        )
        grid = {"person_id": "GP900001", "name": name, "gender": "女", "id_card": number}
        land(
            con,
            "grid__residents",
            run2,
            "residents:GP900001",
            {**grid, "address": f"{estate}9栋9单元909室"},
            warehouse_copy,
        )
    reconcile(warehouse_copy, parse_as_of("2026-11-21"))
    with duckdb.connect(str(warehouse_copy.warehouse_path)) as con:
        card_key = person_key_of(con, "iot_platform", "cardholders:H9000002")
        grid_key = person_key_of(con, "grid_platform", "residents:GP900001")
        run3, _ = add_run(con, "2026-11-22")
        land(
            con,
            "grid__residents",
            run3,
            "residents:GP900001",
            {**grid, "phone": phone, "address": f"{estate}1栋1单元101室"},
            warehouse_copy,
        )
    assert card_key != grid_key
    summary = reconcile(warehouse_copy, parse_as_of("2026-11-22"))
    with duckdb.connect(str(warehouse_copy.warehouse_path), read_only=True) as con:
        merged = person_key_of(con, "iot_platform", "cardholders:H9000002")
        assert person_key_of(con, "grid_platform", "residents:GP900001") == merged
        events = con.execute(
            "SELECT event, old_key, new_key FROM core.identity_events WHERE run_id = ?", [run3]
        ).fetchall()
        redirects = con.execute("SELECT old_key, new_key FROM core.person_key_redirects").fetchall()
    assert len(events) == 1 and events[0][0] == "merge"
    assert {events[0][1], events[0][2]} == {card_key, grid_key} and events[0][2] == merged
    assert redirects == [(events[0][1], merged)]
    assert (summary["merges"], summary["churn"]) == (1, 1)


def test_newest_version_is_used_and_deleted_records_leave_the_map(warehouse_copy):
    """A record's newest raw version wins; a key the source deleted is no longer mapped."""
    with duckdb.connect(str(warehouse_copy.warehouse_path)) as con:
        gone, kept = (
            r[0]
            for r in con.execute(
                "SELECT _record_key FROM raw.iot__cardholders ORDER BY _record_key LIMIT 2"
            ).fetchall()
        )
        run2, _ = add_run(con, "2026-11-21")
        con.execute("INSERT INTO meta.deletions VALUES (?, 'iot', 'cardholders', ?)", [run2, gone])
        first_run = con.execute(
            "SELECT _run_id FROM raw.iot__cardholders WHERE _record_key = ?", [kept]
        ).fetchone()[0]
        copy_version(con, "iot__cardholders", kept, first_run, run2, warehouse_copy)
    reconcile(warehouse_copy, parse_as_of("2026-11-21"))
    with duckdb.connect(str(warehouse_copy.warehouse_path), read_only=True) as con:
        rows = dict(
            (
                (k, (f, last))
                for k, f, last in con.execute(
                    "SELECT record_key, first_seen_run, last_seen_run FROM core.identity_map "
                    "WHERE system = 'iot_platform' AND record_key IN (?, ?)",
                    [gone, kept],
                ).fetchall()
            )
        )
    assert gone not in rows
    assert rows[kept][1] == run2 and rows[kept][0] != run2


def _identity_state(settings) -> dict:
    """The identity tables as an in-order run leaves them, without wall-clock times."""
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return {
            "map": con.execute("SELECT * FROM core.identity_map ORDER BY ALL").fetchall(),
            "events": con.execute(
                "SELECT run_id, event, old_key, new_key FROM core.identity_events ORDER BY ALL"
            ).fetchall(),
            "redirects": con.execute("SELECT * FROM core.person_key_redirects ORDER BY ALL").fetchall(),
            "runs": con.execute(
                "SELECT * EXCLUDE (reconciled_at) FROM meta.identity_runs ORDER BY as_of"
            ).fetchall(),
            "history": con.execute("SELECT * FROM core.identity_map_changes ORDER BY ALL").fetchall(),
        }


def _three_days(settings) -> None:
    """Day 2 drops one card holder and sends another again; day 3 sends a third card holder again."""
    with duckdb.connect(str(settings.warehouse_path)) as con:
        keys = [
            r[0]
            for r in con.execute(
                "SELECT _record_key, _run_id FROM raw.iot__cardholders ORDER BY _record_key LIMIT 3"
            ).fetchall()
        ]
        first = con.execute("SELECT _run_id FROM raw.iot__cardholders LIMIT 1").fetchone()[0]
        run2, _ = add_run(con, "2026-11-21")
        con.execute("INSERT INTO meta.deletions VALUES (?, 'iot', 'cardholders', ?)", [run2, keys[0]])
        copy_version(con, "iot__cardholders", keys[1], first, run2, settings)
        run3, _ = add_run(con, "2026-11-22")
        copy_version(con, "iot__cardholders", keys[2], first, run3, settings)


def test_a_past_day_rerun_after_later_days_replays_to_the_in_order_state(warehouse_copy):
    """Re-running day 1 after days 2 and 3 forgets their identities and starts from the map before day 1;
    running days 2 and 3 again ends in exactly the in-order state (map, events, history, run figures)."""
    _three_days(warehouse_copy)
    for day in ("2026-11-21", "2026-11-22"):
        reconcile(warehouse_copy, parse_as_of(day))
    in_order = _identity_state(warehouse_copy)
    again = reconcile(warehouse_copy, parse_as_of(DAY))
    assert again["forgotten"] == ["ib_20261120T160000Z", "ib_20261121T160000Z", "ib_20261122T160000Z"]
    assert [r[0] for r in _identity_state(warehouse_copy)["runs"]] == ["ib_20261120T160000Z"]
    for day in ("2026-11-21", "2026-11-22"):
        reconcile(warehouse_copy, parse_as_of(day))
    assert _identity_state(warehouse_copy) == in_order


def test_a_rerun_names_the_later_days_it_forgot_not_itself(warehouse_copy, caplog):
    """Re-running the latest day is routine and says nothing of forgetting; re-running day 1 after day 2
    names day 2 as forgotten, not day 1, whose reconciliation is replaced at once. Said at INFO: the one
    warning of such a run, with what to do next, is its publish's (`pipeline.warn_earlier_day`)."""
    _three_days(warehouse_copy)
    reconcile(warehouse_copy, parse_as_of("2026-11-21"))
    with caplog.at_level(logging.INFO, logger="islandbridge"):
        reconcile(warehouse_copy, parse_as_of("2026-11-21"))
    assert "forgot the identities" not in caplog.text
    with caplog.at_level(logging.INFO, logger="islandbridge"):
        again = reconcile(warehouse_copy, parse_as_of(DAY))
    assert again["forgotten"] == ["ib_20261120T160000Z", "ib_20261121T160000Z"]
    assert "forgot the identities of 1 later reconciled run (ib_20261121T160000Z)" in caplog.text
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING and "forgot" in r.getMessage()]


def test_a_later_day_catches_up_the_days_a_rerun_left_unreconciled(warehouse_copy):
    """After a re-run of day 1, running day 3 reconciles day 2 first, in order: the same state again."""
    _three_days(warehouse_copy)
    for day in ("2026-11-21", "2026-11-22"):
        reconcile(warehouse_copy, parse_as_of(day))
    in_order = _identity_state(warehouse_copy)
    reconcile(warehouse_copy, parse_as_of(DAY))
    summary = reconcile(warehouse_copy, parse_as_of("2026-11-22"))
    assert summary["caught_up"] == ["ib_20261121T160000Z"]
    assert _identity_state(warehouse_copy) == in_order


def test_the_history_holds_only_what_changed(warehouse_copy):
    """A day on which nothing changed adds no history row; the day that dropped a record adds its removal."""
    _three_days(warehouse_copy)
    with duckdb.connect(str(warehouse_copy.warehouse_path)) as con:
        first = con.execute("SELECT count(*) FROM core.identity_map_changes").fetchall()[0][0]
    reconcile(warehouse_copy, parse_as_of("2026-11-21"))
    with duckdb.connect(str(warehouse_copy.warehouse_path), read_only=True) as con:
        rows = con.execute(
            "SELECT removed, count(*) FROM core.identity_map_changes WHERE run_id = 'ib_20261121T160000Z' "
            "GROUP BY removed ORDER BY removed"
        ).fetchall()
        total = con.execute("SELECT count(*) FROM core.identity_map").fetchall()[0][0]
    assert first == total + 1  # the day-1 map, and the dropped record is still in it
    assert rows == [(False, 1), (True, 1)]  # day 2: one record's newer version, one record removed


def test_missing_person_key_is_a_config_error_naming_the_key(street):
    """Without keys.person_key the step refuses to start and says which key to add."""
    settings = dataclasses.replace(street.settings, keys={})
    with pytest.raises(ConfigError, match=r"keys\.person_key"):
        reconcile(settings, parse_as_of(DAY))


def test_identity_tables_and_logs_hold_no_personal_data(street, warehouse_copy, caplog):
    """No name, ID number or phone of the street reaches the identity tables or the log of a run."""
    with caplog.at_level(logging.DEBUG):
        reconcile(warehouse_copy, parse_as_of(DAY))
    with duckdb.connect(str(warehouse_copy.warehouse_path), read_only=True) as con:
        text = "\n".join(repr(con.execute(f"SELECT * FROM {t}").fetchall()) for t in IDENTITY_TABLES)
    registry = sqlite3.connect(street.root / "street" / "registry" / "rrs.sqlite")
    try:
        rows = registry.execute("SELECT sfzh, lxdh FROM t_jm").fetchall()
    finally:
        registry.close()
    ids = {normalize_id(v).value for v, _ in rows}
    phones = {n[-11:] for _, v in rows for n in normalize_phones(v).numbers}
    assert len(ids) > 1000 and len(phones) > 1000
    for where in (text, caplog.text):
        assert not re.search(r"[\u3400-\u9fff]", where), "a Han character (a name?) was written"
        runs = set(re.findall(r"\d{11,18}", where))
        assert not runs & ({i for i in ids if i} | phones)


def _bare_settings(tmp_path):
    from islandbridge.config import Secret, Settings, SourceSettings
    from tests.identity.conftest import PERSON_KEY_TEXT

    return Settings(
        street_code="511403001",
        landing_url=tmp_path.as_uri(),
        warehouse_path=tmp_path / "w.duckdb",
        state_dir=tmp_path,
        sources={"civil": SourceSettings("civil", "civil_files", {"path": str(tmp_path)})},
        keys={
            "person_key": Secret(PERSON_KEY_TEXT, "env:IB_PERSON_KEY"),
            "vault": Secret(new_keyring_text(kid="v-test"), "env:IB_VAULT_KEYS"),
        },
    )


def test_nothing_synced_yet_is_refused_with_the_command_to_run(tmp_path):
    from islandbridge.identity.tables import IdentityStateError

    with pytest.raises(IdentityStateError, match="islandbridge sync"):
        reconcile(_bare_settings(tmp_path), parse_as_of(DAY))


def test_a_run_without_person_records_reconciles_to_no_persons(tmp_path):
    """A loaded run whose sources bore no person yet gives an empty map, and trains nothing."""
    from islandbridge.landing import raw

    settings = _bare_settings(tmp_path)
    with raw.connect(str(settings.warehouse_path)) as con:
        add_run(con, DAY)
    summary = reconcile(settings, parse_as_of(DAY))
    assert (summary["records"], summary["persons"], summary["model_version"]) == (0, 0, None)


def test_the_vault_refiles_only_changed_records_and_forgets_a_cleared_phone(warehouse_copy):
    """A later run in which one resident's row comes again without its phone: that record alone is read
    back and compared, and the vault no longer holds its phone (the name stays)."""
    from islandbridge.privacy.configured import open_vault
    from islandbridge.privacy.sealing import stream_privacy

    with duckdb.connect(str(warehouse_copy.warehouse_path)) as con:
        columns = [
            c
            for c in con.sql("SELECT * FROM raw.registry__t_jm LIMIT 0").columns
            if not c.startswith("_") and "__" not in c
        ]
        sealed = list(
            stream_privacy(warehouse_copy.source("registry").kind, "t_jm", ["xm", "sfzh", "lxdh"]).sealed
        )
        rows = unsealed(
            con,
            warehouse_copy,
            "SELECT _record_key AS record_key, _run_id AS last_seen_run, * "
            "FROM raw.registry__t_jm WHERE zt = '1' ORDER BY jmid",
            source="registry",
            stream="t_jm",
            columns=sealed,
        )
        pick = next(
            r for r in rows if re.fullmatch(r"1[0-9]{10}", r["lxdh"] or "") and (r["xm"] or "").strip()
        )
        person = person_key_of(con, "resident_registry", pick["record_key"])
        run_id, _ = add_run(con, "2026-11-21")
        land(
            con,
            "registry__t_jm",
            run_id,
            pick["record_key"],
            {**{c: pick[c] for c in [*columns, *sealed]}, "lxdh": None},
            warehouse_copy,
        )
    filed = reconcile(warehouse_copy, parse_as_of("2026-11-21"))["vault"]
    assert filed["records_refiled"] == 1 and filed["cleared"] == 1, filed
    with open_vault(warehouse_copy) as vault:
        values = vault.get([person], ["name", "phone"])[person]
    mine = ("resident_registry", pick["record_key"])
    assert not [v for v in values.get("phone", ()) if (v.system, v.record_key) == mine]
    assert [v.value for v in values["name"] if (v.system, v.record_key) == mine] == [pick["xm"].strip()]
