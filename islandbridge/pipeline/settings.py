"""The configuration as a run needs it: read, resolved and checked in full before any step runs.

`load_settings` reads the file (`islandbridge.config.load_settings`) and then builds every connector and
parses the ``quality`` and ``reports`` sections once (`check_settings`), so that a bad configuration fails
at the edge; `settings_of_environment` is how a DAG task finds the file.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from pathlib import Path

from islandbridge import config
from islandbridge.config import Settings
from islandbridge.connectors import build_connector
from islandbridge.errors import ConfigError, noun
from islandbridge.quality.config import QualityConfig
from islandbridge.warehouse.marts import options_of


def load_settings(
    path: str | Path, environ: Mapping[str, str], *, with_sources: bool | Collection[str] = True
) -> Settings:
    """Read, resolve and check a configuration file (`islandbridge.config.load_settings`; ``with_sources``:
    every source's options and secrets, none, or those of the sources named), then build the connector of
    every source resolved and parse the ``quality`` and ``reports`` sections once, so that a wrong kind,
    option, severity or report option fails now, not halfway through a run. Raises ``ConfigError``."""
    settings = config.load_settings(path, environ, with_sources=with_sources)
    check_settings(settings)
    return settings


def settings_of_environment(environ: Mapping[str, str]) -> Settings:
    """The settings of the file ``$ISLANDBRIDGE_CONFIG`` names, as a DAG task reads them (`load_settings`).
    Raises ``ConfigError`` when the variable is not set, so the task fails at once saying so."""
    path = environ.get("ISLANDBRIDGE_CONFIG")
    if not path:
        raise ConfigError(
            "ISLANDBRIDGE_CONFIG is not set in the environment of this Airflow worker: export it, naming the "
            "configuration file, where the scheduler starts (docs/operations.md)"
        )
    return load_settings(path, environ)


def check_settings(settings: Settings) -> None:
    """Raise ``ConfigError`` listing every source whose connector cannot be built, or a bad ``quality`` or
    ``reports`` section."""
    problems = []
    for src in (s for s in settings.sources.values() if s.resolved):
        try:
            build_connector(src)
        except ConfigError as exc:
            problems.append(str(exc))
    if problems:
        raise ConfigError(
            f"source {noun(len(problems), 'configuration problem')}:\n  - " + "\n  - ".join(problems)
        )
    QualityConfig.from_mapping(settings.quality)
    options_of(settings.reports)
