"""Quality gates: suites beside the schemas, a gate before the load, a quarantine for failing rows.

``validate_run`` (``gate``) validates a run's landed data and raises ``QualityGateError`` on a critical
failure; rows failing row-level checks go to ``meta.quality_quarantine`` (``quarantine``) and can be
replayed (``replay``). Importing this package does not import Great Expectations (seconds); validating
does. May import: `landing` and below (`privacy`, `connectors`, `schemas`, `transforms`,
`islandbridge.storage`, `islandbridge.config`, `islandbridge.errors`). See docs/quality.md.
"""

from islandbridge.quality.config import QualityConfig
from islandbridge.quality.errors import (
    QualityCheckBrokenError,
    QualityConfigError,
    QualityError,
    QualityGateError,
    QuarantineError,
)
from islandbridge.quality.gate import validate_run
from islandbridge.quality.results import CheckResult, GateResult, Redo

__all__ = [
    "CheckResult",
    "GateResult",
    "Redo",
    "QualityCheckBrokenError",
    "QualityConfig",
    "QualityConfigError",
    "QualityError",
    "QualityGateError",
    "QuarantineError",
    "validate_run",
]
