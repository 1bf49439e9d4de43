"""A hand-made warehouse for the core and mart tests: raw tables as the privacy-aware loader leaves them
(no direct identifiers, ID numbers reduced to ``__kind`` and ``__birth_date``) and an identity map.

No tests here: `TinyWarehouse` is shared by ``test_core.py`` and ``test_marts.py``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path

from islandbridge.identity import tables as identity
from islandbridge.landing import raw

LOCAL = dt.timezone(dt.timedelta(hours=8))
HOUR_MS = 3_600_000
# The record key of a row of each stream, as the landing writer makes it.
RECORD_KEYS = {
    "registry__t_xq": lambda r: f"t_xq:{r['xqbm']}",
    "registry__t_fw": lambda r: f"t_fw:{r['fwbh']}",
    "registry__t_jm": lambda r: f"t_jm:{r['jmid']}",
    "registry__t_jm_bq": lambda r: f"t_jm_bq:{r['jmid']}:{r['bq']}",
    "grid__grids": lambda r: f"grids:{r['grid_code']}",
    "grid__residents": lambda r: f"residents:{r['person_id']}",
    "grid__events": lambda r: f"events:{r['event_id']}",
    "grid__visits": lambda r: f"visits:{r['visit_id']}",
    "civil__dibao": lambda r: f"dibao:{r['roster_month']}:{r['序号']}",
    "civil__senior": lambda r: f"senior:{r['roster_month']}:{r['序号']}",
    "iot__devices": lambda r: f"devices:{r['device_id']}",
    "iot__cardholders": lambda r: f"cardholders:{r['holder_id']}",
    "iot__events": lambda r: f"events:{r['event_id']}",
}
SYSTEMS = {
    "registry": "resident_registry",
    "grid": "grid_platform",
    "civil": "civil_affairs",
    "iot": "iot_platform",
}


def as_of(day: dt.date) -> dt.datetime:
    """T of an as-of date: the end of that day in Asia/Shanghai."""
    return dt.datetime.combine(day + dt.timedelta(days=1), dt.time(), LOCAL)


def ms(moment: dt.datetime) -> int:
    return int(moment.timestamp() * 1000)


class TinyWarehouse:
    """A warehouse file built row by row: ``run`` registers a run, ``add`` lands rows, ``link`` maps records."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.con = raw.connect(str(path))
        identity.ensure_schema(self.con)

    def run(self, t: dt.datetime) -> str:
        run_id = raw.run_id_for(t)
        self.con.execute(
            "INSERT OR REPLACE INTO meta.runs VALUES (?, ?, 'loaded', NULL, NULL, [])", [run_id, t]
        )
        return run_id

    def add(self, table: str, run_id: str, rows: Iterable[Mapping[str, object]]) -> list[str]:
        """Land ``rows`` (all values as text) in ``raw.<table>`` for ``run_id``; returns their record keys."""
        rows = [dict(r) for r in rows]
        columns = sorted({c for r in rows for c in r})
        self.con.execute(f"CREATE TABLE IF NOT EXISTS raw.{table} (_record_key VARCHAR, _run_id VARCHAR)")
        for c in columns:
            self.con.execute(f'ALTER TABLE raw.{table} ADD COLUMN IF NOT EXISTS "{c}" VARCHAR')
        keys = []
        for r in rows:
            key = RECORD_KEYS[table](r)
            names = ", ".join(f'"{c}"' for c in r)
            marks = ", ".join("?" for _ in r)
            self.con.execute(
                f"INSERT INTO raw.{table} (_record_key, _run_id, {names}) VALUES (?, ?, {marks})",
                [key, run_id, *(None if v is None else str(v) for v in r.values())],
            )
            keys.append(key)
        return keys

    def link(self, person_key: str, *records: tuple[str, str], run_id: str = "r") -> None:
        """Put records ``(source, record_key)`` under ``person_key`` in core.identity_map."""
        for source, key in records:
            self.con.execute(
                "INSERT OR REPLACE INTO core.identity_map VALUES (?, ?, ?, 'id', 1.0, ?, ?)",
                [SYSTEMS[source], key, person_key, run_id, run_id],
            )

    def reconciled(self, run_id: str, t: dt.datetime) -> None:
        self.con.execute(
            "INSERT OR REPLACE INTO meta.identity_runs (run_id, as_of) VALUES (?, ?)", [run_id, t]
        )

    def snapshot(self, *tables: str) -> dict[str, list]:
        return {t: self.con.execute(f"SELECT * FROM {t} ORDER BY ALL").fetchall() for t in tables}

    def close(self) -> None:
        self.con.close()


def street(w: TinyWarehouse, run_id: str) -> None:
    """Two estates of two communities, a grid, and the houses the tests place people in."""
    w.add(
        "registry__t_xq",
        run_id,
        [
            {"xqbm": "XQ001", "xqmc": "锦江苑", "sqbm": "511403001001", "sqmc": "凤鸣社区"},
            {"xqbm": "XQ002", "xqmc": "蜀南花园", "sqbm": "511403001002", "sqmc": "滨江社区"},
        ],
    )
    w.add(
        "registry__t_fw",
        run_id,
        [
            {"fwbh": f"FW{n}", "xqbm": estate, "ld": ld, "dy": "1", "fh": fh, "wgbm": "G1"}
            for n, (estate, ld, fh) in enumerate(
                [
                    ("XQ001", "3栋", "0501"),
                    ("XQ001", "3", "502"),
                    ("XQ001", "3", "503"),
                    ("XQ002", "7", "101"),
                    ("XQ002", "7", "102"),
                    ("XQ002", "8", "201"),
                ],
                start=1,
            )
        ],
    )
    w.add(
        "grid__grids",
        run_id,
        [{"grid_code": "G1", "community_code": "511403001001", "community_name": "凤鸣社区"}],
    )


def resident(
    jmid: int,
    house: str,
    birth: str | None,
    *,
    zt: str = "1",
    hjlx: str = "户籍",
    rzrq: str = "2010-01-01",
    zxrq: str | None = None,
    cjsj: str = "2010-01-01 10:00:00",
    xb: str = "2",
    id_birth: str | None = None,
    id_kind: str = "full",
) -> dict:
    """A registry resident row as the warehouse holds it (no name, ID number or phone)."""
    return {
        "jmid": jmid,
        "xb": xb,
        "csrq": birth,
        "hjlx": hjlx,
        "fwbh": house,
        "yhzgx": "户主",
        "rzrq": rzrq,
        "zt": zt,
        "zxrq": zxrq,
        "cjsj": cjsj,
        "sfzh__kind": id_kind,
        "sfzh__birth_date": id_birth,
    }
