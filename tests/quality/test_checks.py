"""Table definitions, configuration and broken checks, on small landings written directly."""

from __future__ import annotations

import datetime as dt
from dataclasses import replace

import duckdb
import pyarrow as pa
import pytest

from islandbridge.config import Settings, SourceSettings
from islandbridge.connectors import civil_files, grid_rest, iot_rest, sql_registry
from islandbridge.landing.zone import LandingWriter
from islandbridge.quality import (
    QualityCheckBrokenError,
    QualityConfig,
    QualityConfigError,
    QualityGateError,
    suites,
    validate_run,
)
from islandbridge.quality.quarantine import ephemeral_keyring
from islandbridge.quality.rowchecks import CheckContext, run_row_checks
from islandbridge.schemas import RECORD_KEY, SchemaError, load_tables, parse_tables

AS_OF = dt.datetime(2026, 11, 21, tzinfo=dt.UTC)
RUN = "ib_20261121T000000Z"
CONNECTORS = {
    "sql_registry": sql_registry,
    "grid_rest": grid_rest,
    "civil_files": civil_files,
    "iot_rest": iot_rest,
}


def test_every_connector_stream_has_a_table_definition_with_its_columns_and_key():
    tables = load_tables()
    for kind, module in CONNECTORS.items():
        for stream in module.STREAMS:
            table = tables[kind, stream.name]
            assert table.column_names == stream.columns and table.key == stream.key_columns, stream.name
            assert table.grain and table.suite


def test_names_id_numbers_phones_and_bank_cards_are_direct_identifiers():
    tables = load_tables()
    for (kind, stream), table in tables.items():
        for column in table.columns:
            if column.mask or column.name in ("description", "findings", "address", "家庭住址"):
                assert column.pii == "direct", (kind, stream, column.name)
    assert tables["sql_registry", "t_jm"].pii("sfzh") == "direct"
    assert tables["civil_files", "senior"].pii("银行卡号") == "direct"


def test_a_malformed_table_definition_lists_every_problem():
    text = """
connector: x
tables:
  t:
    key: [id]
    columns: {id: {pii: none}, name: {pii: secret}}
    suite:
      - {id: a, kind: in_set, column: nope, values: [1], severity: row}
      - {id: b, kind: frobnicate, column: id, severity: row}
      - {id: c, kind: not_null, column: id, severity: loud}
      - {id: d, kind: date_between, column: id, formats: ['%Y'], min: yesterday, max: as_of, severity: row}
      - {id: e, kind: exists_in, column: id, ref: {stream: nowhere, column: id}, severity: row}
"""
    with pytest.raises(SchemaError) as caught:
        parse_tables({"bad.yml": text})
    message = str(caught.value)
    assert "pii 'secret'" in message and "'nope' is not declared" in message
    assert "kind 'frobnicate'" in message and "severity 'loud'" in message
    assert "min 'yesterday'" in message and "ref must be" in message


def test_every_suite_builds_as_a_gx_suite_with_one_expectation_per_row_check():
    for table in load_tables().values():
        suite = suites.build_suite(table, table.suite, CheckContext(AS_OF))
        assert len(suite.expectations) == sum(1 for c in table.suite if c.is_row_level)
        assert {e.meta["check"] for e in suite.expectations} == {c.id for c in table.suite if c.is_row_level}


@pytest.mark.parametrize("stream", ["dibao", "senior"])
def test_a_roster_serial_holding_an_id_number_a_phone_or_a_bank_card_is_quarantined(stream):
    """序号 keys the roster row (``dibao:<month>:<序号>``): one the scrubber would change must not become a
    record key, so the row fails `seq_not_personal` (in DuckDB and GX alike); plain serials pass."""
    table = load_tables()["civil_files", stream]
    (check,) = [c for c in table.suite if c.id == "seq_not_personal"]
    serials = ["1", "12", "511403194401187954", "138 0013 8000", "6222021234567890123", "2026"]
    rows = pa.table(
        {c: serials if c == "序号" else ["1"] * len(serials) for c in table.column_names}
        | {RECORD_KEY: [f"{stream}:202611:{s}" for s in serials]}
    )
    ctx = CheckContext(AS_OF)
    found = run_row_checks(duckdb.connect(), rows, table, [check], ctx, {})
    assert sorted(found.failing["序号"].to_pylist()) == sorted(serials[2:5])
    assert found.failing["expectations_failed"].to_pylist() == [["seq_not_personal"]] * 3
    (gx,) = suites.validate(found.frame, [suites.expectation(check, ctx)], f"civil.{stream}")
    assert not gx["success"] and gx["result"]["unexpected_count"] == 3
    assert check.severity == "row" and "must not carry personal data" in check.reason


def test_the_quality_configuration_lists_every_problem():
    with pytest.raises(QualityConfigError) as caught:
        QualityConfig.from_mapping(
            {
                "volume": {"max_drop": 3},
                "gx_max_rows": "many",
                "mostly": {"min_rows": -1},
                "colour": "red",
                "checks": {"registry.t_jm.zt_known": {"severity": "fatal"}, "t_jm": {}},
            }
        )
    message = str(caught.value)
    for part in (
        "volume.max_drop",
        "gx_max_rows",
        "quality.mostly.min_rows",
        "quality: unknown key `colour`",
        "severity: 'fatal'",
        "quality.checks.t_jm",
    ):
        assert part in message
    assert QualityConfig.from_mapping(None).max_drop == 0.3


# --------------------------------------------------------------------------- a small registry landing


def _settings(tmp_path, keys=None) -> Settings:
    return Settings(
        street_code="511403001",
        landing_url=(tmp_path / "landing").as_uri(),
        warehouse_path=tmp_path / "wh" / "warehouse.duckdb",
        state_dir=tmp_path / "state",
        sources={"registry": SourceSettings("registry", "sql_registry", {"url": "sqlite:///unused"})},
        keys=keys or {},
    )


def _land(settings, estates):
    writer = LandingWriter.open(settings.landing_url, RUN, "registry", sql_registry.STREAMS)
    writer.read("t_xq", len(estates))
    writer.write("t_xq", estates)
    return writer.close({})


ESTATES = [
    {"xqbm": "XQ001", "xqmc": "锦江苑", "sqbm": "511403001001", "sqmc": "凤鸣社区"},
    {"xqbm": "XQ002", "xqmc": "岷江花园", "sqbm": "511403001001", "sqmc": "凤鸣社区"},
]


def test_an_expectation_that_raises_is_a_broken_check_not_bad_data():
    import great_expectations.expectations as gxe

    broken = gxe.ExpectColumnValuesToBeInSet(
        column="no_such_column", value_set=["1"], meta={"check": "zt_known"}
    )
    with pytest.raises(
        QualityCheckBrokenError, match=r"registry\.t_jm\.zt_known .*raised instead of validating"
    ):
        suites.validate(pa.table({"zt": ["1", "9"]}), [broken], "registry.t_jm")
    assert suites.raised_exception({"m": {"raised_exception": True, "exception_message": "boom"}}) == "boom"
    assert suites.raised_exception({"raised_exception": False, "exception_message": None}) is None


def test_a_check_that_cannot_run_stops_the_gate_and_changes_nothing(tmp_path):
    settings = _settings(tmp_path)
    _land(settings, ESTATES)
    tables = dict(load_tables())
    t_xq = tables["sql_registry", "t_xq"]
    bad = replace(t_xq.suite[-1], params={"column": "sqbm", "pattern": "(unclosed"})
    tables["sql_registry", "t_xq"] = replace(t_xq, suite=(*t_xq.suite[:-1], bad))
    with pytest.raises(QualityCheckBrokenError, match="broken check, not bad data"):
        validate_run(settings, RUN, AS_OF, ["registry"], tables=tables)
    assert not settings.warehouse_path.exists()


def test_rows_to_quarantine_without_a_quarantine_key_stop_before_anything_changes(tmp_path):
    settings = _settings(tmp_path)
    manifest = _land(settings, [*ESTATES, ESTATES[0]])  # a key landed twice
    with pytest.raises(QualityConfigError, match="keys.quarantine is not configured"):
        validate_run(settings, RUN, AS_OF, ["registry"])
    assert not settings.warehouse_path.exists()
    gate = validate_run(settings, RUN, AS_OF, ["registry"], keyring=ephemeral_keyring())
    assert gate.quarantined == {"registry": {"t_xq": 2}} and manifest["streams"]["t_xq"]["landed"] == 3


def test_an_override_naming_an_unknown_check_is_refused(tmp_path):
    settings = _settings(tmp_path)
    _land(settings, ESTATES)
    with pytest.raises(QualityConfigError, match="has no check 'zt_knwon'"):
        validate_run(
            settings, RUN, AS_OF, ["registry"], {"checks": {"registry.t_jm.zt_knwon": {"severity": "row"}}}
        )


def _two_loaded_runs(path, events_read: int):
    """A warehouse with runs of the two days before AS_OF, the later having read ``events_read`` events;
    returns the open connection and the two as-ofs."""
    from islandbridge.landing import raw

    con = raw.connect(str(path))
    days = [AS_OF - dt.timedelta(days=2), AS_OF - dt.timedelta(days=1)]
    for as_of in days:
        raw.begin_run(con, raw.run_id_for(as_of), as_of, ["iot"], as_of)
        raw.finish_run(con, raw.run_id_for(as_of), "loaded", as_of)
    con.execute(
        "INSERT INTO meta.run_sources VALUES (?, 'iot', 'events', ?, ?, 0, 0, 0, ?)",
        [raw.run_id_for(days[1]), events_read, events_read, days[1]],
    )
    return con, days


def test_flow_volume_compares_records_per_hour_with_the_previous_run(tmp_path):
    """An event log: 2,400 events in the previous day, 600 in this one is a 75 % drop."""
    from islandbridge.quality.tablechecks import flow

    path = tmp_path / "wh.duckdb"
    con, days = _two_loaded_runs(path, 2400)
    con.close()
    gate_con = duckdb.connect()
    gate_con.execute(f"ATTACH '{path}' AS wh (READ_ONLY)")
    found = flow(gate_con, "iot", "events", AS_OF, read_now=600)
    assert found["previous_per_hour"] == 100.0 and found["kept_share"] == 0.25
    assert flow(gate_con, "iot", "events", days[1], read_now=600) is None  # one earlier run: no baseline


def test_flow_volume_of_a_day_not_ended_is_measured_up_to_the_clock(tmp_path):
    """As of tonight's midnight at 06:00: 600 events in the 6 h gone are the previous day's 100 an hour;
    the 18 h still to come are not counted as silence, but a day that has ended is judged whole."""
    from islandbridge.quality.tablechecks import flow

    path = tmp_path / "wh.duckdb"
    con, days = _two_loaded_runs(path, 2400)
    con.close()
    gate_con = duckdb.connect()
    gate_con.execute(f"ATTACH '{path}' AS wh (READ_ONLY)")
    found = flow(gate_con, "iot", "events", AS_OF, read_now=600, now=days[1] + dt.timedelta(hours=6))
    assert found["per_hour"] == 100.0 and found["kept_share"] == 1.0 and found["as_of_ahead_h"] == 18.0
    ended = flow(gate_con, "iot", "events", AS_OF, read_now=0, now=AS_OF + dt.timedelta(hours=1))
    assert ended["kept_share"] == 0.0 and "as_of_ahead_h" not in ended  # a real outage still fails


def test_a_gate_stopped_ahead_of_the_clock_says_the_day_has_not_ended():
    """The advice for a volume measured before the day ended is to wait, not to fix the source."""
    from islandbridge.quality.gate import gate_message
    from islandbridge.quality.results import CheckResult, GateResult

    def stopped(observed: dict) -> str:
        result = CheckResult("iot", "events", "volume", "volume:flow", "critical", False, observed=observed)
        return gate_message(GateResult("ib_x", AS_OF.isoformat(), False, [result]))

    ahead = stopped({"per_hour": 1.0, "kept_share": 0.01, "as_of_ahead_h": 11.3})
    assert "11.3 h ahead of the clock" in ahead and "Fix the source" not in ahead
    assert "Fix the source" in stopped({"per_hour": 0.0, "kept_share": 0.0})


def test_a_stopped_quarantine_share_names_the_row_checks_behind_it():
    """A `quarantine_share` stop said only the share: it names the row checks whose quarantined rows it
    counts, most rows first, so the operator knows what to fix at the source."""
    from islandbridge.quality.gate import gate_message
    from islandbridge.quality.results import CheckResult, GateResult

    share = CheckResult(
        "civil",
        "dibao",
        "quarantine_share",
        "quarantine_share",
        "critical",
        False,
        element_count=100,
        unexpected_count=45,
        observed={"share": 0.45, "max_share": 0.2},
    )
    rows = [
        CheckResult(
            "civil", "dibao", "sex_known", "in_set", "row", False, column="性别", observed={"quarantined": 41}
        ),
        CheckResult(
            "civil",
            "dibao",
            "id_valid",
            "regex",
            "row",
            False,
            column="身份证号",
            observed={"quarantined": 4},
        ),
        CheckResult(
            "civil", "senior", "sex_known", "in_set", "row", False, column="性别", observed={"quarantined": 9}
        ),
    ]
    message = gate_message(GateResult("ib_x", AS_OF.isoformat(), False, [share, *rows]))
    assert "quarantined by sex_known on 性别: 41 rows, id_valid on 身份证号: 4 rows\n" in message
    assert "9 rows" not in message  # another stream's


def test_a_stops_advice_says_how_its_caller_runs_the_day_again():
    """The command line's advice is to extract again; a caller's `Redo` (the DAG's: which task to clear)
    replaces it, naming the stopped sources."""
    from islandbridge.quality import Redo
    from islandbridge.quality.gate import gate_message
    from islandbridge.quality.results import CheckResult, GateResult

    failed = CheckResult("registry", "t_jm", "columns_match", "columns", "critical", False)
    gate = GateResult("ib_x", AS_OF.isoformat(), False, [failed])
    assert "Fix the source and extract again; if the change is expected" in gate_message(gate)
    redo = Redo(extract="clear extract_source [{sources}]", validate="clear validate_landed")
    told = gate_message(gate, redo)
    assert "Fix the source and clear extract_source [registry]; if the change is expected" in told
    assert told.endswith("and clear validate_landed.") and "extract again" not in told


def test_flow_volume_is_not_judged_after_a_run_that_read_the_log_late(tmp_path):
    """A backfill: the previous run read the log as it stood long after its own as-of (its arrival
    reference, ``reference_ms`` in its state), so this run finds little new, and that is no drop."""
    import json

    from islandbridge.landing import raw
    from islandbridge.quality.tablechecks import flow

    path = tmp_path / "wh.duckdb"
    con, days = _two_loaded_runs(path, 24000)

    def read_up_to(arrival: dt.datetime) -> None:
        state = {"events": {"cursor": "c", "reference_ms": int(arrival.timestamp() * 1000)}}
        con.execute("DELETE FROM meta.source_state")
        con.execute(
            "INSERT INTO meta.source_state (source, as_of, run_id, state_json) VALUES ('iot', ?, ?, ?)",
            [days[1], raw.run_id_for(days[1]), json.dumps(state)],
        )

    gate_con = duckdb.connect()
    # read days late (past this run's as-of), or late the same day (the log up to just before this run's)
    for late in (dt.timedelta(days=6), dt.timedelta(hours=22)):
        read_up_to(days[1] + late)
        con.close()
        gate_con.execute(f"ATTACH '{path}' AS wh (READ_ONLY)")
        found = flow(gate_con, "iot", "events", AS_OF, read_now=0)
        assert "kept_share" not in found and "a backfill" in found["baseline"]
        gate_con.execute("DETACH wh")
        con = raw.connect(str(path))
    read_up_to(days[1] + dt.timedelta(minutes=5))  # a daily run read just after its as-of: judged
    con.close()
    gate_con.execute(f"ATTACH '{path}' AS wh (READ_ONLY)")
    assert flow(gate_con, "iot", "events", AS_OF, read_now=0)["kept_share"] == 0.0


def test_a_gate_stop_prints_the_override_the_configuration_accepts():
    """The advice to relax a stopped check is YAML that `QualityConfig` reads as that very override."""
    import re

    import yaml

    from islandbridge.quality.config import QualityConfig
    from islandbridge.quality.gate import gate_message
    from islandbridge.quality.results import CheckResult, GateResult

    failed = [
        CheckResult(
            "iot", "events", "volume", "volume:flow", "critical", False, observed={"kept_share": 0.4}
        ),
        CheckResult("registry", "t_jm", "zt_known", "in_set", "critical", False),
        # a roster's totals are checked part by part; the configuration names the check, not its parts
        CheckResult("civil", "dibao", "roster_totals.rows", "roster_totals", "critical", False),
        CheckResult("civil", "dibao", "roster_totals.sum:月保障金(元)", "roster_totals", "critical", False),
    ]
    message = gate_message(GateResult("ib_x", AS_OF.isoformat(), False, failed))
    override = re.search(r"`(quality: .*?)`", message).group(1)
    assert override == (
        "quality: {checks: {iot.events.volume: {severity: warning}, registry.t_jm.zt_known: {severity: warning}, "
        "civil.dibao.roster_totals: {severity: warning}}}"
    )
    cfg = QualityConfig.from_mapping(yaml.safe_load(override)["quality"])
    assert {name: o.severity for name, o in cfg.checks.items()} == {
        "iot.events.volume": "warning",
        "registry.t_jm.zt_known": "warning",
        "civil.dibao.roster_totals": "warning",
    }


def _land_residents(settings, phones):
    """A registry landing of one estate, one house per resident and a resident per phone."""
    houses = [{"fwbh": f"FW{i}", "xqbm": "XQ001"} for i in range(len(phones))]
    residents = [
        {"jmid": f"J{i}", "zt": "1", "xb": "1", "hjlx": "户籍", "fwbh": f"FW{i}", "lxdh": phone}
        for i, phone in enumerate(phones)
    ]
    writer = LandingWriter.open(settings.landing_url, RUN, "registry", sql_registry.STREAMS)
    for stream, rows in (("t_xq", ESTATES), ("t_fw", houses), ("t_jm", residents)):
        writer.read(stream, len(rows))
        writer.write(stream, rows)
    writer.close({})


def test_a_mostly_share_of_fewer_values_than_min_rows_is_not_judged(tmp_path):
    """One bad phone of three is a 67% share, the verdict of one row: a critical `mostly` check passes it,
    saying it did not judge; with `mostly.min_rows` lowered to three the same share stops the run."""
    settings = _settings(tmp_path)
    _land_residents(settings, ["13800138000", "13900139000", "call me"])
    critical = {"checks": {"registry.t_jm.phone_valid": {"severity": "critical", "mostly": 0.9}}}
    gate = validate_run(settings, RUN, AS_OF, ["registry"], critical, keyring=ephemeral_keyring())
    (phone,) = [r for r in gate.results if r.check == "phone_valid"]
    assert phone.success and phone.unexpected_count == 1
    assert phone.observed == {"success_ratio": 0.6667, "mostly": 0.9, "judged": False, "min_rows": 20}
    with pytest.raises(QualityGateError, match="phone_valid .*1 of 3 rows failed"):
        validate_run(settings, RUN, AS_OF, ["registry"], {**critical, "mostly": {"min_rows": 3}})


def test_a_small_batch_of_mostly_bad_values_is_judged_all_the_same(tmp_path):
    """Below `mostly.min_rows` the share waits only while its failures would pass among 20 values: 19 bad
    phones of 19 (a source that changed its format on an incremental street) still stop a critical check,
    and three bad of nineteen (three of twenty would be 85 %, under 0.9) do too; two bad pass unjudged."""
    settings = _settings(tmp_path)
    critical = {"checks": {"registry.t_jm.phone_valid": {"severity": "critical", "mostly": 0.9}}}
    _land_residents(settings, ["call me"] * 19)
    with pytest.raises(QualityGateError, match="phone_valid .*19 of 19 rows failed"):
        validate_run(settings, RUN, AS_OF, ["registry"], critical, keyring=ephemeral_keyring())
    for bad, passes in ((2, True), (3, False)):
        settings = _settings(tmp_path / str(bad))
        _land_residents(settings, ["call me"] * bad + [f"138001380{i:02d}" for i in range(19 - bad)])
        if passes:
            gate = validate_run(settings, RUN, AS_OF, ["registry"], critical, keyring=ephemeral_keyring())
            (phone,) = [r for r in gate.results if r.check == "phone_valid"]
            assert phone.success and phone.observed["judged"] is False
        else:
            with pytest.raises(QualityGateError, match=f"phone_valid .*{bad} of 19 rows failed"):
                validate_run(settings, RUN, AS_OF, ["registry"], critical, keyring=ephemeral_keyring())
