"""The grid and IoT corpus (`cases_rest`): each misbehaving server against the real connector."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from islandbridge.config import Secret, SourceSettings, parse_as_of
from islandbridge.connectors import build_connector
from tests.connectors.hostile_http import HostileServer
from tests.connectors.support import FakeTime
from tests.hostile.cases_rest import CASES, ApiCase
from tests.hostile.corpus import Observed, bounded, check, extract_landed, project_error

AS_OF = parse_as_of("2026-11-20")
pytestmark = pytest.mark.timeout(120)
OPTIONS = {
    "grid": lambda url: {"base_url": url, "client_id": "c", "client_secret": Secret("s", "test")},
    "iot": lambda url: {"base_url": url, "api_key": Secret("k", "test")},
}


def extract(case: ApiCase, url: str, landing: Path) -> tuple[dict, list, list]:
    kind = "grid_rest" if case.source == "grid" else "iot_rest"
    connector = build_connector(
        SourceSettings(case.source, kind, {**OPTIONS[case.source](url), **case.options})
    )
    connector.pacing = FakeTime().pacing()
    return extract_landed(connector, case.source, landing, "run1", AS_OF, {})


def observe(case: ApiCase, tmp_path: Path) -> Observed:
    with HostileServer(case.handler()) as server:
        result, exc = bounded(lambda: extract(case, server.base_url, tmp_path / "landing"), seconds=60)
    if exc is not None:
        return project_error(exc)
    manifest, aside, rows = result
    kind = "quarantined" if aside else "accepted"
    landed = sum(c["landed"] for c in manifest["streams"].values())
    text = " | ".join(q["reason"] for q in aside)
    return Observed(kind, text, landed, manifest["streams"], extra={"rows": rows})


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_api_answer(case: ApiCase, tmp_path: Path):
    started = time.monotonic()
    observed = observe(case, tmp_path)
    for column, text in case.landed_values.items():
        assert observed.extra["rows"][0][column] == text, f"{column} did not land exactly as sent"
    check(case.source, case.id, case.expect, observed, started)
