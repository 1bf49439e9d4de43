"""community_sync — sync the street's four source systems into the warehouse, once a day.

Wiring only: every task calls one function of ``islandbridge.pipeline``, the same functions the
``islandbridge sync`` command runs: plan → extract (one mapped task per source, named after it) → validate
(the quality gate; a critical failure stops the run before anything is loaded) → load (pseudonymised:
identifiers sealed in the vault) → reconcile (stable person keys) → build (core model and marts) → export
(each department's reports, as its policy allows) → publish (the analysts' snapshot and the run report).
Tasks hand each other paths and counts, never records or personal data.

**Schedule**: daily at 00:00 Asia/Shanghai (16:00 UTC the day before). A scheduled run's as-of is the end
of its data interval: local midnight, so it covers the day that just ended.

**Manual runs**: trigger with the ``as_of`` param (a date ``YYYY-MM-DD``: the run is as of the end of that
day, Asia/Shanghai); without it, a run given a logical date is as of the end of its data interval, and a
run with neither is as of the end of yesterday (Asia/Shanghai) when it started
(``islandbridge.config.resolve_as_of``).

**Failures**: an error a person must fix (configuration, credentials, schema drift, state, a stopped
quality gate) fails its task at once, without retries, with a one-line message saying what to fix (a
stop: which task of the run to clear, with its downstream tasks); a
transient one (timeout, HTTP 429/5xx, a locked file) is raised again so Airflow retries the task with
backoff where it has retries.

Configuration: the environment variable ``ISLANDBRIDGE_CONFIG`` names the YAML file (read when a task
runs, never while the DAG is parsed).
"""

from __future__ import annotations

import datetime as dt
import functools
from zoneinfo import ZoneInfo

from airflow.sdk import CronDataIntervalTimetable, Param, dag, get_current_context, task
from airflow.sdk.exceptions import AirflowFailException

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


def fail_fast_when_terminal(step):
    """Run ``step`` creating owner-only files; a ``TerminalError`` fails the task at once (no retry),
    anything else propagates."""

    @functools.wraps(step)
    def run(*args, **kwargs):
        from islandbridge.config import owner_only_files
        from islandbridge.errors import TerminalError, one_line

        try:
            with owner_only_files():  # what the step creates (warehouse, vault WAL, landing) is owner-only
                return step(*args, **kwargs)
        except TerminalError as exc:
            raise AirflowFailException(f"{type(exc).__name__}: {one_line(exc)}") from exc

    return run


def _settings():
    import os

    from islandbridge.logs import set_verbosity, verbosity_of
    from islandbridge.pipeline import settings_of_environment

    set_verbosity(verbosity_of(os.environ))  # our steps at INFO, third-party chatter only with -v
    return settings_of_environment(os.environ)


def _as_of() -> dt.datetime:
    from islandbridge.config import resolve_as_of

    context = get_current_context()
    dag_run = context.get("dag_run")
    return resolve_as_of(
        context["params"].get("as_of"),
        context.get("data_interval_end"),
        getattr(dag_run, "start_date", None) or context.get("logical_date"),
    )


def _redo(run_id: str):
    """A gate stop's advice in this DAG: clearing the failed validate_landed alone validates the same
    landed data again and stops again; a fixed source needs its extract_source cleared with downstream."""
    from islandbridge.quality import Redo

    return Redo(
        extract=f"in Airflow clear extract_source [{{sources}}] of run {run_id} with its downstream tasks "
        "(UI: the task instance, Clear, Downstream; clearing validate_landed alone validates the same "
        "landed data and stops again; docs/operations.md, 'Clearing a failed task')",
        validate=f"clear validate_landed of run {run_id} with its downstream tasks",
    )


@dag(
    dag_id="community_sync",
    description="Daily at 00:00 Asia/Shanghai: sync the four source systems into the warehouse",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="Asia/Shanghai"),
    # Fixed and in the past, before any day the demo or a manual run asks for (a task does not run for
    # a logical date before its start_date); catchup is off, so it never schedules old days by itself.
    start_date=dt.datetime(2026, 1, 1, tzinfo=LOCAL_TZ),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=5), "retry_exponential_backoff": True},
    params={
        "as_of": Param(
            None,
            type=["null", "string"],
            format="date",
            pattern=r"^\d{4}-\d{2}-\d{2}$",
            title="As of (day, Asia/Shanghai)",
            description=(
                "Sync as of the end of this day (YYYY-MM-DD, Asia/Shanghai). Leave empty for the end of the "
                "run's data interval, or, when the run has none, the end of yesterday."
            ),
        )
    },
    tags=["islandbridge"],
    doc_md=__doc__,
)
def community_sync():
    @task
    @fail_fast_when_terminal
    def plan_sources() -> list[str]:
        from islandbridge import pipeline

        return pipeline.plan_run(_settings(), _as_of())

    @task(max_active_tis_per_dagrun=4, map_index_template="{{ task.op_kwargs['source'] }}")
    @fail_fast_when_terminal
    def extract_source(source: str) -> dict:
        from islandbridge import pipeline

        return pipeline.extract(_settings(), source, _as_of())

    @task(retries=0)
    @fail_fast_when_terminal
    def validate_landed(extracted: list[dict]) -> dict:
        from islandbridge import pipeline

        # Index by length: iterating the mapped results asks for one past the end, which Airflow logs
        # as an error although nothing is wrong.
        sources = [extracted[i]["source"] for i in range(len(extracted))]
        redo = _redo(get_current_context()["run_id"])
        return {"sources": sources, "gate": pipeline.validate(_settings(), _as_of(), sources, redo=redo)}

    @task(retries=0)
    @fail_fast_when_terminal
    def load_run(validated: dict) -> dict:
        from islandbridge import pipeline

        return pipeline.load(_settings(), _as_of(), validated["sources"])

    @task(retries=0)
    @fail_fast_when_terminal
    def reconcile_identities(loaded: dict) -> dict:
        from islandbridge import pipeline

        return pipeline.reconcile(_settings(), _as_of())

    @task(retries=0)
    @fail_fast_when_terminal
    def build_warehouse(reconciled: dict) -> dict:
        from islandbridge import pipeline

        return pipeline.build(_settings(), _as_of())

    @task(retries=0)
    @fail_fast_when_terminal
    def export_reports(built: dict) -> dict:
        from islandbridge import pipeline

        return pipeline.export(_settings(), _as_of())

    @task(retries=0)
    @fail_fast_when_terminal
    def publish_snapshot(exported: dict) -> dict:
        from islandbridge import pipeline

        return pipeline.publish(_settings(), _as_of())

    loaded = load_run(validate_landed(extract_source.expand(source=plan_sources())))
    publish_snapshot(export_reports(build_warehouse(reconcile_identities(loaded))))


community_sync()
