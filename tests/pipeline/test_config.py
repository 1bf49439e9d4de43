"""Configuration: secrets by reference only, every problem reported at once, wrong kinds caught early."""

from __future__ import annotations

import datetime as dt

import pytest

from islandbridge.config import Secret, parse_as_of, parse_settings
from islandbridge.errors import ConfigError
from islandbridge.pipeline import check_settings, load_settings
from islandbridge.privacy.keys import KeyringError, load_keys

BASE = {
    "street": {"code": "511403001"},
    "landing": {"url": "landing"},
    "warehouse": {"path": "wh/warehouse.duckdb"},
    "sources": {
        "grid": {
            "kind": "grid_rest",
            "base_url": "http://127.0.0.1:1",
            "client_id": "c",
            "client_secret": {"env": "GRID_SECRET"},
        },
    },
}


def test_secret_reference_resolves_from_the_given_environment_and_never_prints(tmp_path):
    settings = parse_settings(BASE, base_dir=tmp_path, environ={"GRID_SECRET": "s3cr3t-value"})
    secret = settings.sources["grid"].options["client_secret"]
    assert isinstance(secret, Secret) and secret.reveal() == "s3cr3t-value"
    assert "s3cr3t-value" not in repr(settings) and "s3cr3t-value" not in str(secret)


def test_relative_paths_are_taken_from_the_config_folder(tmp_path):
    settings = parse_settings(BASE, base_dir=tmp_path, environ={"GRID_SECRET": "x"})
    assert settings.warehouse_path == tmp_path / "wh" / "warehouse.duckdb"
    assert settings.landing_url == (tmp_path / "landing").as_uri()


def test_a_secret_written_inline_is_refused(tmp_path):
    raw = {**BASE, "sources": {"grid": {**BASE["sources"]["grid"], "client_secret": "plain-text"}}}
    with pytest.raises(ConfigError, match=r"client_secret: write a reference"):
        parse_settings(raw, base_dir=tmp_path, environ={})


@pytest.mark.parametrize(
    "url",
    [
        "postgresql+psycopg://reader:Pl4in-Pass@127.0.0.1:5432/registry",
        "mysql+pymysql://reader:p%40ss@db.example/registry?charset=utf8mb4",
        " postgresql://u:x@[::1]:bad/db",
    ],
)
def test_a_registry_url_with_a_password_written_inline_is_refused(tmp_path, url):
    raw = {**BASE, "sources": {"registry": {"kind": "sql_registry", "url": url}}}
    with pytest.raises(ConfigError, match=r"sources.registry.url: a URL with a password") as err:
        parse_settings(raw, base_dir=tmp_path, environ={})
    assert "{env: REGISTRY_URL}" in str(err.value)
    assert "Pl4in-Pass" not in str(err.value) and "p%40ss" not in str(err.value)


@pytest.mark.parametrize(
    "url", ["sqlite:////data/registry.db", "postgresql://reader@127.0.0.1/registry", "http://host:8080/a@b"]
)
def test_a_url_without_a_password_may_be_written_inline(tmp_path, url):
    raw = {**BASE, "sources": {"registry": {"kind": "sql_registry", "url": url}}}
    settings = parse_settings(raw, base_dir=tmp_path, environ={"GRID_SECRET": "x"})
    assert settings.sources["registry"].options["url"] == url


def test_every_problem_is_reported_at_once(tmp_path):
    raw = {"sources": {"grid": {**BASE["sources"]["grid"]}, "x": {"base_url": "y"}}}
    with pytest.raises(ConfigError) as err:
        parse_settings(raw, base_dir=tmp_path, environ={})
    text = str(err.value)
    for expected in (
        "street.code: required",
        "landing.url: required",
        "warehouse.path: required",
        "GRID_SECRET is not set",
        "sources.x: needs a 'kind'",
    ):
        assert expected in text


def test_an_unknown_connector_kind_names_the_known_kinds(tmp_path):
    raw = {**BASE, "sources": {"erp": {"kind": "sap_erp"}}}
    with pytest.raises(ConfigError, match=r"unknown kind 'sap_erp'; known kinds: civil_files, grid_rest"):
        check_settings(parse_settings(raw, base_dir=tmp_path, environ={}))


def test_a_missing_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.yml", environ={})


def test_a_bare_date_as_of_means_the_end_of_that_day_in_shanghai():
    as_of = parse_as_of("2026-11-20")
    assert as_of.isoformat() == "2026-11-21T00:00:00+08:00"
    assert parse_as_of("2026-11-20T12:00:00+00:00").isoformat() == "2026-11-20T12:00:00+00:00"
    with pytest.raises(ConfigError, match="YYYY-MM-DD"):
        parse_as_of("20 Nov")


def test_warehouse_only_commands_need_no_source_secrets(tmp_path):
    settings = parse_settings(BASE, base_dir=tmp_path, environ={}, with_sources=False)
    assert settings.warehouse_path == tmp_path / "wh" / "warehouse.duckdb"
    # known by name and kind (quarantine show needs the kind), the options and secret left unread
    assert settings.source("grid").kind == "grid_rest" and settings.source("grid").options == {}
    assert not settings.sources_resolved


def test_a_command_for_some_sources_resolves_and_requires_only_theirs(tmp_path):
    """``with_sources=["civil"]``: civil's options are read, the grid's secret is neither read nor required,
    and no connector can be built from the grid's unread options."""
    from islandbridge.connectors import build_connector

    raw = BASE | {"sources": BASE["sources"] | {"civil": {"kind": "civil_files", "path": "/srv/civil"}}}
    settings = parse_settings(raw, base_dir=tmp_path, environ={}, with_sources=["civil"])
    assert settings.source("civil").options == {"path": "/srv/civil"} and settings.source("civil").resolved
    assert settings.source("grid").kind == "grid_rest" and not settings.source("grid").resolved
    assert not settings.sources_resolved
    check_settings(settings)  # builds civil's connector only
    with pytest.raises(ConfigError, match="sources.grid: its options and secrets were not read"):
        build_connector(settings.source("grid"))
    with pytest.raises(ConfigError, match="GRID_SECRET is not set"):
        parse_settings(raw, base_dir=tmp_path, environ={}, with_sources=["grid"])


def test_a_warehouse_only_command_says_a_configured_key_file_is_missing_not_unconfigured(tmp_path):
    """`export` with keys.vault = {file: ...} and the file gone: the message names the file, and does not
    tell the operator to add a key the configuration already has."""
    raw = BASE | {"keys": {"vault": {"file": "secrets/vault.keys"}, "person_key": {"env": "IB_PERSON_KEY"}}}
    settings = parse_settings(raw, base_dir=tmp_path, environ={}, with_sources=False)
    with pytest.raises(KeyringError) as caught:
        load_keys(settings.keys, (), settings.unresolved_keys)
    message = str(caught.value)
    assert f"keys.vault: cannot read secret file {tmp_path / 'secrets/vault.keys'}" in message
    assert "keys.person_key: environment variable IB_PERSON_KEY is not set" in message
    assert "not configured" not in message
    with pytest.raises(ConfigError, match="keys.vault: cannot read secret file .*: the vault"):
        settings.key("vault", "the vault")


@pytest.mark.parametrize("text", ["2026-11-20", "20261120", " 20261120 ", dt.date(2026, 11, 20)])
def test_a_date_with_or_without_dashes_means_the_end_of_that_day(text):
    assert parse_as_of(text).isoformat() == "2026-11-21T00:00:00+08:00"


def test_a_date_time_is_that_instant_naive_ones_in_shanghai():
    assert parse_as_of("20261120T120000").isoformat() == "2026-11-20T12:00:00+08:00"
    assert parse_as_of("2026-11-20 08:30").isoformat() == "2026-11-20T08:30:00+08:00"


@pytest.mark.parametrize(
    "text", ["2026-11", "202611", "2026112", "2026-1120", "2026-W47-5", "2026-11-20T", "11/20/2026", ""]
)
def test_an_ambiguous_as_of_is_refused_not_guessed(text):
    with pytest.raises(ConfigError, match="YYYY-MM-DD or YYYYMMDD"):
        parse_as_of(text)


def test_an_impossible_date_is_refused_with_the_reason():
    with pytest.raises(ConfigError, match="month must be in 1..12"):
        parse_as_of("20261340")


def test_a_mistyped_top_level_key_is_named_with_the_nearest_valid_one(tmp_path):
    raw = {k: v for k, v in BASE.items() if k != "warehouse"} | {"warehous": {"path": "wh.duckdb"}}
    with pytest.raises(ConfigError) as err:
        parse_settings(raw, base_dir=tmp_path, environ={"GRID_SECRET": "x"})
    text = str(err.value)
    assert "unknown key `warehous`, did you mean `warehouse`?" in text
    assert "warehouse.path: required" not in text  # the typo is the problem, said once


def test_a_mistyped_nested_key_is_named_and_every_problem_collected(tmp_path):
    raw = {**BASE, "snapshots": {"dir": "snaps", "kepe": 3}, "landing": {"ulr": "x"}, "zzz_unrelated": 1}
    with pytest.raises(ConfigError) as err:
        parse_settings(raw, base_dir=tmp_path, environ={})
    text = str(err.value)
    assert "snapshots: unknown key `kepe`, did you mean `keep`?" in text
    assert "landing: unknown key `ulr`, did you mean `url`?" in text
    assert "unknown key `zzz_unrelated`, valid keys:" in text
    assert "GRID_SECRET is not set" in text  # collected with the rest, not raised first


def test_a_mistyped_quality_or_report_option_names_the_nearest_key():
    from islandbridge.quality.config import QualityConfig
    from islandbridge.quality.errors import QualityConfigError
    from islandbridge.warehouse.marts import MartOptionsError, options_of

    with pytest.raises(QualityConfigError, match="unknown key `volumne`, did you mean `volume`"):
        QualityConfig.from_mapping({"volumne": {"max_drop": 0.3}})
    with pytest.raises(MartOptionsError, match="unknown key `silent_hour`, did you mean `silent_hours`"):
        options_of({"silent_hour": 48})


def test_retention_has_defaults_and_takes_each_key(tmp_path):
    from islandbridge.config import Retention

    env = {"GRID_SECRET": "s"}
    assert parse_settings(BASE, base_dir=tmp_path, environ=env).retention == Retention()
    raw = {**BASE, "retention": {"days": 7, "exports_days": 30, "after_each_run": False}}
    got = parse_settings(raw, base_dir=tmp_path, environ=env).retention
    assert (got.days, got.exports_days, got.reports_days, got.after_each_run) == (7, 30, 90, False)


def test_bad_retention_values_are_each_named(tmp_path):
    raw = {**BASE, "retention": {"days": 0, "reports_days": "a week", "after_each_run": "yes", "dayz": 3}}
    with pytest.raises(ConfigError) as err:
        parse_settings(raw, base_dir=tmp_path, environ={"GRID_SECRET": "s"})
    text = str(err.value)
    assert "retention.days: a whole number of days, at least 1 (got 0)" in text
    assert "retention.reports_days: a whole number of days" in text
    assert "retention.after_each_run: true or false" in text
    assert "retention: unknown key `dayz`, did you mean `days`?" in text


def test_a_sync_without_a_department_key_fails_before_it_extracts_naming_the_misspelt_key(tmp_path):
    """A department key misspelt in the keys section stops `sync` (and the DAG's plan_sources) at once, the
    message naming the key the export needs and the near one configured, before any source is read."""
    from islandbridge import pipeline
    from islandbridge.devtools.demo import write_config

    path = tmp_path / "islandbridge.yml"
    write_config(
        path, street=tmp_path / "street", grid_url="http://127.0.0.1:9", iot_url="http://127.0.0.1:9"
    )
    path.write_text(path.read_text(encoding="utf-8").replace("dept:grid_centre:", "dept:grid_center:"))
    settings = load_settings(path, {"IB_GRID_CLIENT_SECRET": "s", "IB_IOT_API_KEY": "k"})
    with pytest.raises(KeyringError) as caught:
        pipeline.sync(settings, parse_as_of("2026-11-20"))
    assert "keys.dept:grid_centre: not configured" in str(caught.value)
    assert "`dept:grid_center`: misspelt?" in str(caught.value)
    assert not (tmp_path / "landing").exists() and not settings.warehouse_path.exists()
    with pytest.raises(KeyringError, match="dept:grid_centre"):
        pipeline.plan_run(settings)


def test_the_dags_first_task_warns_when_its_day_has_not_ended(tmp_path, caplog):
    """A manual trigger whose ``as_of`` is today (Asia/Shanghai) is as of tonight's midnight: the DAG's first
    task (`pipeline.plan_run` with the run's as-of) warns in its log, as `sync --as-of` does; a day that has
    ended passes without a word."""
    import datetime as dt
    import logging

    from islandbridge import pipeline
    from islandbridge.devtools.demo import write_config

    path = tmp_path / "islandbridge.yml"
    write_config(
        path, street=tmp_path / "street", grid_url="http://127.0.0.1:9", iot_url="http://127.0.0.1:9"
    )
    settings = load_settings(path, {"IB_GRID_CLIENT_SECRET": "s", "IB_IOT_API_KEY": "k"})

    def now():
        return dt.datetime(2026, 12, 7, 1, 30, tzinfo=dt.UTC)  # 09:30 in Shanghai

    with caplog.at_level(logging.WARNING, logger="islandbridge"):
        sources = pipeline.plan_run(settings, parse_as_of("2026-12-06"), now)
        assert not caplog.records
        assert pipeline.plan_run(settings, parse_as_of("2026-12-07"), now) == sources
    assert "the day 2026-12-07 has not ended" in caplog.text
    assert "a day that has ended, such as 2026-12-06" in caplog.text


# What an operator may type by mistake (privacy.masking's TYPED): none of it may come back in an error.
PERSONAL = [
    "511403194310287757",
    "13800138000",
    "138-0013-8000",
    "秦光明",
    "20261120 13800138000",
    "87654321",
]


@pytest.mark.parametrize("text", PERSONAL)
def test_an_as_of_that_could_hold_personal_data_is_not_repeated_in_its_error(text):
    with pytest.raises(ConfigError, match="YYYY-MM-DD or YYYYMMDD") as err:
        parse_as_of(text)
    assert text not in str(err.value) and "13800138000" not in str(err.value)
    assert f"as-of ({len(text)} characters, not repeated: it may hold personal data)" in str(err.value)


def test_an_as_of_that_is_no_date_gives_its_reason_but_not_the_text():
    """``87654321`` (a landline) has a date's shape: it is not repeated, the reason it is no date is."""
    with pytest.raises(ConfigError, match=r"as-of \(16 characters, .*\): month must be in 1..12"):
        parse_as_of("2026-13-01T08:00")


@pytest.mark.parametrize("name", [*PERSONAL, "t_jm100345", "a138-0013-8000", "x5114-0319-4310-2877-57"])
def test_an_unknown_source_that_could_hold_personal_data_is_not_repeated(tmp_path, name):
    settings = parse_settings(BASE, base_dir=tmp_path, environ={"GRID_SECRET": "x"})
    with pytest.raises(ConfigError, match="this configuration names: grid") as err:
        settings.source(name)
    assert name not in str(err.value) and "not repeated" in str(err.value)


def test_a_misspelt_source_name_is_repeated(tmp_path):
    settings = parse_settings(BASE, base_dir=tmp_path, environ={"GRID_SECRET": "x"})
    with pytest.raises(ConfigError, match=r"unknown source 'gird2'; this configuration names: grid"):
        settings.source("gird2")


def test_a_key_given_twice_is_refused_not_silently_replaced(tmp_path):
    """A second ``quality:`` section (the gate's advice pasted below an existing one) would drop the
    first's settings with PyYAML's plain loader: here it is a configuration error naming the key."""
    path = tmp_path / "islandbridge.yml"
    path.write_text(
        "warehouse: {path: wh.duckdb}\nquality:\n  volume: {max_drop: 0.6}\n"
        "quality: {checks: {iot.events.volume: {severity: warning}}}\n",
        encoding="utf-8",
    )
    with pytest.raises(ConfigError, match=r"found the key 'quality' a second time \(first on line 2\)"):
        load_settings(path, {})


def test_a_yaml_error_names_the_line_but_does_not_quote_it(tmp_path):
    """PyYAML quotes the lines around its error; a configuration's line may hold a secret."""
    path = tmp_path / "islandbridge.yml"
    path.write_text("sources:\n  grid: {client_secret: s3cr3tVALUE}\n  grid: {client_secret: s3cr3tVALUE}\n")
    with pytest.raises(ConfigError, match=r"line 3, column 3: .*'grid' a second time") as err:
        load_settings(path, {})
    assert "s3cr3t" not in str(err.value)
