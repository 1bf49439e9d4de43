"""System D, the IoT platform: ``iot/devices.json``, ``iot/cardholders.json`` and ``iot/events.jsonl``.

Devices: a door-access gate per building unit (``room`` null), and per flat a water meter (most flats),
an electric meter (a pilot in some flats) and a smoke detector (some flats). Card holders are residents
with a door card, people who left and whose card was never revoked, and caregivers and tenants that no
other system knows. The event log itself is written by ``iot_events``.
"""

from __future__ import annotations

import datetime as dt
import random
from dataclasses import dataclass
from pathlib import Path

from islandbridge.devtools.simulator import names, quirks
from islandbridge.devtools.simulator.common import Chooser, ensure_each, randint, utc_text, write_json_list
from islandbridge.devtools.simulator.population import House, Person, Street

NAME_TABLE = {"plain": 94, "typo": 3, "traditional": 3}
PHONE_TABLE = {"true": 80, "none": 15, "stale": 5}
NAME, PHONE = Chooser(NAME_TABLE), Chooser(PHONE_TABLE)


@dataclass(slots=True)
class Device:
    device_id: str
    kind: str  # door_access | water_meter | electric_meter | smoke_detector
    house: House  # for a door: any house of its building unit
    online: bool = True


@dataclass(slots=True)
class Holder:
    holder_id: str
    person: Person
    door: int  # index of the holder's door device
    start_ms: int = 0  # when the card was issued (a living street's new card holders)


def build_devices(
    rng: random.Random, street: Street
) -> tuple[list[Device], dict[tuple, int], dict[int, int]]:
    """All devices in a stable order, and the index of the door device of each building unit."""
    devices: list[Device] = []
    doors: dict[tuple, int] = {}
    for house in street.houses:
        key = (house.estate.code, house.building, house.unit)
        if key not in doors:
            doors[key] = len(devices)
            devices.append(Device(f"DR{len(doors):06d}", "door_access", house))
    for kind, prefix, flag in (
        ("water_meter", "WM", "water"),
        ("electric_meter", "EM", "electric"),
        ("smoke_detector", "SD", "smoke"),
    ):
        count = 0
        for house in street.houses:
            if getattr(house, flag):
                count += 1
                # Some detectors and electric meters are offline; water meters are what the welfare check needs.
                online = kind == "water_meter" or rng.random() > 0.02
                devices.append(Device(f"{prefix}{count:06d}", kind, house, online))
    return devices, doors


def devices_json(rng: random.Random, street: Street, devices: list[Device]) -> list[dict]:
    rollout = {e.code: dt.date(2024, randint(rng, 3, 9), 1) for e in street.estates}
    items = []
    for d in devices:
        installed = rollout[d.house.estate.code] + dt.timedelta(days=0 if d.kind == "door_access" else 31)
        items.append(
            {
                "device_id": d.device_id,
                "device_type": d.kind,
                "estate_code": d.house.estate.code,
                "building": str(d.house.building),
                "unit": str(d.house.unit),
                "room": None if d.kind == "door_access" else str(d.house.room),
                "status": "online" if d.online else "offline",
                "installed_at": utc_text(
                    dt.datetime(installed.year, installed.month, installed.day, tzinfo=dt.UTC)
                ),
            }
        )
    return items


def build_holders(street: Street, doors: dict[tuple, int]) -> list[Holder]:
    holders = []
    for person in street.persons:
        house = person.house
        for _ in range(person.cards):
            holders.append(
                Holder(
                    f"H{len(holders) + 1:07d}", person, doors[(house.estate.code, house.building, house.unit)]
                )
            )
    return holders


def cardholders_json(rng: random.Random, street: Street, holders: list[Holder]) -> list[dict]:
    t = quirks.tables(street.quirks)
    name_kinds = [t.iot_name.pick(rng) for _ in holders]
    ensure_each(
        rng,
        name_kinds,
        quirks.present(t.iot_name, ("typo", "traditional")),
        "plain",
        lambda i, k: (
            (names.homophone_typo if k == "typo" else names.traditional)(holders[i].person.name) is not None
        ),
    )
    items = []
    for h, name_kind in zip(holders, name_kinds, strict=True):
        p, house = h.person, h.person.house
        phone_kind = t.iot_phone.pick(rng)
        phone = {"true": p.phone, "none": None, "stale": p.stale_phone or p.phone}[phone_kind]
        name = p.name
        if name_kind == "typo":
            name = names.homophone_typo(p.name) or p.name
        elif name_kind == "traditional":
            name = names.traditional(p.name) or p.name
        outsider = p.role != "resident"
        updated = street.t_end - dt.timedelta(minutes=randint(rng, 60, 300 * 24 * 60))
        items.append(
            {
                "holder_id": h.holder_id,
                "name": name,
                "phone": phone,
                "estate_code": house.estate.code,
                "building": str(house.building),
                "unit": str(house.unit),
                "room": str(house.room),
                "card_no": "C" + h.holder_id[1:],
                "face_enrolled": rng.random() < 0.6,
                "valid_until": f"{street.as_of.year + (0 if outsider else 1)}-12-31",
                "updated_at": utc_text(updated),
            }
        )
    return items


def write_iot(seed: int, rng: random.Random, street: Street, out: Path):
    """Write the three files; return counts, truth records and what the log shows of the elderly."""
    from islandbridge.devtools.simulator.iot_events import write_events

    out.mkdir(parents=True, exist_ok=True)
    devices, doors = build_devices(rng, street)
    holders = build_holders(street, doors)
    write_json_list(out / "devices.json", devices_json(rng, street, devices))
    write_json_list(out / "cardholders.json", cardholders_json(rng, street, holders))
    event_counts, observed = write_events(seed, street, devices, holders, out / "events.jsonl")
    counts = {"devices": len(devices), "cardholders": len(holders), **event_counts}
    records = [("iot_platform", f"cardholders:{h.holder_id}", h.person.pid) for h in holders]
    return counts, records, observed
