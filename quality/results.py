"""What a gate run found: one ``CheckResult`` per expectation, gathered in a ``GateResult``.

Only aggregates, record keys and values of ``pii: none`` columns are held here, so a result can be
logged, stored in ``meta.quality_results``, rendered in a report or handed between tasks.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any


@dataclass
class CheckResult:
    """One expectation's outcome on one landed stream.

    ``observed`` holds numbers and names only (never a value of a PII column); ``sample_keys`` are record
    keys of failing rows; ``top_values`` the most frequent failing values of a ``pii: none`` column.
    """

    source: str
    stream: str
    check: str
    kind: str
    severity: str
    success: bool
    column: str | None = None
    gx_type: str | None = None
    element_count: int | None = None
    unexpected_count: int | None = None
    unexpected_percent: float | None = None
    observed: Mapping[str, Any] = field(default_factory=dict)
    sample_keys: list[str] = field(default_factory=list)
    top_values: list[tuple[str, int]] = field(default_factory=list)
    engine: str = "gx"

    @property
    def name(self) -> str:
        return f"{self.source}.{self.stream}.{self.check}"

    @property
    def is_critical_failure(self) -> bool:
        return not self.success and self.severity == "critical"

    def describe(self) -> str:
        """One line for an error message or a log: names, no personal data."""
        seen = ", ".join(f"{k}={v}" for k, v in self.observed.items()) if self.observed else ""
        counts = (
            ""
            if self.unexpected_count is None
            else f"{self.unexpected_count} of {self.element_count} rows failed"
        )
        detail = "; ".join(x for x in (counts, seen) if x)
        return f"{self.name} ({self.gx_type or self.kind}): {detail or 'failed'}"


@dataclass
class GateResult:
    """The gate's verdict on one run's landed data.

    ``quarantined[source][stream]`` counts the rows the gate set aside; ``excluded_keys`` lists their record
    keys. ``connector_quarantined[source][stream]`` counts the records the connectors had already set
    aside while extracting (the landing manifest's ``quarantined``: unreadable records, with a reason),
    and ``labels`` names each ``source.stream`` for people; the report shows both quarantines, so its
    numbers are the run report's (whose ``quarantined`` is their sum).
    The landing slice has already been rewritten without them (see ``quarantine.apply``), so the loader
    needs no change; the keys are here for the run summary and for callers that load differently.
    """

    run_id: str
    as_of: str
    passed: bool
    results: list[CheckResult]
    quarantined: dict[str, dict[str, int]] = field(default_factory=dict)
    excluded_keys: dict[str, dict[str, list[str]]] = field(default_factory=dict)
    connector_quarantined: dict[str, dict[str, int]] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    report_path: Path | None = None
    summary_path: Path | None = None
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def critical_failures(self) -> list[CheckResult]:
        return [r for r in self.results if r.is_critical_failure]

    @property
    def warnings(self) -> list[CheckResult]:
        return [r for r in self.results if not r.success and r.severity == "warning"]

    @property
    def quarantined_by_gate(self) -> int:
        return sum(n for streams in self.quarantined.values() for n in streams.values())

    @property
    def quarantined_by_connectors(self) -> int:
        return sum(n for streams in self.connector_quarantined.values() for n in streams.values())

    def to_dict(self) -> dict[str, Any]:
        """A JSON-able summary for XComs and the run summary: counts and paths, no record keys."""
        return {
            "run_id": self.run_id,
            "as_of": self.as_of,
            "passed": self.passed,
            "report": str(self.report_path) if self.report_path else None,
            "critical": [r.name for r in self.critical_failures],
            "warnings": [r.name for r in self.warnings],
            "quarantined": self.quarantined,
            "connector_quarantined": self.connector_quarantined,
            "expectations": len(self.results),
        }

    def to_json_dict(self) -> dict[str, Any]:
        """Everything, for the ``quality.json`` file beside the HTML report."""
        return {**self.to_dict(), "results": [asdict(r) for r in self.results], "timings": self.timings}


@dataclass(frozen=True)
class Redo:
    """How the caller runs a day again after a gate stop, for the stop's advice: ``extract`` once the
    source is fixed (its data must be extracted again: validating the landed data again stops again),
    ``validate`` once the check is made a warning (the landed data validated again). ``{sources}`` in
    either names the stopped sources. The defaults are the command line's; the DAG passes its own (which
    task of the run to clear), so the library names no scheduler."""

    extract: str = "extract again"
    validate: str = "re-run"


COMMAND_LINE = Redo()  # the command line's advice: extract again, re-run
