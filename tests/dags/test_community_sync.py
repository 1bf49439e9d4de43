"""The DAG imports cleanly, does no work while parsed, and wires extract-per-source before load."""

from __future__ import annotations

from pathlib import Path

import pytest

DAGS = Path(__file__).resolve().parents[2] / "dags"


@pytest.fixture(scope="module")
def dagbag(tmp_path_factory):
    pytest.importorskip("airflow", reason="apache-airflow is part of the locked dev environment")
    mp = pytest.MonkeyPatch()
    home = tmp_path_factory.mktemp("airflow_home")
    mp.setenv("AIRFLOW_HOME", str(home))
    mp.delenv("ISLANDBRIDGE_CONFIG", raising=False)  # parsing must not need the configuration
    from airflow.dag_processing.dagbag import DagBag

    yield DagBag(dag_folder=str(DAGS))
    mp.undo()


def test_the_dag_folder_imports_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert set(dagbag.dag_ids) == {"community_sync"}


def test_sources_are_extracted_in_parallel_then_validated_loaded_reconciled_and_delivered(dagbag):
    dag = dagbag.dags["community_sync"]
    tasks = {t.task_id: t for t in dag.tasks}
    assert set(tasks) == {
        "plan_sources",
        "extract_source",
        "validate_landed",
        "load_run",
        "reconcile_identities",
        "build_warehouse",
        "export_reports",
        "publish_snapshot",
    }
    assert tasks["extract_source"].upstream_task_ids == {"plan_sources"}
    assert tasks["validate_landed"].upstream_task_ids == {"extract_source"}
    assert tasks["load_run"].upstream_task_ids == {"validate_landed"}
    assert tasks["reconcile_identities"].upstream_task_ids == {"load_run"}
    assert tasks["build_warehouse"].upstream_task_ids == {"reconcile_identities"}
    assert tasks["export_reports"].upstream_task_ids == {"build_warehouse"}
    assert tasks["publish_snapshot"].upstream_task_ids == {"export_reports"}
    assert type(tasks["extract_source"]).__name__.endswith("MappedOperator")


def test_runs_are_daily_intervals_ending_at_midnight_in_shanghai(dagbag):
    dag = dagbag.dags["community_sync"]
    assert dag.max_active_runs == 1 and dag.catchup is False
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert str(dag.timetable.timezone) == "Asia/Shanghai" and dag.timetable.expression == "0 0 * * *"


def test_dag_files_only_wire_tasks():
    """No SQL, no record loops, no config reads at module level in dags/."""
    for path in DAGS.glob("*.py"):
        text = path.read_text(encoding="utf-8")
        for forbidden in ("SELECT ", "INSERT ", "duckdb", "for record", "Variable.get", "open("):
            assert forbidden not in text, f"{path.name} contains {forbidden!r}"


def _dag_module():
    import importlib.util

    spec = importlib.util.spec_from_file_location("_community_sync_under_test", DAGS / "community_sync.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_a_terminal_error_fails_the_task_at_once_with_one_line_saying_what_to_fix(dagbag):
    from airflow.sdk.exceptions import AirflowFailException

    from islandbridge.errors import ConfigError

    @_dag_module().fail_fast_when_terminal
    def step():
        raise ConfigError("sources.grid.client_secret: the variable IB_GRID is not set\nsecond problem")

    with pytest.raises(AirflowFailException) as caught:
        step()
    assert str(caught.value) == "ConfigError: sources.grid.client_secret: the variable IB_GRID is not set"
    assert isinstance(caught.value.__cause__, ConfigError)


def test_a_terminal_error_listing_problems_names_them_on_its_one_line(dagbag):
    """A key error's first line only counts the problems ("2 key problems:"): the line Airflow shows
    carries the problems too, so the engineer sees which key to add."""
    from airflow.sdk.exceptions import AirflowFailException

    from islandbridge.privacy.keys import load_keys

    @_dag_module().fail_fast_when_terminal
    def step():
        load_keys({}, ["grid_centre"])

    with pytest.raises(AirflowFailException) as caught:
        step()
    message = str(caught.value)
    assert "\n" not in message and message.startswith("KeyringError: 3 key problems: keys.person_key: not")
    assert "; keys.dept:grid_centre: not configured; add 'dept:grid_centre: {env: NAME}'" in message


def test_a_worker_without_islandbridge_config_fails_at_once_saying_so(dagbag, monkeypatch):
    """Without $ISLANDBRIDGE_CONFIG a task fails without retries, naming the variable (it was a KeyError,
    retried twice over 15 minutes)."""
    from airflow.sdk.exceptions import AirflowFailException

    module = _dag_module()
    monkeypatch.delenv("ISLANDBRIDGE_CONFIG", raising=False)
    with pytest.raises(AirflowFailException, match="ConfigError: ISLANDBRIDGE_CONFIG is not set"):
        module.fail_fast_when_terminal(module._settings)()


@pytest.mark.parametrize("error", ["RetriableError", "WarehouseBusyError", "KeyError"])
def test_a_transient_or_unexpected_error_is_raised_again_for_airflow_to_retry(dagbag, error):
    from islandbridge import errors
    from islandbridge.delivery import snapshot

    cls = getattr(errors, error, None) or getattr(snapshot, error, None) or KeyError
    wrapper = _dag_module().fail_fast_when_terminal

    @wrapper
    def step(source: str) -> dict:
        raise cls(f"grid GET /api/v2/grids: HTTP 503 ({source})")

    with pytest.raises(cls):
        step("grid")
    assert wrapper(lambda source: {"source": source})("grid") == {"source": "grid"}


def test_a_task_creates_owner_only_files_and_restores_the_umask(dagbag, tmp_path):
    import os

    @_dag_module().fail_fast_when_terminal
    def step(path):
        path.write_text("x")
        path.with_suffix(".d").mkdir()

    old = os.umask(0o022)
    try:
        step(tmp_path / "warehouse.duckdb")
        assert os.umask(0o022) == 0o022, "the task's umask does not outlive the task"
    finally:
        os.umask(old)
    assert (tmp_path / "warehouse.duckdb").stat().st_mode & 0o777 == 0o600
    assert (tmp_path / "warehouse.d").stat().st_mode & 0o777 == 0o700


def test_every_task_runs_through_the_wrapper(dagbag):
    for task in dagbag.dags["community_sync"].tasks:
        assert task.python_callable.__code__.co_qualname.startswith("fail_fast_when_terminal"), task.task_id
        assert task.python_callable.__wrapped__.__name__ == task.task_id


def test_mapped_extracts_are_named_after_their_source(dagbag):
    import jinja2

    task = next(t for t in dagbag.dags["community_sync"].tasks if t.task_id == "extract_source")
    rendered = jinja2.Template(task.map_index_template).render(
        task=type("T", (), {"op_kwargs": {"source": "iot"}})
    )
    assert rendered == "iot"


def test_a_map_index_is_the_sources_position_in_the_configuration(tmp_path):
    """A failed try shows its map index, not its source (docs/operations.md, "Clearing a failed task"):
    the index is the source's position in what plan_sources returns, the configuration's order."""
    from islandbridge import pipeline
    from islandbridge.config import parse_settings

    kinds = {"registry": "sql_registry", "civil": "civil_files", "grid": "grid_rest", "iot": "iot_rest"}
    raw = {
        "street": {"code": "511403001"},
        "landing": {"url": "landing"},
        "warehouse": {"path": "warehouse.duckdb"},
        "sources": {name: {"kind": kind} for name, kind in kinds.items()},
    }
    settings = parse_settings(raw, base_dir=tmp_path, environ={}, with_sources=False)
    assert pipeline.plan(settings) == ["registry", "civil", "grid", "iot"]


def test_the_trigger_form_offers_an_optional_as_of_day(dagbag):
    from airflow.sdk.exceptions import ParamValidationError

    param = dagbag.dags["community_sync"].params.get_param("as_of")
    assert param.schema["format"] == "date" and "YYYY-MM-DD" in param.description
    assert param.resolve(None) is None
    assert param.resolve("2026-11-20") == "2026-11-20"
    for bad in ("20 Nov", "2026-11-20T10:00"):
        with pytest.raises(ParamValidationError):
            param.resolve(bad)


def test_the_schedule_names_its_time_zone_and_starts_before_the_demo_day(dagbag):
    from islandbridge.config import parse_as_of

    dag = dagbag.dags["community_sync"]
    assert "Asia/Shanghai" in dag.description
    assert str(dag.timezone) == "Asia/Shanghai"
    demo_day_start = parse_as_of("2026-11-19")  # the demo runs the day 2026-11-20 (tests/conftest AS_OF)
    assert dag.start_date <= demo_day_start


def test_parsing_the_dag_imports_no_pipeline_code(tmp_path):
    """Parsing imports Airflow and nothing of the library's steps (no config read, no DuckDB)."""
    import os
    import subprocess
    import sys

    pytest.importorskip("airflow", reason="apache-airflow is part of the locked dev environment")
    code = (
        "import runpy, sys; runpy.run_path(sys.argv[1]); "
        "print(sorted(m for m in sys.modules if m.startswith(('islandbridge', 'duckdb'))))"
    )
    env = {k: v for k, v in os.environ.items() if k != "ISLANDBRIDGE_CONFIG"} | {
        "AIRFLOW_HOME": str(tmp_path)
    }
    out = subprocess.run(
        [sys.executable, "-c", code, str(DAGS / "community_sync.py")],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_a_gate_stop_in_the_dag_says_to_clear_extract_source_with_downstream(dagbag):
    """Under the DAG, "extract again and re-run" misled: clearing the failed validate_landed re-validates
    the same landed data and stops again. The stop names the run's extract_source of the stopped source,
    cleared with its downstream tasks; the as-expected path clears validate_landed."""
    from islandbridge.quality.gate import gate_message
    from islandbridge.quality.results import CheckResult, GateResult

    failed = CheckResult("civil", "dibao", "columns_match", "columns", "critical", False)
    gate = GateResult("ib_20261120T160000Z", "2026-11-21T00:00:00+08:00", False, [failed])
    message = gate_message(gate, _dag_module()._redo("manual__2026-12-07T03:00:00+00:00"))
    assert (
        "Fix the source and in Airflow clear extract_source [civil] of run manual__2026-12-07T03:00:00+00:00 "
        "with its downstream tasks" in message
    )
    assert "clearing validate_landed alone validates the same landed data and stops again" in message
    assert message.endswith(
        "and clear validate_landed of run manual__2026-12-07T03:00:00+00:00 with its downstream tasks."
    )
