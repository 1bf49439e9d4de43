"""The quality gate's errors, by what the operator does next."""

from __future__ import annotations

from typing import TYPE_CHECKING

from islandbridge.errors import ConfigError, TerminalError

if TYPE_CHECKING:
    from islandbridge.quality.results import GateResult


class QualityError(TerminalError):
    """Root of the quality gate's errors.

    Terminal, like all of them: a stopped gate, a broken suite or a bad quarantine request needs a person
    (fix the data at the source, the suite or the request); re-validating the same data gives the same result."""


class QualityConfigError(QualityError, ConfigError):
    """The ``quality:`` configuration or a suite is wrong; every problem is listed."""


class QualityGateError(QualityError):
    """A critical expectation failed: nothing was loaded. The message names source, expectation and
    observed value; ``result`` holds every result and the report's path."""

    exit_status = 5

    def __init__(self, message: str, result: GateResult) -> None:
        super().__init__(message)
        self.result = result


class QualityCheckBrokenError(QualityError):
    """An expectation raised instead of validating: the check is broken, not the data. Fix the suite."""


class QuarantineError(QualityError):
    """A quarantine operation cannot be done as asked (unknown record, missing key)."""
