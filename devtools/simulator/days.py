"""A street that lives: ``simulate(out, residents=..., seed=..., days=N)`` writes N days of one street.

Day 1 is ``generate``'s street as of ``as_of`` (same people, registry, grid, rosters and card holders);
every later day applies that day's changes (``life.Life``) and each system records them the way it
does in production, so any day can be served as it was:

- ``OUT/grid/*.json``: every version of every grid item, each with its ``update_time``; the grid server
  serves, per id, the newest version of the day served (``servers_grid.GridServer(day=...)``);
- ``OUT/iot/devices.json``, ``cardholders.json`` (every version, by ``updated_at``) and ``events.jsonl``,
  the one append-only log in arrival order, with ``events_days.json`` saying how many of its lines had
  arrived by the end of each day (the IoT server serves only those);
- ``OUT/days/<YYYY-MM-DD>/registry/rrs.sqlite``: the registry at the end of that day (rows updated in
  place, inserted and hard-deleted, with ``gxsj`` on the day of the change);
- ``OUT/days/<YYYY-MM-DD>/civil/``: the roster files present that day (a new month's files on its
  first day, its correction the day after);
- ``OUT/days/<YYYY-MM-DD>/truth/``: that day's truth, as ``generate`` writes it, and
  ``OUT/days/<YYYY-MM-DD>/grid/{events,grids}.json``, the grid as of that day, for ``eval reports``;
- ``OUT/days.json``: the days, the seed, the rates and each day's counts of changes.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import shutil
import sqlite3
from pathlib import Path

from islandbridge.devtools.simulator import civil
from islandbridge.devtools.simulator.civil import RosterRow, write_civil
from islandbridge.devtools.simulator.common import add_months, local_text, sub_rng, write_json_list
from islandbridge.devtools.simulator.generator import MAX_RESIDENTS, MIN_RESIDENTS, build_street
from islandbridge.devtools.simulator.grid import write_grid
from islandbridge.devtools.simulator.iot import build_devices, build_holders, cardholders_json, devices_json
from islandbridge.devtools.simulator.iot_events import write_events
from islandbridge.devtools.simulator.life import Life, Rates
from islandbridge.devtools.simulator.quirks import Quirks
from islandbridge.devtools.simulator.registry import write_registry
from islandbridge.devtools.simulator.scenarios import SILENT_DESIGNS
from islandbridge.devtools.simulator.truth import elderly_subjects, write_elderly, write_truth
from islandbridge.perf import collector_paused

QUIET = (*SILENT_DESIGNS, "went_silent", "recovered")  # stories a death would end too early
GRID_NAMES = ("grids", "workers", "residents", "events", "visits")
MAX_DAYS = 60


def day_dir(out: Path, day: dt.date) -> Path:
    return Path(out) / "days" / day.isoformat()


def simulate(
    out: Path,
    *,
    residents: int,
    seed: int,
    days: int,
    as_of: dt.date = dt.date(2026, 11, 20),
    street_code: str = "511403001",
    rates: Rates | None = None,
    quirks: Quirks | None = None,
) -> dict:
    """Write ``days`` days of one street under ``out`` (see the module's docstring); same arguments,
    same bytes. Returns ``{"days": [...], "changes": {day: {kind: count}}, "events": lines}``.
    ``ValueError`` for a size, street code or day count out of range."""
    if not MIN_RESIDENTS <= residents <= MAX_RESIDENTS:
        raise ValueError(f"residents={residents} is outside the supported {MIN_RESIDENTS}..{MAX_RESIDENTS}")
    if not (len(street_code) == 9 and street_code.isdigit()):
        raise ValueError(f"street_code={street_code!r} must be the nine-digit code of a street")
    if not 1 <= days <= MAX_DAYS:
        raise ValueError(f"days={days} is outside 1..{MAX_DAYS}")
    with collector_paused():
        simulation = _Simulation(Path(out), residents, seed, days, as_of, street_code, rates or Rates())
        simulation.quirks = quirks
        return simulation.run()


class _Simulation:
    quirks: Quirks | None = None

    def __init__(self, out, residents, seed, days, as_of, street_code, rates) -> None:
        self.out, self.residents, self.seed, self.rates = out, residents, seed, rates
        self.dates = [as_of + dt.timedelta(days=i) for i in range(days)]
        self.street_code = street_code
        self.subjects: list[list[tuple]] = []
        self.t_ms: list[int] = []
        self.changes: dict[str, dict[str, int]] = {}

    def run(self) -> dict:
        out, seed, first = self.out, self.seed, self.dates[0]
        if (out / "days").exists():
            shutil.rmtree(out / "days")
        street = self.street = build_street(seed, self.residents, first, self.street_code, self.quirks)
        d1 = day_dir(out, first)
        (d1 / "registry").mkdir(parents=True)
        _, rec_a = write_registry(sub_rng(seed, "registry"), street, d1 / "registry" / "rrs.sqlite")
        _, rec_b = write_grid(sub_rng(seed, "grid"), street, out / "grid")
        _, rec_c, self.month_rows = write_civil(sub_rng(seed, "civil"), street, d1 / "civil")
        crng = sub_rng(seed, "civil")  # the households and bank cards write_civil drew, drawn again
        self.households = civil._dibao_households(crng, street)
        self.cards = {
            p.pid: "6217" + f"{crng.randrange(10**15):015d}"
            for p in street.persons
            if civil._senior_eligible(p)
        }
        self.civil_records: dict[str, list[tuple]] = {}
        for record in rec_c:
            self.civil_records.setdefault(record[1].rsplit(":", 1)[0], []).append(record)
        irng = sub_rng(seed, "iot")
        devices, doors = build_devices(irng, street)
        holders = build_holders(street, doors)
        self.device_items = devices_json(irng, street, devices)
        holder_items = cardholders_json(irng, street, holders)
        grid = {n: json.loads((out / "grid" / f"{n}.json").read_text(encoding="utf-8")) for n in GRID_NAMES}
        by_pid = {p.pid: p for p in street.persons}
        jm = {int(key.split(":")[1]): by_pid[pid] for _, key, pid in rec_a}
        gp = {pid: key.split(":")[1] for _, key, pid in rec_b if key.startswith("residents:")}
        life = self.life = Life(
            street, self.rates, self.residents, jm, grid, gp, devices, doors, holders, holder_items
        )
        life.reporters = {key.split(":")[1]: pid for _, key, pid in rec_b if key.startswith("events:")}
        self.pending_correction = None
        self._write_day(0)
        for index in range(1, len(self.dates)):
            self._live(index)
            self._write_day(index)
        return self._write_cumulative(devices, holders)

    # -- one day -----------------------------------------------------------------------------------
    def _live(self, index: int) -> None:
        d, prev = self.dates[index], day_dir(self.out, self.dates[index - 1])
        here = day_dir(self.out, d)
        (here / "registry").mkdir(parents=True)
        shutil.copyfile(prev / "registry" / "rrs.sqlite", here / "registry" / "rrs.sqlite")
        shutil.copytree(prev / "civil", here / "civil")
        rng = sub_rng(self.seed, f"day:{d.isoformat()}")
        db = sqlite3.connect(here / "registry" / "rrs.sqlite")
        try:
            counts = self.life.day(rng, d, index, len(self.dates), db)
            if (d + dt.timedelta(days=1)).day == 1:
                counts.update(self._month_eve(rng))
            self.life.settle()
            db.commit()
        finally:
            db.close()
        if d.day == 1:
            counts.update(self._new_month(sub_rng(self.seed, f"civil:{d:%Y%m}"), here / "civil"))
        elif self.pending_correction is not None:
            counts.update(self._correction(here / "civil"))
        self.changes[d.isoformat()] = counts

    def _month_eve(self, rng) -> dict[str, int]:
        """The day before a roster month: a senior on the roster dies and a 低保 head moves away, so that
        the new month holds a row that should have stopped (应退未退) and one its correction strikes off."""
        life, counts = self.life, {}
        seniors = [r.person for r in self.month_rows if r.programme == "senior"]
        dead = [p for p in seniors if p.living and not p.flags and p.design not in QUIET]
        if dead:
            p = rng.choice(dead)
            p.status, p.exit_date = 3, life.d
            life._update(p, life.stamp(), zt=3, zxrq=life.d.isoformat())
            p.flags.add("senior_stale_dead")
            counts["roster_deaths"] = 1
        heads = [
            h[0]
            for h in self.households
            if h[0].living and h[0].in_registry and not h[0].design and h[0].flags == {"dibao"}
        ]
        if heads:
            p = rng.choice(heads)
            p.status, p.exit_date = 2, life.d
            life._update(p, life.stamp(), zt=2, zxrq=life.d.isoformat())
            p.flags.add("dibao_removed")
            counts["dibao_heads_left"] = 1
        return counts

    def _new_month(self, rng, folder: Path) -> dict[str, int]:
        street = self.street
        first = street.as_of
        ym = f"{first:%Y%m}"
        dibao = [h for h in self.households if civil._on_dibao(h[0], first)]
        kinds = civil._dibao_kinds(rng, dibao, self.street.quirks)
        name = f"{street.code}_{ym}_低保.xlsx"
        civil._write_dibao(rng, street, folder / name, first, dibao, kinds)
        self.pending_correction = (rng, first, dibao, kinds)
        rows = [
            RosterRow("dibao", ym, i + 1, name, h[0], k["amount"])
            for i, (h, k) in enumerate(zip(dibao, kinds, strict=True))
        ]
        seniors = [p for p in street.persons if civil._on_senior(p, first)]
        name = f"{street.code}_{ym}_高龄补贴.csv"
        amounts = civil._write_senior(rng, street, folder / name, first, seniors, self.cards)
        rows += [
            RosterRow("senior", ym, i + 1, name, p, a)
            for i, (p, a) in enumerate(zip(seniors, amounts, strict=True))
        ]
        self._set_month(rows, ym)
        return {"roster_files": 2, "after_exit_rows": sum(1 for r in rows if _after_exit(r, first))}

    def _correction(self, folder: Path) -> dict[str, int]:
        rng, first, dibao, kinds = self.pending_correction
        self.pending_correction = None
        ym = f"{first:%Y%m}"
        dibao, kinds = civil._correct(rng, dibao, kinds, first)
        name = f"{self.street.code}_{ym}_低保_更正.xlsx"
        civil._write_dibao(rng, self.street, folder / name, first, dibao, kinds, correction=True)
        rows = [
            RosterRow("dibao", ym, i + 1, name, h[0], k["amount"])
            for i, (h, k) in enumerate(zip(dibao, kinds, strict=True))
        ]
        rows += [r for r in self.month_rows if r.programme == "senior"]
        self._set_month(rows, ym)
        return {"roster_files": 1}

    def _set_month(self, rows: list[RosterRow], ym: str) -> None:
        self.month_rows = rows
        for programme in ("dibao", "senior"):
            self.civil_records[f"{programme}:{ym}"] = [
                ("civil_affairs", f"{r.programme}:{r.month}:{r.seq}", r.person.pid)
                for r in rows
                if r.programme == programme
            ]

    def _write_day(self, index: int) -> None:
        street, life, d = self.street, self.life, self.dates[index]
        here = day_dir(self.out, d)
        (here / "grid").mkdir(parents=True, exist_ok=True)
        for name in ("events", "grids"):
            write_json_list(here / "grid" / f"{name}.json", list(life.current[name].values()))
        records = [("resident_registry", f"t_jm:{j}", p.pid) for j, p in sorted(life.jm.items())]
        records += [
            ("grid_platform", f"residents:{gp}", pid)
            for pid, gp in sorted(life.gp.items(), key=lambda x: x[1])
        ]
        records += [("grid_platform", f"events:{e}", pid) for e, pid in sorted(life.reporters.items())]
        for group in sorted(self.civil_records):
            records += self.civil_records[group]
        records += [("iot_platform", f"cardholders:{h.holder_id}", h.person.pid) for h in life.holders]
        meta = {
            "seed": self.seed,
            "residents": self.residents,
            "street_code": street.code,
            "street_name": street.name,
            "day": index + 1,
            "days": len(self.dates),
            **({"quirks": street.quirks.changed()} if street.quirks.changed() else {}),
        }
        write_truth(street, here / "truth", records, self.month_rows, None, meta)
        self.subjects.append(elderly_subjects(street))
        self.t_ms.append(street.t_ms)

    # -- what serves every day ---------------------------------------------------------------------
    def _write_cumulative(self, devices, holders) -> dict:
        out, life = self.out, self.life
        for name in GRID_NAMES:
            write_json_list(out / "grid" / f"{name}.json", life.grid[name])
        (out / "iot").mkdir(parents=True, exist_ok=True)
        write_json_list(out / "iot" / "devices.json", self.device_items)
        write_json_list(out / "iot" / "cardholders.json", life.holder_items)
        lines: dict[str, int] = {}

        def on_day(index: int, written: int, observed) -> None:
            day = self.dates[index]
            lines[day.isoformat()] = written
            write_elderly(day_dir(out, day) / "truth", self.subjects[index], observed, self.t_ms[index])

        counts, _ = write_events(
            self.seed,
            self.street,
            devices,
            holders,
            out / "iot" / "events.jsonl",
            days=self.dates,
            on_day=on_day,
        )
        (out / "iot" / "events_days.json").write_text(json.dumps(lines, indent=1), encoding="utf-8")
        summary = {
            "days": [d.isoformat() for d in self.dates],
            "seed": self.seed,
            "residents": self.residents,
            "street_code": self.street_code,
            "rates": dataclasses.asdict(self.rates),
            **({"quirks": self.street.quirks.changed()} if self.street.quirks.changed() else {}),
            "changes": self.changes,
            "iot": counts,
        }
        (out / "days.json").write_text(json.dumps(summary, ensure_ascii=False, indent=1), encoding="utf-8")
        return summary


def _after_exit(r: RosterRow, first: dt.date) -> bool:
    return r.person.in_registry and r.person.status in (2, 3) and r.person.exit_date < first


def read_days(out: Path) -> dict:
    """``OUT/days.json`` of a street written by :func:`simulate` (``FileNotFoundError`` if it is not one)."""
    return json.loads((Path(out) / "days.json").read_text(encoding="utf-8"))


def day_end_text(day: dt.date) -> str:
    """T of ``day`` as the grid writes local times: the next day's midnight."""
    from islandbridge.devtools.simulator.common import local_midnight

    return local_text(local_midnight(day + dt.timedelta(days=1)))


__all__ = ["Rates", "day_dir", "day_end_text", "read_days", "simulate", "add_months"]
