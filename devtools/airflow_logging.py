"""The demo's Airflow logging (``[logging] logging_config_class``): Airflow's own, with `dag.test` quiet.

Airflow sets its stdlib ``airflow`` logger to ``[logging] logging_level`` — INFO in the demo, so that our
tasks' step lines pass — whatever ``namespace_levels`` says: those levels apply to its structlog loggers
only. ``airflow dags test`` logs ``[DAG TEST] starting task_id=…`` and ``[DAG TEST] running task
<TaskInstance: …>`` through the stdlib logger ``airflow.sdk.definitions.dag`` at INFO; once the first task's
step has raised ``airflow`` to WARNING (`islandbridge.logs.quiet_third_party`) they stop, so the first
task's two lines got through. A child logger's own level in the configuration stands: WARNING here (its
warnings and errors still show). ``islandbridge demo -v`` does not use this configuration.
"""

from __future__ import annotations

import copy

from airflow.config_templates.airflow_local_settings import DEFAULT_LOGGING_CONFIG

QUIET_LOGGERS = ("airflow.sdk.definitions.dag",)

LOGGING_CONFIG = copy.deepcopy(DEFAULT_LOGGING_CONFIG)
LOGGING_CONFIG["loggers"].update({name: {"level": "WARNING"} for name in QUIET_LOGGERS})
