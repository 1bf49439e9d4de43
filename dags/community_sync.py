"""community_sync — sync the street's four source systems into the warehouse, once a day.

Wiring only: every task calls one function of ``islandbridge.pipeline``, the same functions the
``islandbridge sync`` command runs: plan → extract (one mapped task per source) → validate (the quality
gate; a critical failure stops the run before anything is loaded) → load (pseudonymised: identifiers
sealed in the vault) → reconcile (stable person keys) → build (core model and marts) → export (each
department's reports, as its policy allows) → publish (the analysts' snapshot and the run report).
Tasks hand each other paths and counts, never records or personal data.
The run's as-of is the end of its data interval (midnight, Asia/Shanghai).

Configuration: the environment variable ``ISLANDBRIDGE_CONFIG`` names the YAML file (read when a task
runs, never while the DAG is parsed).
"""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

from airflow.sdk import CronDataIntervalTimetable, dag, get_current_context, task

LOCAL_TZ = ZoneInfo("Asia/Shanghai")


def _settings():
    import os

    from islandbridge.pipeline import load_settings

    return load_settings(os.environ["ISLANDBRIDGE_CONFIG"], environ=os.environ)


def _as_of() -> dt.datetime:
    return get_current_context()["data_interval_end"]


@dag(
    dag_id="community_sync",
    schedule=CronDataIntervalTimetable("0 0 * * *", timezone="Asia/Shanghai"),
    start_date=dt.datetime(2026, 1, 1, tzinfo=LOCAL_TZ),
    catchup=False,
    max_active_runs=1,
    default_args={"retries": 2, "retry_delay": dt.timedelta(minutes=5), "retry_exponential_backoff": True},
    tags=["islandbridge"],
    doc_md=__doc__,
)
def community_sync():
    @task
    def plan_sources() -> list[str]:
        from islandbridge import pipeline

        return pipeline.plan(_settings())

    @task(max_active_tis_per_dagrun=4)
    def extract_source(source: str) -> dict:
        from islandbridge import pipeline

        return pipeline.extract(_settings(), source, _as_of())

    @task(retries=0)
    def validate_landed(extracted: list[dict]) -> dict:
        from islandbridge import pipeline

        # Index by length: iterating the mapped results asks for one past the end, which Airflow logs
        # as an error although nothing is wrong.
        sources = [extracted[i]["source"] for i in range(len(extracted))]
        return {"sources": sources, "gate": pipeline.validate(_settings(), _as_of(), sources)}

    @task(retries=0)
    def load_run(validated: dict) -> dict:
        from islandbridge import pipeline

        return pipeline.load(_settings(), _as_of(), validated["sources"])

    @task(retries=0)
    def reconcile_identities(loaded: dict) -> dict:
        from islandbridge import pipeline

        return pipeline.reconcile(_settings(), _as_of())

    @task(retries=0)
    def build_warehouse(reconciled: dict) -> dict:
        from islandbridge import pipeline

        return pipeline.build(_settings(), _as_of())

    @task(retries=0)
    def export_reports(built: dict) -> dict:
        from islandbridge import pipeline

        return pipeline.export(_settings(), _as_of())

    @task(retries=0)
    def publish_snapshot(exported: dict) -> dict:
        from islandbridge import pipeline

        return pipeline.publish(_settings(), _as_of())

    loaded = load_run(validate_landed(extract_source.expand(source=plan_sources())))
    publish_snapshot(export_reports(build_warehouse(reconcile_identities(loaded))))


community_sync()
