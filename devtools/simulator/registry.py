"""System A, the resident registry: writes ``registry/rrs.sqlite`` and copies it into PostgreSQL or MariaDB.

The SQLite file has the production schema's column names and declared types (SPEC section A). A person
who moved out and back has two rows: the old one (status 2, with an exit date) keeps its place in the
id sequence, the new one (status 1) is added at the end, as the application would. Rows are never
deleted here; to simulate an administrator's hard delete, call :func:`hard_delete` on a copy.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from collections.abc import Iterable
from pathlib import Path

import sqlalchemy as sa

from islandbridge.devtools.simulator import quirks
from islandbridge.devtools.simulator.common import Chooser, ensure_each, randint, random_date, random_stamp
from islandbridge.devtools.simulator.formats import legacy15, render_phone, spaced_id, typo_id
from islandbridge.devtools.simulator.population import House, Person, Street

DDL = """
CREATE TABLE t_xq (xqbm VARCHAR(12) PRIMARY KEY, xqmc VARCHAR(64), sqbm VARCHAR(12), sqmc VARCHAR(32));
CREATE TABLE t_fw (fwbh VARCHAR(20) PRIMARY KEY, xqbm VARCHAR(12), ld VARCHAR(8), dy VARCHAR(8), fh VARCHAR(8),
                       wgbm VARCHAR(16), gxsj DATETIME);
CREATE TABLE t_jm (jmid BIGINT PRIMARY KEY, xm VARCHAR(32), xb CHAR(1), sfzh VARCHAR(18), csrq VARCHAR(10),
                       lxdh VARCHAR(32), mz VARCHAR(16), hjlx VARCHAR(4), fwbh VARCHAR(20), yhzgx VARCHAR(8),
                       rzrq DATE, zt TINYINT, zxrq DATE, cjsj DATETIME, gxsj DATETIME);
CREATE TABLE t_jm_bq (jmid BIGINT, bq VARCHAR(16), gxsj DATETIME);
"""
JM_COLUMNS = (
    "jmid",
    "xm",
    "xb",
    "sfzh",
    "csrq",
    "lxdh",
    "mz",
    "hjlx",
    "fwbh",
    "yhzgx",
    "rzrq",
    "zt",
    "zxrq",
    "cjsj",
    "gxsj",
)

# Quirk rates, per row (see docs/simulator.md). Kinds that cannot apply to a row fall back to "plain".
SFZH_TABLE = {"plain": 77, "null": 8, "spaces": 4, "trailing": 3, "lower_x": 0, "legacy15": 2.5, "typo": 1.5}
SFZH = Chooser(SFZH_TABLE)
CSRQ = Chooser({"dash": 65, "compact": 22, "null": 13})
XM = Chooser({"plain": 85, "trailing": 3, "ideographic": 12})
LXDH_TABLE = {
    "plain": 48,
    "dashed": 8,
    "plus86": 8,
    "cc86": 6,
    "spaced": 7,
    "fullwidth": 5,
    "two": 5,
    "wu": 3,
    "empty": 3,
    "null": 7,
}
LXDH = Chooser(LXDH_TABLE)
NO_PHONE = Chooser({"null": 45, "empty": 35, "wu": 20})


def write_registry(
    rng: random.Random, street: Street, path: Path
) -> tuple[dict[str, int], list[tuple[str, str, str]]]:
    """Write the four tables; return row counts and the truth records (system, record key, person id)."""
    rows = _jm_rows(rng, street)
    path.unlink(missing_ok=True)
    with sqlite3.connect(path) as db:
        db.executescript(DDL)
        db.executemany(
            "INSERT INTO t_xq VALUES (?, ?, ?, ?)",
            [(e.code, e.name, e.community_code, e.community_name) for e in street.estates],
        )
        db.executemany(
            "INSERT INTO t_fw VALUES (?, ?, ?, ?, ?, ?, ?)", [_fw_row(rng, street, h) for h in street.houses]
        )
        db.executemany(f"INSERT INTO t_jm VALUES ({', '.join('?' * len(JM_COLUMNS))})", [r for r, _ in rows])
        tags = _tag_rows(rng, street, rows)
        db.executemany("INSERT INTO t_jm_bq VALUES (?, ?, ?)", tags)
    db.close()
    counts = {
        "t_xq": len(street.estates),
        "t_fw": len(street.houses),
        "t_jm": len(rows),
        "t_jm_bq": len(tags),
    }
    return counts, [("resident_registry", f"t_jm:{r[0]}", p.pid) for r, p in rows]


def _fw_row(rng: random.Random, street: Street, house: House) -> tuple:
    ld = f"{house.building}栋" if rng.random() < 0.3 else str(house.building)
    fh = f"{house.room:04d}" if house.room < 1000 and rng.random() < 0.2 else str(house.room)
    changed = random_stamp(rng, random_date(rng, dt.date(2024, 1, 1), street.as_of))
    return (house.fwbh, house.estate.code, ld, str(house.unit), fh, house.grid_code, changed)


def _jm_rows(rng: random.Random, street: Street) -> list[tuple[tuple, Person]]:
    """One row per stay: people who came back get their current row after everybody else's."""
    stays: list[tuple[Person, bool]] = []  # (person, is this their old row)
    returns: list[tuple[Person, bool]] = []
    for person in street.persons:
        if person.role == "resident" and person.in_registry:
            stays.append((person, person.prev_exit is not None))
            if person.prev_exit is not None:
                returns.append((person, False))
    stays += returns
    kinds = _row_kinds(rng, [p for p, _ in stays], quirks.tables(street.quirks))
    rows, jmid = [], 100_000
    for (person, old), kind in zip(stays, kinds, strict=True):
        jmid += randint(rng, 1, 5)
        rows.append((_jm_row(rng, street, person, old, jmid, kind), person))
    return rows


def _row_kinds(rng: random.Random, people: list[Person], t=None) -> list[dict[str, str]]:
    """Which quirk each row gets, per column, with every kind forced to occur at least once."""
    t = t or quirks.tables(quirks.Quirks())
    sfzh = [t.registry_sfzh.pick(rng) if p.hukou != "境外" else "passport" for p in people]
    for i, p in enumerate(people):
        if p.id_number.endswith("X") and sfzh[i] == "plain" and rng.random() < 0.4:
            sfzh[i] = "lower_x"
    ensure_each(
        rng,
        sfzh,
        ("null", "spaces", "trailing", "lower_x", "legacy15", *quirks.present(t.registry_sfzh, ("typo",))),
        "plain",
        lambda i, k: k != "lower_x" or people[i].id_number.endswith("X"),
    )
    csrq = [CSRQ.pick(rng) for _ in people]
    ensure_each(rng, csrq, ("compact", "null"), "dash")
    xm = [XM.pick(rng) for _ in people]
    xm = [k if k != "ideographic" or len(p.name) == 2 else "plain" for k, p in zip(xm, people, strict=True)]
    ensure_each(rng, xm, ("trailing", "ideographic"), "plain", lambda i, _k: len(people[i].name) == 2)
    lxdh = [t.registry_lxdh.pick(rng) if p.phone else NO_PHONE.pick(rng) for p in people]
    lxdh = [k if k != "two" or p.phone2 else "plain" for k, p in zip(lxdh, people, strict=True)]
    ensure_each(
        rng,
        lxdh,
        quirks.present(t.registry_lxdh, LXDH.kinds),
        "plain",
        lambda i, k: k != "two" or bool(people[i].phone2),
    )
    xb = ["" if rng.random() < 0.01 else "sex" for _ in people]
    ensure_each(rng, xb, ("",), "sex")
    return [
        {"sfzh": a, "csrq": b, "xm": c, "lxdh": d, "xb": e}
        for a, b, c, d, e in zip(sfzh, csrq, xm, lxdh, xb, strict=True)
    ]


def _jm_row(
    rng: random.Random, street: Street, p: Person, old: bool, jmid: int, kind: dict[str, str]
) -> tuple:
    moved_in = p.prev_moved_in if old else p.moved_in
    status, exit_date = (2, p.prev_exit) if old else (p.status, p.exit_date)
    house = p.prev_house if old else p.house
    created = random_stamp(rng, moved_in)
    changed = max(
        created, random_stamp(rng, random_date(rng, exit_date or moved_in, exit_date or street.as_of))
    )
    return (
        jmid,
        render_name(p.name, kind["xm"]),
        "" if kind["xb"] == "" else str(p.sex),
        render_sfzh(rng, p.id_number, kind["sfzh"]),
        render_csrq(p.birth, kind["csrq"]),
        render_lxdh(p, kind["lxdh"]),
        p.ethnicity,
        p.hukou,
        house.fwbh,
        p.relation,
        moved_in.isoformat(),
        status,
        exit_date.isoformat() if exit_date else None,
        created,
        changed,
    )


def render_name(name: str, kind: str) -> str:
    if kind == "trailing":
        return name + " "
    if kind == "ideographic" and len(name) == 2:
        return f"{name[0]}\u3000{name[1]}"
    return name


def render_sfzh(rng: random.Random, number: str, kind: str) -> str | None:
    match kind:
        case "null":
            return None
        case "spaces":
            return spaced_id(number)
        case "trailing":
            return number + " "
        case "lower_x":
            return number.lower()
        case "legacy15":
            return legacy15(number)
        case "typo":
            return typo_id(rng, number)
    return number


def render_csrq(birth: dt.date, kind: str) -> str | None:
    return None if kind == "null" else birth.strftime("%Y-%m-%d" if kind == "dash" else "%Y%m%d")


def render_lxdh(p: Person, kind: str) -> str | None:
    match kind:
        case "null":
            return None
        case "empty":
            return ""
        case "wu":
            return "无"
        case "two":
            return f"{p.phone}/{p.phone2}"
    return render_phone(p.phone, kind) if p.phone else None


def _tag_rows(rng: random.Random, street: Street, rows: list[tuple[tuple, Person]]) -> list[tuple]:
    current = {p.pid: r[0] for r, p in rows}  # the last row of a person is their current one
    tags = []
    for r, person in rows:
        if current[person.pid] != r[0]:
            continue
        for tag in person.reg_tags:
            tagged = random_stamp(
                rng, random_date(rng, max(person.moved_in, dt.date(2021, 6, 1)), street.as_of)
            )
            tags.append((r[0], tag, tagged))
    return tags


def hard_delete(sqlite_path: Path, jmids: Iterable[int]) -> int:
    """Delete registry rows (and their tags) the way an administrator cleaning up would; returns rows gone.

    The truth still names the deleted records, so a test can check that a sync notices they vanished.
    """
    ids = [(int(j),) for j in jmids]
    with sqlite3.connect(sqlite_path) as db:
        db.executemany("DELETE FROM t_jm_bq WHERE jmid = ?", ids)
        gone = sum(db.execute("DELETE FROM t_jm WHERE jmid = ?", j).rowcount for j in ids)
    db.close()
    return gone


def registry_metadata() -> sa.MetaData:
    """The registry's tables for a server database: MySQL-8-like types, text in utf8mb4.

    ``sfzh`` and ``lxdh`` are wider than the sample's declared VARCHAR(18)/(32) because production
    holds IDs with inner spaces (20 characters) that SQLite never rejected.
    """
    meta = sa.MetaData()
    opts = {"mysql_charset": "utf8mb4", "mysql_collate": "utf8mb4_unicode_ci"}
    sa.Table(
        "t_xq",
        meta,
        sa.Column("xqbm", sa.String(12), primary_key=True),
        sa.Column("xqmc", sa.String(64)),
        sa.Column("sqbm", sa.String(12)),
        sa.Column("sqmc", sa.String(32)),
        **opts,
    )
    sa.Table(
        "t_fw",
        meta,
        sa.Column("fwbh", sa.String(20), primary_key=True),
        sa.Column("xqbm", sa.String(12)),
        sa.Column("ld", sa.String(8)),
        sa.Column("dy", sa.String(8)),
        sa.Column("fh", sa.String(8)),
        sa.Column("wgbm", sa.String(16)),
        sa.Column("gxsj", sa.DateTime),
        sa.Index("ix_t_fw_gxsj", "gxsj"),
        **opts,
    )
    sa.Table(
        "t_jm",
        meta,
        sa.Column("jmid", sa.BigInteger, primary_key=True, autoincrement=False),
        sa.Column("xm", sa.String(64)),
        sa.Column("xb", sa.String(1)),
        sa.Column("sfzh", sa.String(32)),
        sa.Column("csrq", sa.String(10)),
        sa.Column("lxdh", sa.String(64)),
        sa.Column("mz", sa.String(16)),
        sa.Column("hjlx", sa.String(4)),
        sa.Column("fwbh", sa.String(20)),
        sa.Column("yhzgx", sa.String(8)),
        sa.Column("rzrq", sa.Date),
        sa.Column("zt", sa.SmallInteger),
        sa.Column("zxrq", sa.Date),
        sa.Column("cjsj", sa.DateTime),
        sa.Column("gxsj", sa.DateTime),
        sa.Index("ix_t_jm_gxsj", "gxsj", "jmid"),
        **opts,
    )
    sa.Table(
        "t_jm_bq",
        meta,
        sa.Column("jmid", sa.BigInteger),
        sa.Column("bq", sa.String(16)),
        sa.Column("gxsj", sa.DateTime),
        sa.Index("ix_t_jm_bq_jmid", "jmid"),
        sa.Index("ix_t_jm_bq_gxsj", "gxsj"),
        **opts,
    )
    return meta


def _parse(column: sa.Column, value):
    if value is None:
        return None
    if isinstance(column.type, sa.DateTime):
        return dt.datetime.fromisoformat(value)
    if isinstance(column.type, sa.Date):
        return dt.date.fromisoformat(value)
    return value


def load_registry(sqlite_path: Path, url: str, *, batch_size: int = 5000) -> None:
    """Copy the four registry tables from the simulator's SQLite file into a server database.

    The tables are dropped and recreated, then filled in batches of ``batch_size`` rows, one transaction
    per batch. ``url`` is a SQLAlchemy URL, e.g. ``postgresql+psycopg://user@host/db`` or
    ``mysql+pymysql://user@host/db?charset=utf8mb4``. Example::

        load_registry(street / "registry" / "rrs.sqlite", "mysql+pymysql://root@127.0.0.1/rrs?charset=utf8mb4")
    """
    meta = registry_metadata()
    engine = sa.create_engine(url)
    try:
        with engine.begin() as conn:
            meta.drop_all(conn)
            meta.create_all(conn)
        with sqlite3.connect(f"file:{Path(sqlite_path).resolve()}?mode=ro", uri=True) as src:
            for table in meta.sorted_tables:
                _copy_table(src, engine, table, batch_size)
        src.close()
    finally:
        engine.dispose()


def _copy_table(src: sqlite3.Connection, engine: sa.Engine, table: sa.Table, batch_size: int) -> None:
    columns = list(table.columns)
    select = f"SELECT {', '.join(c.name for c in columns)} FROM {table.name} ORDER BY rowid"  # noqa: S608 - names from our metadata
    cursor = src.execute(select)
    while batch := cursor.fetchmany(batch_size):
        with engine.begin() as conn:
            conn.execute(
                table.insert(),
                [{c.name: _parse(c, v) for c, v in zip(columns, row, strict=True)} for row in batch],
            )
