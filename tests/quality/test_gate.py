"""The gate on the simulated street: a clean street passes every expectation; each injected defect
fails its expectation; row defects are quarantined and kept out of the load; critical ones stop the run
and leave the warehouse byte-for-byte as it was."""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import shutil
from pathlib import Path

import duckdb
import pytest

from islandbridge.delivery.run_report import write_run_report
from islandbridge.quality import QualityGateError, quarantine
from islandbridge.quality.commands import format_entries, quarantine_list, quarantine_show
from islandbridge.quality.quarantine import CONNECTOR, GATE, QuarantineError
from islandbridge.quality.slices import LandingSlice
from tests.quality.conftest import LOADED_AT, Workspace, set_values

DAY = "2026-11-20"
RUN = "ib_20261120T160000Z"
BAD_EVENTS = 250  # more than GX's 200-row cap on unexpected rows


def _inject_row_defects(ws: Workspace) -> dict[tuple[str, str, str], set[str]]:
    """Edit the landed Parquet; returns (source, stream, check) -> the record keys that must fail it."""
    jm = [r["_record_key"] for r in ws.landed(DAY, "registry", "t_jm").to_pylist()]
    dup, status, house, born, hjlx, sex = jm[:6]
    ws.edit(
        DAY, "registry", "t_jm", lambda rows: [*rows, dict(next(r for r in rows if r["_record_key"] == dup))]
    )
    ws.edit(
        DAY,
        "registry",
        "t_jm",
        set_values(
            {
                status: {"zt": "9"},
                house: {"fwbh": "FW9999999"},
                born: {"csrq": "2030-01-01"},
                hjlx: {"hjlx": "外籍"},
                sex: {"xb": "3"},
                # ratio checks (warnings): 30 ID numbers with a wrong check digit, 40 phones that are not phones
                **{k: {"sfzh": "110101199003070018"} for k in jm[10:40]},
                **{k: {"lxdh": "call me"} for k in jm[40:80]},
            }
        ),
    )
    grid_res = ws.landed(DAY, "grid", "residents")["_record_key"][0].as_py()
    ws.edit(DAY, "grid", "residents", set_values({grid_res: {"status": "死亡"}}))
    ev = ws.landed(DAY, "grid", "events")["_record_key"].to_pylist()
    ws.edit(DAY, "grid", "events", set_values({ev[0]: {"category": "其他"}, ev[1]: {"created_at": "0"}}))
    dibao, id_in_seq = ws.landed(DAY, "civil", "dibao").select(["_record_key", "身份证号码"]).to_pylist()[:2]
    dibao = dibao["_record_key"]
    # a clerk typed the householder's ID number into 序号 (and a phone into a senior's)
    serial = {id_in_seq["_record_key"]: {"序号": id_in_seq["身份证号码"]}}
    ws.edit(DAY, "civil", "dibao", set_values({dibao: {"保障类别": "D类"}, **serial}))
    phone_in_seq = ws.landed(DAY, "civil", "senior")["_record_key"][0].as_py()
    ws.edit(DAY, "civil", "senior", set_values({phone_in_seq: {"序号": "138-0013-8000"}}))
    dev = ws.landed(DAY, "iot", "devices")["_record_key"][-1].as_py()
    ws.edit(DAY, "iot", "devices", set_values({dev: {"device_type": "toaster"}}))
    events = ws.landed(DAY, "iot", "events")["_record_key"].to_pylist()
    clock, ghost, kind = events[:BAD_EVENTS], events[BAD_EVENTS : BAD_EVENTS + 3], events[BAD_EVENTS + 3]
    ws.edit(
        DAY,
        "iot",
        "events",
        set_values(
            {
                **{k: {"ts": "0"} for k in clock},
                **{k: {"device_id": "XX999999"} for k in ghost},
                kind: {"type": "teleport"},
            }
        ),
    )
    return {
        ("registry", "t_jm", "jmid_unique"): {dup},
        ("registry", "t_jm", "zt_known"): {status},
        ("registry", "t_jm", "house_exists"): {house},
        ("registry", "t_jm", "birth_date_past"): {born},
        ("registry", "t_jm", "hjlx_known"): {hjlx},
        ("registry", "t_jm", "xb_known"): {sex},
        ("grid", "residents", "status_known"): {grid_res},
        ("grid", "events", "category_known"): {ev[0]},
        ("grid", "events", "created_plausible"): {ev[1]},
        ("civil", "dibao", "category_known"): {dibao},
        ("civil", "dibao", "seq_not_personal"): set(serial),
        ("civil", "senior", "seq_not_personal"): {phone_in_seq},
        ("iot", "devices", "device_type_known"): {dev},
        ("iot", "events", "ts_plausible"): set(clock),
        ("iot", "events", "device_exists"): set(ghost),
        ("iot", "events", "type_known"): {kind},
    }


@pytest.fixture(scope="module")
def defective(tmp_path_factory, served_street, quarantine_keys):
    street, grid_url, iot_url = served_street
    ws = Workspace(tmp_path_factory.mktemp("defective"), street, grid_url, iot_url, quarantine_keys)
    ws.extract(DAY)
    expected = _inject_row_defects(ws)
    gate = ws.gate(DAY)
    # The load deletes the landed extract; these tests also look at what was landed, so keep a copy.
    landing = Path(ws.base(DAY, "registry")).parent
    kept = ws.root / "landing-before-load"
    shutil.copytree(landing, kept)
    ws.load(DAY)
    assert not landing.exists() or not any(landing.iterdir()), "the load deleted its landed extract"
    shutil.rmtree(landing, ignore_errors=True)
    shutil.copytree(kept, landing)
    return ws, gate, expected


def _result(gate, source, stream, check):
    return next(r for r in gate.results if (r.source, r.stream, r.check) == (source, stream, check))


def test_a_clean_street_passes_every_expectation(clean):
    _, gate = clean
    failed = [r.describe() for r in gate.results if not r.success]
    assert gate.passed and failed == [] and gate.quarantined == {}
    assert len(gate.results) > 100 and gate.report_path.exists()


def test_a_clean_run_loads_everything_and_records_its_results(clean):
    ws, gate = clean
    for read, landed, quarantined, duplicates in ws.query(
        "SELECT read, landed, quarantined, duplicates FROM meta.run_sources"
    ):
        assert read == landed + quarantined + duplicates
    assert ws.query("SELECT count(*) FROM meta.quality_results WHERE run_id = ?", [RUN]) == [
        (len(gate.results),)
    ]
    assert ws.query("SELECT count(*) FROM meta.quality_quarantine") == [(0,)]
    assert ws.query("SELECT count(*) FROM meta.gate_stops") == [(0,)]  # there to query before any stop


@pytest.mark.parametrize(
    "case",
    [
        ("registry", "t_jm", "jmid_unique"),
        ("registry", "t_jm", "zt_known"),
        ("registry", "t_jm", "house_exists"),
        ("registry", "t_jm", "birth_date_past"),
        ("registry", "t_jm", "hjlx_known"),
        ("registry", "t_jm", "xb_known"),
        ("grid", "residents", "status_known"),
        ("grid", "events", "category_known"),
        ("grid", "events", "created_plausible"),
        ("civil", "dibao", "category_known"),
        ("civil", "dibao", "seq_not_personal"),
        ("civil", "senior", "seq_not_personal"),
        ("iot", "devices", "device_type_known"),
        ("iot", "events", "ts_plausible"),
        ("iot", "events", "device_exists"),
        ("iot", "events", "type_known"),
    ],
    ids="-".join,
)
def test_each_row_defect_fails_its_expectation_and_quarantines_exactly_its_rows(defective, clean, case):
    ws, gate, expected = defective
    result = _result(gate, *case)
    assert not result.success and result.severity == "row"
    assert result.unexpected_count == len(expected[case]) + (1 if case[2] == "jmid_unique" else 0)
    assert set(result.sample_keys) <= expected[case]
    assert _result(clean[1], *case).success


def test_quarantined_rows_are_kept_out_of_the_load_and_counted_as_quarantined(defective):
    ws, gate, expected = defective
    assert gate.passed
    for (source, stream, _), keys in expected.items():
        loaded = {r[0] for r in ws.query(f"SELECT _record_key FROM raw.{source}__{stream}")}
        assert not keys & loaded, (source, stream)
        assert keys <= set(gate.excluded_keys[source][stream])
    for source, stream, read, landed, quarantined, duplicates in ws.query(
        "SELECT source, stream, read, landed, quarantined, duplicates FROM meta.run_sources"
    ):
        assert read == landed + quarantined + duplicates, (source, stream)
        rows = ws.query(f"SELECT count(*) FROM raw.{source}__{stream}")[0][0]
        assert rows == landed, (source, stream)
    assert ws.query(
        "SELECT quarantined FROM meta.run_sources WHERE source = 'registry' AND stream = 't_jm'"
    ) == [(gate.quarantined["registry"]["t_jm"],)]


def test_more_than_200_failing_rows_are_all_quarantined(defective):
    ws, gate, _ = defective
    bad = {
        r[0]
        for r in ws.query(
            "SELECT record_key FROM meta.quality_quarantine WHERE stream = 'events' "
            "AND source = 'iot' AND list_contains(expectations_failed, 'ts_plausible')"
        )
    }
    assert len(bad) == BAD_EVENTS
    assert _result(gate, "iot", "events", "ts_plausible").unexpected_count == BAD_EVENTS


def test_ratio_checks_fail_as_warnings_without_stopping_the_run(defective, clean):
    _, gate, _ = defective
    for check in ("id_number_valid", "phone_valid"):
        result = _result(gate, "registry", "t_jm", check)
        assert not result.success and result.severity == "warning" and result.observed["success_ratio"] < 0.9
        assert _result(clean[1], "registry", "t_jm", check).success
    assert gate.passed and {r.check for r in gate.warnings} >= {"id_number_valid", "phone_valid"}


def test_gating_the_same_landing_again_gives_the_same_quarantine(defective):
    ws, gate, _ = defective
    before = ws.manifest(DAY, "registry")
    again = ws.gate(DAY)
    assert again.quarantined == gate.quarantined
    assert ws.manifest(DAY, "registry")["streams"] == before["streams"]


def test_the_quarantine_lists_keys_and_shows_failed_fields_masked(defective):
    ws, gate, expected = defective
    entries = quarantine_list(ws.settings, source="registry")
    born = next(iter(expected["registry", "t_jm", "birth_date_past"]))
    assert {(e.stream, e.record_key) for e in entries} >= {("t_jm", born)}
    shown = quarantine_show(ws.settings, RUN, "registry", "t_jm", born)
    assert shown["expectations_failed"] == ["birth_date_past"] and shown["values"] == {"csrq": "2030-01-01"}
    dup = next(iter(expected["registry", "t_jm", "jmid_unique"]))
    assert [e.seq for e in entries if e.record_key == dup] == [1, 2]


def test_a_roster_row_whose_serial_holds_an_id_number_is_shown_with_the_reason_and_scrubbed(defective):
    ws, _, expected = defective
    (key,) = expected["civil", "dibao", "seq_not_personal"]
    shown = quarantine_show(ws.settings, RUN, "civil", "dibao", key)
    assert shown["expectations_failed"] == ["seq_not_personal"] and shown["values"] == {"序号": "[证件号]"}
    assert shown["reasons"] == {
        "seq_not_personal": "序号 looks like an ID number or phone; the roster's serial must not carry "
        "personal data"
    }


def _personal_values(ws: Workspace) -> set[str]:
    """Names and ID numbers of the street's true persons, and every phone and bank card it landed."""
    import csv

    with (ws.street / "truth" / "persons.csv").open(encoding="utf-8") as f:
        people = list(csv.DictReader(f))
    values = {p["name"] for p in people if len(p["name"]) >= 2} | {
        p["id_number"] for p in people if p["id_number"]
    }
    for source, stream, column in [
        ("registry", "t_jm", "lxdh"),
        ("grid", "residents", "phone"),
        ("civil", "dibao", "联系电话"),
        ("civil", "senior", "银行卡号"),
        ("iot", "cardholders", "phone"),
    ]:
        original = LandingSlice.open(ws.settings.landing_url, RUN, source).dataset(stream).to_table()
        values |= {
            v.strip() for v in original[column].to_pylist() if v and sum(ch.isdigit() for ch in v) >= 11
        }
    return values


def test_the_report_and_the_results_table_hold_no_personal_data(defective):
    ws, gate, _ = defective
    texts = {
        "html": gate.report_path.read_text(encoding="utf-8"),
        "json": gate.summary_path.read_text(encoding="utf-8"),
        "meta": json.dumps(ws.query("SELECT * FROM meta.quality_results"), ensure_ascii=False, default=str),
        "quarantine list": json.dumps(
            ws.query(
                "SELECT run_id, source, stream, record_key, expectations_failed FROM meta.quality_quarantine"
            ),
            ensure_ascii=False,
        ),
    }
    personal = _personal_values(ws) | {"call me", "110101199003070018"}
    for where, text in texts.items():
        leaked = sorted(v for v in personal if v in text)
        assert leaked == [], where
    assert "t_jm:" in texts["html"]  # failing rows are named by record key instead


def test_the_quality_report_shows_the_run_reports_quarantine_numbers(defective, tmp_path):
    """Both pages say how many rows were quarantined and by whom, with the same numbers: the connectors'
    (meta.quarantine) and the gate's (meta.quality_quarantine), summing to the accounting's quarantined."""
    ws, gate, _ = defective
    run_page = write_run_report(ws.settings.warehouse_path, RUN, tmp_path / "reports").read_text("utf-8")
    by_connectors = ws.query("SELECT count(*) FROM meta.quarantine WHERE run_id = ?", [RUN])[0][0]
    by_gate = ws.query("SELECT count(*) FROM meta.quality_quarantine WHERE run_id = ?", [RUN])[0][0]
    total = ws.query("SELECT sum(quarantined) FROM meta.run_sources WHERE run_id = ?", [RUN])[0][0]
    assert by_connectors > 0 and by_gate > 0 and total == by_connectors + by_gate
    sentence = (
        f"{total:,} {'row' if total == 1 else 'rows'} quarantined: {by_connectors:,} set aside by the connectors, {by_gate:,} by the "
        "quality gate."
    )

    def said(page: str) -> str:
        found = re.search(r"<p id='quarantine-total'>(.*?)</p>", page, re.S)
        assert found, "no quarantine sentence"
        return re.sub(r"<[^>]+>", "", found.group(1))

    assert said(gate.report_path.read_text(encoding="utf-8")).startswith(sentence)
    assert said(run_page).startswith(sentence)


def test_the_quarantine_list_names_the_connectors_rows_and_the_gates_without_personal_data(defective):
    """`quarantine list` lists every row the run report counts: the connectors' (meta.quarantine, with
    their reason) and the gate's (with the checks failed), each saying which stage set it aside."""
    ws, _, _ = defective
    entries = quarantine_list(ws.settings, run_id=RUN, include_replayed=True)
    by_stage = {stage: [e for e in entries if e.stage == stage] for stage in (GATE, CONNECTOR)}
    tables = {GATE: "meta.quality_quarantine", CONNECTOR: "meta.quarantine"}
    for stage, table in tables.items():
        assert len(by_stage[stage]) == ws.query(f"SELECT count(*) FROM {table} WHERE run_id = ?", [RUN])[0][0]
        assert by_stage[stage], stage
    assert all(e.reason and not e.expectations_failed for e in by_stage[CONNECTOR])
    text = format_entries(entries)
    lines = text.splitlines()[1:]
    assert sum(f" {CONNECTOR} " in line for line in lines) == len(by_stage[CONNECTOR])
    assert sum(f" {GATE} " in line for line in lines) == len(by_stage[GATE])
    one = by_stage[CONNECTOR][0]
    assert quarantine_list(ws.settings, run_id=RUN, source=one.source, stream=one.stream)
    leaked = sorted(v for v in _personal_values(ws) if v in text)
    assert leaked == []


def test_show_on_a_connectors_row_says_the_connector_set_it_aside(defective):
    """`quarantine list` lists the connectors' rows too; `show` on one says why it cannot show it, rather
    than that there is no such row."""
    ws, _, _ = defective
    one = next(e for e in quarantine_list(ws.settings, run_id=RUN) if e.stage == CONNECTOR)
    with pytest.raises(QuarantineError, match="set aside by the connector") as refused:
        quarantine_show(ws.settings, RUN, one.source, one.stream, one.record_key)
    assert "no quarantined row" not in str(refused.value)
    with pytest.raises(QuarantineError, match="no quarantined row"):
        quarantine_show(ws.settings, RUN, one.source, one.stream, "no-such-key")
    with pytest.raises(QuarantineError, match=r"no quarantined row 秦\*明/") as refused:
        quarantine_show(ws.settings, "秦光明", one.source, one.stream, "18798377461")
    assert "秦光明" not in str(refused.value) and "18798377461" not in str(refused.value)
    with pytest.raises(QuarantineError, match=r"no table definition for \S+\.511403\*{8}7757"):
        quarantine_show(ws.settings, RUN, one.source, "511403194310287757", "x")


def test_replay_rechecks_the_gates_event_rows_of_a_run_with_a_source_state(defective, tmp_path):
    """`quarantine replay iot` re-checks every event row the gate set aside, in the context of the run's
    source state (it failed with DuckDB's 'connection has an unfinished result' on the state's read)."""
    from islandbridge.quality.commands import quarantine_replay

    ws, _, _ = defective
    gate_rows = [e for e in quarantine_list(ws.settings, source="iot") if e.stage == GATE]
    result = quarantine_replay(ws.copy(tmp_path / "ws").settings, "iot")
    assert gate_rows and result["checked"] == len(gate_rows)


def test_replay_counts_the_connectors_rows_it_cannot_replay(defective, tmp_path, monkeypatch, capsys):
    """`quarantine replay` on a source whose listed rows a connector set aside says so, instead of a bare
    'checked: 0' beside the rows `quarantine list` shows."""
    from islandbridge.cli import main

    ws, _, _ = defective
    one = next(e for e in quarantine_list(ws.settings, run_id=RUN) if e.stage == CONNECTOR)
    listed = [e for e in quarantine_list(ws.settings, source=one.source) if e.stage == CONNECTOR]
    for name, value in ws.environ.items():
        monkeypatch.setenv(name, value)
    assert main(["quarantine", "replay", one.source, "--config", str(ws.copy(tmp_path / "ws").config)]) == 0
    err = capsys.readouterr().err
    assert f"{len(listed)} rows of {one.source} were set aside by the connector" in err
    assert "replay re-checks only the quality gate's rows" in err


def test_critical_defects_stop_the_run_and_leave_the_warehouse_byte_for_byte(clean, tmp_path):
    """Schema drift and a roster whose rows no longer add up to its 合计: the gate raises before load."""
    ws = clean[0].copy(tmp_path / "ws")
    ws.extract(DAY, ["registry", "civil"])  # re-running the interval re-extracts both sources
    ws.edit(DAY, "registry", "t_jm", lambda rows: [{**r, "nickname": None} for r in rows])
    first = ws.landed(DAY, "civil", "dibao")["_record_key"][0].as_py()
    ws.edit(DAY, "civil", "dibao", set_values({first: {"月保障金(元)": "99999"}}))
    ws.edit(DAY, "civil", "senior", lambda rows: rows[1:])
    manifests = {s: ws.manifest(DAY, s) for s in ("registry", "civil")}
    digest = hashlib.sha256(ws.settings.warehouse_path.read_bytes()).hexdigest()

    with pytest.raises(QualityGateError) as caught:  # the lead's wiring: load runs only after the gate
        ws.gate(DAY, ["registry", "civil"])
        ws.load(DAY, ["registry", "civil"])
    message = str(caught.value)
    assert "registry.t_jm.columns_match" in message and "nickname" in message
    assert "civil.dibao.roster_totals.sum:月保障金(元)" in message
    assert "civil.senior.roster_totals.rows" in message
    assert hashlib.sha256(ws.settings.warehouse_path.read_bytes()).hexdigest() == digest
    assert {s: ws.manifest(DAY, s) for s in ("registry", "civil")} == manifests
    assert caught.value.result.report_path.exists()

    relaxed = {
        "checks": {
            "registry.t_jm.columns_match": {"severity": "warning"},
            "civil.dibao.roster_totals": {"severity": "warning"},
            "civil.senior.roster_totals": {"severity": "warning"},
        }
    }
    assert ws.gate(DAY, ["registry", "civil"], relaxed).passed


def test_a_run_the_gate_stopped_is_listed_by_runs_and_a_fixed_rerun_loads(
    workspace_factory, monkeypatch, capsys
):
    """The validate step notes a stop in meta.gate_stops (failed checks, report; no values), `runs` lists
    it and the message says so; extracting the day again and passing loads it as before."""
    from islandbridge import pipeline
    from islandbridge.cli import main
    from islandbridge.config import parse_as_of

    ws = workspace_factory()
    ws.extract(DAY, ["registry"])
    ws.edit(DAY, "registry", "t_jm", lambda rows: [{**r, "nickname": "阿明"} for r in rows])
    with pytest.raises(QualityGateError) as caught:  # stopped the morning before the load below
        pipeline.validate(
            ws.settings, parse_as_of(DAY), ["registry"], clock=lambda: LOADED_AT - dt.timedelta(hours=1)
        )
    assert "`islandbridge runs` lists the stop" in str(caught.value)
    for name, value in ws.environ.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    assert main(["runs", "--config", str(ws.config)]) == 0
    listed = capsys.readouterr().out
    assert f"{RUN}  as of 2026-11-21 00:00:00+08:00  stopped: quality gate  at" in listed
    assert "registry.t_jm.columns_match; report " + str(caught.value.result.report_path) in listed
    with duckdb.connect(str(ws.settings.warehouse_path), read_only=True) as con:  # a copy names its own
        ((report,),) = con.execute("SELECT report FROM meta.gate_stops").fetchall()
    assert (
        report.startswith("reports/")
        and ws.settings.warehouse_path.parent / report == caught.value.result.report_path
    )
    assert "阿明" not in listed

    ws.extract(DAY, ["registry"])  # fixed at the source: extracted again, it passes and loads
    pipeline.validate(ws.settings, parse_as_of(DAY), ["registry"])
    ws.load(DAY, ["registry"])
    assert main(["runs", "--config", str(ws.config)]) == 0
    listed = capsys.readouterr().out
    assert (
        f"{RUN}  as of 2026-11-21 00:00:00+08:00  loaded" in listed and "stopped: quality gate" not in listed
    )
    assert "    stopped by the quality gate at" in listed and "before this load" in listed


def test_a_stops_report_outlives_a_later_sync_of_the_same_day(workspace_factory):
    """A stop keeps its pages as quality-stopped-<time>.html/.json, which its message names; the day's next
    gate rewrites quality.html, not them, and all sit in the run's folder, which retention removes whole."""
    ws = workspace_factory()
    ws.extract(DAY, ["registry"])
    ws.edit(DAY, "registry", "t_jm", lambda rows: [{**r, "nickname": None} for r in rows])
    with pytest.raises(QualityGateError) as caught:
        ws.gate(DAY, ["registry"], clock=lambda: LOADED_AT - dt.timedelta(hours=1))
    kept = caught.value.result.report_path
    assert (
        kept.name == "quality-stopped-20261121T230000Z.html"
        and f"Report (what each check found): {kept};" in str(caught.value)
    )
    ws.extract(DAY, ["registry"])  # fixed at the source: the day's next gate passes
    passed = ws.gate(DAY, ["registry"])
    assert passed.report_path == kept.parent / "quality.html" and kept.parent.name == RUN
    assert "STOPPED" in kept.read_text(encoding="utf-8") and "nickname" in kept.read_text(encoding="utf-8")
    assert "STOPPED" not in passed.report_path.read_text(encoding="utf-8")
    assert json.loads(kept.with_suffix(".json").read_text(encoding="utf-8"))["passed"] is False


def test_two_stops_in_one_second_keep_a_page_each(workspace_factory):
    """Two stops of one run stamped with the same second (a DAG task and a `validate` at once, or one
    clock) keep two pages: the second is quality-stopped-<time>-2, so the first stop's message still
    names its own page."""
    ws = workspace_factory()
    ws.extract(DAY, ["registry"])
    ws.edit(DAY, "registry", "t_jm", lambda rows: [{**r, "nickname": None} for r in rows])
    clock = lambda: LOADED_AT - dt.timedelta(hours=1)  # noqa: E731
    pages = []
    for _ in range(2):
        with pytest.raises(QualityGateError) as caught:
            ws.gate(DAY, ["registry"], clock=clock)
        pages.append(caught.value.result.report_path)
    assert [p.name for p in pages] == [
        "quality-stopped-20261121T230000Z.html",
        "quality-stopped-20261121T230000Z-2.html",
    ]
    assert all(p.exists() and p.with_suffix(".json").exists() for p in pages)


@pytest.mark.parametrize("json_flag", [[], ["--json"]])
def test_the_command_line_says_a_gate_stop_once(workspace_factory, monkeypatch, capsys, caplog, json_flag):
    """The stop's message is the command's error line only: the gate does not also log it. With --json
    the gate's result is printed as JSON, as on a pass, and the exit status is still 5."""
    from islandbridge.cli import main

    ws = workspace_factory()
    ws.extract(DAY, ["registry"])
    ws.edit(DAY, "registry", "t_jm", lambda rows: [{**r, "nickname": None} for r in rows])
    for name, value in ws.environ.items():
        monkeypatch.setenv(name, value)
    capsys.readouterr()
    argv = ["validate", "--as-of", DAY, "--source", "registry", "--config", str(ws.config), *json_flag]
    assert main(argv) == 5
    out, err = capsys.readouterr()
    assert err.count("quality gate stopped run") == 1
    assert not [r for r in caplog.records if "quality gate stopped run" in r.getMessage()]
    if json_flag:
        result = json.loads(out)
        assert result["passed"] is False and result["critical"] == ["registry.t_jm.columns_match"]
        assert result["run_id"] == RUN and Path(result["report"]).is_file()


def test_a_connectors_record_key_holding_an_id_number_is_listed_scrubbed(tmp_path):
    """A roster row is keyed by its 序号; a clerk who typed an ID number there put it in the key."""
    from islandbridge.landing import raw
    from islandbridge.quality.quarantine import list_quarantined

    con = raw.connect(str(tmp_path / "wh.duckdb"))
    key, reason = "dibao:202611:511403194401187954", "序号 511403194401187954 repeats row 3"
    con.execute(
        "INSERT INTO meta.quarantine VALUES ('r1', 'civil', 'dibao', ?, ?, 'k', NULL, NULL, 1)", [key, reason]
    )
    (entry,) = list_quarantined(con, run_id="r1")
    text = format_entries([entry])
    assert "511403194401187954" not in text and entry.stage == CONNECTOR


def _roster_rows_set_aside(tmp_path, serials, failed=("key_unique",)):
    """A warehouse whose quality quarantine holds one dibao row per 序号 in ``serials`` (failing the checks
    ``serials`` maps it to, else ``failed``), keyed as the connector keys them; returns (con, ring, table)."""
    import pyarrow as pa

    from islandbridge.landing import raw
    from islandbridge.schemas import load_tables

    table, ring = load_tables()[("civil_files", "dibao")], quarantine.ephemeral_keyring()
    rows = [
        {
            "序号": n,
            "roster_month": "202611",
            "_record_key": f"dibao:202611:{n}",
            "expectations_failed": list(serials[n] if isinstance(serials, dict) else failed),
        }
        for n in serials
    ]
    con = raw.connect(str(tmp_path / "wh.duckdb"))
    con.execute(quarantine.DDL)
    sealed = quarantine.seal(
        ring, "r1", "civil", "dibao", pa.Table.from_pylist(rows), ["序号", "roster_month"]
    )
    con.register("sealed", sealed)
    con.execute("INSERT INTO meta.quality_quarantine SELECT *, now(), NULL FROM sealed")
    return con, ring, table


def test_a_gate_rows_record_key_holding_an_id_number_or_a_phone_is_listed_and_shown_scrubbed(tmp_path):
    """A roster row whose 序号 a clerk typed an ID number (or a phone) into, set aside by the gate: `list`
    and `show` print its key, and the 序号 the failed check read, scrubbed; `show` finds it by either key."""
    numbers = {"511403194401187954": "[证件号]", "13800138000": "[电话]"}
    con, ring, table = _roster_rows_set_aside(tmp_path, list(numbers))
    entries = quarantine.list_quarantined(con, run_id="r1")
    assert sorted(e.record_key for e in entries) == [f"dibao:202611:{p}" for p in sorted(numbers.values())]
    text = format_entries(entries)
    for number, placeholder in numbers.items():
        listed = next(e.record_key for e in entries if placeholder in e.record_key)
        shown = quarantine.show(con, ring, table, "r1", "civil", listed)
        assert shown["record_key"] == listed
        assert shown["values"] == {"roster_month": "202611", "序号": placeholder}
        assert quarantine.show(con, ring, table, "r1", "civil", f"dibao:202611:{number}") == shown
        text += json.dumps(shown, ensure_ascii=False, default=str)
    assert not any(number in text for number in numbers)


def test_show_refuses_a_scrubbed_key_that_names_several_rows(tmp_path):
    """Two 序号 holding different ID numbers list alike; `show` by that key says so instead of picking one."""
    con, ring, table = _roster_rows_set_aside(tmp_path, ["511403194401187954", "511403195502283316"])
    with pytest.raises(
        QuarantineError, match="2 quarantined rows are listed as r1/civil/dibao/dibao:202611:.*~suffix"
    ):
        quarantine.show(con, ring, table, "r1", "civil", "dibao:202611:[证件号]")


def test_rows_whose_keys_scrub_alike_are_listed_apart_and_shown_by_the_listed_key(tmp_path):
    """Two 序号 holding different ID numbers: `list` follows each scrubbed key with a short suffix (from the
    row's random nonce, not from the number) and `show` takes the key as listed, each naming its own row."""
    numbers = {"511403194401187954": ["key_unique"], "511403195502283316": ["seq_not_personal"]}
    con, ring, table = _roster_rows_set_aside(tmp_path, numbers)
    entries = quarantine.list_quarantined(con, run_id="r1")
    keys = [e.record_key for e in entries]
    assert len(set(keys)) == 2 and all(re.fullmatch(r"dibao:202611:\[证件号\]~[0-9a-f]{4,}", k) for k in keys)
    shown = {
        e.expectations_failed: quarantine.show(con, ring, table, "r1", "civil", e.record_key) for e in entries
    }
    assert {failed: s["expectations_failed"] for failed, s in shown.items()} == {
        ("key_unique",): ["key_unique"],
        ("seq_not_personal",): ["seq_not_personal"],
    }
    text = format_entries(entries) + json.dumps(list(shown.values()), ensure_ascii=False, default=str)
    assert not any(number in text for number in numbers)


class _SealedRowsRead:
    """A DuckDB connection counting the sealed rows (those with their ciphertext) its queries return."""

    def __init__(self, con):
        self._con, self.count = con, 0

    def execute(self, *args):
        self._con.execute(*args)
        return self

    @property
    def description(self):
        return self._con.description

    def fetchall(self):
        rows = self._con.fetchall()
        if "ciphertext" in [d[0] for d in self._con.description or []]:
            self.count += len(rows)
        return rows


@pytest.mark.parametrize("by", ["whole", "listed"])
def test_show_reads_the_sealed_row_it_shows_and_no_other(tmp_path, by):
    """`show` looks the whole key up in SQL; a key as listed (scrubbed) makes it read the stream's keys
    alone: either way one sealed row is read, not the stream's every row."""
    con, ring, table = _roster_rows_set_aside(tmp_path, [*map(str, range(1, 41)), "511403194401187954"])
    key = "dibao:202611:" + ("511403194401187954" if by == "whole" else "[证件号]")
    counting = _SealedRowsRead(con)
    shown = quarantine.show(counting, ring, table, "r1", "civil", key)
    assert shown["record_key"] == "dibao:202611:[证件号]" and counting.count == 1


def test_a_stop_that_cannot_be_noted_is_still_the_stop(workspace_factory, monkeypatch, caplog):
    """Noting the stop opens the warehouse for writing; if that fails (another process holds the file),
    the gate's stop is still what the step raises (exit 5, its checks and report), with a warning."""
    from islandbridge import pipeline
    from islandbridge.config import parse_as_of

    def locked(*_args, **_kwargs):
        raise OSError("Could not set lock on file: Conflicting lock is held")

    ws = workspace_factory()
    ws.extract(DAY, ["registry"])
    ws.edit(DAY, "registry", "t_jm", lambda rows: [{**r, "nickname": "阿明"} for r in rows])
    monkeypatch.setattr(pipeline.steps, "record_stop", locked)
    with pytest.raises(QualityGateError) as caught:
        pipeline.validate(ws.settings, parse_as_of(DAY), ["registry"])
    assert "registry.t_jm.columns_match" in str(caught.value)
    assert any("could not be noted" in r.getMessage() for r in caplog.records)
