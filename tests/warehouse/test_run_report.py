"""The run report: each section shows the run's numbers, degrades when data is absent, and loads nothing."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import duckdb
import pytest

from islandbridge.delivery.run_report import write_run_report
from islandbridge.identity import tables as identity
from islandbridge.landing import raw
from islandbridge.quality import quarantine

RUN = "ib_20261120T160000Z"
OTHER = "ib_20261119T160000Z"
AS_OF = dt.datetime(2026, 11, 20, 16, tzinfo=dt.UTC)
LINKS = {
    "civil_affairs~resident_registry": 376,
    "grid_platform~iot_platform": 1597,
    "grid_platform~resident_registry": 2396,
    "resident_registry~resident_registry": 21,
}


def make_warehouse(
    path: Path, *, identity_run: bool = True, quality: bool = True, marts: bool = True, persons: bool = True
) -> None:
    """A warehouse with the real meta/identity DDL and hand-made numbers for RUN (and an older OTHER run)."""
    con = raw.connect(str(path))
    try:
        identity.ensure_schema(con)
        con.execute(quarantine.DDL)
        for run_id, as_of in ((RUN, AS_OF), (OTHER, AS_OF - dt.timedelta(days=1))):
            con.execute(
                "INSERT INTO meta.runs VALUES (?, ?, 'loaded', ?, ?, ['registry', 'iot'])",
                [run_id, as_of, as_of + dt.timedelta(hours=3), as_of + dt.timedelta(hours=3, seconds=42)],
            )
        con.executemany(
            "INSERT INTO meta.run_sources VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)",
            [
                [RUN, "registry", "t_jm", 4400, 4321, 66, 13, 2],
                [RUN, "registry", "t_jm_bq", 10, 10, 0, 0, 0],
                [RUN, "iot", "events", 215700, 215677, 0, 23, 0],
                [RUN, "iot", "<img src=x onerror=alert(1)>", 9, 5, 1, 1, 0],  # does not add up, and hostile
                [OTHER, "registry", "t_jm", 1, 1, 0, 0, 0],
            ],
        )
        # Of t_jm's 66 quarantined: 60 set aside by the connector, 6 by the quality gate.
        con.execute(
            "INSERT INTO meta.quarantine BY NAME SELECT ? AS run_id, 'registry' AS source, 't_jm' AS stream, "
            "'t_jm:SECRET-RECORD-KEY-' || i AS record_key, 'no usable id' AS reason FROM range(60) t(i)",
            [RUN],
        )
        con.execute(
            "INSERT INTO meta.quality_quarantine BY NAME SELECT ? AS run_id, 'registry' AS source, "
            "'t_jm' AS stream, 't_jm:SECRET-RECORD-KEY-Q' || i AS record_key FROM range(6) t(i)",
            [RUN],
        )
        if identity_run:
            why = json.dumps({"records_new": 12, "records_split": 5, "splits_unexplained": 0})
            for run_id, known, as_of, changes in (
                (RUN, 2718, AS_OF, why),
                (OTHER, 2699, AS_OF - dt.timedelta(days=1), None),
            ):
                con.execute(
                    "INSERT INTO meta.identity_runs (run_id, as_of, model_version, persons, records, links, "
                    "merges, splits, retired, churn, reviews, changes) "
                    "VALUES (?, ?, 1, ?, 7659, ?, 4, 3, 2, 17, 251, ?)",
                    [run_id, as_of, known, json.dumps(LINKS), changes],
                )
        con.execute(
            "INSERT INTO core.identity_map VALUES ('resident_registry', 't_jm:SECRET-RECORD-KEY', "
            "'pk_SECRETPERSON', 'id', 1.0, ?, ?)",
            [RUN, RUN],
        )
        if quality:
            con.executemany(
                "INSERT INTO meta.quality_results VALUES (?, ?, ?, ?, 'k', 'gx', ?, ?, ?, ?, ?, '{}', "
                "'gx', NULL)",
                [
                    [RUN, "registry", "t_jm", "sfzh_valid", "sfzh", "row", False, 900, 12],
                    [RUN, "registry", "t_jm", "jmid_present", "jmid", "row", True, 900, 0],
                    [RUN, "iot", "events", "volume", None, "warning", False, None, None],
                    [OTHER, "registry", "t_jm", "other_run_check", None, "critical", False, 1, 1],
                ],
            )
        if marts:
            con.execute(
                "CREATE SCHEMA marts; CREATE TABLE marts.island_coverage AS SELECT * FROM (VALUES "
                "('001', '东城社区', 1234, 1100, 900, 300, 700, 1000, 211), "
                "('002', '西<城>社区', 88, 80, 60, 3, 40, 70, 2)) t(community_code, community, persons_known, "
                "in_registry, in_grid, in_civil, in_iot, in_two_or_more, in_all_four)"
            )
        con.execute(
            "CREATE TABLE meta.mart_builds (run_id VARCHAR, as_of TIMESTAMPTZ, options VARCHAR, counts VARCHAR)"
        )
        con.executemany(
            "INSERT INTO meta.mart_builds VALUES (?, ?, '{}', ?)",
            [
                [RUN, AS_OF, json.dumps({"elderly_alerts": 41, "island_coverage": 2, "persons_to_check": 3})],
                [
                    OTHER,
                    AS_OF - dt.timedelta(days=1),
                    json.dumps({"elderly_alerts": 45, "island_coverage": 2, "persons_to_check": 3}),
                ],
            ],
        )
        if persons:
            con.execute(
                "CREATE TABLE core.persons AS SELECT 'pk' || i AS person_key, "
                "CASE WHEN i < 5 THEN '东城社区' ELSE '西<城>社区' END AS community_name, "
                "1 + i % 4 AS systems FROM range(11) t(i)"
            )
    finally:
        con.close()


def write_manifest(exports: Path, department: str, day: str, run_id: str, rows: int) -> None:
    folder = exports / department / day
    folder.mkdir(parents=True)
    files = [
        {
            "report": "elderly_alerts",
            "format": fmt,
            "name": f"elderly_alerts.{fmt}",
            "rows": rows,
            "bytes": 100,
            "sha256": ("ab12cd34ef56" if fmt == "csv" else "99") + "0" * 52,
        }
        for fmt in ("csv", "parquet")
    ]
    (folder / "manifest.json").write_text(
        json.dumps(
            {
                "department": department,
                "day": day,
                "run_id": run_id,
                "files": files,
                "policy": {"file": "grid_centre.yml", "version": 3, "sha256": "f" * 64},
                "made_at": "2026-11-21T03:05:00+00:00",
            }
        ),
        encoding="utf-8",
    )


@pytest.fixture(scope="module")
def full_report(tmp_path_factory) -> str:
    """The report of RUN from a warehouse with every section's data, exports and a quality page."""
    base = tmp_path_factory.mktemp("report")
    make_warehouse(base / "warehouse.duckdb")
    exports = base / "exports"
    write_manifest(exports, "grid_centre", "2026-11-21", RUN, 37)
    write_manifest(exports, "civil_affairs", "2026-11-20", OTHER, 55555)
    write_manifest(exports, "street_office", ".2026-11-21.tmp-0001", RUN, 66666)  # still being written
    (base / "reports" / RUN).mkdir(parents=True)
    (base / "reports" / RUN / "quality.html").write_text("<html></html>", encoding="utf-8")
    path = write_run_report(base / "warehouse.duckdb", RUN, base / "reports", exports)
    assert path == base / "reports" / RUN / "run.html"
    return path.read_text(encoding="utf-8")


def section(page: str, key: str) -> str:
    """The HTML of one section: from its heading to the next."""
    match = re.search(rf"<h2 id='{key}'>.*?(?=<h2 |<p class='muted'>Counts only)", page, re.S)
    assert match, f"no section {key}"
    return match.group(0)


def test_records_and_accounting_show_the_runs_counts(full_report):
    records, accounting = section(full_report, "records"), section(full_report, "accounting")
    assert "<b>215,682</b><span>iot records loaded</span>" in records and "<h3>registry</h3>" in records
    assert "居民 registry residents (t_jm) — records loaded: 4,321" in records
    for number in ("4,400", "4,321", "66", "60", "6", "13", "215,700"):
        assert f"<td class='n'>{number}</td>" in accounting
    assert accounting.count("<span class='bad'>NO</span>") == 1  # 9 read != 5 + 1 + 1
    assert "<svg" in accounting and "4,400 read = 4,321 loaded + 66 quarantined + 13 duplicates" in accounting


def test_accounting_draws_and_counts_every_bucket_with_both_quarantines(full_report):
    accounting = section(full_report, "accounting")
    for tile in (
        "<b>220,119</b><span>read</span>",
        "<b>60</b><span>quarantined by the connectors</span>",
        "<b>6</b><span>quarantined by the quality gate</span>",
        "<b>37</b><span>duplicates</span>",
    ):
        assert tile in accounting
    # 66 of t_jm and 1 of the hostile stream, which neither quarantine table holds: said, not hidden.
    assert "67 rows quarantined: 60 set aside by the connectors, 6 by the quality gate." in accounting
    assert "1 quarantined row is in neither quarantine table." in accounting
    assert "9 read = 5 loaded + 1 quarantined + 1 duplicate<" in accounting  # singular for 1, as every count
    # 23 duplicates of 215,700 read is 0.01% of the bar: still drawn, at least 4 px wide.
    dup = re.search(
        r"width='([\d.]+)'[^>]*><title>设备事件 IoT device events \(events\) — duplicates: 23<", accounting
    )
    assert dup and float(dup.group(1)) >= 4
    gate = re.search(
        r"width='([\d.]+)'[^>]*><title>[^<]*\(t_jm\) — quarantined by the quality gate: 6<", accounting
    )
    assert gate and float(gate.group(1)) >= 4


def test_labels_are_human_names_in_full(full_report):
    records = section(full_report, "records")
    assert ">居民标签 registry resident tags (t_jm_bq)</text>" in records  # longer than the old 34-char cut
    assert "…" not in full_report


def test_the_previous_run_is_compared_with_arrows_and_differences(full_report):
    previous = section(full_report, "previous")
    assert OTHER in previous
    rows = dict(re.findall(r"<tr><td>([^<]+)</td>(?:<td[^>]*>[^<]*</td>){2}<td>(.*?)</td></tr>", previous))
    assert "<td>registry · records loaded</td><td class='n'>1</td><td class='n'>4,331</td>" in previous
    assert rows["registry · records loaded"] == "<span class='up'>▲ +4,330 (+433000.0%)</span>"
    assert rows["persons"] == "<span class='up'>▲ +19 (+0.7%)</span>"
    assert rows["report elderly_alerts · rows"] == "<span class='down'>▼ −4 (−8.9%)</span>"
    assert rows["report island_coverage · rows"] == "<span class='muted'>= 0</span>"
    assert rows["iot · records loaded"] == "<span class='muted'>new</span>"  # not in the previous run


def test_the_first_run_says_there_is_nothing_to_compare(tmp_path):
    make_warehouse(tmp_path / "w.duckdb")
    page = write_run_report(tmp_path / "w.duckdb", OTHER, tmp_path / "r").read_text(encoding="utf-8")
    assert "No earlier run in this warehouse to compare with." in section(page, "previous")


def test_pairs_to_review_name_the_command_that_lists_them(full_report):
    linkage = section(full_report, "linkage")
    assert "<b>251 pairs to review</b>" in linkage and "<code>islandbridge review list</code>" in linkage


def test_every_time_is_shown_in_shanghai_time_and_the_page_says_so(full_report):
    assert "All times are Asia/Shanghai (UTC+8)" in full_report
    assert "<td>2026-11-21 11:05</td>" in section(full_report, "exports")  # made at 03:05 UTC
    assert "+00:00" not in full_report and "UTC</" not in full_report


def test_linkage_shows_persons_churn_and_pair_matrix(full_report):
    linkage = section(full_report, "linkage")
    for tile in (
        "<b>2,718</b><span>persons</span>",
        "<b>4</b><span>merges</span>",
        "<b>3</b><span>splits</span>",
        "<b>17</b><span>key churn</span>",
        "<b>251</b><span>pairs to review</span>",
        f"<b>{sum(LINKS.values()):,}</b><span>links</span>",
    ):
        assert tile in linkage
    assert "grid_platform ~ iot_platform: 1,597 links" in linkage
    assert "civil_affairs ~ iot_platform: 0 links" in linkage  # absent pairs are shown as zero
    assert OTHER in linkage and "2,699" in linkage  # the trend over earlier runs


def test_recent_runs_say_why_keys_changed(full_report):
    """Records by reason (identity.churn) per run; a run reconciled before reasons were kept shows a dash."""
    linkage = section(full_report, "linkage")
    assert "<th>records split</th>" in linkage and "<th>unexplained splits</th>" in linkage
    row = re.search(rf"<tr><td>{RUN}</td>(.*?)</tr>", linkage).group(1)
    assert re.findall(r"<td[^>]*>([^<]*)</td>", row)[5:11] == ["12", "–", "5", "–", "0", "251"]


def test_island_coverage_shows_each_community_and_persons_by_number_of_systems(full_report):
    coverage = section(full_report, "coverage")
    assert "东城社区" in coverage and "西&lt;城&gt;社区" in coverage and "西<城>" not in coverage
    assert "<td class='n'>1,234<div" in coverage and "<th>in_all_four</th>" in coverage
    # core.persons: i = 0..4 in 东城 (systems 1,2,3,4,1), i = 5..10 in 西城 (2,3,4,1,2,3)
    assert "东城社区 — 1 system: 2" in coverage and "东城社区 — all 4: 1" in coverage
    assert "西&lt;城&gt;社区 — 2 systems: 2" in coverage and "西&lt;城&gt;社区 — 3 systems: 2" in coverage


def test_without_core_persons_the_spread_is_derived_from_the_mart(tmp_path):
    make_warehouse(tmp_path / "w.duckdb", persons=False)
    coverage = section(
        write_run_report(tmp_path / "w.duckdb", RUN, tmp_path / "r").read_text(encoding="utf-8"), "coverage"
    )
    assert "001 / 东城社区 — 1 system: 234" in coverage  # 1234 known - 1000 in two or more
    assert "001 / 东城社区 — 2 or 3 systems: 789" in coverage and "001 / 东城社区 — all 4: 211" in coverage


def test_quality_lists_the_runs_failures_and_links_the_gate_report(full_report):
    quality = section(full_report, "quality")
    assert "<b>3</b><span>expectations</span>" in quality and "<b>1</b><span>row failing</span>" in quality
    assert "sfzh_valid" in quality and "12 / 900" in quality and "volume" in quality
    assert "other_run_check" not in quality
    assert "<a href='quality.html'>quality.html</a>" in quality


def test_exports_list_this_runs_manifests_only(full_report):
    exports = section(full_report, "exports")
    assert "grid_centre" in exports and "elderly_alerts" in exports and "<td class='n'>37</td>" in exports
    assert "ab12cd34ef56" in exports and "csv, parquet" in exports and "<td class='n'>3</td>" in exports
    assert "55,555" not in exports and "66,666" not in exports
    assert "elderly_alerts — rows in the mart: 41" in exports


def test_persons_to_check_is_not_drawn_as_a_report(full_report):
    """meta.mart_builds.counts holds persons_to_check beside the reports' rows: a count of persons, shown
    once among the numbers compared, not as a report's mart or a report's rows."""
    assert "persons_to_check" not in full_report
    assert "persons to check (age or living alone unknown)" in section(full_report, "previous")


def test_the_demo_summary_lists_reports_and_the_persons_to_check_apart(tmp_path):
    """The demo's closing lines name the reports' rows, and the persons to check on a line of their own."""
    from islandbridge.config import parse_settings
    from islandbridge.devtools.demo import summary_lines

    make_warehouse(tmp_path / "warehouse.duckdb")
    settings = parse_settings(
        {
            "street": {"code": "511403001"},
            "landing": {"url": "landing"},
            "warehouse": {"path": "warehouse.duckdb"},
            "sources": {"civil": {"kind": "civil_files", "path": "civil"}},
        },
        base_dir=tmp_path,
        environ={},
    )
    lines = summary_lines(settings, AS_OF, tmp_path / "islandbridge.yml")
    assert "  reports (rows): elderly_alerts 41, island_coverage 2" in lines
    assert any(line.startswith("  to check:       3 persons") for line in lines)


def test_page_loads_nothing_runs_nothing_and_shows_no_keys(full_report):
    lowered = full_report.lower()
    for forbidden in ("<script", "http://", "https://", "<link", "@import", "url(", " src=", "<iframe"):
        assert forbidden not in lowered.replace("&lt;img src=x", "")
    assert "&lt;img src=x onerror=alert(1)&gt;" in full_report
    assert "SECRET-RECORD-KEY" not in full_report and "SECRETPERSON" not in full_report


def test_sections_degrade_when_their_data_is_absent(tmp_path):
    make_warehouse(tmp_path / "w.duckdb", identity_run=False, quality=False, marts=False, persons=False)
    page = write_run_report(
        tmp_path / "w.duckdb", RUN, tmp_path / "reports", tmp_path / "no-exports"
    ).read_text(encoding="utf-8")
    assert "No identity reconciliation recorded for this run." in section(page, "linkage")
    assert "No island coverage mart in this warehouse." in section(page, "coverage")
    assert "No quality results recorded for this run." in section(page, "quality")
    assert "No quality.html beside this report." in section(page, "quality")
    assert "No exports for this run." in section(page, "exports")
    assert "4,321" in section(page, "records")


def test_an_unknown_run_or_missing_warehouse_still_gives_a_page(tmp_path):
    page = write_run_report(tmp_path / "absent.duckdb", RUN, tmp_path / "reports").read_text(encoding="utf-8")
    assert "This run is not in meta.runs (as of 2026-11-21 00:00)" in page
    for key in ("records", "accounting"):
        assert "No source accounting for this run." in section(page, key)
    assert "No exports for this run." in section(page, "exports")


def test_a_report_note_of_the_marts_build_is_shown_as_a_problem(tmp_path):
    """A build whose month's roster had not arrived says so beside the marts' counts, and its failed
    warning is in the quality results' failing table."""
    path = tmp_path / "w.duckdb"
    make_warehouse(path)
    note = "2026-11 高龄补贴名册尚未收到：… / the 高龄补贴 roster of 2026-11 has not arrived"
    con = raw.connect(str(path))
    try:
        con.execute("ALTER TABLE meta.mart_builds ADD COLUMN notes VARCHAR")
        con.execute(
            "UPDATE meta.mart_builds SET notes = ? WHERE run_id = ?",
            [json.dumps({"senior_allowance_gaps": [note]}, ensure_ascii=False), RUN],
        )
        con.execute(
            "INSERT INTO meta.quality_results VALUES (?, 'reports', 'senior_allowance_gaps', "
            "'senior_roster_arrived', 'roster_arrived', '', NULL, 'warning', false, 158, NULL, '{}', 'duckdb', NULL)",
            [RUN],
        )
    finally:
        con.close()
    page = write_run_report(path, RUN, tmp_path / "r").read_text(encoding="utf-8")
    assert f"<p class='bad'>senior_allowance_gaps: {note}</p>" in section(page, "exports")
    assert "senior_roster_arrived" in section(page, "quality")
    assert "<b>2</b><span>warning failing</span>" in section(page, "quality")


def test_a_count_of_one_is_worded_in_the_singular(tmp_path):
    make_warehouse(tmp_path / "w.duckdb")
    with duckdb.connect(str(tmp_path / "w.duckdb")) as con:
        con.execute(
            "UPDATE meta.identity_runs SET persons = 1, merges = 1, reviews = 1, links = '{\"a~b\": 1}'"
        )
        con.execute("UPDATE meta.run_sources SET duplicates = CASE WHEN stream = 't_jm' THEN 1 ELSE 0 END")
    page = write_run_report(tmp_path / "w.duckdb", RUN, tmp_path / "reports").read_text(encoding="utf-8")
    linkage, accounting = section(page, "linkage"), section(page, "accounting")
    assert "<b>1 pair to review</b>" in linkage
    for tile in ("<b>1</b><span>person</span>", "<b>1</b><span>merge</span>", "<b>1</b><span>link</span>"):
        assert tile in linkage
    assert ": 1 link</title>" in linkage
    assert "<b>1</b><span>duplicate</span>" in accounting and "+ 1 duplicate<" in accounting
    assert "+ 0 duplicates<" in accounting
    assert " 1 duplicates" not in page and " 1 pairs" not in page
