"""The IoT event log: seven days of door, meter, heartbeat and alarm events, streamed in arrival order.

Volume is the point of this system (a 300,000-person street logs about twenty million events a week),
so the log is generated hour by hour with NumPy and formatted with Arrow compute kernels, never as one
Python object per event. Its generator is seeded from the street's seed, so the log is as reproducible
as every other file.

How the platform's delivery is simulated:

- every event happens at a true time; it *arrives* after a delay: seconds for most, minutes to hours for
  a few, up to about two days for a handful (the retention keeps 7 days of arrivals, ending at T);
- a few events are delivered twice (same ``event_id``), the copy arriving later;
- a few devices have a broken clock for some hours and stamp ``ts`` = 0 or a time years ahead;
- the file is ordered by arrival, so ``ts`` is not monotonic.

While writing, the generator notes what a correct consumer can see of the elderly-alert population
(their cards' ``access_granted`` events and their water meters' readings, with valid timestamps and
arrived by T), so the ground truth says exactly what the delivered log supports.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from islandbridge.devtools.simulator.common import DAY_MS, HOUR_MS, epoch_ms, local_midnight
from islandbridge.devtools.simulator.iot_lines import (
    ALARM,
    ALARM_CODES,
    DENIED,
    GRANTED,
    HEARTBEAT,
    READING,
    TYPES,
    LineFormat,
)
from islandbridge.devtools.simulator.population import Street
from islandbridge.devtools.simulator.scenarios import SILENT_DESIGNS

FUTURE_TS = (1_829_664_000_000, 4_102_444_800_000)  # 2027-12-24 and 2100-01-01: clocks gone wrong
RETENTION_HOURS = 7 * 24
LEAD_HOURS = 48  # events happening up to two days before the retained window can still arrive in it
# Share of a day's door passages and water use falling in each local hour.
DOOR_BY_HOUR = np.array([1, 1, 1, 1, 1, 2, 5, 9, 9, 6, 5, 6, 7, 5, 5, 5, 6, 9, 10, 8, 6, 4, 2, 1], float)
DOOR_BY_HOUR /= DOOR_BY_HOUR.sum()
WATER_BY_HOUR = np.array([1, 1, 1, 1, 1, 2, 6, 9, 7, 4, 3, 4, 6, 4, 3, 3, 4, 6, 9, 9, 8, 6, 3, 2], float) / 9


@dataclass
class Observed:
    """What the delivered log shows about watched cards and meters (valid ``ts`` only, counted once)."""

    last_access_ms: dict[str, int] = field(default_factory=dict)  # person id -> newest access_granted ts
    readings: dict[str, list[tuple[int, int]]] = field(
        default_factory=lambda: defaultdict(list)
    )  # house code (fwbh) -> (ts, value)


@dataclass
class _Columns:
    """A batch of events as parallel arrays; ``holder``/``value``/``alarm`` are -1 where null."""

    true_ms: np.ndarray
    ts: np.ndarray
    arrival: np.ndarray
    dev: np.ndarray
    kind: np.ndarray
    holder: np.ndarray
    value: np.ndarray
    alarm: np.ndarray
    uid: np.ndarray  # (n, 16) uint8

    @staticmethod
    def concat(parts: list[_Columns]) -> _Columns:
        return _Columns(
            *(np.concatenate([getattr(p, f) for p in parts]) for f in _Columns.__dataclass_fields__)
        )

    def take(self, index: np.ndarray) -> _Columns:
        return _Columns(*(getattr(self, f)[index] for f in _Columns.__dataclass_fields__))

    def __len__(self) -> int:
        return len(self.true_ms)


def write_events(seed: int, street: Street, devices, holders, path: Path, days=None, on_day=None):
    """Stream the log to ``path``; return counts and the :class:`Observed` facts for the truth.

    ``days`` (a living street, ``days.py``): the log runs on to the end of the last day, and after each
    day's last arrival hour ``on_day(index, lines_so_far, observed)`` is called, while ``observed``
    holds exactly what had arrived by that day's end.
    """
    log = _EventLog(seed, street, devices, holders, days, on_day)
    with path.open("wb") as sink:
        log.run(sink)
    return log.counts, log.observed


class _EventLog:
    def __init__(self, seed: int, street: Street, devices, holders, days=None, on_day=None) -> None:
        rng = random.Random(f"islandbridge-simulator:{seed}:iot-events")
        self.g = np.random.Generator(np.random.PCG64(rng.getrandbits(64)))
        self.street, self.devices, self.holders = street, devices, holders
        self.days, self.on_day = list(days or [street.as_of]), on_day
        self.multi = len(self.days) > 1
        self.t_ms = epoch_ms(local_midnight(self.days[0])) + DAY_MS  # T of the first day
        self.end_ms = self.t_ms + (len(self.days) - 1) * DAY_MS  # T of the last day
        self.lines_written = 0
        self.start_ms = self.t_ms - RETENTION_HOURS * HOUR_MS
        self.origin_ms = self.start_ms - LEAD_HOURS * HOUR_MS
        self.window_ms = self.t_ms - 48 * HOUR_MS
        self.pending: dict[int, list[_Columns]] = defaultdict(list)
        self.counts = {"events": 0, "duplicates": 0, "late_over_1h": 0, "broken_clock": 0}
        self.counts.update({t: 0 for t in TYPES})
        self.observed = Observed()
        self._setup_devices()
        self._setup_holders()
        self._setup_traps()
        self._setup_forced()

    # -- set-up ------------------------------------------------------------------------------------
    def _setup_devices(self) -> None:
        g, devices = self.g, self.devices
        kinds = [d.kind for d in devices]
        online = np.array([d.online for d in devices])
        self.lines = LineFormat(devices, self.holders)
        self.meter_dev = np.array(
            [i for i, k in enumerate(kinds) if k in ("water_meter", "electric_meter") and online[i]], np.int64
        )
        is_water = np.array([kinds[i] == "water_meter" for i in self.meter_dev])
        houses = [devices[i].house for i in self.meter_dev]
        occupants = np.array([sum(1 for m in h.members if m.living) for h in houses])
        self.meter_water = is_water
        self.meter_p = np.where(is_water, np.minimum(0.9, 0.3 * occupants), 1.0)
        self.meter_value = np.where(
            is_water, g.integers(20_000, 900_000, len(houses)), g.integers(500_000, 9_000_000, len(houses))
        )
        self.meter_offset = g.integers(0, HOUR_MS - 5_000, len(houses))
        stop = [min([m.stop_ms for m in h.members if m.stop_ms] or [2**62]) for h in houses]
        self.meter_stop = np.array(stop, np.int64)
        resume = [min([m.resume_ms for m in h.members if m.resume_ms] or [2**62]) for h in houses]
        self.meter_resume = np.array(resume, np.int64)
        self.meter_force = np.full(len(houses), -1, np.int64)
        self.house_of_meter = {int(d): devices[d].house.fwbh for d in self.meter_dev}
        watched = {p.house.fwbh for p in self.street.persons if self._watched(p)}
        self.dev_watched = np.zeros(len(devices), bool)
        self.dev_watched[self.meter_dev] = [is_water[i] and h.fwbh in watched for i, h in enumerate(houses)]
        for i, h in enumerate(houses):
            if is_water[i] and any(m.design in ("active", "water_only") for m in h.members):
                self.meter_force[i] = self.t_ms - int(self.g.uniform(3, 20) * HOUR_MS)
        self.beat_dev = np.array(
            [i for i, k in enumerate(kinds) if k in ("door_access", "smoke_detector") and online[i]], np.int64
        )
        self.beat_every = np.array([6 if kinds[i] == "door_access" else 4 for i in self.beat_dev])
        self.beat_phase = g.integers(0, 6, len(self.beat_dev))
        self.smoke_dev = np.array(
            [i for i, k in enumerate(kinds) if k == "smoke_detector" and online[i]], np.int64
        )
        self._setup_broken_clocks(kinds, watched)

    def _watched(self, p) -> bool:
        """Whose signals the truth needs: the designed elderly; on a living street anyone 69+ as well,
        since a death or a move can make them live alone from one day to the next."""
        return bool(p.design) or (self.multi and self.street.age(p) >= 69)

    def _setup_broken_clocks(self, kinds: list[str], watched: set[str]) -> None:
        """A few devices (never the elderly stories' own) lose their clock for some hours."""
        n = len(self.devices)
        self.broken_from = np.zeros(n, np.int64)
        self.broken_to = np.zeros(n, np.int64)
        self.broken_ts = np.zeros(n, np.int64)
        door_watch = {h.door for h in self.holders if self._watched(h.person)}
        spare = [
            i
            for i, d in enumerate(self.devices)
            if d.house.fwbh not in watched
            and i not in door_watch
            and d.online
            and d.kind in ("door_access", "water_meter")
        ]
        picks = {i for i in spare if self.g.random() < 0.004}
        for kind in ("door_access", "water_meter"):  # at least one of each, with each kind of wrong clock
            of_kind = [i for i in spare if kinds[i] == kind]
            picks.update(of_kind[:1] + of_kind[-1:])
        for n_pick, i in enumerate(sorted(picks)):
            begin = self.start_ms + int(self.g.integers(12, 100 + 24 * (len(self.days) - 1))) * HOUR_MS
            self.broken_from[i], self.broken_to[i] = begin, begin + int(self.g.integers(2, 10)) * HOUR_MS
            self.broken_ts[i] = 0 if n_pick % 2 == 0 else FUTURE_TS[n_pick // 2 % 2]

    def _setup_holders(self) -> None:
        g, street = self.g, self.street
        people = [h.person for h in self.holders]
        ages = np.array([street.age(p) for p in people])
        per_day = np.where(ages >= 70, 1.6, np.where(ages < 16, 2.0, 3.0))
        per_day = np.where([p.role == "caregiver" for p in people], 1.0, per_day)
        self.holder_rate = per_day
        self.holder_door = np.array([h.door for h in self.holders], np.int64)
        stops = [p.stop_ms or (self._midnight_ms(p.exit_date) if not p.living else 2**62) for p in people]
        self.holder_stop = np.array(stops, np.int64)
        self.holder_start = np.array([h.start_ms for h in self.holders], np.int64)
        self.holder_resume = np.array([p.resume_ms or 2**62 for p in people], np.int64)
        self.holder_force = np.array(
            [
                self.t_ms - int(g.uniform(3, 20) * HOUR_MS) if p.design in ("active", "card_only") else -1
                for p in people
            ],
            np.int64,
        )
        self.holder_watched = np.array([self._watched(p) for p in people], bool)

    @staticmethod
    def _midnight_ms(day) -> int:
        return epoch_ms(local_midnight(day))

    def _setup_traps(self) -> None:
        """Events that must not count for silent people: late, duplicated, or with a broken clock."""
        g = self.g
        self.traps: dict[int, list[tuple[int, int, list[int], int]]] = defaultdict(
            list
        )  # hour -> (true, ts, arrivals, holder)
        for i, h in enumerate(self.holders):
            design, stop = h.person.design, h.person.stop_ms
            if design not in ("silent_late", "silent_dup", "silent_broken"):
                continue
            # Each trap arrives inside the 48 h window, never more than 47 h after it happened.
            in_window = stop + int(g.uniform(max(10.0, (self.window_ms - stop) / HOUR_MS + 1), 47) * HOUR_MS)
            if design == "silent_late":
                trap = (stop, stop, [in_window], i)
            elif design == "silent_dup":
                trap = (stop, stop, [stop + int(g.integers(1_000, 60_000)), in_window], i)
            else:
                trap = (stop, FUTURE_TS[0] if g.random() < 0.5 else 0, [in_window], i)
            self.traps[(stop - self.origin_ms) // HOUR_MS].append(trap)

    def _setup_forced(self) -> None:
        """Forced activity by hour: the designed active people's door passage and water rise 3-20 h
        before T, and on a living street the same before each later day's end for every watched person
        who is not one of the silent stories (a recovered one only after they recovered)."""
        self.force_doors: dict[int, list[tuple[int, int]]] = defaultdict(list)
        self.force_meters: dict[int, list[int]] = defaultdict(list)
        for i, ms in enumerate(self.holder_force.tolist()):
            if ms >= 0:
                self.force_doors[(ms - self.origin_ms) // HOUR_MS].append((i, ms))
        for i, ms in enumerate(self.meter_force.tolist()):
            if ms >= 0:
                self.force_meters[(ms - self.origin_ms) // HOUR_MS].append(i)
        if not self.multi:
            return
        for i, h in enumerate(self.holders):  # a recovered person is seen the moment they recover
            if h.person.resume_ms:
                self.force_doors[(h.person.resume_ms - self.origin_ms) // HOUR_MS].append(
                    (i, h.person.resume_ms)
                )
        rng = random.Random(f"islandbridge-simulator:{self.street.seed}:iot-days")
        g = np.random.Generator(np.random.PCG64(rng.getrandbits(64)))
        lively = [self._watched(h.person) and self._lively(h.person) for h in self.holders]
        houses = {}
        for p in self.street.persons:
            if self._watched(p) and self._lively(p) and p.role == "resident":
                houses[p.house.fwbh] = True
        meters = [
            i
            for i, d in enumerate(self.meter_dev.tolist())
            if self.meter_water[i] and self.devices[d].house.fwbh in houses
        ]
        for day in range(1, len(self.days)):
            t = self.t_ms + day * DAY_MS
            for i in np.nonzero(lively)[0].tolist():
                ms = t - int(g.uniform(3, 20) * HOUR_MS)
                if self.holder_start[i] <= ms and (ms < self.holder_stop[i] or ms >= self.holder_resume[i]):
                    self.force_doors[(ms - self.origin_ms) // HOUR_MS].append((i, ms))
            for i in meters:
                if day == 1 and self.meter_resume[i] < 2**62:
                    self.force_meters[(int(self.meter_resume[i]) - self.origin_ms) // HOUR_MS].append(i)
                ms = t - int(g.uniform(3, 20) * HOUR_MS)
                if ms < self.meter_stop[i] or ms >= self.meter_resume[i]:
                    self.force_meters[(ms - self.origin_ms) // HOUR_MS].append(i)

    @staticmethod
    def _lively(p) -> bool:
        return p.design not in SILENT_DESIGNS

    # -- the hourly loop -----------------------------------------------------------------------------
    def run(self, sink) -> None:
        first_kept, first_end = LEAD_HOURS, LEAD_HOURS + RETENTION_HOURS
        for k in range(first_end + 24 * (len(self.days) - 1)):
            batch = self._hour(k)
            self._route(batch)
            if k >= first_kept:
                self._flush(k, sink)
            if self.on_day is not None and k + 1 >= first_end and (k + 1 - first_end) % 24 == 0:
                self.on_day((k + 1 - first_end) // 24, self.lines_written, self.observed)
        self.counts["events"] = sum(self.counts[t] for t in TYPES)

    def _hour(self, k: int) -> _Columns:
        start = self.origin_ms + k * HOUR_MS
        local_hour = (start // HOUR_MS + 8) % 24
        parts = [
            self._doors(k, start, local_hour),
            self._meters(k, start, local_hour),
            self._beats(k, start),
            self._alarms(k, start),
            self._trap_events(k),
        ]
        batch = _Columns.concat([p for p in parts if p is not None])
        broken = (self.broken_from[batch.dev] <= batch.true_ms) & (batch.true_ms < self.broken_to[batch.dev])
        batch.ts = np.where(broken, self.broken_ts[batch.dev], batch.ts)
        return batch

    def _make(self, true_ms, dev, kind, holder=None, value=None, alarm=None, arrival=None) -> _Columns:
        n = len(true_ms)
        minus = np.full(n, -1, np.int64)
        if arrival is None:
            arrival = true_ms + self._delays(n)
        uid = np.frombuffer(self.g.bytes(16 * n), np.uint8).reshape(n, 16)
        return _Columns(
            true_ms,
            true_ms.copy(),
            arrival,
            dev,
            np.full(n, kind, np.int64) if np.isscalar(kind) else kind,
            minus if holder is None else holder,
            minus if value is None else value,
            minus if alarm is None else alarm,
            uid,
        )

    def _delays(self, n: int) -> np.ndarray:
        g = self.g
        r = g.random(n)
        return np.where(
            r < 0.965,
            g.integers(200, 90_000, n),
            np.where(
                r < 0.995, g.integers(300_000, 6 * HOUR_MS, n), g.integers(6 * HOUR_MS, 47 * HOUR_MS, n)
            ),
        )

    def _doors(self, k: int, start: int, local_hour: int) -> _Columns:
        g = self.g
        chance = self.holder_rate * DOOR_BY_HOUR[local_hour]
        present = (self.holder_stop > start) | (self.holder_resume < start + HOUR_MS)
        if self.multi:
            present &= self.holder_start < start + HOUR_MS
        who = np.nonzero((g.random(len(chance)) < chance) & present)[0]
        when = start + g.integers(0, HOUR_MS, len(who))
        keep = (when < self.holder_stop[who]) | (when >= self.holder_resume[who])
        keep &= when >= self.holder_start[who]
        who, when = who[keep], when[keep]
        pairs = self.force_doors.get(k, [])
        forced = np.array([i for i, _ in pairs], np.int64)
        who = np.concatenate([who, forced])
        when = np.concatenate([when, np.array([ms for _, ms in pairs], np.int64)])
        kind = np.where(g.random(len(who)) < 0.02, DENIED, GRANTED)
        kind[len(who) - len(forced) :] = GRANTED
        return self._make(when, self.holder_door[who], kind, holder=who)

    def _meters(self, k: int, start: int, local_hour: int) -> _Columns:
        g = self.g
        n = len(self.meter_dev)
        used = g.random(n) < self.meter_p * np.where(self.meter_water, WATER_BY_HOUR[local_hour], 1.0)
        step = np.where(self.meter_water, g.integers(5_000, 80_000, n), g.integers(30, 800, n))
        step = np.where(used & ((self.meter_stop > start) | (self.meter_resume <= start)), step, 0)
        forced = np.zeros(n, bool)
        forced[self.force_meters.get(k, [])] = True
        step = np.where(forced, np.maximum(step, 20_000), step)
        self.meter_value += step
        when = start + self.meter_offset + g.integers(0, 2_000, n)
        return self._make(when, self.meter_dev, READING, value=self.meter_value.copy())

    def _beats(self, k: int, start: int) -> _Columns:
        due = np.nonzero((k + self.beat_phase) % self.beat_every == 0)[0]
        return self._make(start + self.g.integers(0, HOUR_MS, len(due)), self.beat_dev[due], HEARTBEAT)

    def _alarms(self, k: int, start: int) -> _Columns | None:
        if not len(self.smoke_dev):
            return None
        hit = np.nonzero(self.g.random(len(self.smoke_dev)) < 0.0003)[0]
        if k == LEAD_HOURS + RETENTION_HOURS // 2:  # every log has at least one alarm
            hit = np.union1d(hit, [0])
        code = self.g.choice(len(ALARM_CODES), len(hit), p=[0.2, 0.6, 0.2])
        return self._make(
            start + self.g.integers(0, HOUR_MS, len(hit)), self.smoke_dev[hit], ALARM, alarm=code
        )

    def _trap_events(self, k: int) -> _Columns | None:
        traps = self.traps.get(k)
        if not traps:
            return None
        rows = [(true, ts, arrival, holder) for true, ts, arrivals, holder in traps for arrival in arrivals]
        true, ts, arrival, holder = (np.array(c, np.int64) for c in zip(*rows, strict=True))
        batch = self._make(true, self.holder_door[holder], GRANTED, holder=holder, arrival=arrival)
        batch.ts, batch.uid = ts, batch.uid.copy()
        uid_of = {}
        for i, (t, _ts, _a, h) in enumerate(rows):  # copies of one trap share their event_id
            batch.uid[i] = uid_of.setdefault((t, h), batch.uid[i].copy())
        return batch

    def _route(self, batch: _Columns) -> None:
        """Add re-deliveries, then file each event under the hour it arrives in (inside retention only)."""
        g = self.g
        again = np.nonzero(g.random(len(batch)) < 0.004)[0]
        if len(again):
            copies = batch.take(again)
            # A re-delivery comes later than the first copy, but within the platform's two days.
            latest = np.maximum(copies.arrival + 30_000, copies.true_ms + 47 * HOUR_MS)
            copies.arrival = copies.arrival + (g.random(len(again)) * (latest - copies.arrival)).astype(
                np.int64
            )
            self.counts["duplicates"] += len(again)
            batch = _Columns.concat([batch, copies])
        kept = np.nonzero((batch.arrival >= self.start_ms) & (batch.arrival < self.end_ms))[0]
        batch = batch.take(kept)
        hours = (batch.arrival - self.origin_ms) // HOUR_MS
        order = np.argsort(hours, kind="stable")
        for part in np.split(order, np.nonzero(np.diff(hours[order]))[0] + 1):
            if len(part):
                self.pending[int(hours[part[0]])].append(batch.take(part))

    def _flush(self, k: int, sink) -> None:
        parts = self.pending.pop(k, [])
        if not parts:
            return
        batch = _Columns.concat(parts)
        batch = batch.take(np.argsort(batch.arrival, kind="stable"))
        self._observe(batch)
        self._count(batch)
        self.lines_written += len(batch)
        line = self.lines.format(batch)
        offsets = np.frombuffer(line.buffers()[1], np.int32, count=len(line) + 1, offset=line.offset * 4)
        sink.write(memoryview(line.buffers()[2])[offsets[0] : offsets[-1]])

    def _count(self, batch: _Columns) -> None:
        for i, name in enumerate(TYPES):
            self.counts[name] += int(np.count_nonzero(batch.kind == i))
        self.counts["late_over_1h"] += int(np.count_nonzero(batch.arrival - batch.true_ms > HOUR_MS))
        self.counts["broken_clock"] += int(
            np.count_nonzero((batch.ts == 0) | (batch.ts > self.end_ms + DAY_MS))
        )

    def _observe(self, batch: _Columns) -> None:
        valid = (batch.ts >= self.origin_ms - DAY_MS) & (batch.ts <= self.end_ms)
        access = np.nonzero(valid & (batch.kind == GRANTED) & (batch.holder >= 0))[0]
        access = access[self.holder_watched[batch.holder[access]]]
        last = self.observed.last_access_ms
        for holder, ts in zip(batch.holder[access].tolist(), batch.ts[access].tolist(), strict=True):
            pid = self.holders[holder].person.pid
            last[pid] = max(last.get(pid, 0), ts)
        readings = np.nonzero(valid & (batch.kind == READING) & self.dev_watched[batch.dev])[0]
        for dev, ts, value in zip(
            batch.dev[readings].tolist(),
            batch.ts[readings].tolist(),
            batch.value[readings].tolist(),
            strict=True,
        ):
            self.observed.readings[self.house_of_meter[dev]].append((ts, value))
