"""The exporter refuses, and writes nothing, rather than export what no policy allows or write outside."""

from __future__ import annotations

import dataclasses
import os

import duckdb
import pytest

from islandbridge.delivery.export import ExportError, department_dir, export_run
from islandbridge.delivery.policy import ColumnRule, PolicyError, load_policies, parse_policies
from tests.exports.support import AS_OF, DAY, RUN_ID, policy_texts, shipped_policy


def alter(settings, sql: str) -> None:
    with duckdb.connect(str(settings.warehouse_path)) as rw:
        rw.execute(sql)


def export(settings, **kwargs):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con:
        return export_run(settings, con, AS_OF, RUN_ID, **kwargs)


def files_under(folder):
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*")) if folder.exists() else []


def snapshot(folder):
    return {str(p.relative_to(folder)): p.read_bytes() for p in folder.rglob("*") if p.is_file()}


def test_a_mart_column_the_policy_does_not_allow_is_refused_and_nothing_is_written(settings):
    alter(settings, "ALTER TABLE marts.elderly_alerts ADD COLUMN tags VARCHAR DEFAULT '独居老人,低保户'")
    with pytest.raises(PolicyError, match=r"column \['tags'\] that the policy does not allow") as caught:
        export(settings)
    assert "grid_centre.yml" in str(caught.value) and "withheld" in str(caught.value)
    assert files_under(settings.exports_dir) == []
    assert not settings.audit_path.exists()


def test_a_withheld_mart_column_is_left_out(settings):
    alter(settings, "ALTER TABLE marts.elderly_alerts ADD COLUMN tags VARCHAR DEFAULT '独居老人,低保户'")
    raw = shipped_policy("grid_centre")
    raw["reports"]["elderly_alerts"]["withheld"].append("tags")
    policies = load_policies() | parse_policies(policy_texts(raw))
    export(settings, policies=policies)
    text = (settings.exports_dir / "grid_centre" / DAY / "elderly_alerts.csv").read_text(encoding="utf-8-sig")
    assert "tags" not in text and "低保户" not in text


def test_a_refusal_leaves_the_previous_export_as_it_was(settings):
    export(settings)
    before = snapshot(settings.exports_dir)
    alter(settings, "ALTER TABLE marts.senior_allowance_gaps ADD COLUMN sex VARCHAR")
    with pytest.raises(PolicyError):
        export(settings)
    assert snapshot(settings.exports_dir) == before


def test_a_mart_missing_a_policy_column_is_refused(settings):
    alter(settings, "ALTER TABLE marts.subsidy_after_exit DROP COLUMN amount_yuan")
    with pytest.raises(PolicyError, match=r"needs mart column \['amount_yuan'\]"):
        export(settings)
    assert files_under(settings.exports_dir) == []


def test_a_missing_mart_is_refused(settings):
    alter(settings, "DROP TABLE marts.island_coverage")
    with pytest.raises(ExportError, match="marts.island_coverage does not exist"):
        export(settings)
    assert files_under(settings.exports_dir) == []


def test_an_aggregate_mart_with_person_keys_is_refused(settings):
    alter(settings, "ALTER TABLE marts.island_coverage ADD COLUMN person_key VARCHAR")
    with pytest.raises(PolicyError, match="aggregates only"):
        export(settings)


def test_a_policy_built_in_code_is_checked_too(settings):
    """A Policy object that skipped the file checks cannot smuggle an ID number to the grid centre."""
    policies = load_policies()
    grid = policies["grid_centre"]
    alerts = grid.reports["elderly_alerts"]
    bad = dataclasses.replace(alerts, columns=(*alerts.columns, ColumnRule("id", "vault", "id_number")))
    policies["grid_centre"] = dataclasses.replace(grid, reports={**grid.reports, "elderly_alerts": bad})
    with pytest.raises(PolicyError, match="forbidden identifier 'id_number'"):
        export(settings, policies=policies)
    assert files_under(settings.exports_dir) == []


def test_if_empty_on_a_mart_column_that_is_not_text_is_refused(settings):
    """A count's empty cells cannot read 无: the CSV would mix text into a number column and the workbook
    would fail to write it."""
    policies = load_policies()
    street = policies["street_office"]
    coverage = street.reports["island_coverage"]
    columns = tuple(
        dataclasses.replace(c, suppress_below=None, if_empty="无") if c.name == "persons_known" else c
        for c in coverage.columns
    )
    bad = dataclasses.replace(coverage, columns=columns)
    policies["street_office"] = dataclasses.replace(street, reports={**street.reports, bad.name: bad})
    with pytest.raises(ExportError, match="if_empty applies to a text column"):
        export(settings, policies=policies)
    assert files_under(settings.exports_dir) == []


def test_a_policy_built_in_code_cannot_give_staff_an_english_definition(settings):
    """What a clerk reads on the 说明 sheet is Chinese, whether the policy came from a file or from code."""
    policies = load_policies()
    civil = policies["civil_affairs"]
    gaps = dataclasses.replace(civil.reports["senior_allowance_gaps"], definition="residents aged 80+")
    policies["civil_affairs"] = dataclasses.replace(civil, reports={**civil.reports, gaps.name: gaps})
    with pytest.raises(PolicyError, match="'definition' is read by department staff"):
        export(settings, policies=policies)
    assert files_under(settings.exports_dir) == []


@pytest.mark.parametrize("name", ["../evil", "..", "grid_centre/../../x", "/tmp/x"])
def test_a_department_name_that_would_escape_exports_is_refused(settings, name):
    policies = load_policies()
    policies[name] = dataclasses.replace(policies.pop("grid_centre"), department=name)
    with pytest.raises(PolicyError, match="must match"):
        export(settings, policies=policies)
    with pytest.raises(ExportError, match="must match"):
        department_dir(settings.exports_dir, name)
    assert files_under(settings.exports_dir) == [] and not (settings.exports_dir.parent / "evil").exists()


def test_a_report_name_that_would_escape_exports_is_refused(settings):
    policies = load_policies()
    grid = policies["grid_centre"]
    escaping = dataclasses.replace(grid.reports["elderly_alerts"], name="../../../escaped")
    policies["grid_centre"] = dataclasses.replace(grid, reports={"../../../escaped": escaping})
    with pytest.raises(PolicyError, match="unknown or unsafe report name"):
        export(settings, policies=policies)
    assert not list(settings.exports_dir.parent.rglob("escaped*"))


def test_a_department_folder_that_is_a_link_is_refused(settings, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    settings.exports_dir.mkdir()
    os.symlink(elsewhere, settings.exports_dir / "civil_affairs")
    with pytest.raises(ExportError, match="is a link"):
        export(settings)
    assert list(elsewhere.iterdir()) == []


def test_a_day_folder_that_is_a_link_is_refused(settings, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (settings.exports_dir / "civil_affairs").mkdir(parents=True)
    os.symlink(elsewhere, settings.exports_dir / "civil_affairs" / DAY)
    with pytest.raises(ExportError, match="is a link"):
        export(settings)
    assert list(elsewhere.iterdir()) == []
    assert [p.name for p in (settings.exports_dir / "civil_affairs").iterdir()] == [DAY]  # no stage left
    assert not settings.audit_path.exists()  # refused before anything was revealed


def test_a_naive_as_of_is_refused(settings):
    with duckdb.connect(str(settings.warehouse_path), read_only=True) as con, pytest.raises(ExportError):
        export_run(settings, con, AS_OF.replace(tzinfo=None), RUN_ID)
