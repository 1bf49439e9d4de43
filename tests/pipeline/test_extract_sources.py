"""`sync` extracts its sources at once (`pipeline.extract_sources`): the same slices as one after another,
and a failing source is raised naming it, its slice discarded, the others' slices complete."""

from __future__ import annotations

import os
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from islandbridge import cli, pipeline
from islandbridge.config import parse_as_of
from islandbridge.errors import ConfigError, FatalSourceError

AS_OF = "2026-11-20"


def _landed(settings, run_id: str) -> dict[str, object]:
    """Every landed file of the run, as its rows sorted (Parquet files) or its manifest's counts and state."""
    import json

    base = Path(settings.landing_url.removeprefix("file://")) / run_id
    found: dict[str, object] = {}
    for path in sorted(base.rglob("*")):
        name = path.relative_to(base).as_posix()
        if path.suffix == ".parquet":
            found[name] = sorted(map(repr, pq.read_table(path).to_pylist()))
        elif path.name == "_manifest.json":
            manifest = json.loads(path.read_text(encoding="utf-8"))
            found[name] = {k: manifest[k] for k in ("streams", "state") if k in manifest}
    return found


def test_sources_extracted_at_once_land_what_one_after_another_lands(config):
    settings = pipeline.load_settings(config, os.environ)
    as_of, names = parse_as_of(AS_OF), pipeline.plan(settings)
    one_by_one = [pipeline.extract(settings, name, as_of) for name in names]
    before = _landed(settings, one_by_one[0]["run_id"])
    at_once = pipeline.extract_sources(settings, names, as_of)
    assert [r["counts"] for r in at_once] == [r["counts"] for r in one_by_one]
    assert _landed(settings, at_once[0]["run_id"]) == before
    assert {name.split("/")[0] for name in before} == set(names)


def test_a_failing_source_is_raised_by_name_and_the_others_land_whole(config, monkeypatch):
    monkeypatch.setenv("IB_IOT_API_KEY", "not-the-key")
    settings = pipeline.load_settings(config, os.environ)
    names = pipeline.plan(settings)
    with pytest.raises(FatalSourceError) as raised:
        pipeline.extract_sources(settings, names, parse_as_of(AS_OF))
    assert any("'iot'" in note for note in raised.value.__notes__)
    base = Path(settings.landing_url.removeprefix("file://")) / "ib_20261120T160000Z"
    assert not (base / "iot").exists()  # discarded, as a failed extraction's slice always is
    for name in (n for n in names if n != "iot"):
        assert (base / name / "_manifest.json").is_file(), name  # the manifest is written last


def test_the_command_line_names_the_failing_source(config, monkeypatch, capsys):
    monkeypatch.setenv("IB_IOT_API_KEY", "not-the-key")
    status = cli.main(["sync", "--config", str(config), "--as-of", AS_OF])
    assert status == FatalSourceError.exit_status
    assert "while extracting source 'iot'" in capsys.readouterr().err


def test_an_unknown_source_fails_before_any_is_extracted_and_is_not_repeated(config):
    """A mistyped ``--source`` (here a phone) is a configuration error raised before the other sources are
    extracted; neither the error nor a note repeats what was typed."""
    settings = pipeline.load_settings(config, os.environ)
    with pytest.raises(ConfigError) as raised:
        pipeline.extract_sources(settings, [*pipeline.plan(settings), "13800138000"], parse_as_of(AS_OF))
    said = " ".join([str(raised.value), *getattr(raised.value, "__notes__", ())])
    assert "unknown source" in said and "13800138000" not in said
    assert not (Path(settings.landing_url.removeprefix("file://")) / "ib_20261120T160000Z").exists()
