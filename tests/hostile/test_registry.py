"""The resident-registry corpus (`cases_registry`): each hostile database through the real SQL connector.

Every case runs against a fresh SQLite copy of a five-row registry; the cases about the server run
again against PostgreSQL and MariaDB (marked, so they skip outside CI and fail there when the server
is absent). A case whose rows are quarantined is synced once more with the state it left: the rows are
quarantined once, so that run quarantines and lands nothing (the rows count as duplicates).
"""

from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from islandbridge.config import SourceSettings, parse_as_of
from islandbridge.connectors import build_connector
from islandbridge.devtools.simulator.registry import DDL
from islandbridge.transforms.normalize import normalize_id
from tests.hostile.cases_registry import CASES, PROBE, RESIDENT, Db, RegistryCase
from tests.hostile.corpus import KNOWN_BUGS, Observed, balanced, bounded, check, extract_landed, project_error

AS_OF = parse_as_of("2026-11-20")
pytestmark = pytest.mark.timeout(180)


@pytest.fixture(scope="session")
def base_registry(tmp_path_factory) -> Path:
    """One estate, one house, two residents (100001, 100002) and one tag: the production schema."""
    path = tmp_path_factory.mktemp("registry") / "rrs.sqlite"
    with sqlite3.connect(path) as db:
        db.executescript(DDL)
        db.execute("INSERT INTO t_xq VALUES ('XQ001', '锦江苑', '511403001001', '凤鸣社区')")
        db.execute(
            "INSERT INTO t_fw VALUES ('FW0000001', 'XQ001', '3', '2', '501', 'G1', '2026-11-01 08:00:00')"
        )
        for jmid, gxsj in ((100001, "2026-11-02 08:00:00"), (100002, "2026-11-03 08:00:00")):
            row = {"jmid": jmid, **RESIDENT, "gxsj": gxsj}
            db.execute(f"INSERT INTO t_jm VALUES ({', '.join('?' * len(row))})", list(row.values()))
        db.execute("INSERT INTO t_jm_bq VALUES (100001, '独居老人', '2026-11-02 08:00:00')")
    db.close()
    return path


def open_db(kind: str, request, base: Path, folder: Path) -> Db:
    folder.mkdir()
    if kind == "sqlite":
        url = f"sqlite:///{folder / 'rrs.sqlite'}"
        shutil.copy(base, folder / "rrs.sqlite")
    else:
        from islandbridge.devtools.simulator import load_registry

        url = request.getfixturevalue(f"{kind}_url")
        load_registry(base, url)
    engine = sa.create_engine(url)
    request.addfinalizer(engine.dispose)
    return Db(kind, url, engine, folder)


def extract(url: Any, options: dict, landing: Path, run_id: str, state: dict) -> tuple[dict, list, list]:
    connector = build_connector(SourceSettings("registry", "sql_registry", {"url": url, **options}))
    return extract_landed(connector, "registry", landing, run_id, AS_OF, state)


def observe(case: RegistryCase, db: Db, landing: Path) -> Observed:
    options = {"retries": 0, **case.options}
    state: dict = {}
    if case.first:
        state = extract(db.url, options, landing, "run0", {})[0]["state"]
    case.edit(db)
    url = case.url(db) if case.url is not None else db.url
    result, exc = bounded(lambda: extract(url, options, landing, "run1", state), seconds=case.bound_s)
    if exc is not None:
        return project_error(exc)
    manifest, aside, rows = result
    kind = "quarantined" if aside else "accepted"
    landed = sum(c["landed"] for c in manifest["streams"].values())
    text = " | ".join(q["reason"] for q in aside)
    extra: dict[str, Any] = {"rows": rows}
    if aside:  # quarantined once: the next run counts the unchanged rows as duplicates
        extra["again"], exc = bounded(
            lambda: extract(url, options, landing, "run2", manifest["state"]), seconds=case.bound_s
        )
        if exc is not None:
            return project_error(exc)
    return Observed(kind, text, landed, manifest["streams"], extra=extra)


def _params():
    marks = {"postgres": [pytest.mark.postgres], "mariadb": [pytest.mark.mariadb], "sqlite": []}
    for case in CASES:
        for kind in case.engines:
            bug = [pytest.mark.xfail(strict=True, reason=case.bug)] if case.bug else []
            yield pytest.param(case, kind, id=f"{case.id}-{kind}", marks=[*marks[kind], *bug])


@pytest.mark.parametrize(("case", "kind"), list(_params()))
def test_registry_database(case: RegistryCase, kind: str, request, base_registry: Path, tmp_path: Path):
    started = time.monotonic()
    if case.bug:
        KNOWN_BUGS["registry"] += 1
    db = open_db(kind, request, base_registry, tmp_path / "db")
    observed = observe(case, db, tmp_path / "landing")
    probe = [r for r in observed.extra.get("rows", []) if r["_record_key"] == f"t_jm:{PROBE}"]
    for column, text in case.landed_values.items():
        assert probe and probe[0][column] == text, f"{column} did not land exactly as the registry holds it"
    if case.id_kind is not None:
        assert normalize_id(probe[0]["sfzh"]).kind == case.id_kind
    if "again" in observed.extra:
        manifest, aside, _ = observed.extra["again"]
        assert not aside, f"quarantined again on the next run: {[q['reason'] for q in aside]}"
        assert sum(c["landed"] for c in manifest["streams"].values()) == 0
        assert not balanced(manifest["streams"]), balanced(manifest["streams"])
    if case.duplicates is not None:
        assert sum(c["duplicates"] for c in observed.counts.values()) == case.duplicates, observed.counts
    check("registry", case.id, case.expect, observed, started)
