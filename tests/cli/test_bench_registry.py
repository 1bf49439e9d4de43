"""``islandbridge bench registry``: measures the registry extract on a database of its own, says so when
its peer (dlt) is missing, and drops the database afterwards."""

from __future__ import annotations

import os
import uuid

import pytest
import sqlalchemy as sa

from islandbridge.devtools import registry_bench


@pytest.mark.postgres
def test_without_dlt_it_measures_islandbridge_alone_and_drops_its_database(
    tmp_path, postgres_url, monkeypatch, capsys
):
    admin_url = os.environ.get("IB_TEST_POSTGRES_URL", registry_bench.DEFAULT_ADMIN_URL)
    monkeypatch.setenv("IB_BENCH_POSTGRES_URL", admin_url)
    monkeypatch.setattr(registry_bench, "dlt_missing", lambda: "dlt is not installed (in this test)")
    fixed = uuid.uuid4()
    monkeypatch.setattr(registry_bench.uuid, "uuid4", lambda: fixed)

    rows = registry_bench.bench_registry(tmp_path, [300])

    assert [r["tool"] for r in rows] == ["islandbridge"]
    source = sa.create_engine(f"sqlite:///{registry_bench.registry_file(tmp_path, 300, 1)}")
    with source.connect() as conn:
        want = {
            t: conn.execute(sa.text(f"SELECT COUNT(*) FROM {t}")).scalar_one() for t in registry_bench.TABLES
        }
    source.dispose()
    assert rows[0]["tables"] == want and rows[0]["rows_per_s"] > 0 and rows[0]["cpu_s"] > 0
    assert "dlt is not installed (in this test); measuring islandbridge alone" in capsys.readouterr().out
    admin = sa.create_engine(admin_url)
    with admin.connect() as conn:
        left = conn.execute(
            sa.text("SELECT COUNT(*) FROM pg_database WHERE datname = :n"),
            {"n": f"ib_bench_{fixed.hex[:10]}"},
        ).scalar_one()
    admin.dispose()
    assert left == 0


def test_dlt_missing_names_the_extra_that_brings_it(monkeypatch):
    monkeypatch.setattr(registry_bench.importlib.util, "find_spec", lambda name: None)
    assert "make bench" in registry_bench.dlt_missing() and "bench" in registry_bench.dlt_missing()
