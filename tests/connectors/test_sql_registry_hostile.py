"""The registry connector against rows the increment used to drop silently or choke on (issue #15).

A SQLite copy of the simulated street's registry, edited in each test. Each hostile row becomes a
quarantine row with its reason, once: the next run counts it as a duplicate, it never recurs.
"""

from __future__ import annotations

import pyarrow.parquet as pq
import pytest

from tests.connectors.test_sql_registry import AS_OF, SERVERS, Registry, extract, open_registry

pytestmark = pytest.mark.timeout(120)

NEXT = "2026-11-21"


@pytest.fixture
def registry(request, street_dir, tmp_path) -> Registry:
    return open_registry("sqlite", request, street_dir, tmp_path)


def quarantine(run, tmp_path) -> dict[str, str]:
    """The quarantine of ``run`` (the newest run folder: ``extract`` numbers runs in order)."""
    newest = max((tmp_path / "landing").iterdir(), key=lambda p: int(p.name.removeprefix("run")))
    base = newest / "registry" / "_quarantine"
    assert run.manifest["streams"]["t_jm"]["quarantined"] == len(
        [r for r in pq.read_table(base).to_pylist() if r["stream"] == "t_jm"] if base.exists() else []
    )
    return {r["_record_key"]: r["reason"] for r in pq.read_table(base).to_pylist()} if base.exists() else {}


def copy_resident(registry: Registry, jmid, gxsj) -> None:
    """A new t_jm row copied from the first resident, with the given key and gxsj (SQL literals)."""
    registry.execute(
        "INSERT INTO t_jm SELECT "
        + f"{jmid}, xm, xb, sfzh, csrq, lxdh, mz, hjlx, fwbh, yhzgx, rzrq, zt, zxrq, cjsj, "
        f"{gxsj} FROM t_jm ORDER BY jmid LIMIT 1"
    )


def balanced(run, stream: str = "t_jm") -> bool:
    c = run.manifest["streams"][stream]
    return c["read"] == c["landed"] + c["quarantined"] + c["duplicates"]


def test_null_key_and_null_gxsj_rows_are_quarantined_once(registry, tmp_path):
    """NULL jmid or gxsj cannot be ordered by the keyset: each is a quarantine row, then a duplicate."""
    copy_resident(registry, "NULL", "'2026-11-10 08:00:00'")
    copy_resident(registry, 990001, "NULL")
    first = extract(registry.url, tmp_path)
    reasons = quarantine(first, tmp_path)
    assert "jmid NULL" in reasons["t_jm:NULL"]
    assert "gxsj is NULL" in reasons["t_jm:990001"]
    assert first.manifest["streams"]["t_jm"]["quarantined"] == 2 and balanced(first)
    second = extract(registry.url, tmp_path, state=first.state)
    assert quarantine(second, tmp_path) == {} and second.manifest["streams"]["t_jm"]["duplicates"] >= 2


@pytest.mark.parametrize(
    ("gxsj", "fragment"),
    [
        ("1763600000", "gxsj 1763600000 is not a 'YYYY-MM-DD HH:MM:SS' time"),
        ("'2026-11-20T09:00:00'", "gxsj '2026-11-20T09:00:00' is not"),
        ("'2026-11-20 99:99:99'", "gxsj '2026-11-20 99:99:99' is not"),
        ("'2099-01-01 00:00:00'", "a broken clock"),
    ],
)
def test_a_gxsj_that_is_no_time_is_quarantined_once_without_a_traceback(registry, tmp_path, gxsj, fragment):
    """An integer, an ISO 'T', an impossible clock or a far-future gxsj: quarantined with the reason, once."""
    copy_resident(registry, 990002, gxsj)
    first = extract(registry.url, tmp_path)
    assert fragment in quarantine(first, tmp_path)["t_jm:990002"] and balanced(first)
    second = extract(registry.url, tmp_path, state=first.state)
    assert quarantine(second, tmp_path) == {} and balanced(second)
    assert second.manifest["streams"]["t_jm"]["landed"] == 0


@pytest.mark.parametrize("kind", ["sqlite", *SERVERS])
def test_a_late_row_below_the_watermark_is_quarantined_once(kind, request, street_dir, tmp_path):
    """A row committed after the watermark passed its gxsj (1970) is found by the key scan, reported once."""
    registry = open_registry(kind, request, street_dir, tmp_path)
    first = extract(registry.url, tmp_path)
    copy_resident(registry, 990003, "'1970-01-01 08:00:00'")
    second = extract(registry.url, tmp_path, state=first.state)
    reason = quarantine(second, tmp_path)["t_jm:990003"]
    assert "gxsj 1970-01-01 08:00:00" in reason and "never read by the increment" in reason
    assert balanced(second)
    third = extract(registry.url, tmp_path, state=second.state)
    assert quarantine(third, tmp_path) == {}


def test_undecodable_sqlite_text_is_quarantined_naming_table_and_column(registry, tmp_path):
    """Bytes that are not UTF-8 in a text column: that row is quarantined naming t_jm.xm, no retries."""
    jmid = registry.some_jmids(1)[0]
    registry.execute(f"UPDATE t_jm SET xm = CAST(X'E5FF41' AS TEXT) WHERE jmid = {jmid}")
    run = extract(registry.url, tmp_path, retries=0)
    reason = quarantine(run, tmp_path)[f"t_jm:{jmid}"]
    assert reason.startswith("t_jm.xm holds bytes that are not valid UTF-8") and balanced(run)
    assert f"t_jm:{jmid}" not in run.keys("t_jm")
    second = extract(registry.url, tmp_path, state=run.state, as_of=AS_OF)
    assert quarantine(second, tmp_path) == {}


def test_undecodable_text_in_a_key_at_a_page_boundary_does_not_break_paging(registry, tmp_path):
    """A t_jm_bq tag (part of the key) that is not UTF-8, read in small pages: quarantined, paging goes on."""
    registry.execute(
        "UPDATE t_jm_bq SET bq = CAST(X'E6FF' AS TEXT) WHERE rowid = (SELECT MIN(rowid) FROM t_jm_bq)"
    )
    run = extract(registry.url, tmp_path, chunk_rows=1, retries=0)
    counts = run.manifest["streams"]["t_jm_bq"]
    assert counts["quarantined"] == 1 and counts["read"] == registry.count("t_jm_bq")
    assert counts["landed"] == counts["read"] - 1


@pytest.mark.parametrize("kind", SERVERS)
def test_null_and_far_future_gxsj_on_the_servers_are_quarantined_once(kind, request, street_dir, tmp_path):
    """PostgreSQL and MariaDB type gxsj, but NULL and a broken clock's 2099 still reach the quarantine."""
    registry = open_registry(kind, request, street_dir, tmp_path)
    copy_resident(registry, 990004, "NULL")
    copy_resident(registry, 990005, "'2099-01-01 00:00:00'")
    first = extract(registry.url, tmp_path)
    reasons = quarantine(first, tmp_path)
    assert "gxsj is NULL" in reasons["t_jm:990004"] and "a broken clock" in reasons["t_jm:990005"]
    second = extract(registry.url, tmp_path, state=first.state)
    assert quarantine(second, tmp_path) == {} and balanced(second)
