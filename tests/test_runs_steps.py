"""`islandbridge runs` says which steps of a day are done, from what each step leaves in the warehouse
and beside it: a sync killed after its load shows a day loaded but not reconciled, built, exported or
published."""

from __future__ import annotations

import datetime as dt
import json
import os

from islandbridge import cli, pipeline
from islandbridge.config import as_of_argument, parse_as_of
from islandbridge.delivery.run_steps import describe_steps
from islandbridge.landing import raw

RUN = "ib_20261120T160000Z"
NOT_DONE = (  # the command as `runs --config <config>` advises it
    "not yet reconciled, built, exported, published: run `islandbridge sync --config {} --as-of 2026-11-20` "
    "again to complete the day"
)
ALL_DONE = "steps: loaded, reconciled, built, exported, published"


def _runs(config, capsys) -> str:
    capsys.readouterr()
    assert cli.main(["runs", "--config", str(config)]) == 0
    return capsys.readouterr().out


def test_runs_shows_a_day_loaded_but_not_reconciled_then_every_step_once_done(config, capsys):
    settings = pipeline.load_settings(config, environ=os.environ)
    as_of = parse_as_of("2026-11-20")
    pipeline.sync(settings, as_of, reconcile_identities=False)  # stops after the load, as a kill -9 would
    listed = _runs(config, capsys)
    assert f"{RUN}  as of 2026-11-21 00:00:00+08:00  loaded" in listed
    assert f"    steps: loaded; {NOT_DONE.format(config)}\n" in listed

    capsys.readouterr()
    for step, said in (("reconcile", "identity: "), ("build", "build: ")):  # a step prints a line of summary
        assert cli.main([step, "--config", str(config), "--as-of", "2026-11-20"]) == 0
        assert capsys.readouterr().out.startswith(said)
    assert "    steps: loaded, reconciled, built; not yet exported, published: run" in _runs(config, capsys)

    assert cli.main(["export", "--config", str(config), "--as-of", "2026-11-20", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["run_id"] == RUN  # and the whole result with --json
    assert cli.main(["publish", "--config", str(config), "--as-of", "2026-11-20"]) == 0
    assert capsys.readouterr().out.startswith("published: snapshot ")
    listed = _runs(config, capsys)
    assert f"    {ALL_DONE}\n" in listed and "not yet" not in listed

    # The day loaded again and killed before its reconciliation: the earlier steps no longer stand for it.
    pipeline.sync(settings, as_of, reconcile_identities=False)
    assert f"    steps: loaded; {NOT_DONE.format(config)}\n" in _runs(config, capsys)
    # ... and reconciled again, then killed: the marts, the export and the report of the earlier load are
    # still there, and still not this load's
    assert cli.main(["reconcile", "--config", str(config), "--as-of", "2026-11-20"]) == 0
    assert "    steps: loaded, reconciled; not yet built, exported, published: run" in _runs(config, capsys)
    # ... and built again, then killed: the earlier load's export (its anchor) is not this load's
    assert cli.main(["build", "--config", str(config), "--as-of", "2026-11-20"]) == 0
    assert "    steps: loaded, reconciled, built; not yet exported, published: run" in _runs(config, capsys)


def test_a_step_after_one_not_done_is_not_done_and_a_pruned_trace_is_not_known():
    as_of = dt.datetime(2026, 11, 20, 16, tzinfo=dt.UTC)
    half = {"reconciled": True, "built": True, "exported": True, "published": None}
    assert describe_steps(half, as_of) == (
        "steps: loaded, reconciled, built, exported; published not known (retention removed the run report)"
    )


def test_the_as_of_to_run_again_is_the_day_or_the_instant_it_names():
    assert as_of_argument(dt.datetime(2026, 11, 20, 16, tzinfo=dt.UTC)) == "2026-11-20"
    assert as_of_argument(dt.datetime(2026, 11, 20, 4, tzinfo=dt.UTC)) == "2026-11-20T12:00:00+08:00"


def _run_row(settings) -> list:
    con = raw.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute("SELECT * FROM meta.runs WHERE run_id = ?", [RUN]).fetchall()
    finally:
        con.close()


def test_a_load_refused_for_a_missing_extract_leaves_a_finished_day_finished(config, capsys):
    """QA: `load` of a finished day whose extract is gone marked it "load not finished"."""
    settings = pipeline.load_settings(config, environ=os.environ)
    pipeline.sync(settings, parse_as_of("2026-11-20"))
    before = _run_row(settings)
    assert before and before[0][2] == "loaded"
    capsys.readouterr()
    assert cli.main(["load", "--config", str(config), "--as-of", "2026-11-20"]) != 0
    assert "no complete extraction of source" in capsys.readouterr().err
    assert _run_row(settings) == before
    assert f"    {ALL_DONE}\n" in _runs(config, capsys)
