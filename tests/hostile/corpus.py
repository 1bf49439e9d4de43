"""The hostile corpus's vocabulary: a case, its expected outcome, a bounded run and the tally.

A case is data: an id, the source it attacks, a builder that makes the input from code (nothing hostile
is committed; bombs are generated when the test runs) and one ``Expect``:

- ``error(cls, pattern)``: the run stops with a one-line project error of class ``cls`` (for the CLI:
  an exit status) whose message matches ``pattern``;
- ``quarantined(pattern, landed=n)``: the run completes, every record read is accounted for, at least
  one record or file is set aside with a reason matching ``pattern``, and ``n`` rows landed;
- ``accepted(landed=n)``: the run completes, nothing is set aside, ``n`` rows landed.

Whatever the case, `observe` asserts the rules every input must keep: an outcome within the case's
time bound (no hang), no exception that is not the project's own (no raw traceback), an error message
of one line, and ``read == landed + quarantined + duplicates`` for every stream.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest

from islandbridge.errors import IslandbridgeError

OUTCOMES = ("error", "quarantined", "accepted")
DEFAULT_BOUND_S = 30.0


@dataclass(frozen=True)
class Expect:
    kind: str
    pattern: str = ""
    error: type[IslandbridgeError] | None = None
    status: int | None = None
    landed: int | None = None


def error(cls: type[IslandbridgeError] | None, pattern: str, status: int | None = None) -> Expect:
    return Expect("error", pattern, error=cls, status=status)


def quarantined(pattern: str, landed: int | None = 0) -> Expect:
    return Expect("quarantined", pattern, landed=landed)


def accepted(landed: int | None = None) -> Expect:
    return Expect("accepted", landed=landed)


@dataclass(repr=False)
class Observed:
    """What one run came to: its kind, the error message or the reasons, and the counts."""

    kind: str
    text: str = ""
    landed: int = 0
    counts: Mapping[str, Mapping[str, int]] = field(default_factory=dict)
    status: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    def __repr__(self) -> str:
        return f"Observed({self.kind}, landed={self.landed}, status={self.status}, text={self.text[:300]!r})"


# ---------------------------------------------------------------------------------------- the tally

TALLY: Counter[tuple[str, str]] = Counter()
SECONDS: Counter[str] = Counter()
# Cases run as strict xfails: each documents a known defect (its reason), counted apart from ``tried``.
KNOWN_BUGS: Counter[str] = Counter()


def summary_rows() -> list[tuple[str, int, int, int, int]]:
    """``(source, tried, error, quarantined, accepted)`` per source, then the total."""
    sources = sorted({s for s, _ in TALLY})
    rows = []
    for source in [*sources, "total"]:
        counts = [
            sum(n for (s, k), n in TALLY.items() if k == kind and source in (s, "total")) for kind in OUTCOMES
        ]
        rows.append((source, sum(counts), *counts))
    return rows


# ---------------------------------------------------------------------------------------- running


def bounded(call: Callable[[], Any], seconds: float = DEFAULT_BOUND_S) -> tuple[Any, BaseException | None]:
    """``call()`` in a worker thread; fails the test if it has no outcome within ``seconds`` (a hang).

    Returns ``(value, None)`` or ``(None, exception)``.
    """
    box: dict[str, Any] = {}

    def work() -> None:
        try:
            box["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - judged by the caller
            box["error"] = exc

    worker = threading.Thread(target=work, daemon=True, name="hostile-case")
    worker.start()
    worker.join(seconds)
    if worker.is_alive():
        pytest.fail(f"hang: no outcome within {seconds:.0f}s", pytrace=False)
    return box.get("value"), box.get("error")


def extract_landed(
    connector, source: str, landing: Path, run_id: str, as_of, state: dict
) -> tuple[dict, list, list]:
    """Run ``connector`` into a fresh landing writer for ``run_id`` (discarded when the extraction
    fails): its manifest, the rows it set aside and the rows it landed."""
    from islandbridge.connectors import ExtractContext
    from islandbridge.landing.zone import LandingWriter

    writer = LandingWriter.open(landing.as_uri(), run_id, source, connector.streams())
    try:
        manifest = writer.close(connector.extract(ExtractContext(run_id, as_of, state, writer)))
    except BaseException:
        writer.discard()
        raise
    base = landing / run_id / source
    aside = pq.read_table(base / "_quarantine").to_pylist() if (base / "_quarantine").exists() else []
    rows = [
        r
        for s in connector.streams()
        if (base / s.name).exists()
        for r in pq.read_table(base / s.name).to_pylist()
    ]
    return manifest, aside, rows


def balanced(counts: Mapping[str, Mapping[str, int]]) -> list[str]:
    """The streams whose numbers do not add up (read = landed + quarantined + duplicates)."""
    return [
        f"{s}: read {c['read']} != landed {c['landed']} + quarantined {c['quarantined']} "
        f"+ duplicates {c['duplicates']}"
        for s, c in counts.items()
        if c["read"] != c["landed"] + c["quarantined"] + c["duplicates"]
    ]


def project_error(exc: BaseException) -> Observed:
    """An exception as an outcome: a project error is an ``error``; anything else fails the test."""
    if not isinstance(exc, IslandbridgeError):
        raise AssertionError(f"raw traceback: {type(exc).__name__}: {exc}") from exc
    return Observed("error", str(exc), status=exc.exit_status, extra={"class": type(exc)})


def check(source: str, case_id: str, expect: Expect, observed: Observed, started: float) -> None:
    """Assert ``observed`` against ``expect`` and the rules every case keeps; count it in the tally."""
    assert not balanced(observed.counts), balanced(observed.counts)
    if observed.kind == "error":
        assert "\n" not in observed.text.strip() and "Traceback" not in observed.text, (
            f"error is not one line: {observed.text!r}"
        )
    assert observed.kind == expect.kind, f"{case_id}: expected {expect.kind}, got {observed}"
    if expect.pattern:
        assert re.search(expect.pattern, observed.text), (
            f"{case_id}: {expect.pattern!r} not in {observed.text!r}"
        )
    if expect.error is not None:
        assert issubclass(observed.extra["class"], expect.error), observed
    if expect.status is not None:
        assert observed.status == expect.status, (
            f"{case_id}: exit {observed.status}, expected {expect.status}"
        )
    if expect.landed is not None:
        assert observed.landed == expect.landed, (
            f"{case_id}: landed {observed.landed}, expected {expect.landed}"
        )
    TALLY[source, observed.kind] += 1
    SECONDS[source] += time.monotonic() - started
