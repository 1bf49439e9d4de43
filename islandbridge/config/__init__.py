"""Typed configuration, resolved once at the edge and passed in.

One YAML file names each source, where the landing zone and the warehouse live, and *references* to
secrets — never the secrets themselves. A secret is written as ``{env: NAME}`` (an environment variable)
or ``{file: PATH}`` (a file outside the repository); the caller hands in the environment, so library code
never reads ``os.environ`` itself. Every problem in a file is collected and reported at once.

- `loading` — reading and checking a file into ``Settings`` (`load_settings`, `parse_settings`).
- `sections` — the typed settings the rest of the code is handed (``Settings``, ``SourceSettings``,
  ``Secret``, ``DuckDBResources``, ``Retention``).
- `as_of` — the run's as-of instant T (`parse_as_of`, `resolve_as_of`, `local_day`, ``LOCAL_TZ``) and
  the command that completes its day (`sync_command`).
- `runtime` — the clock a step is handed (``Clock``, `utc_now`) and owner-only files.

Everything is importable from ``islandbridge.config`` itself.

Example::

    settings = load_settings("islandbridge.yml", environ=os.environ)
    settings.sources["grid"].options["base_url"]
"""

from islandbridge.config.as_of import (
    AS_OF_HELP,
    LOCAL_TZ,
    as_of_argument,
    local_day,
    parse_as_of,
    resolve_as_of,
    sync_command,
)
from islandbridge.config.loading import SECTIONS, load_settings, nearest, parse_settings, unknown_key
from islandbridge.config.runtime import OWNER_ONLY_UMASK, Clock, owner_only_files, utc_now
from islandbridge.config.sections import (
    DUCKDB_MEMORY_MAX_MIB,
    DUCKDB_MEMORY_MIN_MIB,
    DUCKDB_MEMORY_SHARE,
    MEMORY_HELP,
    DuckDBResources,
    Retention,
    Secret,
    Settings,
    SourceSettings,
    machine_memory_bytes,
    parse_memory_limit,
)

__all__ = [
    "AS_OF_HELP",
    "DUCKDB_MEMORY_MAX_MIB",
    "DUCKDB_MEMORY_MIN_MIB",
    "DUCKDB_MEMORY_SHARE",
    "LOCAL_TZ",
    "MEMORY_HELP",
    "OWNER_ONLY_UMASK",
    "SECTIONS",
    "Clock",
    "DuckDBResources",
    "Retention",
    "Secret",
    "Settings",
    "SourceSettings",
    "as_of_argument",
    "load_settings",
    "local_day",
    "machine_memory_bytes",
    "nearest",
    "owner_only_files",
    "parse_as_of",
    "parse_memory_limit",
    "parse_settings",
    "resolve_as_of",
    "sync_command",
    "unknown_key",
    "utc_now",
]
