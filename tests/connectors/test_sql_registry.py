"""The resident-registry connector against SQLite, PostgreSQL and MariaDB copies of one generated street."""

from __future__ import annotations

import datetime as dt
import itertools
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pyarrow.parquet as pq
import pytest
import sqlalchemy as sa

from islandbridge.config import Secret, SourceSettings, parse_as_of
from islandbridge.connectors import ExtractContext, build_connector
from islandbridge.connectors.sql_registry import PageReader, parse_options
from islandbridge.errors import ConfigError, FatalSourceError, IslandbridgeError, RetriableError
from islandbridge.landing.zone import LandingWriter

AS_OF = parse_as_of("2026-11-20")  # the end of the street's last day
NEXT_DAY = parse_as_of("2026-11-21")
TABLES = ("t_xq", "t_fw", "t_jm", "t_jm_bq")
PASSWORD = "S3cr3t-pw-do-not-print"
_runs = itertools.count(1)
SERVERS = [
    pytest.param("postgres", marks=pytest.mark.postgres),
    pytest.param("mariadb", marks=pytest.mark.mariadb),
]


@dataclass
class Registry:
    """One copy of the street's registry, and a writable engine of the test's own to edit it."""

    kind: str
    url: str
    engine: sa.Engine

    def ts(self, text: str) -> Any:
        return text if self.kind == "sqlite" else dt.datetime.fromisoformat(text)

    def execute(self, sql: str, **params: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(sql), params)

    def count(self, table: str) -> int:
        with self.engine.connect() as conn:
            return conn.execute(sa.select(sa.func.count()).select_from(sa.table(table))).scalar_one()

    def some_jmids(self, n: int) -> list[int]:
        with self.engine.connect() as conn:
            return list(
                conn.execute(sa.text("SELECT jmid FROM t_jm ORDER BY jmid LIMIT :n"), {"n": n}).scalars()
            )


def open_registry(kind: str, request, street_dir: Path, tmp_path: Path) -> Registry:
    source = street_dir / "registry" / "rrs.sqlite"
    if kind == "sqlite":
        copy = tmp_path / "rrs.sqlite"
        shutil.copy(source, copy)
        url = f"sqlite:///{copy}"
    else:
        from islandbridge.devtools.simulator import load_registry

        url = request.getfixturevalue(f"{kind}_url")
        load_registry(source, url)
    engine = sa.create_engine(url)
    request.addfinalizer(engine.dispose)
    return Registry(kind, url, engine)


@pytest.fixture(params=["sqlite", *SERVERS])
def registry(request, street_dir: Path, tmp_path: Path) -> Registry:
    return open_registry(request.param, request, street_dir, tmp_path)


@dataclass
class Run:
    manifest: dict[str, Any]
    rows: dict[str, list[dict[str, Any]]]
    deleted: list[str]
    pages: list[int]

    @property
    def state(self) -> dict[str, Any]:
        return self.manifest["state"]

    def counts(self, what: str) -> dict[str, int]:
        return {s: c[what] for s, c in self.manifest["streams"].items()}

    def keys(self, stream: str) -> list[str]:
        return [r["_record_key"] for r in self.rows[stream]]


class PageCountingWriter(LandingWriter):
    """The real landing writer, remembering how many rows each ``read`` call announced."""

    pages: list[int]

    def read(self, stream: str, n: int = 1) -> None:
        self.pages.append(n)
        super().read(stream, n)


def extract(url: Any, tmp_path: Path, state: dict | None = None, as_of=AS_OF, **options: Any) -> Run:
    connector = build_connector(SourceSettings("registry", "sql_registry", {"url": url, **options}))
    run_id = f"run{next(_runs)}"
    writer = PageCountingWriter.open((tmp_path / "landing").as_uri(), run_id, "registry", connector.streams())
    writer.pages = []
    manifest = writer.close(connector.extract(ExtractContext(run_id, as_of, state or {}, writer)))
    base = tmp_path / "landing" / run_id / "registry"
    rows = {t: pq.read_table(base / t).to_pylist() if (base / t).exists() else [] for t in TABLES}
    deleted = [r["_record_key"] for r in pq.read_table(base / "_deleted").to_pylist()]
    return Run(manifest, rows, deleted, writer.pages)


# --------------------------------------------------------------------------- full and cross-engine


def test_full_extraction_lands_every_row(registry: Registry, tmp_path: Path):
    run = extract(registry.url, tmp_path)
    assert run.counts("landed") == {t: registry.count(t) for t in TABLES}
    assert run.counts("duplicates") == dict.fromkeys(TABLES, 0)
    assert all(len(set(run.keys(t))) == len(run.keys(t)) for t in TABLES)


@pytest.mark.parametrize("kind", SERVERS)
def test_servers_land_the_same_text_as_sqlite(kind: str, request, street_dir: Path, tmp_path: Path):
    """Datetimes, dates, integers and padded text land identically from all three engines."""
    server = open_registry(kind, request, street_dir, tmp_path / kind)
    reference = open_registry("sqlite", request, street_dir, tmp_path)
    got = extract(server.url, tmp_path / kind, chunk_rows=97)
    want = extract(reference.url, tmp_path, chunk_rows=97)
    for table in TABLES:
        ordered = sorted(got.rows[table], key=lambda r: r["_record_key"])
        assert ordered == sorted(want.rows[table], key=lambda r: r["_record_key"]), table
    assert got.state == want.state


# --------------------------------------------------------------------------- incremental


def test_rerun_lands_nothing_and_counts_the_overlap_as_duplicates(registry: Registry, tmp_path: Path):
    first = extract(registry.url, tmp_path)
    second = extract(registry.url, tmp_path, first.state)
    assert second.counts("landed") == dict.fromkeys(TABLES, 0)
    assert second.counts("read") == second.counts("duplicates")
    assert second.counts("duplicates")["t_jm"] >= 1, "the watermark row is re-read inside the overlap"
    assert second.deleted == []


def test_edited_rows_land_exactly_once_in_the_next_run(registry: Registry, tmp_path: Path):
    first = extract(registry.url, tmp_path)
    edited = registry.some_jmids(2)
    registry.execute(
        "UPDATE t_jm SET lxdh = :p, gxsj = :g WHERE jmid IN (:a, :b)",
        p="无",
        g=registry.ts("2026-11-21 09:00:00"),
        a=edited[0],
        b=edited[1],
    )
    second = extract(registry.url, tmp_path, first.state, as_of=NEXT_DAY)
    assert second.keys("t_jm") == [f"t_jm:{j}" for j in edited]
    assert [r["lxdh"] for r in second.rows["t_jm"]] == ["无", "无"]
    third = extract(registry.url, tmp_path, second.state, as_of=NEXT_DAY)
    assert third.counts("landed")["t_jm"] == 0


def test_late_commit_inside_the_overlap_is_landed(registry: Registry, tmp_path: Path):
    """A row committed after the run with a gxsj just below the watermark is still seen next time."""
    first = extract(registry.url, tmp_path)
    watermark = dt.datetime.fromisoformat(first.state["streams"]["t_jm"]["watermark"])
    late = (watermark - dt.timedelta(seconds=60)).isoformat(sep=" ")
    jmid = registry.some_jmids(1)[0]
    registry.execute("UPDATE t_jm SET gxsj = :g WHERE jmid = :j", g=registry.ts(late), j=jmid)
    second = extract(registry.url, tmp_path, first.state)
    assert second.keys("t_jm") == [f"t_jm:{jmid}"]


def test_rows_after_as_of_wait_for_their_run(registry: Registry, tmp_path: Path):
    """The window ends at as-of, so re-running a window lands the same rows however the source moved on."""
    first = extract(registry.url, tmp_path)
    jmid = registry.some_jmids(1)[0]
    registry.execute(
        "UPDATE t_jm SET gxsj = :g WHERE jmid = :j", g=registry.ts("2026-11-21 08:00:00"), j=jmid
    )
    again = extract(registry.url, tmp_path, first.state)
    assert again.counts("landed")["t_jm"] == 0
    assert extract(registry.url, tmp_path, first.state, as_of=NEXT_DAY).keys("t_jm") == [f"t_jm:{jmid}"]


def test_rows_sharing_a_timestamp_across_chunks_are_neither_missed_nor_doubled(registry: Registry, tmp_path):
    """Seven rows with one gxsj, read three per query: each lands once, in the first and next run."""
    tied = registry.some_jmids(14)
    for jmid in tied[:7]:
        registry.execute(
            "UPDATE t_jm SET gxsj = :g WHERE jmid = :j", g=registry.ts("2026-11-20 10:00:00"), j=jmid
        )
    first = extract(registry.url, tmp_path, chunk_rows=3)
    assert sorted(first.keys("t_jm")) == sorted(f"t_jm:{j}" for j in _all_jmids(registry))
    for jmid in tied[7:]:
        registry.execute(
            "UPDATE t_jm SET gxsj = :g WHERE jmid = :j", g=registry.ts("2026-11-21 10:00:00"), j=jmid
        )
    second = extract(registry.url, tmp_path, first.state, as_of=NEXT_DAY, chunk_rows=3)
    assert second.keys("t_jm") == [f"t_jm:{j}" for j in tied[7:]]


def _all_jmids(registry: Registry) -> list[int]:
    with registry.engine.connect() as conn:
        return list(conn.execute(sa.text("SELECT jmid FROM t_jm")).scalars())


# --------------------------------------------------------------------------- deletions


def test_hard_deleted_rows_are_reported(registry: Registry, tmp_path: Path):
    first = extract(registry.url, tmp_path)
    with registry.engine.connect() as conn:
        tag = conn.execute(sa.text("SELECT jmid, bq FROM t_jm_bq ORDER BY jmid LIMIT 1")).one()
        house = conn.execute(sa.text("SELECT fwbh FROM t_fw ORDER BY fwbh LIMIT 1")).scalar_one()
        estate = conn.execute(sa.text("SELECT xqbm FROM t_xq ORDER BY xqbm LIMIT 1")).scalar_one()
    gone = [j for j in registry.some_jmids(3) if j != tag.jmid][:2]
    registry.execute("DELETE FROM t_jm WHERE jmid IN (:a, :b)", a=gone[0], b=gone[1])
    registry.execute("DELETE FROM t_jm_bq WHERE jmid = :j AND bq = :b", j=tag.jmid, b=tag.bq)
    registry.execute("DELETE FROM t_fw WHERE fwbh = :f", f=house)
    registry.execute("DELETE FROM t_xq WHERE xqbm = :x", x=estate)
    second = extract(registry.url, tmp_path, first.state)
    assert sorted(second.deleted) == sorted(
        [
            f"t_jm:{gone[0]}",
            f"t_jm:{gone[1]}",
            f"t_jm_bq:{tag.jmid}:{tag.bq}",
            f"t_fw:{house}",
            f"t_xq:{estate}",
        ]
    )
    assert extract(registry.url, tmp_path, second.state).deleted == []


def test_deletion_scan_can_be_switched_off(registry: Registry, tmp_path: Path):
    first = extract(registry.url, tmp_path, deletion_scan=False)
    registry.execute("DELETE FROM t_jm WHERE jmid = :j", j=registry.some_jmids(1)[0])
    second = extract(registry.url, tmp_path, first.state, deletion_scan=False)
    assert second.deleted == []
    assert "keys" not in second.state["streams"]["t_jm"]


# --------------------------------------------------------------------------- bounded, read-only


def test_every_query_is_a_bounded_page(registry: Registry, tmp_path: Path):
    """Each SELECT on a registry table carries LIMIT chunk_rows, and no page exceeds it."""
    statements: list[tuple[str, Any]] = []

    def remember(conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT") and any(f"FROM {t}" in statement for t in TABLES):
            statements.append((statement, parameters))

    sa.event.listen(sa.Engine, "before_cursor_execute", remember)
    try:
        run = extract(registry.url, tmp_path, chunk_rows=25)
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", remember)
    assert statements
    for statement, parameters in statements:
        values = parameters.values() if isinstance(parameters, dict) else parameters
        assert "LIMIT" in statement.upper() and 25 in list(values), statement
    assert max(run.pages) <= 25
    assert len(statements) >= sum(run.counts("read").values()) / 25


def test_no_query_starts_after_the_extract_deadline(registry: Registry):
    reader = PageReader.open(parse_options("registry", {"url": registry.url, "deadline_s": 60}))
    try:
        assert reader.run(lambda conn: conn.execute(sa.text("SELECT count(*) FROM t_xq")).scalar()) > 0
        reader.deadline -= 61  # as if the extract had run 61 s
        with pytest.raises(RetriableError, match=r"deadline_s \(60 s\)"):
            reader.run(lambda conn: conn.execute(sa.text("SELECT count(*) FROM t_xq")).scalar())
    finally:
        reader.close()


def test_time_limit_options_are_checked():
    with pytest.raises(ConfigError, match="query_timeout_s.*deadline_s|deadline_s.*query_timeout_s"):
        parse_options("registry", {"url": "sqlite:///x.db", "query_timeout_s": 0, "deadline_s": -1})


def test_the_session_is_read_only(registry: Registry):
    reader = PageReader.open(parse_options("registry", {"url": registry.url, "retries": 0}))
    try:
        with pytest.raises(IslandbridgeError):
            reader._attempt(lambda conn: conn.execute(sa.text("DELETE FROM t_xq")))
    finally:
        reader.close()
    assert registry.count("t_xq") > 0


# --------------------------------------------------------------------------- errors and secrets


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://reader:{PASSWORD}@127.0.0.1:1/rrs",
        f"mysql+pymysql://reader:{PASSWORD}@127.0.0.1:1/rrs",
    ],
)
def test_unreachable_server_is_retriable_and_hides_the_password(url: str, tmp_path: Path, caplog):
    with caplog.at_level(logging.DEBUG), pytest.raises(RetriableError) as caught:
        extract(Secret(url, "env:REGISTRY_URL"), tmp_path, retries=0, connect_timeout_s=2)
    assert "127.0.0.1:1/rrs" in str(caught.value)
    assert PASSWORD not in str(caught.value) and PASSWORD not in caplog.text


@pytest.mark.parametrize("kind", SERVERS)
def test_bad_credentials_are_fatal_and_hide_the_password(kind: str, request, tmp_path: Path):
    url = sa.make_url(request.getfixturevalue(f"{kind}_url"))
    bad = url.set(username="no_such_reader_ib", password=PASSWORD).render_as_string(hide_password=False)
    with pytest.raises(FatalSourceError) as caught:
        extract(Secret(bad, "env:REGISTRY_URL"), tmp_path, retries=0)
    assert url.host in str(caught.value) and url.database in str(caught.value)
    assert PASSWORD not in str(caught.value) and PASSWORD not in repr(caught.value.__cause__)


def test_missing_sqlite_file_is_fatal(tmp_path: Path):
    with pytest.raises(FatalSourceError, match="does not exist"):
        extract(f"sqlite:///{tmp_path / 'absent.sqlite'}", tmp_path)
    assert not (tmp_path / "absent.sqlite").exists()


def test_bad_options_fail_when_built_without_printing_the_url():
    with pytest.raises(ConfigError) as caught:
        build_connector(
            SourceSettings(
                "registry",
                "sql_registry",
                {"url": f"not a url {PASSWORD}", "chunk_rows": 0, "deletion_scan": "yes"},
            )
        )
    message = str(caught.value)
    assert "chunk_rows" in message and "deletion_scan" in message and "url" in message
    assert PASSWORD not in message


def test_describe_hides_the_password():
    connector = build_connector(
        SourceSettings(
            "registry", "sql_registry", {"url": Secret(f"postgresql+psycopg://r:{PASSWORD}@db/rrs", "x")}
        )
    )
    assert PASSWORD not in connector.describe() and "db/rrs" in connector.describe()


def test_no_personal_data_in_logs(registry: Registry, tmp_path: Path, caplog):
    with caplog.at_level(logging.DEBUG):
        run = extract(registry.url, tmp_path)
    for row in run.rows["t_jm"][:50]:
        for value in (row["xm"], row["sfzh"], row["lxdh"]):
            if value and len(value.strip()) > 1:
                assert value not in caplog.text
