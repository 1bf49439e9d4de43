"""The typed sections of a resolved configuration: what the rest of the code is handed.

``Settings`` is one street's whole configuration; ``SourceSettings`` one source system; ``Secret`` a
resolved secret that prints as ``***``; ``DuckDBResources`` the memory and spill folder of every DuckDB
connection (with `parse_memory_limit` for ``2GiB`` / ``25%``); ``Retention`` how long runs' leftovers
are kept. They are built by `islandbridge.config.loading` from a file, or directly in tests.
"""

from __future__ import annotations

import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from islandbridge.errors import ConfigError, typed

# What an error repeats of a typed source name (`errors.typed`): letters first, under seven digits, no run of six
_NAME_SHAPE = re.compile(r"(?!(?:\D*\d){7})[A-Za-z][A-Za-z_.\-]*(?:\d{1,5}[A-Za-z_.\-]+)*\d{0,5}")


class Secret:
    """A resolved secret value that never prints itself (``repr``/``str`` give ``***``)."""

    __slots__ = ("_value", "reference")

    def __init__(self, value: str, reference: str) -> None:
        self._value = value
        self.reference = reference

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({self.reference}=***)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


#: The default memory limit of one DuckDB connection: this share of the machine's memory, within bounds.
DUCKDB_MEMORY_SHARE = 0.25
DUCKDB_MEMORY_MIN_MIB = 256
DUCKDB_MEMORY_MAX_MIB = 2048
_MEMORY = re.compile(r"(\d+(?:\.\d+)?)\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB|%)", re.IGNORECASE)
_UNIT_BYTES = {
    "b": 1,
    "kb": 10**3,
    "mb": 10**6,
    "gb": 10**9,
    "tb": 10**12,
    "kib": 2**10,
    "mib": 2**20,
    "gib": 2**30,
    "tib": 2**40,
}
MEMORY_HELP = "a size such as 2GiB or 512MB, or a share of the machine's memory such as 25%"


def machine_memory_bytes() -> int:
    """The memory this process may use: the machine's, or its control group's limit when that is lower."""
    total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdigit() else total


def parse_memory_limit(value: Any) -> str:
    """A DuckDB ``memory_limit`` (``"1024MiB"``) from ``2GiB``, ``512MB`` or ``25%`` (of the machine's
    memory); raises ``ValueError`` with what is expected otherwise."""
    match = _MEMORY.fullmatch(str(value).strip()) if isinstance(value, str) else None
    if not match:
        raise ValueError(f"{value!r} is not {MEMORY_HELP}")
    number, unit = float(match.group(1)), match.group(2).lower()
    if unit == "%":
        if not 0 < number <= 100:
            raise ValueError(f"{value!r}: a share of the machine's memory is more than 0% and at most 100%")
        size = machine_memory_bytes() * number / 100
    else:
        size = number * _UNIT_BYTES[unit]
    mib = int(size // 2**20)
    if mib < 64:
        raise ValueError(f"{value!r} is under 64MiB, too little for DuckDB to work in")
    return f"{mib}MiB"


@dataclass(frozen=True)
class DuckDBResources:
    """What every DuckDB connection the product opens may use: its ``memory_limit`` and the folder it
    spills to (``temp_directory``) when a sort, join or aggregate outgrows that limit."""

    memory_limit: str
    temp_directory: Path

    @classmethod
    def default(cls, temp_directory: Path | None = None) -> DuckDBResources:
        """25% of the machine's memory, at least 256 MiB and at most 2 GiB; spilling to ``temp_directory``
        (the system's temporary folder when not given)."""
        mib = int(machine_memory_bytes() * DUCKDB_MEMORY_SHARE // 2**20)
        mib = max(DUCKDB_MEMORY_MIN_MIB, min(DUCKDB_MEMORY_MAX_MIB, mib))
        folder = temp_directory or Path(tempfile.gettempdir()) / "islandbridge-duckdb"
        return cls(f"{mib}MiB", folder)


@dataclass(frozen=True)
class Retention:
    """How long what runs leave behind is kept (the ``retention:`` section; docs/operations.md).

    ``days``: the re-run window — any run whose as-of is at most this many days before the newest run can
    be re-run or replayed forward exactly; older history is compacted. ``device_events_days``: the day
    partitions of the device events (by the events' own day). ``exports_days`` / ``reports_days``: the
    department export day folders and the runs' report folders. ``after_each_run``: prune at the end of
    every run (the publish step); otherwise only ``islandbridge prune --apply`` does.
    """

    days: int = 35
    device_events_days: int = 400
    exports_days: int = 90
    reports_days: int = 90
    after_each_run: bool = True


@dataclass(frozen=True)
class SourceSettings:
    """One source system: its connector kind and the connector's own options (secrets resolved)."""

    name: str
    kind: str
    options: Mapping[str, Any]
    #: The street the whole configuration is for (``street.code``): the default of a connector that reads
    #: several streets' files from one place (``civil_files``' ``street_code``).
    street_code: str | None = None
    #: False when only the name and kind were read (a command that does not touch this source): no option,
    #: no secret, and no connector can be built from it.
    resolved: bool = True


@dataclass(frozen=True)
class Settings:
    """The whole resolved configuration of one street's pipeline."""

    street_code: str
    landing_url: str
    warehouse_path: Path
    state_dir: Path
    sources: Mapping[str, SourceSettings]
    keys: Mapping[str, Secret] = field(default_factory=dict)
    # Configured keys that did not resolve (warehouse-only commands): name -> the problem, e.g. a missing file.
    unresolved_keys: Mapping[str, str] = field(default_factory=dict)
    quality: Mapping[str, Any] = field(default_factory=dict)
    config_path: Path | None = None
    # Where the private and published parts live (defaults beside the warehouse; see docs/configuration.md).
    # The identifier vault (encrypted values; never attach to analysts' DuckDB).
    vault_path: Path | None = None
    audit_path: Path | None = None  # the append-only re-identification log
    exports_dir: Path | None = None  # exports/<department>/<YYYY-MM-DD>/
    snapshots_dir: Path | None = None  # read-only analyst snapshots
    snapshots_keep: int = 7
    reports: Mapping[str, Any] = field(default_factory=dict)  # marts' options (e.g. silent_hours)
    # False unless every source's options and secrets were read: warehouse-only commands read none (each
    # source by name and kind only), a command for some sources theirs (``SourceSettings.resolved``).
    sources_resolved: bool = True
    # Memory limit and spill folder of every DuckDB connection (default: see DuckDBResources.default).
    duckdb: DuckDBResources | None = None
    retention: Retention = field(default_factory=Retention)
    # How long a step waits for the warehouse another process holds (``warehouse.lock_wait_s``): a reader's
    # query during a sync makes the next writing step wait, not fail (`raw.open_warehouse`).
    warehouse_lock_wait_s: float = 120.0

    def __post_init__(self) -> None:
        home = self.warehouse_path.parent
        defaults = {
            "vault_path": home.parent / "private" / "vault.duckdb",
            "audit_path": home.parent / "private" / "audit" / "reidentification.jsonl",
            "exports_dir": home.parent / "exports",
            "snapshots_dir": home / "snapshots",
        }
        for name, default in defaults.items():
            if getattr(self, name) is None:
                object.__setattr__(self, name, default)
        if self.duckdb is None:
            object.__setattr__(self, "duckdb", DuckDBResources.default(home / "duckdb-tmp"))

    def source(self, name: str) -> SourceSettings:
        try:
            return self.sources[name]
        except KeyError:
            shown, known = typed(name, _NAME_SHAPE), ", ".join(sorted(self.sources)) or "(none)"
            raise ConfigError(f"unknown source {shown}; this configuration names: {known}") from None

    def key(self, name: str, needed_for: str, error: type[ConfigError] = ConfigError) -> Secret:
        """The secret configured as ``keys.<name>``; without one, ``error`` names the key, this file and
        ``needed_for`` (what needs it, and how to add it)."""
        secret = self.keys.get(name)
        if secret is None and name in self.unresolved_keys:
            raise error(f"{self.unresolved_keys[name]}: {needed_for}")
        if secret is None:
            where = f" in {self.config_path}" if self.config_path else ""
            raise error(f"keys.{name} is not configured{where}: {needed_for}")
        return secret
