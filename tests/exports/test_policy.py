"""Policies: the shipped ones are valid; a policy that asks for too much, or names a path, is refused."""

from __future__ import annotations

import re

import pytest

from islandbridge.delivery.policy import DEPARTMENTS, PolicyError, load_policies, parse_policies
from tests.exports.support import policy_texts, shipped_policy


def test_shipped_policies_cover_every_department_and_report():
    policies = load_policies()
    assert sorted(policies) == sorted(DEPARTMENTS)
    for name, department in DEPARTMENTS.items():
        assert sorted(policies[name].reports) == sorted(department.reports)
        assert policies[name].version >= 1 and len(policies[name].sha256) == 64


def test_shipped_policies_give_each_department_only_what_departments_md_allows():
    policies = load_policies()
    assert policies["grid_centre"].vault_fields() == ("name", "phone")
    assert policies["civil_affairs"].vault_fields() == ("name", "id_number", "birth_date")
    assert policies["street_office"].vault_fields() == ()
    street = policies["street_office"].reports["island_coverage"]
    assert all(c.suppress_below == 5 for c in street.columns if c.name.startswith("persons_"))
    street_columns = [c for r in policies["street_office"].reports.values() for c in r.columns]
    assert not any(c.kind == "person_ref" for c in street_columns)


def refused(*raws, **named) -> str:
    with pytest.raises(PolicyError) as caught:
        parse_policies(policy_texts(*raws, **named))
    return str(caught.value)


def with_column(department, report, column):
    raw = shipped_policy(department)
    raw["reports"][report]["columns"].append(column)
    return raw


@pytest.mark.parametrize(
    ("department", "report", "column"),
    [
        ("grid_centre", "elderly_alerts", {"name": "id_number", "source": "vault:id_number"}),
        ("grid_centre", "elderly_alerts", {"name": "card", "source": "vault:bank_card"}),
        ("grid_centre", "no_device_coverage", {"name": "born", "source": "vault:birth_date"}),
        ("civil_affairs", "senior_allowance_gaps", {"name": "phone", "source": "vault:phone"}),
        ("civil_affairs", "subsidy_after_exit", {"name": "card", "source": "vault:bank_card"}),
        ("street_office", "island_coverage", {"name": "name", "source": "vault:name"}),
    ],
)
def test_a_policy_naming_a_forbidden_identifier_is_refused(department, report, column):
    message = refused(with_column(department, report, column))
    assert "forbidden identifier" in message and f"{department}.yml" in message


def test_an_identifier_may_not_be_smuggled_in_from_a_mart():
    message = refused(with_column("grid_centre", "elderly_alerts", {"name": "tel", "source": "mart:phone"}))
    assert "may come only from the vault" in message
    message = refused(
        with_column(
            "civil_affairs", "senior_allowance_gaps", {"name": "id_number", "source": "mart:community"}
        )
    )
    assert "must have source vault:id_number" in message


def test_the_policys_own_forbidden_list_is_enforced():
    message = refused(with_column("grid_centre", "elderly_alerts", {"name": "tags", "source": "mart:tags"}))
    assert "forbidden identifier 'tags'" in message


def test_person_key_never_leaves_the_warehouse():
    message = refused(
        with_column("grid_centre", "elderly_alerts", {"name": "k", "source": "mart:person_key"})
    )
    assert "person_key never leaves the warehouse" in message


def test_the_street_office_gets_no_person_ref():
    message = refused(with_column("street_office", "island_coverage", {"name": "w", "source": "person_ref"}))
    assert "aggregates only" in message


@pytest.mark.parametrize(
    "department", ["police", "Grid_Centre", "../grid_centre", "grid_centre\n", "/etc", ""]
)
def test_an_unknown_or_unsafe_department_is_refused(department):
    raw = shipped_policy("grid_centre") | {"department": department}
    message = refused(grid_centre=raw)
    assert "department" in message


def test_a_policy_file_must_be_named_after_its_department():
    assert "must be called grid_centre.yml" in refused(other=shipped_policy("grid_centre"))


@pytest.mark.parametrize("report", ["deaths", "../../etc/passwd", "elderly_alerts/..", "Elderly"])
def test_an_unknown_or_unsafe_report_name_is_refused(report):
    raw = shipped_policy("grid_centre")
    raw["reports"][report] = raw["reports"].pop("elderly_alerts")
    message = refused(raw)
    assert repr(report) in message


def test_an_output_column_name_must_be_plain():
    message = refused(with_column("grid_centre", "elderly_alerts", {"name": "=cmd", "source": "mart:age"}))
    assert "output column name must match" in message


@pytest.mark.parametrize("version", [0, -1, "3", None, True])
def test_version_is_a_whole_number_from_one(version):
    assert "'version'" in refused(shipped_policy("grid_centre") | {"version": version})


def test_every_problem_is_reported_at_once():
    grid = with_column("grid_centre", "elderly_alerts", {"name": "id_number", "source": "vault:id_number"})
    civil = with_column("civil_affairs", "subsidy_after_exit", {"name": "phone", "source": "vault:phone"})
    message = refused(grid, civil)
    assert message.startswith("2 policy problems:")
    assert "grid_centre.yml" in message and "civil_affairs.yml" in message


@pytest.mark.parametrize(
    ("entry", "ok"),
    [
        ("hours_silent desc nulls first", True),
        ("age asc", True),
        ("age sideways", False),
        ("nobody", False),
        ("age desc; drop", False),
    ],
)
def test_order_by_names_output_columns(entry, ok):
    raw = shipped_policy("grid_centre")
    raw["reports"]["elderly_alerts"]["order_by"] = [entry]
    if ok:
        parse_policies(policy_texts(raw))
    else:
        assert "order_by entry" in refused(raw)


def test_unknown_keys_are_refused_not_ignored():
    raw = shipped_policy("grid_centre")
    raw["reports"]["elderly_alerts"]["columns"][1]["maks"] = "name"
    assert "unknown key ['maks']" in refused(raw)


def test_an_output_column_may_appear_once():
    message = refused(with_column("grid_centre", "elderly_alerts", {"name": "age", "source": "mart:age"}))
    assert "appears twice" in message


def test_mask_must_be_known():
    raw = shipped_policy("grid_centre")
    raw["reports"]["elderly_alerts"]["columns"][1]["mask"] = "blur"
    assert "mask must be one of" in refused(raw)


def test_if_empty_is_a_text_for_a_mart_column_only():
    for column in (
        {"name": "ref", "source": "person_ref", "if_empty": "无"},
        {"name": "w", "source": "mart:w", "if_empty": 0},
    ):
        message = refused(with_column("grid_centre", "elderly_alerts", column))
        assert "if_empty is a text shown in a mart column's empty cells" in message


def test_if_empty_is_refused_beside_suppress_below_or_a_mask():
    """A suppressed count is text once shown: its empty cells would read 无 and break the workbook."""
    for extra in ({"suppress_below": 5}, {"mask": "phone"}):
        column = {"name": "w", "source": "mart:w", "if_empty": "无", **extra}
        message = refused(with_column("street_office", "island_coverage", column))
        assert "not with suppress_below or mask" in message


def test_cell_labels_map_a_mart_columns_codes_to_chinese_text():
    """A label is what the clerk reads in the cell: Chinese, and only for a mart column shown as it is."""
    bad = (
        ({"name": "w", "source": "mart:w", "cell_labels": {"no_candidate": "none"}}, "maps each code"),
        ({"name": "w", "source": "mart:w", "cell_labels": ["无候选人员"]}, "maps each code"),
        (
            {"name": "w", "source": "mart:w", "cell_labels": {1: "一"}, "suppress_below": 5},
            "not with suppress",
        ),
        ({"name": "ref", "source": "person_ref", "cell_labels": {1: "一"}}, "a mart column of codes"),
    )
    for column, why in bad:
        assert why in refused(with_column("street_office", "island_coverage", column))


def test_every_shipped_report_has_a_chinese_definition_and_every_column_a_meaning():
    """The 说明 sheet's 定义 and 说明 meaning come from here; a clerk reads Chinese."""
    for policy in load_policies().values():
        for report in policy.reports.values():
            assert re.search("[\u4e00-\u9fff]", report.definition), (policy.department, report.name)
            assert report.description, (policy.department, report.name)  # the English stays
            empty = [c.name for c in report.columns if not re.search("[\u4e00-\u9fff]", c.description)]
            assert not empty, (policy.department, report.name, empty)
            texts = [report.definition, *(c.description for c in report.columns)]
            assert not [t for t in texts if re.search("[。；，、] ", t)], "a folded line left a space"


@pytest.mark.parametrize("key", ["definition", "description"])
def test_an_english_only_definition_or_meaning_is_refused(key):
    raw = shipped_policy("civil_affairs")
    report = raw["reports"]["subsidy_after_exit"]
    (report if key == "definition" else report["columns"][0])[key] = "roster rows whose person moved out"
    assert f"'{key}' is read by department staff and must be Chinese text" in refused(raw)


def test_a_folded_line_break_between_chinese_characters_leaves_no_space():
    raw = shipped_policy("civil_affairs")
    raw["reports"]["subsidy_after_exit"]["definition"] = (
        "应退未退：名册中，\n迁出或死亡的人 (2, 3)。 按行号排列"
    )
    texts = policy_texts(raw)
    policy = parse_policies(texts)["civil_affairs"]
    assert (
        policy.reports["subsidy_after_exit"].definition
        == "应退未退：名册中，\n迁出或死亡的人 (2, 3)。按行号排列"
    )


def test_a_policy_with_a_key_given_twice_is_refused_naming_the_key_and_line():
    text = b"department: grid_centre\nreports: {}\ndepartment: civil_affairs\n"
    with pytest.raises(
        PolicyError, match=r"grid_centre.yml: not valid YAML: line 3, column 1: .*'department'"
    ):
        parse_policies({"grid_centre.yml": text})
