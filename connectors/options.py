"""A connector's options, declared once as a dataclass and checked by one parser.

Each connector declares its options as a frozen dataclass whose fields carry their type, default and
bounds (`option`); `parse_options` builds it from the ``sources.<name>`` mapping of the configuration,
collecting every problem — a wrong type, a value out of range, a secret written inline, an option the
connector does not know (with the nearest known one) — into one ``ConfigError`` before anything runs.

Example::

    @dataclass(frozen=True)
    class Options:
        path: str = option(required=True)
        max_rows: int = option(200_000, low=1)

    opts = parse_options(Options, "civil", "civil_files", {"path": "/data/civil"})
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from islandbridge.config import Secret, unknown_key
from islandbridge.errors import ConfigError

T = TypeVar("T")
_REQUIRED = object()


def option(
    default: Any = None,
    *,
    required: bool = False,
    low: float | None = None,
    high: float | None = None,
    positive: bool = False,
    check: Callable[[Any, list[str], str], Any] | None = None,
) -> Any:
    """A dataclass field for an option: its default, whether it must be given, and its bounds.

    ``check(raw, problems, name)`` parses a value no plain type describes (an SQLAlchemy URL), returning
    the value or appending a problem.
    """
    meta = {"required": required, "low": low, "high": high, "positive": positive, "check": check}
    return dataclasses.field(default=None if required else default, metadata=meta)


def parse_options(cls: type[T], source: str, kind: str, raw: Mapping[str, Any]) -> T:
    """``cls`` built from ``raw``; ``ConfigError`` naming ``sources.<source> (<kind>)`` and every problem."""
    fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    types = typing.get_type_hints(cls)
    problems = [unknown_key("", k, fields) for k in sorted(raw) if k not in fields]
    values = {}
    for name, f in fields.items():
        if name not in raw or raw[name] in (None, ""):
            if f.metadata.get("required"):
                problems.append(f"{name}: required")
            continue
        value = _parse(name, raw[name], types[name], f.metadata, problems)
        if value is not _REQUIRED:
            values[name] = value
    if problems:
        raise ConfigError(f"sources.{source} ({kind}): " + "; ".join(problems))
    return cls(**values)


def _parse(name: str, raw: Any, kind: Any, meta: Mapping[str, Any], problems: list[str]) -> Any:
    before = len(problems)
    if meta.get("check") is not None:
        value = meta["check"](raw, problems, name)
    elif kind in (Secret, Secret | None):
        value = raw if isinstance(raw, Secret) else None
        if value is None:
            problems.append(f"{name}: write a reference such as {{env: NAME}}, not the secret itself")
    elif kind is bool:
        value = raw if isinstance(raw, bool) else None
        if value is None:
            problems.append(f"{name}: expected true or false, got {raw!r}")
    elif kind in (int, float):
        value = _number(name, raw, kind, meta, problems)
    else:
        value = str(raw.reveal() if isinstance(raw, Secret) else raw)
    return value if len(problems) == before else _REQUIRED


def _number(name: str, raw: Any, kind: type, meta: Mapping[str, Any], problems: list[str]) -> Any:
    low, high = meta.get("low"), meta.get("high")
    try:
        value = None if isinstance(raw, bool) else kind(raw)
    except (TypeError, ValueError, OverflowError):
        value = None
    if kind is int and isinstance(raw, float) and value != raw:
        value = None  # 2.5 is not an integer
    bad = (
        value is None
        or (isinstance(value, float) and not math.isfinite(value))
        or (meta.get("positive") and not value > 0)
        or (low is not None and value < low)
        or (high is not None and value > high)
    )
    if bad:
        what = "an integer" if kind is int else "a number"
        if meta.get("positive"):
            what = f"a positive {'integer' if kind is int else 'number'}"
        if low is not None and high is not None:
            what += f" in {low}..{high}"
        elif low is not None:
            what += f" >= {low}"
        problems.append(f"{name}: expected {what}, got {raw!r}")
        return None
    return value
