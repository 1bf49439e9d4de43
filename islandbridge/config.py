"""Typed configuration, resolved once at the edge and passed in.

One YAML file names each source, where the landing zone and the warehouse live, and *references* to
secrets — never the secrets themselves. A secret is written as ``{env: NAME}`` (an environment variable)
or ``{file: PATH}`` (a file outside the repository); the caller hands in the environment, so library code
never reads ``os.environ`` itself. Every problem in a file is collected and reported at once.

Example::

    settings = load_settings("islandbridge.yml", environ=os.environ)
    settings.sources["grid"].options["base_url"]
"""

from __future__ import annotations

import contextlib
import datetime as dt
import difflib
import os
import re
import tempfile
import urllib.parse
from collections.abc import Callable, Collection, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import yaml

from islandbridge.errors import ConfigError, count, typed
from islandbridge.yamlfile import describe, load_yaml

LOCAL_TZ = ZoneInfo("Asia/Shanghai")

# The keys a configuration file may hold: a section's known keys, or None where its keys are names of the
# operator's choosing (sources, keys) or are checked by their own step (quality, reports).
SECTIONS: dict[str, frozenset[str] | None] = {
    "street": frozenset({"code"}),
    "landing": frozenset({"url"}),
    "warehouse": frozenset({"path"}),
    "state": frozenset({"dir"}),
    "vault": frozenset({"path"}),
    "audit": frozenset({"path"}),
    "exports": frozenset({"dir"}),
    "snapshots": frozenset({"dir", "keep"}),
    "duckdb": frozenset({"memory_limit", "temp_directory"}),
    "retention": frozenset({"days", "device_events_days", "exports_days", "reports_days", "after_each_run"}),
    "reports": None,
    "keys": None,
    "quality": None,
    "sources": None,
}


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
    # False for warehouse-only commands: ``sources`` then name each source and its kind, no options.
    sources_resolved: bool = True
    # Memory limit and spill folder of every DuckDB connection (default: see DuckDBResources.default).
    duckdb: DuckDBResources | None = None
    retention: Retention = field(default_factory=Retention)

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


def load_settings(path: str | Path, environ: Mapping[str, str], *, with_sources: bool = True) -> Settings:
    """Read, resolve and check a configuration file.

    Relative paths are taken from the file's own folder. Raises ``ConfigError`` listing every problem.
    ``with_sources=False`` is for commands that only read the warehouse (``runs``, ``sql``, ``quarantine
    list``): the sources are then known by name and kind only, their options and secrets neither resolved
    nor required.
    """
    path = Path(path).resolve()
    try:
        raw = load_yaml(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"configuration file not found: {path}") from None
    except UnicodeDecodeError:
        raise ConfigError(f"{path} is not a UTF-8 text file: not a configuration") from None
    except OSError as exc:  # a folder, a device, no permission
        raise ConfigError(f"cannot read the configuration file {path}: {exc.strerror}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path} is not valid YAML: {describe(exc)}") from None
    return parse_settings(
        raw, base_dir=path.parent, environ=environ, config_path=path, with_sources=with_sources
    )


def parse_settings(
    raw: Any,
    *,
    base_dir: Path,
    environ: Mapping[str, str],
    config_path: Path | None = None,
    with_sources: bool = True,
) -> Settings:
    """Build ``Settings`` from an already-parsed mapping (see ``load_settings``)."""
    problems: list[str] = []
    if not isinstance(raw, Mapping):
        raise ConfigError("the configuration must be a mapping with keys street, landing, warehouse, sources")
    resolver = _Resolver(environ, base_dir, problems)
    suggested = _unknown_keys(raw, problems)

    street_code = str(_require(raw, "street.code", problems) or "")
    landing_url = _landing_url(_require(raw, "landing.url", problems), base_dir)
    warehouse_path = base_dir / str(_require(raw, "warehouse.path", problems) or "warehouse.duckdb")
    state_dir = base_dir / str(_get(raw, "state.dir") or "state")

    sources: dict[str, SourceSettings] = {}
    raw_sources = raw.get("sources") or {}
    if not isinstance(raw_sources, Mapping) or (with_sources and not raw_sources):
        if with_sources:
            problems.append("sources: name at least one source system")
        raw_sources = {}
    if not with_sources:  # name and kind only: no option read, no secret needed
        sources = {
            str(n): SourceSettings(str(n), str(b["kind"]), {})
            for n, b in raw_sources.items()
            if isinstance(b, Mapping) and "kind" in b
        }
        raw_sources = {}
    for name, body in raw_sources.items():
        if not isinstance(body, Mapping) or "kind" not in body:
            problems.append(f"sources.{name}: needs a 'kind'")
            continue
        options = {k: resolver.resolve(f"sources.{name}.{k}", v) for k, v in body.items() if k != "kind"}
        sources[str(name)] = SourceSettings(str(name), str(body["kind"]), options, street_code or None)

    # Warehouse-only commands (with_sources=False) get the keys that resolve and do not require the rest;
    # why each other key did not resolve is kept, for the step that needs it to say (a missing file ...).
    keys, unresolved_keys = {}, {}
    for name, ref in (raw.get("keys") or {}).items():
        found: list[str] = []
        keys[str(name)] = (resolver if with_sources else _Resolver(environ, base_dir, found)).secret(
            f"keys.{name}", ref
        )
        unresolved_keys.update({str(name): problem for problem in found})
    quality = dict(raw.get("quality") or {})
    paths = {
        name: (base_dir / str(_get(raw, dotted)) if _get(raw, dotted) else None)
        for name, dotted in (
            ("vault_path", "vault.path"),
            ("audit_path", "audit.path"),
            ("exports_dir", "exports.dir"),
            ("snapshots_dir", "snapshots.dir"),
        )
    }
    keep = _get(raw, "snapshots.keep")
    if keep is not None and (not isinstance(keep, int) or keep < 1):
        problems.append("snapshots.keep: a whole number of snapshots to keep, at least 1")
    reports = dict(raw.get("reports") or {})
    duckdb = _duckdb_resources(raw, base_dir, warehouse_path, problems)
    retention = _retention(raw.get("retention"), problems)
    # "warehouse.path: required" says nothing new after "unknown key `warehous`, did you mean `warehouse`".
    problems = [p for p in problems if not (p.endswith(": required") and p.split(".")[0] in suggested)]
    if problems:
        where = f" in {config_path}" if config_path else ""
        raise ConfigError(
            f"{count(len(problems), 'configuration problem')}{where}:\n  - " + "\n  - ".join(problems)
        )
    return Settings(
        street_code=street_code,
        landing_url=landing_url,
        warehouse_path=warehouse_path,
        state_dir=state_dir,
        sources=sources,
        keys={k: v for k, v in keys.items() if v is not None},
        unresolved_keys=unresolved_keys,
        quality=quality,
        config_path=config_path,
        **paths,
        snapshots_keep=keep or 7,
        reports=reports,
        sources_resolved=with_sources,
        duckdb=duckdb,
        retention=retention,
    )


def _retention(section: Any, problems: list[str]) -> Retention:
    """The ``retention:`` section over the defaults: whole numbers of days (at least 1), one flag."""
    if section is None:
        return Retention()
    if not isinstance(section, Mapping):
        problems.append("retention: a mapping of days, device_events_days, exports_days, reports_days")
        return Retention()
    values: dict[str, Any] = {}
    for key in ("days", "device_events_days", "exports_days", "reports_days"):
        value = section.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            problems.append(f"retention.{key}: a whole number of days, at least 1 (got {value!r})")
        else:
            values[key] = value
    flag = section.get("after_each_run")
    if flag is not None and not isinstance(flag, bool):
        problems.append(f"retention.after_each_run: true or false (got {flag!r})")
    elif flag is not None:
        values["after_each_run"] = flag
    return Retention(**values)


def _duckdb_resources(
    raw: Mapping[str, Any], base_dir: Path, warehouse_path: Path, problems: list[str]
) -> DuckDBResources:
    """The ``duckdb:`` section over the defaults (a spill folder beside the warehouse)."""
    default = DuckDBResources.default(warehouse_path.parent / "duckdb-tmp")
    section = raw.get("duckdb")
    if section is None:
        return default
    if not isinstance(section, Mapping):
        problems.append("duckdb: a mapping with memory_limit and/or temp_directory")
        return default
    limit = default.memory_limit
    if section.get("memory_limit") is not None:
        try:
            limit = parse_memory_limit(section["memory_limit"])
        except ValueError as exc:
            problems.append(f"duckdb.memory_limit: {exc}")
    folder = default.temp_directory
    given = section.get("temp_directory")
    if given is not None:
        if not isinstance(given, str) or not given.strip():
            problems.append("duckdb.temp_directory: a folder path (relative to this file)")
        else:
            folder = base_dir / given
    return DuckDBResources(limit, folder)


class _Resolver:
    """Turns ``{env: X}`` / ``{file: P}`` references into ``Secret`` values, collecting problems."""

    def __init__(self, environ: Mapping[str, str], base_dir: Path, problems: list[str]) -> None:
        self.environ, self.base_dir, self.problems = environ, base_dir, problems

    def resolve(self, where: str, value: Any) -> Any:
        if isinstance(value, Mapping) and set(value) <= {"env", "file"} and len(value) == 1:
            return self.secret(where, value)
        if isinstance(value, str) and where.endswith(("secret", "password", "api_key", "token")):
            self.problems.append(f"{where}: write a reference such as {{env: NAME}}, not the secret itself")
        elif isinstance(value, str) and _url_password(value):
            self.problems.append(
                f"{where}: a URL with a password written in the configuration; put the whole URL in a "
                "reference such as {env: REGISTRY_URL} or {file: secrets/registry.url}"
            )
        return value

    def secret(self, where: str, ref: Any) -> Secret | None:
        if isinstance(ref, Mapping) and "env" in ref:
            name = str(ref["env"])
            if name not in self.environ:
                self.problems.append(f"{where}: environment variable {name} is not set")
                return None
            return Secret(self.environ[name], f"env:{name}")
        if isinstance(ref, Mapping) and "file" in ref:
            path = self.base_dir / str(ref["file"])
            try:
                return Secret(path.read_text(encoding="utf-8").strip(), f"file:{path}")
            except OSError as exc:
                self.problems.append(f"{where}: cannot read secret file {path}: {exc.strerror}")
                return None
        self.problems.append(f"{where}: expected {{env: NAME}} or {{file: PATH}}")
        return None


def nearest(key: str, known: Collection[str]) -> str | None:
    """The known key closest to a mistyped ``key`` (``warehous`` → ``warehouse``), or None."""
    found = difflib.get_close_matches(str(key), sorted(known), n=1, cutoff=0.6)
    return found[0] if found else None


def unknown_key(where: str, key: Any, known: Collection[str]) -> str:
    """The problem line for an unknown key: names it and the nearest valid key, or lists the valid ones."""
    guess = nearest(str(key), known)
    hint = f"did you mean `{guess}`?" if guess else f"valid keys: {', '.join(sorted(known))}"
    return f"{where}unknown key `{key}`, {hint}"


def _unknown_keys(raw: Mapping[str, Any], problems: list[str]) -> set[str]:
    """Add a problem for every unknown top-level key and every unknown key of a fixed section; returns
    the sections that were suggested for a mistyped key."""
    suggested = set()
    for key, body in raw.items():
        if key not in SECTIONS:
            problems.append(unknown_key("", key, SECTIONS))
            suggested.add(nearest(str(key), SECTIONS))
            continue
        known = SECTIONS[key]
        if known is not None and isinstance(body, Mapping):
            problems.extend(unknown_key(f"{key}: ", k, known) for k in body if k not in known)
    return suggested - {None}


def _url_password(text: str) -> bool:
    """Whether ``text`` is a URL carrying a password (``scheme://user:password@host``)."""
    if "://" not in text or "@" not in text:
        return False
    try:
        return bool(urllib.parse.urlsplit(text.strip()).password)
    except ValueError:  # a malformed port or bracket: still refuse what looks like user:password@
        return bool(re.search(r"://[^/@\s]*:[^@\s]+@", text))


def _get(raw: Mapping[str, Any], dotted: str) -> Any:
    node: Any = raw
    for part in dotted.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _require(raw: Mapping[str, Any], dotted: str, problems: list[str]) -> Any:
    value = _get(raw, dotted)
    if value in (None, ""):
        problems.append(f"{dotted}: required")
    return value


def _landing_url(value: Any, base_dir: Path) -> str:
    """A storage URL for the landing zone; a bare path is taken relative to the config file."""
    text = str(value or "landing")
    if "://" in text:
        return text
    return (base_dir / text).resolve().as_uri()


Clock = Callable[[], dt.datetime]


OWNER_ONLY_UMASK = 0o077


@contextlib.contextmanager
def owner_only_files() -> Iterator[None]:
    """For the block, every file and folder this process creates (the warehouse and its WAL, the vault's
    WAL, landing slices, logs, Airflow's database) is owner-only: the umask is tightened to 0o077 (never
    loosened), and restored after. The ``islandbridge`` command and every DAG task run inside it."""
    old = os.umask(OWNER_ONLY_UMASK)
    os.umask(old | OWNER_ONLY_UMASK)
    try:
        yield
    finally:
        os.umask(old)


def utc_now() -> dt.datetime:
    """Wall-clock time, used only for bookkeeping (when a run loaded), never for which data to read."""
    return dt.datetime.now(dt.UTC)


_DAY = re.compile(r"\d{4}-\d{2}-\d{2}|\d{8}")  # YYYY-MM-DD or YYYYMMDD
# What an error repeats of a typed source name (`errors.typed`): letters first, under seven digits, no run of six
_TIME = r"[T ]\d{2}(?::?\d{2}){0,2}(?:[.,]\d{1,6})?(?:Z|[+-]\d{2}(?::?\d{2})?)?"
_AS_OF_SHAPE = re.compile(rf"(?:{_DAY.pattern})(?:{_TIME})?")
_DATE_TIME = re.compile(rf"(?:{_DAY.pattern})[T ]\d{{2}}.*")  # a date, then a time of day
_NAME_SHAPE = re.compile(r"(?!(?:\D*\d){7})[A-Za-z][A-Za-z_.\-]*(?:\d{1,5}[A-Za-z_.\-]+)*\d{0,5}")
AS_OF_HELP = (
    "expected a date YYYY-MM-DD or YYYYMMDD (the end of that day, Asia/Shanghai) "
    "or an ISO 8601 date-time such as 2026-11-20T16:00:00+00:00"
)


def parse_as_of(text: str | dt.date | dt.datetime) -> dt.datetime:
    """The run's as-of instant as an aware datetime; naive input is Asia/Shanghai local time.

    A bare date, ``YYYY-MM-DD`` or ``YYYYMMDD``, means the end of that day (``2026-11-20`` and
    ``20261120`` → ``2026-11-21T00:00+08:00``), which is what an operator means by "as of the 20th". A
    date-time is that instant. Anything else (a month, a week date, a date cut off after ``T``,
    ``20 Nov``) is refused with ``ConfigError`` rather than guessed.
    """
    shown = typed(str(text).strip(), _AS_OF_SHAPE)
    if isinstance(text, dt.datetime):
        value = text
    elif isinstance(text, dt.date):
        value = dt.datetime.combine(text + dt.timedelta(days=1), dt.time())
    else:
        given = str(text).strip()
        day = _DAY.fullmatch(given)
        if not day and not _DATE_TIME.fullmatch(given):
            raise ConfigError(f"as-of {shown}: {AS_OF_HELP}")
        try:
            value = dt.datetime.fromisoformat(given)
            if day:
                value += dt.timedelta(days=1)
        except (ValueError, OverflowError) as exc:  # OverflowError: the day after 9999-12-31
            why = f"{exc}; " if given not in str(exc) else ""  # not a date after all: 87654321 is a landline
            raise ConfigError(f"as-of {typed(given, re.compile('(?!)'))}: {why}{AS_OF_HELP}") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=LOCAL_TZ)
    try:  # every step reads T in UTC and in local time: both must exist (not 0001-01-01 at +14:00)
        value.astimezone(dt.UTC), value.astimezone(LOCAL_TZ)
    except OverflowError as exc:
        raise ConfigError(f"as-of {shown}: {exc}; {AS_OF_HELP}") from None
    return value


def local_day(as_of: dt.datetime) -> dt.date:
    """The Asia/Shanghai date that the as-of instant ``as_of`` ends: the date of the instant before it
    (``2026-11-21 00:00+08:00`` ends 2026-11-20)."""
    return (as_of - dt.timedelta(microseconds=1)).astimezone(LOCAL_TZ).date()


def resolve_as_of(
    as_of: str | dt.date | dt.datetime | None,
    data_interval_end: dt.datetime | None = None,
    started_at: dt.datetime | None = None,
) -> dt.datetime:
    """A scheduled or manual run's as-of instant T, by precedence.

    1. ``as_of`` given (the DAG's ``as_of`` param, ``--as-of``): `parse_as_of` of it.
    2. else the run's ``data_interval_end`` (a scheduled run, or a manual one given a logical date).
    3. else the end of *yesterday* in Asia/Shanghai as seen at ``started_at`` (the run's start, or its
       logical date): a manual run with no date covers the last complete local day.

    Raises ``ConfigError`` if ``as_of`` cannot be read or nothing is given to resolve T from.
    """
    if as_of not in (None, ""):
        return parse_as_of(as_of)
    if data_interval_end is not None:
        return data_interval_end
    if started_at is None:
        raise ConfigError("no as-of: give a date (as_of, --as-of), a data interval or the run's start time")
    if started_at.tzinfo is None:
        raise ConfigError(f"the run's start time {started_at.isoformat()} has no time zone")
    today = started_at.astimezone(LOCAL_TZ).date()
    return dt.datetime.combine(today, dt.time(), LOCAL_TZ)
