"""The ``quality:`` section of the configuration, typed, with defaults, every problem listed at once.

YAML shape (all keys optional)::

    quality:
      reports_dir: reports            # relative to the warehouse file's folder; <dir>/<run_id>/quality.html
      volume:
        max_drop: 0.3                 # a stream whose population/rate falls by more than this is critical
      quarantine:
        key: quarantine               # the keys.<name> keyring that encrypts quarantined rows
        max_share: 0.2                # quarantining more than this share of a stream is critical ...
        min_rows: 20                  # ... once it is more than this many rows
      mostly:
        min_rows: 20                  # a check's `mostly` share is judged once it has this many values
      gx_max_rows: 1000000            # above: GX validates DuckDB's per-check counts, not the rows
      checks:                         # per check: "<source>.<stream>.<check id>"
        registry.t_jm.id_number_valid: {severity: critical, mostly: 0.95}
        iot.events.volume: {severity: warning}

Example::

    cfg = QualityConfig.from_mapping(raw_yaml.get("quality"))
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from islandbridge.config import unknown_key
from islandbridge.errors import count, noun
from islandbridge.quality.errors import QualityConfigError
from islandbridge.schemas import SEVERITIES

KNOWN_KEYS = ("reports_dir", "volume", "quarantine", "mostly", "gx_max_rows", "checks")


@dataclass(frozen=True)
class Override:
    severity: str | None = None
    mostly: float | None = None


@dataclass(frozen=True)
class QualityConfig:
    reports_dir: Path | None = None
    max_drop: float = 0.3
    quarantine_key: str = "quarantine"
    max_quarantine_share: float = 0.2
    quarantine_min_rows: int = 20
    mostly_min_rows: int = 20
    gx_max_rows: int = 1_000_000
    checks: Mapping[str, Override] = field(default_factory=dict)

    @classmethod
    def from_mapping(cls, raw: Mapping[str, Any] | None) -> QualityConfig:
        """Parse the section; raises ``QualityConfigError`` listing every problem."""
        raw = raw or {}
        problems: list[str] = []
        if not isinstance(raw, Mapping):
            raise QualityConfigError("quality: expected a mapping (see docs/quality.md)")
        problems += [unknown_key("quality: ", k, KNOWN_KEYS) for k in raw if k not in KNOWN_KEYS]
        volume, quarantine = _section(raw, "volume", problems), _section(raw, "quarantine", problems)
        mostly = _section(raw, "mostly", problems)
        cfg = cls(
            reports_dir=Path(raw["reports_dir"]) if raw.get("reports_dir") else None,
            max_drop=_number(volume, "volume.max_drop", 0.3, 0, 1, problems),
            quarantine_key=str(quarantine.get("key", "quarantine")),
            max_quarantine_share=_number(quarantine, "quarantine.max_share", 0.2, 0, 1, problems),
            quarantine_min_rows=int(_number(quarantine, "quarantine.min_rows", 20, 0, 1e12, problems)),
            mostly_min_rows=int(_number(mostly, "mostly.min_rows", 20, 0, 1e12, problems)),
            gx_max_rows=int(_number(raw, "gx_max_rows", 1_000_000, 0, 1e12, problems)),
            checks=_overrides(_section(raw, "checks", problems), problems),
        )
        if problems:
            raise QualityConfigError(
                f"{count(len(problems), 'problem')} in the quality configuration:\n  - "
                + "\n  - ".join(problems)
            )
        return cfg

    def override(self, source: str, stream: str, check: str) -> Override:
        return self.checks.get(f"{source}.{stream}.{check}", Override())

    def reports_root(self, warehouse_path: Path) -> Path:
        base = warehouse_path.parent
        return base / "reports" if self.reports_dir is None else base / self.reports_dir


def _section(raw: Mapping[str, Any], key: str, problems: list[str]) -> Mapping[str, Any]:
    value = raw.get(key) or {}
    if not isinstance(value, Mapping):
        problems.append(f"quality.{key}: expected a mapping")
        return {}
    return value


def _number(
    raw: Mapping[str, Any], where: str, default: float, low: float, high: float, problems: list[str]
) -> float:
    value = raw.get(where.rsplit(".", 1)[-1], default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low <= value <= high:
        problems.append(f"quality.{where}: expected a number in [{low:g}, {high:g}], got {value!r}")
        return default
    return value


def _overrides(raw: Mapping[str, Any], problems: list[str]) -> dict[str, Override]:
    out = {}
    for name, body in raw.items():
        where = f"quality.checks.{name}"
        if str(name).count(".") != 2 or not isinstance(body, Mapping):
            problems.append(
                f"{where}: expected '<source>.<stream>.<check id>: {{severity: ..., mostly: ...}}'"
            )
            continue
        severity, mostly = body.get("severity"), body.get("mostly")
        if severity is not None and severity not in SEVERITIES:
            problems.append(f"{where}.severity: {severity!r}; expected one of {', '.join(SEVERITIES)}")
        if mostly is not None and (
            isinstance(mostly, bool) or not isinstance(mostly, (int, float)) or not 0 < mostly <= 1
        ):
            problems.append(f"{where}.mostly: expected a number in (0, 1], got {mostly!r}")
        unknown = set(body) - {"severity", "mostly"}
        if unknown:
            problems.append(
                f"{where}: unknown {noun(len(unknown), 'key')} {sorted(unknown)}; known: severity, mostly"
            )
        out[str(name)] = Override(severity, None if mostly is None else float(mostly))
    return out
