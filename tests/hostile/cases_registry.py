"""A hostile resident registry, as data: each case edits a small registry database and names an outcome.

The base registry (``test_registry.base_registry``) holds one estate, one house, two residents and one
tag: ``BASE`` rows in all. A case adds, changes or removes rows through ``Db`` (a writable connection of
the test's own, never the connector's), or points the connector at another URL or options, and says
what the real connector and landing writer must make of it. ``engines`` lists where the case runs:
SQLite always; PostgreSQL and MariaDB where the case is about the server (typed columns, credentials,
a server-side view). ``first``: the registry is synced once before the edit (late rows, re-runs).

A case marked ``bug`` documents a defect of ``connectors/sql_registry.py`` / ``registry_rows.py`` that
the case exposes: it runs as a strict xfail, so the fix turns it into a failure to remove the mark.
"""

from __future__ import annotations

import datetime as dt
import os
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from islandbridge.config import Secret
from islandbridge.errors import ConfigError, FatalSourceError, RetriableError
from tests.hostile.corpus import Expect, accepted, error, quarantined
from tests.hostile.payloads import INJECTIONS, UNICODE_TRICKS

BASE = 5  # rows of the base registry: t_xq 1, t_fw 1, t_jm 2, t_jm_bq 1
PROBE = 990001  # the jmid of the resident a case adds
ALL = ("sqlite", "postgres", "mariadb")
SERVERS = ("postgres", "mariadb")
PASSWORD = "Hostile-pw-never-printed"

RESIDENT: dict[str, Any] = {
    "xm": "测试",
    "xb": "1",
    "sfzh": "11010519491231002X",
    "csrq": "1949-12-31",
    "lxdh": "13800138000",
    "mz": "汉",
    "hjlx": "户籍",
    "fwbh": "FW0000001",
    "yhzgx": "户主",
    "rzrq": "2010-01-01",
    "zt": 1,
    "zxrq": None,
    "cjsj": "2010-01-01 08:00:00",
    "gxsj": "2026-11-10 08:00:00",
}
_DATES = ("rzrq", "zxrq")
_TIMES = ("cjsj", "gxsj")


@dataclass
class Db:
    """A writable connection to one copy of the registry, on one engine."""

    kind: str
    url: str
    engine: sa.Engine
    folder: Path

    def execute(self, sql: str, **params: Any) -> None:
        with self.engine.begin() as conn:
            conn.execute(sa.text(sql), params)

    def add(self, jmid: Any = PROBE, **values: Any) -> None:
        """Insert a resident: ``RESIDENT`` with ``values`` changed; times and dates typed for the server."""
        row = {"jmid": jmid, **RESIDENT, **values}
        if self.kind != "sqlite":
            for column in (*_DATES, *_TIMES):
                if isinstance(row[column], str):
                    parse = dt.datetime.fromisoformat if column in _TIMES else dt.date.fromisoformat
                    row[column] = parse(row[column])
        names = ", ".join(row)
        self.execute(f"INSERT INTO t_jm ({names}) VALUES ({', '.join(':' + c for c in row)})", **row)

    def add_sql(self, **literals: str) -> None:
        """Insert a resident with some columns given as SQL expressions (SQLite bytes, typed values)."""
        self.add()
        sets = ", ".join(f"{c} = {v}" for c, v in literals.items())
        self.execute(f"UPDATE t_jm SET {sets} WHERE jmid = {PROBE}")


Edit = Callable[[Db], None]


@dataclass(frozen=True)
class RegistryCase:
    id: str
    edit: Edit
    expect: Expect
    engines: tuple[str, ...] = ("sqlite",)
    options: Mapping[str, Any] = field(default_factory=dict)
    url: Callable[[Db], Any] | None = None  # the URL the connector is given instead of the copy's
    first: bool = False  # sync once before the edit
    landed_values: Mapping[str, Any] = field(default_factory=dict)  # column -> text landed for PROBE
    id_kind: str | None = None  # normalize_id of PROBE's landed sfzh
    duplicates: int | None = None  # rows counted as duplicates, all streams
    bound_s: float = 30.0
    bug: str | None = None  # a defect the case exposes: run as a strict xfail


def nothing(_: Db) -> None:
    return None


def resident(**values: Any) -> Edit:
    return lambda db: db.add(**values)


def resident_sql(**literals: str) -> Edit:
    return lambda db: db.add_sql(**literals)


def both(*edits: Edit) -> Edit:
    def run(db: Db) -> None:
        for edit in edits:
            edit(db)

    return run


def without_primary_key(db: Db) -> None:
    """t_jm recreated as the vendor's older schema had it: the same columns, no primary key (SQLite)."""
    ddl = db.engine.connect().exec_driver_sql("SELECT sql FROM sqlite_master WHERE name = 't_jm'").scalar()
    db.execute("ALTER TABLE t_jm RENAME TO t_jm_old")
    db.execute(ddl.replace("jmid BIGINT PRIMARY KEY", "jmid BIGINT"))
    db.execute("INSERT INTO t_jm SELECT * FROM t_jm_old")
    db.execute("DROP TABLE t_jm_old")


# ------------------------------------------------------------------------------------------ gxsj


def _gxsj() -> list[RegistryCase]:
    bad = "is not a 'YYYY-MM-DD HH:MM:SS' time"
    sqlite_only: list[tuple[str, Any, Expect]] = [
        ("integer", 1763600000, quarantined(f"gxsj 1763600000 {bad}", landed=BASE)),
        ("real", 1763600000.5, quarantined(bad, landed=BASE)),
        ("iso_t", "2026-11-21T09:00:00", quarantined(f"gxsj '2026-11-21T09:00:00' {bad}", landed=BASE)),
        ("iso_t_past", "2026-11-10T09:00:00", quarantined(bad, landed=BASE)),
        ("hour_99", "2026-11-20 99:99:99", quarantined(f"gxsj '2026-11-20 99:99:99' {bad}", landed=BASE)),
        ("feb_30", "2026-02-30 08:00:00", quarantined(bad, landed=BASE)),
        ("zeros", "0000-00-00 00:00:00", quarantined(bad, landed=BASE)),
        ("empty", "", quarantined(bad, landed=BASE)),
        ("blank", "   ", quarantined(bad, landed=BASE)),
        ("slashes", "2026/11/10 08:00:00", quarantined(bad, landed=BASE)),
        ("leading_space", " 2026-11-10 08:00:00", quarantined(bad, landed=BASE)),
        ("with_zone", "2026-11-10 08:00:00+08:00", quarantined(bad, landed=BASE)),
        ("fullwidth", "２０２６-１１-１０ ０８:００:００", quarantined(bad, landed=BASE)),
        ("date_only", "2026-11-10", quarantined(bad, landed=BASE)),
        ("words", "yesterday", quarantined(bad, landed=BASE)),
        ("fraction", "2026-11-10 08:00:00.123456", accepted(landed=BASE + 1)),
    ]
    cases = [
        RegistryCase(f"gxsj_{kind}", resident(gxsj=value), expect) for kind, value, expect in sqlite_only
    ]
    cases += [
        RegistryCase("gxsj_blob", resident_sql(gxsj="X'32303236'"), quarantined(bad, landed=BASE)),
        RegistryCase(
            "gxsj_nul_inside",
            resident_sql(gxsj="'2026-11-10 08:00:00' || char(0)"),
            quarantined(bad, landed=BASE),
        ),
    ]
    cases += [
        RegistryCase("gxsj_null", resident(gxsj=None), quarantined("gxsj is NULL", landed=BASE), ALL),
        RegistryCase(
            "gxsj_9999", resident(gxsj="9999-12-31 23:59:59"), quarantined("a broken clock", landed=BASE), ALL
        ),
        RegistryCase(
            "gxsj_2099", resident(gxsj="2099-01-01 00:00:00"), quarantined("a broken clock", landed=BASE), ALL
        ),
        RegistryCase("gxsj_1970_first_sync", resident(gxsj="1970-01-01 08:00:01"), accepted(BASE + 1), ALL),
        RegistryCase(
            "gxsj_1970_late_row",
            resident(gxsj="1970-01-01 08:00:01"),
            quarantined("gxsj 1970-01-01 08:00:01 .*never read by the increment", landed=0),
            ALL,
            first=True,
        ),
        *(  # shaped like a time, impossible, and below the watermark: neither set aside nor read
            RegistryCase(
                f"gxsj_impossible_late_row_{name}",
                resident(gxsj=stamp),
                quarantined(f"gxsj '{stamp}' is not a .*never read by the increment", landed=0),
                first=True,
            )
            for name, stamp in (("feb_29", "2026-02-29 09:00:00"), ("year_0", "0000-11-21 09:00:00"))
        ),
        RegistryCase(
            "gxsj_after_as_of_waits",  # read by the run whose as-of passes it, not lost, not early
            resident(gxsj="2026-11-21 09:00:00"),
            accepted(landed=BASE),
            ALL,
        ),
        RegistryCase(
            "gxsj_zero_date_mariadb",  # MariaDB's default sql_mode stores it; the driver hands over text
            lambda db: db.add_sql(gxsj="'0000-00-00 00:00:00'"),
            quarantined("gxsj '0000-00-00 00:00:00' is not a 'YYYY-MM-DD HH:MM:SS' time", landed=BASE),
            ("mariadb",),
        ),
        RegistryCase("jmid_null", resident(jmid=None), quarantined("key column jmid NULL", landed=BASE)),
        RegistryCase(
            "jmid_and_gxsj_null",
            resident(jmid=None, gxsj=None),
            quarantined("gxsj is NULL", landed=BASE),  # the first problem found is named
        ),
        RegistryCase(
            "tag_gxsj_null",
            lambda db: db.execute("INSERT INTO t_jm_bq VALUES (100001, '残疾人', NULL)"),
            quarantined("gxsj is NULL", landed=BASE),
            ALL,
        ),
        RegistryCase(
            "house_gxsj_text_in_sqlite",
            lambda db: db.execute(
                "INSERT INTO t_fw VALUES ('FW0000002', 'XQ001', '3', '2', '501', 'G1', '2026年11月10日')"
            ),
            quarantined(bad, landed=BASE),
        ),
    ]
    return cases


# ------------------------------------------------------------------------------------------ text


def _text() -> list[RegistryCase]:
    cases = [
        RegistryCase(f"xm_{kind}", resident(xm=text), accepted(BASE + 1), landed_values={"xm": text})
        for kind, text in (*UNICODE_TRICKS, *INJECTIONS)
        if len(text) <= 32
    ]
    server_text = (
        ("bidi_override", "测试\u202eabc\u202c"),
        ("astral_cjk", "𠀀𪚥"),
        ("emoji_zwj_family", "👨\u200d👩\u200d👧"),
        ("sql_quote", "'; DROP TABLE t_jm; --"),
    )
    cases += [
        RegistryCase(
            f"xm_server_{kind}", resident(xm=text), accepted(BASE + 1), SERVERS, landed_values={"xm": text}
        )
        for kind, text in server_text
    ]
    cases += [
        RegistryCase(
            "xm_nul_byte",
            resident(xm="测\x00试"),
            accepted(BASE + 1),
            ("sqlite", "mariadb"),
            landed_values={"xm": "测\x00试"},
        ),
        RegistryCase("xm_huge_1mb", resident(xm="测" * 1_000_000), accepted(BASE + 1)),
        RegistryCase("lxdh_huge_8mb", resident(lxdh="1" * 8_000_000), accepted(BASE + 1)),
        RegistryCase(
            "xm_undecodable",
            resident_sql(xm="CAST(X'E5FF41' AS TEXT)"),
            quarantined("t_jm.xm holds bytes that are not valid UTF-8", landed=BASE),
        ),
        RegistryCase(
            "xm_lone_surrogate",  # U+D800 written as UTF-8 bytes: what a broken client stores
            resident_sql(xm="CAST(X'EDA080' AS TEXT)"),
            quarantined("t_jm.xm holds bytes that are not valid UTF-8", landed=BASE),
        ),
        RegistryCase(
            "sfzh_undecodable",
            resident_sql(sfzh="CAST(X'3131C0AF' AS TEXT)"),
            quarantined("t_jm.sfzh holds bytes", landed=BASE),
        ),
        RegistryCase(
            "lxdh_overlong_utf8_slash",
            resident_sql(lxdh="CAST(X'313338C0AF31' AS TEXT)"),
            quarantined("t_jm.lxdh holds bytes", landed=BASE),
        ),
        RegistryCase(
            "xm_blob_valid_utf8",  # a BLOB cell in a text column: its bytes land as their text
            resident_sql(xm="X'E6B58BE8AF95'"),
            accepted(BASE + 1),
            landed_values={"xm": "测试"},
        ),
        RegistryCase(
            "estate_name_undecodable",  # t_xq is read whole: the snapshot path quarantines it too
            lambda db: db.execute("UPDATE t_xq SET xqmc = CAST(X'E9FF' AS TEXT)"),
            quarantined("t_xq.xqmc holds bytes", landed=BASE - 1),
        ),
        RegistryCase(
            "tag_undecodable_at_page_boundary",
            lambda db: db.execute(
                "INSERT INTO t_jm_bq VALUES (100002, CAST(X'E6FF' AS TEXT), '2026-11-10 08:00:00')"
            ),
            quarantined("t_jm_bq.bq holds bytes", landed=BASE),
            options={"chunk_rows": 1},
        ),
        RegistryCase(
            "xm_integer_typed", resident(xm=12345), accepted(BASE + 1), landed_values={"xm": "12345"}
        ),
        RegistryCase(
            "xm_null_everything", resident(xm=None, sfzh=None, lxdh=None, csrq=None), accepted(BASE + 1)
        ),
    ]
    return cases


# ------------------------------------------------------------------------------------------ ids, phones


def _ids() -> list[RegistryCase]:
    ids: list[tuple[str, Any, str]] = [
        ("lowercase_x", "11010519491231002x", "full"),
        ("fifteen_digits", "110105491231002", "legacy15_upgraded"),
        ("excel_scientific", "1.10105E+17", "excel_damaged"),
        ("excel_decimal", "110105194912310000.0", "excel_damaged"),
        ("spaces_inside", "110105 19491231 002X", "full"),
        ("fullwidth_digits", "１１０１０５１９４９１２３１００２Ｘ", "full"),
        ("passport", "E12345678", "passport"),
        ("check_digit_typo", "110105194912310021", "invalid_checksum"),
        ("zero_width_inside", "1101051949\u200b1231002X", "full"),
    ]
    cases = [
        RegistryCase(
            f"sfzh_{kind}", resident(sfzh=text), accepted(BASE + 1), landed_values={"sfzh": text}, id_kind=k
        )
        for kind, text, k in ids
    ]
    cases += [
        RegistryCase(
            "sfzh_bidi_override",
            resident(sfzh="\u202e X2001321949150101"),
            accepted(BASE + 1),
            landed_values={"sfzh": "\u202e X2001321949150101"},
        ),
        RegistryCase(
            "sfzh_integer_written",  # an integer written to the VARCHAR column (text affinity): its digits
            resident(sfzh=110105194912310021),
            accepted(BASE + 1),
            landed_values={"sfzh": "110105194912310021"},
        ),
        RegistryCase(
            "sfzh_real_written",  # a float written to the ID column: SQLite keeps 15 digits as text
            resident(sfzh=1.1010519491231002e17),
            accepted(BASE + 1),
            landed_values={"sfzh": "1.1010519491231e+17"},
            id_kind="excel_damaged",
        ),
        RegistryCase(
            "sfzh_server_lowercase_x",
            resident(sfzh="11010519491231002x"),
            accepted(BASE + 1),
            SERVERS,
            landed_values={"sfzh": "11010519491231002x"},
            id_kind="full",
        ),
    ]
    phones = (
        ("fullwidth", "１３８００１３８０００"),
        ("two_joined", "13800138000/13900139000"),
        ("wu", "无"),
        ("plus86", "+86 13800138000"),
        ("bidi", "\u202e00083100831"),
        ("homoglyph_o", "138OO138OOO"),
        ("formula", '=HYPERLINK("x")'),
    )
    cases += [
        RegistryCase(f"lxdh_{kind}", resident(lxdh=text), accepted(BASE + 1), landed_values={"lxdh": text})
        for kind, text in phones
    ]
    cases.append(
        RegistryCase(
            "lxdh_integer_typed",
            resident(lxdh=13800138000),
            accepted(BASE + 1),
            landed_values={"lxdh": "13800138000"},
        )
    )
    return cases


# ------------------------------------------------------------------------------------------ duplicates


def _duplicates() -> list[RegistryCase]:
    same = both(without_primary_key, resident(), resident())
    other = both(without_primary_key, resident(), resident(xm="另一人"))
    later = both(without_primary_key, resident(), resident(xm="另一人", gxsj="2026-11-11 08:00:00"))

    def tag_copy(db: Db) -> None:
        stamp = "'2026-11-02 08:00:00'" if db.kind == "sqlite" else "TIMESTAMP '2026-11-02 08:00:00'"
        db.execute(f"INSERT INTO t_jm_bq VALUES (100001, '独居老人', {stamp})")

    return [
        RegistryCase("dup_jmid_same_content", same, accepted(BASE + 1), duplicates=1),
        RegistryCase(
            "dup_jmid_same_content_page_boundary",
            same,
            accepted(BASE + 1),
            options={"chunk_rows": 1},
            duplicates=1,
        ),
        *(  # a page that ends inside the tie group, after other rows (``PageReader._end_between_ties``)
            RegistryCase(
                f"dup_jmid_same_content_page_of_{n}",
                same,
                accepted(BASE + 1),
                options={"chunk_rows": n},
                duplicates=1,
            )
            for n in (2, 3)
        ),
        RegistryCase("dup_jmid_different_content", other, quarantined("jmid", landed=BASE + 1)),
        RegistryCase("dup_jmid_different_gxsj", later, quarantined("jmid", landed=BASE + 1)),
        RegistryCase("dup_tag_same_row", tag_copy, accepted(BASE), ALL, duplicates=1),
        RegistryCase(
            "dup_tag_same_row_page_boundary",
            tag_copy,
            accepted(BASE),
            ALL,
            options={"chunk_rows": 1},
            duplicates=1,
        ),
    ]


# ------------------------------------------------------------------------------------------ schema


def _schema() -> list[RegistryCase]:
    many = "; ".join(f"ALTER TABLE t_jm ADD COLUMN extra_{i} TEXT" for i in range(200))

    def add_many(db: Db) -> None:
        for statement in many.split("; "):
            db.execute(statement)

    return [
        RegistryCase(
            "column_missing",
            lambda db: db.execute("ALTER TABLE t_jm DROP COLUMN lxdh"),
            error(FatalSourceError, "table t_jm lacks column lxdh"),
            ALL,
        ),
        RegistryCase(
            "column_renamed",
            lambda db: db.execute("ALTER TABLE t_jm RENAME COLUMN sfzh TO zjhm"),
            error(FatalSourceError, "table t_jm lacks column sfzh"),
            ALL,
        ),
        RegistryCase(
            "cursor_column_missing",
            lambda db: db.execute("ALTER TABLE t_jm_bq DROP COLUMN gxsj"),
            error(FatalSourceError, "table t_jm_bq lacks column gxsj"),
            ALL,
        ),
        RegistryCase("two_hundred_extra_columns", add_many, accepted(BASE)),
        RegistryCase(
            "column_renamed_to_upper_case",  # case-blind on SQLite and MariaDB: still the column xm
            lambda db: db.execute("ALTER TABLE t_jm RENAME COLUMN xm TO XM"),
            accepted(BASE),
            ("sqlite", "mariadb"),
        ),
        RegistryCase(
            "column_renamed_to_quoted_upper_case",  # PostgreSQL: "XM" is another column than xm
            lambda db: db.execute('ALTER TABLE t_jm RENAME COLUMN xm TO "XM"'),
            error(FatalSourceError, "xm"),
            ("postgres",),
        ),
        RegistryCase(
            "table_missing",
            lambda db: db.execute("DROP TABLE t_jm_bq"),
            error(FatalSourceError, "t_jm_bq"),
            ALL,
        ),
        RegistryCase("table_empty", lambda db: db.execute("DELETE FROM t_jm"), accepted(BASE - 2), ALL),
        RegistryCase(
            "all_tables_empty",
            lambda db: [db.execute(f"DELETE FROM {t}") for t in ("t_xq", "t_fw", "t_jm", "t_jm_bq")] and None,
            accepted(0),
            ALL,
        ),
        RegistryCase(
            "table_is_a_view",
            lambda db: (
                [
                    db.execute("ALTER TABLE t_jm RENAME TO t_jm_data"),
                    db.execute("CREATE VIEW t_jm AS SELECT * FROM t_jm_data"),
                ]
                and None
            ),
            accepted(BASE),
            ALL,
        ),
        RegistryCase(
            "view_calls_pg_sleep",  # a DBA's view that is slow (or a lock wait): each query must be bounded
            lambda db: (
                [
                    db.execute("ALTER TABLE t_xq RENAME TO t_xq_data"),
                    db.execute(
                        "CREATE VIEW t_xq AS SELECT * FROM t_xq_data WHERE pg_sleep(3600) IS NOT NULL"
                    ),
                ]
                and None
            ),
            error(RetriableError, "query_timeout_s \\(2 s\\)"),
            ("postgres",),
            bound_s=20,
            options={"query_timeout_s": 2},
        ),
        *(
            RegistryCase(
                f"view_slow_{kind}",  # the same on MariaDB (max_statement_time) and SQLite (an interrupt)
                _slow_view(body),
                error(RetriableError, "query_timeout_s \\(2 s\\)"),
                (kind,),
                bound_s=20,
                options={"query_timeout_s": 2},
            )
            for kind, body in (
                ("mariadb", "SELECT * FROM t_xq_data WHERE SLEEP(3600) = 0"),
                (
                    "sqlite",
                    "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 10000000000) "
                    "SELECT t_xq_data.* FROM t_xq_data, (SELECT count(*) AS n FROM c) WHERE n > 0",
                ),
            )
        ),
    ]


def _slow_view(body: str) -> Edit:
    def edit(db: Db) -> None:
        db.execute("ALTER TABLE t_xq RENAME TO t_xq_data")
        db.execute(f"CREATE VIEW t_xq AS {body}")

    return edit


# ------------------------------------------------------------------------------------------ configuration


def _url(make: Callable[[Db], str]) -> Callable[[Db], Any]:
    return make


def _fifo(db: Db) -> str:
    path = db.folder / "fifo.sqlite"
    os.mkfifo(path)
    return f"sqlite:///{path}"


def _symlink_to_passwd(db: Db) -> str:
    link = db.folder / "link.sqlite"
    link.symlink_to("/etc/passwd")
    return f"sqlite:///{link}"


def _server_url(db: Db, **changes: Any) -> Secret:
    url = sa.make_url(db.url).set(**changes)
    return Secret(url.render_as_string(hide_password=False), "env:REGISTRY_URL")


def _config() -> list[RegistryCase]:
    injections = {
        "table_injection": {"table": "t_jm; DROP TABLE t_jm"},
        "view_injection": {"view": "t_jm' OR '1'='1"},
        "where_injection": {"where": "1=1; DELETE FROM t_jm --"},
        "tables_mapping": {"tables": {"t_jm": "t_jm UNION SELECT * FROM t_xq"}},
        "order_injection": {"order_by": "gxsj; DROP TABLE t_xq"},
        "chunk_rows_sql": {"chunk_rows": "5000; DROP TABLE t_jm"},
        "chunk_rows_negative": {"chunk_rows": -1},
        "overlap_huge_text": {"overlap_s": "1e400"},
    }
    cases = [
        RegistryCase(f"config_{kind}", nothing, error(ConfigError, "sources.registry"), options=options)
        for kind, options in injections.items()
    ]
    traversal = "../" * 12
    cases += [
        RegistryCase(
            "url_traversal_to_passwd",
            nothing,
            error(FatalSourceError, "registry"),
            url=lambda db: f"sqlite:///{db.folder}/{traversal}etc/passwd",
        ),
        RegistryCase(
            "url_traversal_missing_file",
            nothing,
            error(FatalSourceError, "does not exist"),
            url=lambda db: f"sqlite:///{db.folder}/{traversal}nonexistent/rrs.sqlite",
        ),
        RegistryCase(
            "url_is_a_folder",
            nothing,
            error(FatalSourceError, "does not exist"),
            url=lambda db: f"sqlite:///{db.folder}",
        ),
        RegistryCase(
            "url_dev_zero",
            nothing,
            error(FatalSourceError, "does not exist"),
            url=lambda _: "sqlite:////dev/zero",
        ),
        RegistryCase("url_fifo", nothing, error(FatalSourceError, "does not exist"), url=_fifo),
        RegistryCase(
            "url_symlink_to_passwd", nothing, error(FatalSourceError, "registry"), url=_symlink_to_passwd
        ),
        RegistryCase(
            "url_sql_in_database_name",
            nothing,
            error(FatalSourceError, "does not exist"),
            url=lambda db: f"sqlite:///{db.folder}/rrs.sqlite; DROP TABLE t_jm",
        ),
        RegistryCase(
            "url_sqlite_uri_creates_file",
            nothing,
            error(FatalSourceError, "registry"),
            url=lambda db: f"sqlite:///file:{db.folder}/new.sqlite?mode=rwc&uri=true",
        ),
        RegistryCase(
            "url_not_a_url",
            nothing,
            error(ConfigError, "not a valid SQLAlchemy URL"),
            url=lambda _: "t_jm; DROP TABLE",
        ),
        RegistryCase(
            "url_unknown_driver",
            nothing,
            error(ConfigError, "not installed"),
            url=lambda _: "oracle+nodriver://u@h/db",
        ),
        RegistryCase(
            "url_plain_password",  # issue #15 item 14: a password must come from a secret reference
            nothing,
            error(ConfigError, "password"),
            url=lambda _: f"postgresql+psycopg://reader:{PASSWORD}@127.0.0.1:1/rrs",
        ),
        RegistryCase(
            "unreachable_port_postgres",
            nothing,
            error(RetriableError, "127.0.0.1:1/rrs"),
            url=lambda _: Secret(f"postgresql+psycopg://reader:{PASSWORD}@127.0.0.1:1/rrs", "env:X"),
            options={"retries": 0, "connect_timeout_s": 2},
        ),
        RegistryCase(
            "unreachable_port_mariadb",
            nothing,
            error(RetriableError, "127.0.0.1:1/rrs"),
            url=lambda _: Secret(f"mysql+pymysql://reader:{PASSWORD}@127.0.0.1:1/rrs", "env:X"),
            options={"retries": 0, "connect_timeout_s": 2},
        ),
        RegistryCase(
            "unroutable_host_timeout",  # TEST-NET-1: no answer at all; the connect timeout bounds it
            nothing,
            error(RetriableError, "192.0.2.1"),
            url=lambda _: Secret(f"postgresql+psycopg://reader:{PASSWORD}@192.0.2.1:5432/rrs", "env:X"),
            options={"retries": 0, "connect_timeout_s": 2},
            bound_s=20,
        ),
        RegistryCase(
            "unresolvable_host",
            nothing,
            error(None, "no-such-host.invalid"),
            url=lambda _: Secret(f"mysql+pymysql://reader:{PASSWORD}@no-such-host.invalid/rrs", "env:X"),
            options={"retries": 0, "connect_timeout_s": 2},
        ),
        RegistryCase(
            "wrong_password",
            nothing,
            error(FatalSourceError, "Check the read-only account"),
            SERVERS,
            url=lambda db: _server_url(db, username="ib_no_such_reader", password=PASSWORD),
            options={"retries": 0},
        ),
        RegistryCase(
            "missing_database",
            nothing,
            error(FatalSourceError, "ib_no_such_db"),
            SERVERS,
            url=lambda db: _server_url(db, database=f"ib_no_such_db_{uuid.uuid4().hex[:6]}"),
            options={"retries": 0},
        ),
    ]
    return cases


def _spec_quirks() -> list[RegistryCase]:
    """The SPEC's everyday registry quirks, pushed a little: each lands exactly as the registry holds it."""
    texts: list[tuple[str, str, Any]] = [
        ("xm_trailing_spaces", "xm", "测试  "),
        ("xm_ideographic_space", "xm", "测\u3000试"),
        ("csrq_compact", "csrq", "19491231"),
        ("csrq_impossible", "csrq", "1949-02-30"),
        ("sfzh_trailing_space", "sfzh", "11010519491231002X "),
        ("sfzh_null", "sfzh", None),
        ("lxdh_dashes", "lxdh", "138-0013-8000"),
        ("lxdh_86_prefix", "lxdh", "8613800138000"),
        ("lxdh_empty", "lxdh", ""),
        ("xb_unknown_empty", "xb", ""),
        ("hjlx_unknown", "hjlx", "其他"),
        ("yhzgx_injection", "yhzgx", "'); --"),
        ("fwbh_traversal", "fwbh", "../../etc"),
    ]
    cases = [
        RegistryCase(kind, resident(**{column: value}), accepted(BASE + 1), landed_values={column: value})
        for kind, column, value in texts
    ]
    cases += [
        RegistryCase("zt_unknown_status", resident(zt=9), accepted(BASE + 1), ALL, landed_values={"zt": "9"}),
        RegistryCase(
            "zt_text_in_integer_column", resident(zt="在住"), accepted(BASE + 1), landed_values={"zt": "在住"}
        ),
        RegistryCase(
            "rzrq_text_in_date_column",
            resident(rzrq="2026-02-30"),
            accepted(BASE + 1),
            landed_values={"rzrq": "2026-02-30"},
        ),
        RegistryCase("jmid_max_bigint", resident(jmid=2**63 - 1), accepted(BASE + 1), ALL),
        RegistryCase("jmid_negative", resident(jmid=-1), accepted(BASE + 1), ALL),
        RegistryCase("jmid_text_in_integer_column", resident(jmid="ABC"), accepted(BASE + 1)),
    ]
    return cases


def _url_injection() -> list[RegistryCase]:
    def init_command(db: Db) -> Secret:
        url = sa.make_url(db.url).update_query_dict({"init_command": "DROP TABLE t_xq"})
        return Secret(url.render_as_string(hide_password=False), "env:REGISTRY_URL")

    return [
        RegistryCase(
            "url_query_init_command",
            nothing,
            error(ConfigError, "init_command"),
            ("mariadb",),
            url=init_command,
        ),
        *(
            RegistryCase(
                f"url_query_{name}",
                nothing,
                error(ConfigError, f"{key} is not allowed"),  # one option at a time
                (kind,),
                url=_with_query(key, value),
            )
            for name, kind, key, value in (
                ("local_infile", "mariadb", "local_infile", "1"),
                ("read_default_file", "mariadb", "read_default_file", "/etc/passwd"),
                ("pg_options_no_timeout", "postgres", "options", "-c statement_timeout=0"),
                ("pg_passfile", "postgres", "passfile", "/etc/shadow"),
            )
        ),
    ]


def _with_query(key: str, value: str) -> Callable[[Db], Secret]:
    def make(db: Db) -> Secret:
        url = sa.make_url(db.url).update_query_dict({key: value})
        return Secret(url.render_as_string(hide_password=False), "env:REGISTRY_URL")

    return make


CASES: list[RegistryCase] = [
    *_gxsj(),
    *_text(),
    *_ids(),
    *_spec_quirks(),
    *_duplicates(),
    *_schema(),
    *_config(),
    *_url_injection(),
]
