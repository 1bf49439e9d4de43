"""The civil-affairs roster corpus (`cases_civil`): each file through the real connector and landing writer."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from islandbridge.config import SourceSettings, parse_as_of
from islandbridge.connectors import build_connector
from islandbridge.transforms.normalize import normalize_id
from tests.hostile.cases_civil import CASES, FileCase
from tests.hostile.corpus import Observed, bounded, check, extract_landed, project_error

AS_OF = parse_as_of("2026-11-20")
pytestmark = pytest.mark.timeout(120)


def extract(folder: Path, landing: Path, run_id: str, state: dict, options: dict) -> tuple[dict, list, list]:
    connector = build_connector(SourceSettings("civil", "civil_files", {"path": str(folder), **options}))
    return extract_landed(connector, "civil", landing, run_id, AS_OF, state)


def observe(case: FileCase, tmp_path: Path) -> Observed:
    folder, landing = tmp_path / "civil", tmp_path / "landing"
    folder.mkdir()
    state: dict = {}
    if case.first is not None:
        case.first(folder)
        state = extract(folder, landing, "run0", {}, case.options)[0]["state"]
        for path in folder.iterdir():
            path.unlink()
    case.build(folder)
    result, exc = bounded(lambda: extract(folder, landing, "run1", state, case.options))
    if exc is not None:
        return project_error(exc)
    manifest, aside, rows = result
    set_aside = [f for f in manifest["files"] if f["outcome"] in ("refused", "ignored")]
    reasons = [q["reason"] for q in aside] + [f["reason"] for f in set_aside]
    kind = "quarantined" if aside or set_aside else "accepted"
    landed = sum(c["landed"] for c in manifest["streams"].values())
    return Observed(kind, " | ".join(reasons), landed, manifest["streams"], extra={"rows": rows})


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_roster_file(case: FileCase, tmp_path: Path):
    started = time.monotonic()
    observed = observe(case, tmp_path)
    rows = sorted(observed.extra.get("rows", []), key=lambda r: r["source_row"])
    for column, text in case.landed_values.items():
        assert rows[0][column] == text, f"{column} did not land exactly as the file holds it"
    if case.id_kind is not None:
        column = "身份证号码" if "身份证号码" in rows[0] else "身份证号"
        assert normalize_id(rows[0][column], spreadsheet=True).kind == case.id_kind
    check("civil", case.id, case.expect, observed, started)
