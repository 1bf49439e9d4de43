"""quality.html for people: a summary per table with failures first, both quarantines named, detail folded."""

from __future__ import annotations

import json
from html.parser import HTMLParser

import duckdb
import pyarrow as pa

from islandbridge.config import parse_as_of
from islandbridge.quality import report
from islandbridge.quality.results import CheckResult, GateResult
from islandbridge.quality.rowchecks import CheckContext, run_row_checks
from islandbridge.schemas import RECORD_KEY, load_tables, stream_label


def check(source, stream, name, severity, success, **kw) -> CheckResult:
    return CheckResult(source, stream, name, "k", severity, success, **kw)


def gate_result() -> GateResult:
    """Four tables: one passes, one warns, one sets rows aside, one fails critically; plus connectors' rows."""
    gate = GateResult(
        "ib_20261120T160000Z",
        "2026-11-20T16:00:00+00:00",
        passed=False,
        results=[
            check("grid", "workers", "worker_id_present", "row", True, element_count=33, unexpected_count=0),
            check(
                "iot", "events", "volume", "warning", False, observed={"rows": 12, "expected_at_least": 40}
            ),
            check("iot", "events", "event_id_present", "row", True, element_count=900, unexpected_count=0),
            check(
                "registry",
                "t_jm",
                "sfzh_valid",
                "row",
                False,
                column="sfzh",
                element_count=293,
                unexpected_count=2,
                sample_keys=["t_jm:17", "t_jm:42"],
            ),
            check("civil", "senior", "roster_totals", "critical", False, observed={"files_short": 1}),
            check("civil", "senior", "序号_present", "row", True, element_count=28, unexpected_count=0),
        ],
        quarantined={"registry": {"t_jm": 2}},
        connector_quarantined={"iot": {"events": 36}},
        labels={
            "registry.t_jm_bq": "居民标签 registry resident tags",
            "iot.events": "设备事件 IoT device events",
        },
    )
    return gate


class Page(HTMLParser):
    """The summary table's rows (status class, table id) and the <details> blocks (id, open)."""

    def __init__(self, text: str) -> None:
        super().__init__()
        self.rows: list[tuple[str, str]] = []
        self.details: list[tuple[str, bool]] = []
        self.text: dict[str, str] = {}
        self._capture: str | None = None
        self.feed(text)

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "tr" and "data-table" in a:
            self.rows.append((a["class"], a["data-table"]))
        elif tag == "details":
            self.details.append((a["id"], "open" in a))
        elif a.get("id") == "quarantine-total":
            self._capture, self.text["quarantine-total"] = "quarantine-total", ""

    def handle_endtag(self, tag):
        if tag == "p":
            self._capture = None

    def handle_data(self, data):
        if self._capture:
            self.text[self._capture] += data


def test_the_summary_lists_every_table_failures_first():
    page = Page(report.render(gate_result()))
    assert page.rows == [
        ("failed", "civil.senior"),
        ("warned", "iot.events"),
        ("setaside", "registry.t_jm"),
        ("passed", "grid.workers"),
    ]


def test_the_summary_counts_passed_warned_failed_and_rows_set_aside_per_table():
    by_id = {t.id: t for t in report.summarise(gate_result())}
    events, jm = by_id["iot.events"], by_id["registry.t_jm"]
    assert (events.count("passed"), events.count("warned")) == (1, 1)
    assert (events.by_connectors, events.by_gate) == (36, 0)
    assert (jm.count("setaside"), jm.by_gate, jm.rows) == (1, 2, 293)
    assert by_id["civil.senior"].count("failed") == 1 and by_id["grid.workers"].status == "passed"
    assert events.label == "设备事件 IoT device events" and jm.label == "t_jm"  # no label given: the stream


def test_both_quarantines_are_named_with_their_numbers():
    page = Page(report.render(gate_result()))
    assert page.text["quarantine-total"].startswith(
        "38 rows quarantined: 36 set aside by the connectors, 2 by the quality gate."
    )
    assert json.loads(json.dumps(gate_result().to_dict()))["connector_quarantined"] == {"iot": {"events": 36}}
    assert report.quarantine_sentence(1, 0).startswith("1 row quarantined: 1 set aside")


def test_detail_is_folded_per_table_and_open_where_something_failed():
    page = Page(report.render(gate_result()))
    assert page.details == [
        ("t-civil.senior", True),
        ("t-iot.events", True),
        ("t-registry.t_jm", False),
        ("t-grid.workers", False),
    ]


def test_the_page_shows_local_time_record_keys_and_escapes_names():
    gate = gate_result()
    gate.labels["grid.workers"] = "<script>x</script>"
    text = report.render(gate)
    assert "as of <b>2026-11-21 00:00</b> (all times Asia/Shanghai)" in text
    assert "t_jm:17, t_jm:42" in text and "2 / 293" in text
    assert "<script>" not in text and "&lt;script&gt;x&lt;/script&gt;" in text


def test_every_raw_table_has_a_label_and_streams_resolve_by_source():
    tables = load_tables()
    assert all(t.label for t in tables.values())
    assert stream_label("registry", "t_jm_bq") == "居民标签 registry resident tags"
    assert stream_label("iot", "events", "iot_rest") == "设备事件 IoT device events"
    assert stream_label("grid", "events") == "网格事件 grid events"  # two systems have `events`: by source
    assert stream_label("nowhere", "events") == "events" and stream_label("x", "nope") == "nope"


def test_the_sample_keys_of_a_failing_check_are_scrubbed():
    """A roster row keyed by a 序号 a clerk typed an ID number into fails a check: the record key the
    report samples names the row without the number."""
    table = load_tables()["civil_files", "dibao"]
    checks = [c for c in table.suite if c.id == "category_known"]
    rows = pa.table(
        {c: ["D类" if c == "保障类别" else "1"] for c in table.column_names}
        | {RECORD_KEY: ["dibao:202611:511403194401187954"]}
    )
    context = CheckContext(parse_as_of("2026-11-20"))
    found = run_row_checks(duckdb.connect(), rows, table, checks, context, {}, want_frame=False)
    assert found.samples == {"category_known": ["dibao:202611:[证件号]"]}
