"""What happens to a street in one day, applied to the true model and to each system's records.

``Life`` holds the street (``population.Street``) and the systems' mutable state after day 1: the
registry's SQLite connection of the day being written, every version of every grid item, the card
holders. ``Life.day(d)`` draws that day's changes (counts from ``Rates``, at least ``minimum`` of each
kind) and writes them the way each system records them: registry rows updated, inserted or deleted with
``gxsj`` on that day; grid items as new versions with that day's ``update_time``; card holders with that
day's ``updated_at``. Record keys never change: a person keeps their ``jmid``, ``GP…`` and ``H…`` ids.
"""

from __future__ import annotations

import datetime as dt
import random
import sqlite3
from dataclasses import dataclass

from islandbridge.devtools.simulator import grid as gridw
from islandbridge.devtools.simulator import iot as iotw
from islandbridge.devtools.simulator import population, quirks, registry
from islandbridge.devtools.simulator.common import HOUR_MS, LOCAL_TZ, epoch_ms, random_stamp, utc_text
from islandbridge.devtools.simulator.formats import mobile, render_phone
from islandbridge.devtools.simulator.population import House, Person, Street
from islandbridge.devtools.simulator.scenarios import elderly_population


@dataclass(frozen=True)
class Rates:
    """Changes per 1,000 residents per day (at least ``minimum`` of each kind every day)."""

    births: float = 0.03
    deaths: float = 0.03
    moves_out: float = 0.05
    moves_back: float = 0.02
    new_households: float = 0.02
    phone_changes: float = 0.3
    address_changes: float = 0.05
    hard_deletes: float = 0.02
    grid_edits: float = 1.0
    grid_added: float = 0.2
    incidents_opened: float = 0.5
    incidents_closed: float = 0.4
    visits: float = 1.3
    new_cards: float = 0.2
    minimum: int = 1


def _stamp_ms(stamp: str) -> int:
    return epoch_ms(dt.datetime.fromisoformat(stamp).replace(tzinfo=LOCAL_TZ))


class Life:
    def __init__(
        self,
        street: Street,
        rates: Rates,
        residents: int,
        jm: dict[int, Person],
        grid: dict,
        gp: dict[str, str],
        devices,
        doors,
        holders,
        holder_items: list[dict],
    ) -> None:
        self.street, self.rates, self.residents = street, rates, residents
        self.tables = quirks.tables(street.quirks)
        self.jm = jm  # jmid -> person, every row present in the registry
        self.grid = grid  # endpoint -> list of every version, in the order written
        self.gp = gp  # person id -> grid person_id
        self.current = {name: {} for name in grid}
        for name, items in grid.items():
            key = gridw_ids[name]
            for item in items:
                self.current[name][item[key]] = item
        self.devices, self.doors, self.holders, self.holder_items = devices, doors, holders, holder_items
        self.holder_current = {item["holder_id"]: item for item in holder_items}
        self.rows: dict[str, list[int]] = {}
        for jmid in sorted(jm):
            self.rows.setdefault(jm[jmid].pid, []).append(jmid)
        self.reporters: dict[str, str] = {}  # event id -> person id of its resident reporter
        self.issued = {p.id_number for p in street.persons}
        self.phones = {n for p in street.persons for n in (p.phone, p.phone2, p.stale_phone) if n}
        self.db: sqlite3.Connection | None = None
        self.counts: dict[str, int] = {}

    # -- the day ---------------------------------------------------------------------------------------
    def day(self, rng: random.Random, d: dt.date, index: int, n_days: int, db: sqlite3.Connection) -> dict:
        """Apply day ``d``'s changes (``index`` 1 is the second day); return how many of each kind."""
        self.db, self.d, self.rng, self.counts = db, d, rng, {}
        self.street.as_of = d
        self.street.__dict__.pop("t_end", None)
        self.street.__dict__.pop("t_ms", None)
        for kind, act in (
            ("births", self._birth),
            ("deaths", self._death),
            ("moves_out", self._move_out),
            ("moves_back", self._move_back),
            ("new_households", self._new_household),
            ("phone_changes", self._phone_change),
            ("address_changes", self._address_change),
            ("hard_deletes", self._hard_delete),
            ("grid_edits", self._grid_edit),
            ("grid_added", self._grid_add),
            ("incidents_opened", self._incident_open),
            ("incidents_closed", self._incident_close),
            ("visits", self._visit),
            ("new_cards", self._new_card),
        ):
            for _ in range(self._how_many(getattr(self.rates, kind))):
                if act() is not False:
                    self.counts[kind] = self.counts.get(kind, 0) + 1
        if index == 1:
            self._go_silent()
        if index == min(2, n_days - 1):
            self._recover()
        return self.counts

    def settle(self) -> None:
        """After a day's changes: people who joined the elderly alert population (a spouse died, so they
        now live alone) get the story their devices tell: active if they have any, else no device."""
        for p in elderly_population(self.street):
            if not p.design:
                p.design = "active" if (p.cards or p.house.water) else "no_device"

    def _how_many(self, rate: float) -> int:
        expected = rate * self.residents / 1000
        whole = int(expected) + (1 if self.rng.random() < expected - int(expected) else 0)
        return max(self.rates.minimum, whole)

    def stamp(self) -> str:
        return random_stamp(self.rng, self.d)

    def _pick(self, people: list[Person]) -> Person | None:
        return self.rng.choice(people) if people else None

    def _plain(self, p: Person) -> bool:
        return p.role == "resident" and not p.design and not p.flags

    # -- the registry ------------------------------------------------------------------------------
    def _rows_of(self, p: Person) -> list[int]:
        return self.rows.get(p.pid, [])

    def _update(self, p: Person, stamp: str, **columns) -> None:
        rows = self._rows_of(p)
        if not rows:
            return
        sets = ", ".join(f"{c} = ?" for c in columns)
        self.db.execute(
            f"UPDATE t_jm SET {sets}, gxsj = ? WHERE jmid = ?", [*columns.values(), stamp, rows[-1]]
        )  # noqa: S608

    def _insert(self, p: Person) -> None:
        rng = self.rng
        jmid = max(self.jm) + 1 + int(rng.random() * 5)
        kind = {
            "sfzh": self.tables.registry_sfzh.pick(rng),
            "csrq": registry.CSRQ.pick(rng),
            "xm": registry.XM.pick(rng),
            "lxdh": (self.tables.registry_lxdh.pick(rng) if p.phone else registry.NO_PHONE.pick(rng)),
            "xb": "sex",
        }
        if kind["lxdh"] == "two" and not p.phone2:
            kind["lxdh"] = "plain"
        row = list(registry._jm_row(rng, self.street, p, False, jmid, kind))
        row[13] = row[14] = self.stamp()  # created and updated today
        self.db.execute(f"INSERT INTO t_jm VALUES ({', '.join('?' * len(row))})", row)  # noqa: S608
        self.jm[jmid] = p
        self.rows.setdefault(p.pid, []).append(jmid)

    # -- the grid ------------------------------------------------------------------------------------
    def _grid_version(self, name: str, item_id: str, stamp: str, **changes) -> None:
        item = {**self.current[name][item_id], **changes, "update_time": stamp}
        self.grid[name].append(item)
        self.current[name][item_id] = item

    def _grid_new_resident(self, p: Person) -> None:
        rng = self.rng
        i = len(self.current["residents"])
        kind = {
            "name": self.tables.grid_name.pick(rng),
            "id": self.tables.grid_id.pick(rng) if p.hukou != "境外" else "full",
            "phone": self.tables.grid_phone.pick(rng) if p.phone else "null",
            "address": self.tables.grid_address.pick(rng),
            "fullwidth": "ascii",
            "status": "在册",
        }
        item = gridw._resident(rng, self.street, i, p, kind)
        item["update_time"] = self.stamp()
        self.grid["residents"].append(item)
        self.current["residents"][item["person_id"]] = item
        self.gp[p.pid] = item["person_id"]
        p.in_grid = True

    def _grid_left(self, p: Person) -> None:
        gp = self.gp.get(p.pid)
        if gp and self.rng.random() < 0.6:
            self._grid_version("residents", gp, self.stamp(), status="已迁出")

    # -- people ------------------------------------------------------------------------------------
    def _new_person(
        self,
        house: House,
        name: str,
        sex: int,
        birth: dt.date,
        number: str,
        hukou: str,
        relation: str,
        ethnicity: str = "汉族",
    ) -> Person:
        p = Person(
            pid=f"T{len(self.street.persons) + 1:07d}",
            name=name,
            sex=sex,
            birth=birth,
            id_number=number,
            ethnicity=ethnicity,
            hukou=hukou,
            house=house,
            relation=relation,
            moved_in=self.d,
        )
        self.issued.add(number)
        house.members.append(p)
        self.street.persons.append(p)
        return p

    def _fresh_phone(self) -> str:
        while (number := mobile(self.rng)) in self.phones:
            pass
        self.phones.add(number)
        return number

    def _birth(self):
        s = self.street
        mothers = [
            p
            for p in s.persons
            if p.living
            and p.in_registry
            and p.sex == 2
            and 22 <= s.age(p) <= 40
            and p.role == "resident"
            and p.relation in ("户主", "配偶")
            and p.hukou != "境外"
        ]
        mother = self._pick(mothers)
        if mother is None:
            return False
        sex = self.rng.choice((1, 2))
        family = next((m.name[0] for m in mother.house.members if m.relation == "户主" and m.sex == 1), None)
        from islandbridge.devtools.simulator import names

        name = names.person_name(self.rng, sex, self.d.year, family)
        number = population._unique_id(self.rng, self.issued, mother.id_number[:6], self.d, sex)
        baby = self._new_person(
            mother.house, name, sex, self.d, number, mother.hukou, "子女", mother.ethnicity
        )
        baby.phone = mother.phone if self.rng.random() < 0.3 else None
        self._insert(baby)
        if mother.in_grid and self.rng.random() < 0.5:
            self._grid_new_resident(baby)

    def _death(self):
        s = self.street
        old = [p for p in s.persons if p.living and self._plain(p) and s.age(p) >= 75]
        p = self._pick(old or [p for p in s.persons if p.living and self._plain(p) and s.age(p) >= 60])
        if p is None:
            return False
        p.status, p.exit_date = 3, self.d
        self._update(p, self.stamp(), zt=3, zxrq=self.d.isoformat())
        self._grid_left(p)

    def _move_out(self):
        s = self.street
        p = self._pick(
            [p for p in s.persons if p.living and self._plain(p) and p.in_registry and 18 <= s.age(p) <= 40]
        )
        if p is None:
            return False
        p.status, p.exit_date = 2, self.d
        self._update(p, self.stamp(), zt=2, zxrq=self.d.isoformat())
        self._grid_left(p)

    def _move_back(self):
        s = self.street
        gone = [
            p
            for p in s.persons
            if p.status == 2
            and self._plain(p)
            and p.in_registry
            and p.prev_exit is None
            and self._rows_of(p)
            and p.exit_date < self.d
        ]
        p = self._pick(gone)
        if p is None:
            return False
        p.prev_moved_in, p.prev_exit, p.prev_house = p.moved_in, p.exit_date, p.house
        p.moved_in, p.status, p.exit_date = self.d, 1, None
        self._insert(p)
        gp = self.gp.get(p.pid)
        if gp:
            self._grid_version("residents", gp, self.stamp(), status="在册")

    def _empty_house(self) -> House:
        """An empty flat, else a new flat in an existing building unit (so its door gate exists)."""
        s = self.street
        empty = [h for h in s.houses if not h.members or not any(m.living for m in h.members)]
        if empty:
            return self.rng.choice(empty)
        taken = {(h.estate.code, h.building, h.unit, h.room) for h in s.houses}
        base = self.rng.choice(s.houses)
        room = next(
            f * 100 + r
            for f in range(1, population.FLOORS + 1)
            for r in range(1, population.ROOMS_PER_FLOOR + 1)
            if (base.estate.code, base.building, base.unit, f * 100 + r) not in taken
        )
        house = House(
            f"FW{len(s.houses) + 1:07d}", base.estate, base.building, base.unit, room, base.grid_code
        )
        s.houses.append(house)
        self.db.execute(
            "INSERT INTO t_fw VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                house.fwbh,
                house.estate.code,
                str(house.building),
                str(house.unit),
                str(house.room),
                house.grid_code,
                self.stamp(),
            ),
        )
        return house

    def _new_household(self):
        rng, s = self.rng, self.street
        house = self._empty_house()
        kind = rng.choice(("couple", "family", "young_single"))
        hukou = "户籍" if rng.random() < 0.8 else "流动"
        before = len(s.persons)
        population._add_household(
            rng, s, house, kind, hukou, population._household_shape(rng, kind), self.issued
        )
        for p in s.persons[before:]:
            p.moved_in = self.d
            p.in_registry = hukou == "户籍" or rng.random() < 0.7
            if s.age(p) >= 16:
                p.phone = self._fresh_phone()
            if p.in_registry:
                self._insert(p)
            if rng.random() < 0.5:
                self._grid_new_resident(p)
            if s.age(p) >= 8 and rng.random() < 0.7:
                self._card(p)

    def _phone_change(self):
        s = self.street
        p = self._pick([p for p in s.persons if p.living and p.phone and s.age(p) >= 16 and self._plain(p)])
        if p is None:
            return False
        p.stale_phone, p.phone = p.phone, self._fresh_phone()
        stamp = self.stamp()
        if p.in_registry:
            self._update(p, stamp, lxdh=p.phone)
        gp = self.gp.get(p.pid)
        if gp:
            self._grid_version("residents", gp, stamp, phone=render_phone(p.phone, "plain"))
        for h in self.holders:
            if h.person is p and self.rng.random() < 0.5:
                item = {**self.holder_current[h.holder_id], "phone": p.phone}
                item["updated_at"] = utc_text(dt.datetime.fromisoformat(stamp).replace(tzinfo=LOCAL_TZ))
                self.holder_items.append(item)
                self.holder_current[h.holder_id] = item
                break

    def _address_change(self):
        s = self.street
        p = self._pick(
            [p for p in s.persons if p.living and p.in_registry and self._plain(p) and 20 <= s.age(p) < 65]
        )
        if p is None:
            return False
        house = self._empty_house()
        p.house.members.remove(p)
        house.members.append(p)
        p.house = house
        stamp = self.stamp()
        self._update(p, stamp, fwbh=house.fwbh)
        gp = self.gp.get(p.pid)
        if gp:
            self._grid_version(
                "residents", gp, stamp, address=gridw.address(house, "full"), grid_code=house.grid_code
            )

    def _hard_delete(self):
        s = self.street
        gone = [
            p
            for p in s.persons
            if p.status == 2
            and self._plain(p)
            and p.in_registry
            and p.prev_exit is None
            and p.exit_date < self.d
        ]
        p = self._pick([q for q in gone if self._rows_of(q)])
        if p is None:
            return False
        for jmid in self._rows_of(p):
            self.db.execute("DELETE FROM t_jm_bq WHERE jmid = ?", (jmid,))
            self.db.execute("DELETE FROM t_jm WHERE jmid = ?", (jmid,))
            del self.jm[jmid]
        self.rows.pop(p.pid, None)
        p.in_registry = False

    @property
    def person_of_gp(self) -> dict[str, Person]:
        by_pid = {p.pid: p for p in self.street.persons}
        return {gp: by_pid[pid] for pid, gp in self.gp.items()}

    def _grid_edit(self):
        rng = self.rng
        items = [i for i in self.current["residents"].values() if i["status"] == "在册"]
        if not items:
            return False
        item = rng.choice(items)
        person = self.person_of_gp[item["person_id"]]
        if person.phone and rng.random() < 0.5:  # the worker writes down the person's current number
            change = {"phone": render_phone(person.phone, rng.choice(("plain", "dashed", "spaced")))}
        else:  # or retypes the address in another style
            style = self.tables.grid_address.pick(rng)  # drawn before the digits' width, as always
            fullwidth = rng.random() < 0.25 * self.street.quirks.fullwidth_digits
            change = {"address": gridw.address(person.house, style, fullwidth)}
        self._grid_version("residents", item["person_id"], self.stamp(), **change)

    def _grid_add(self):
        s = self.street
        p = self._pick([p for p in s.persons if p.living and p.role == "resident" and p.pid not in self.gp])
        if p is None:
            return False
        self._grid_new_resident(p)

    def _incident_open(self):
        rng, s = self.rng, self.street
        callers = [p for p in s.persons if p.role == "resident" and p.living and p.phone and s.age(p) >= 18]
        reporter = rng.choice(callers) if callers and rng.random() < s.quirks.reported_incidents else None
        house = reporter.house if reporter else rng.choice(s.houses)
        seq = len(self.current["events"])
        phone_kind = self.tables.grid_phone.pick(rng)
        (no_phone, name_form), *_ = gridw.reporter_forms(s, [reporter], f"life:{self.d}:{seq}")
        item = gridw._event(rng, s, seq, reporter, house, False, no_phone or phone_kind, name_form)
        stamp = self.stamp()
        created = dt.datetime.fromisoformat(stamp).replace(tzinfo=LOCAL_TZ)
        item.update(
            event_id=f"EV{created:%Y%m%d}{seq:05d}",
            created_at=epoch_ms(created),
            status="待受理",
            update_time=stamp,
            closed_at=None,
        )
        self.grid["events"].append(item)
        self.current["events"][item["event_id"]] = item
        if reporter:
            self.reporters[item["event_id"]] = reporter.pid

    def _incident_close(self):
        start = epoch_ms(dt.datetime.combine(self.d, dt.time(), LOCAL_TZ))
        open_ = [
            e for e in self.current["events"].values() if e["status"] != "已办结" and e["created_at"] < start
        ]
        if not open_:
            return False
        e = self.rng.choice(open_)
        stamp = self.stamp()
        self._grid_version("events", e["event_id"], stamp, status="已办结", closed_at=stamp)

    def _visit(self):
        rng = self.rng
        people = [i for i in self.current["residents"].values() if i["status"] == "在册"]
        if not people:
            return False
        item = rng.choice(people)
        worker = self.current["grids"][item["grid_code"]]["worker_id"]
        stamp = self.stamp()
        n = len(self.current["visits"]) + 1
        visit = {
            "visit_id": f"VS{n:07d}",
            "worker_id": worker,
            "person_id": item["person_id"],
            "visit_time": stamp,
            "visit_type": "走访" if rng.random() < 0.65 else "电话回访",
            "findings": rng.choice(gridw.FINDINGS),
            "update_time": stamp,
        }
        self.grid["visits"].append(visit)
        self.current["visits"][visit["visit_id"]] = visit

    def _card(self, p: Person) -> None:
        stamp = self.stamp()
        house = p.house
        p.cards += 1
        holder = iotw.Holder(
            f"H{len(self.holders) + 1:07d}",
            p,
            self.doors[(house.estate.code, house.building, house.unit)],
            _stamp_ms(stamp),
        )
        item = iotw.cardholders_json(self.rng, self.street, [holder])[0]
        # cardholders_json forces every name quirk into its list; one new holder gets one drawn at its rate
        item["name"] = gridw.grid_name(self.rng, p.name, self.tables.iot_name.pick(self.rng))
        item["updated_at"] = utc_text(dt.datetime.fromisoformat(stamp).replace(tzinfo=LOCAL_TZ))
        self.holders.append(holder)
        self.holder_items.append(item)
        self.holder_current[holder.holder_id] = item

    def _new_card(self):
        s = self.street
        p = self._pick(
            [p for p in s.persons if p.living and not p.cards and self._plain(p) and s.age(p) >= 8]
        )
        if p is None:
            return False
        self._card(p)

    # -- the elderly: going silent, coming back -----------------------------------------------------
    def _go_silent(self) -> None:
        """An active old person living alone goes silent this day: their alert shows two days later."""
        s = self.street
        solo = [
            p
            for p in s.persons
            if p.design == "active"
            and p.living
            and p.cards
            and not any(q is not p and q.living for q in p.house.members)
        ]
        p = self._pick(solo)
        if p is not None:
            p.design = "went_silent"
            p.stop_ms = s.t_ms - int(self.rng.uniform(6, 20) * HOUR_MS)
            self.counts["went_silent"] = 1

    def _recover(self) -> None:
        """A silent old person is seen again: a door passage (and water) this day, none of the silence after."""
        p = self._pick([p for p in self.street.persons if p.design == "silent" and p.cards and p.living])
        if p is not None:
            p.design = "recovered"
            p.resume_ms = self.street.t_ms - int(self.rng.uniform(3, 20) * HOUR_MS)
            self.counts["recovered"] = 1


gridw_ids = {
    "grids": "grid_code",
    "workers": "worker_id",
    "residents": "person_id",
    "events": "event_id",
    "visits": "visit_id",
}
