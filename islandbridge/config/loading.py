"""Reading a configuration file into ``Settings``: secrets resolved, every problem collected.

`load_settings` reads the YAML file; `parse_settings` checks an already-parsed mapping: unknown keys
(named with the nearest valid one, `unknown_key`), required keys, ``{env: NAME}`` / ``{file: PATH}``
secret references (`_Resolver`), and the ``duckdb`` and ``retention`` sections. Every problem in the
file is reported in one ``ConfigError``.
"""

from __future__ import annotations

import difflib
import math
import re
import urllib.parse
from collections.abc import Collection, Mapping
from pathlib import Path
from typing import Any

import yaml

from islandbridge.config.sections import (
    DuckDBResources,
    Retention,
    Secret,
    Settings,
    SourceSettings,
    parse_memory_limit,
)
from islandbridge.errors import ConfigError, count
from islandbridge.yamlfile import describe, load_yaml

# The keys a configuration file may hold: a section's known keys, or None where its keys are names of the
# operator's choosing (sources, keys) or are checked by their own step (quality, reports).
SECTIONS: dict[str, frozenset[str] | None] = {
    "street": frozenset({"code"}),
    "landing": frozenset({"url"}),
    "warehouse": frozenset({"path", "lock_wait_s"}),
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


def load_settings(
    path: str | Path, environ: Mapping[str, str], *, with_sources: bool | Collection[str] = True
) -> Settings:
    """Read, resolve and check a configuration file.

    Relative paths are taken from the file's own folder. Raises ``ConfigError`` listing every problem.
    ``with_sources=False`` is for commands that only read the warehouse (``runs``, ``sql``, ``quarantine
    list``): the sources are then known by name and kind only, their options and secrets neither resolved
    nor required. A collection of source names is for a command that touches only those (``extract
    --source civil``, ``quarantine replay civil``): theirs are resolved and required, the others' are
    not (``SourceSettings.resolved``). ``True``, what a whole run needs, requires every source's.
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
    with_sources: bool | Collection[str] = True,
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

    sources = _sources(raw.get("sources"), with_sources, resolver, street_code or None, problems)

    # Warehouse-only commands (with_sources=False) get the keys that resolve and do not require the rest;
    # why each other key did not resolve is kept, for the step that needs it to say (a missing file ...).
    keys, unresolved_keys = {}, {}
    for name, ref in (raw.get("keys") or {}).items():
        found: list[str] = []
        keys[str(name)] = (
            resolver if with_sources is not False else _Resolver(environ, base_dir, found)
        ).secret(f"keys.{name}", ref)
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
    lock_wait_s = _get(raw, "warehouse.lock_wait_s")
    if lock_wait_s is not None and (
        isinstance(lock_wait_s, bool)
        or not isinstance(lock_wait_s, int | float)
        or not math.isfinite(lock_wait_s)  # .nan would never end a wait, .inf never give up
        or lock_wait_s < 0
    ):
        problems.append(
            f"warehouse.lock_wait_s: seconds to wait for the warehouse, a number 0 or more (got {lock_wait_s!r})"
        )
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
        sources_resolved=all(source.resolved for source in sources.values()),
        duckdb=duckdb,
        retention=retention,
        **({"warehouse_lock_wait_s": float(lock_wait_s)} if lock_wait_s is not None else {}),
    )


def _sources(
    section: Any,
    with_sources: bool | Collection[str],
    resolver: _Resolver,
    street_code: str | None,
    problems: list[str],
) -> dict[str, SourceSettings]:
    """The ``sources:`` section: the options and secrets of those ``with_sources`` names (``True``: all)
    resolved; the others by name and kind only, their options neither read nor required."""
    if with_sources is False:
        return {
            str(n): SourceSettings(str(n), str(b["kind"]), {}, resolved=False)
            for n, b in (section.items() if isinstance(section, Mapping) else ())
            if isinstance(b, Mapping) and "kind" in b
        }
    if not isinstance(section, Mapping) or not section:
        problems.append("sources: name at least one source system")
        return {}
    chosen = None if with_sources is True else {str(name) for name in with_sources}
    sources = {}
    for name, body in section.items():
        if not isinstance(body, Mapping) or "kind" not in body:
            problems.append(f"sources.{name}: needs a 'kind'")
        elif chosen is not None and str(name) not in chosen:
            sources[str(name)] = SourceSettings(str(name), str(body["kind"]), {}, street_code, resolved=False)
        else:
            options = {k: resolver.resolve(f"sources.{name}.{k}", v) for k, v in body.items() if k != "kind"}
            sources[str(name)] = SourceSettings(str(name), str(body["kind"]), options, street_code)
    return sources


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
