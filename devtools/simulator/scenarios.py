"""Designed cases: the people the department answers are about, placed on purpose.

Random rates alone would leave a small street without a silent elderly person or a subsidy paid after a
death, and a test could not tell a pipeline that finds none from one that cannot. So after the random
population is drawn, these functions pick people and give them a story:

- roster stories (``design_rosters``): 80+ residents left off the 高龄补贴 roster (gaps), roster people
  who died or moved out before the month yet are still paid, one who died *during* the month (not a
  case), one who moved out and back (not a case either), 低保 heads who left, one of them removed again
  by the month's correction file;
- device stories (``design_devices``) for the elderly-alert population (living, 70+, alone or tagged
  独居老人): silent people, silent people whose only recent events are late, duplicated or from a broken
  clock, people with no device at all, people judged by their door card only or water meter only; then
  door cards, meters, caregivers' and tenants' cards for everyone else.
"""

from __future__ import annotations

import datetime as dt
import random

from islandbridge.devtools.simulator import names
from islandbridge.devtools.simulator.common import HOUR_MS, age_on, randint, random_date
from islandbridge.devtools.simulator.formats import FLOATING_AREAS, make_id, mobile
from islandbridge.devtools.simulator.population import Person, Street, make_moved_back

SILENT_DESIGNS = ("silent", "silent_late", "silent_dup", "silent_broken", "silent_water")
# The designs every street must hold, most important first (a tiny street may not have room for all).
REQUIRED_SOLO_DESIGNS = (
    "silent",
    "silent_late",
    "silent_dup",
    "silent_broken",
    "no_device",
    "silent_water",
    "water_only",
    "card_only",
)
# Hours before T when a silent person's devices last saw them, per design: always more than the 48 h
# window plus a margin, so the answer does not hinge on how a pipeline rounds the window's edge.
SILENT_SINCE_HOURS = {
    "silent": (52, 200),
    "silent_late": (52, 60),
    "silent_dup": (55, 70),
    "silent_broken": (52, 90),
    "silent_water": (52, 200),
}


def design_rosters(rng: random.Random, street: Street) -> None:
    """Senior-allowance and 低保 stories; sets statuses and ``flags`` that ``civil`` reads."""
    seniors = _senior_candidates(rng, street)
    rng.shuffle(seniors)
    stories = [
        "senior_gap",
        "senior_stale_dead",
        "senior_stale_moved",
        "senior_exit_in_month",
        "senior_moved_back",
    ]
    stories += ["senior_gap"] * max(0, round(len(seniors) * 0.04) - 1)
    for person, story in zip(seniors, stories, strict=False):
        _senior_story(rng, street, person, story)
    for person in seniors[len(stories) :]:  # newly 80: not enrolled yet, half of the time
        if _turned_80_lately(person, street.month_first) and rng.random() < 0.5:
            person.flags.add("senior_gap")
    _design_dibao(rng, street)


def _senior_story(rng: random.Random, street: Street, person: Person, story: str) -> None:
    first, prev_first = street.month_first, street.prev_month_first
    person.flags.add(story)
    if story == "senior_stale_dead":  # died before the month, still paid
        person.status = 3
        person.exit_date = random_date(rng, prev_first - dt.timedelta(days=60), first - dt.timedelta(days=1))
    elif story == "senior_stale_moved":  # moved away before the month, still paid
        person.status = 2
        person.exit_date = random_date(rng, prev_first - dt.timedelta(days=90), first - dt.timedelta(days=1))
    elif story == "senior_exit_in_month":  # died on or after the 1st: this month's payment is due
        person.status, person.exit_date = 3, random_date(rng, first, street.as_of)
    elif story == "senior_moved_back":  # an old status-2 row, but living here now
        make_moved_back(rng, street, person, before=first)


def _turned_80_lately(person: Person, first: dt.date) -> bool:
    if (person.birth.month, person.birth.day) == (2, 29):
        return False
    turned = person.birth.replace(year=person.birth.year + 80)
    return first - dt.timedelta(days=60) <= turned < first


def _senior_candidates(rng: random.Random, street: Street) -> list[Person]:
    def eligible(p: Person) -> bool:
        return (
            p.role == "resident" and p.in_registry and p.hukou == "户籍" and p.living and p.prev_exit is None
        )

    seniors = [p for p in street.persons if eligible(p) and age_on(p.birth, street.month_first) >= 80]
    if len(seniors) < 6:  # a tiny street: make a few of its 70-somethings ten years older
        younger = [
            p for p in street.persons if eligible(p) and 70 <= age_on(p.birth, street.month_first) < 80
        ]
        for person in rng.sample(younger, min(6 - len(seniors), len(younger))):
            person.birth = person.birth.replace(year=person.birth.year - 10, day=min(person.birth.day, 28))
            body = person.id_number[:6] + f"{person.birth:%Y%m%d}" + person.id_number[14:17]
            person.id_number = make_id(body[:6], person.birth, int(body[14:17]))
            seniors.append(person)
    return seniors


def _design_dibao(rng: random.Random, street: Street) -> None:
    """Pick 低保 households; one head left before the month (still paid), one is struck off by the correction."""
    first, prev_first = street.month_first, street.prev_month_first
    heads = [h.members[0] for h in street.houses if _possible_dibao_head(street, h.members[0])]
    chosen = rng.sample(heads, min(len(heads), max(6, round(len(street.houses) * 0.04))))
    if not any(len(p.name) == 2 for p in chosen):  # so that a padded 陈  佳 can occur
        taken = {id(p) for p in chosen}
        short = [p for p in heads if len(p.name) == 2 and id(p) not in taken]
        if short:
            chosen[-1] = rng.choice(short)
    for person in chosen:
        person.flags.add("dibao")
    registered = [p for p in chosen if p.in_registry and p.prev_exit is None]
    if len(registered) >= 2:
        stale, removed = registered[:2]
        stale.flags.add("dibao_stale")
        stale.status = 2
        stale.exit_date = random_date(rng, prev_first - dt.timedelta(days=120), first - dt.timedelta(days=1))
        removed.flags.add("dibao_removed")
        removed.status = rng.choice((2, 3))
        removed.exit_date = random_date(rng, prev_first, first - dt.timedelta(days=1))


def _possible_dibao_head(street: Street, p: Person) -> bool:
    return (
        p.relation == "户主"
        and p.living
        and p.hukou in ("户籍", "流动")
        and 25 <= street.age(p) < 80
        and not p.flags
    )


def elderly_population(street: Street) -> list[Person]:
    """Living registry residents aged 70+ at T who live alone or are tagged 独居老人 (registry or grid)."""
    return [
        p
        for p in street.persons
        if p.role == "resident"
        and p.in_registry
        and p.living
        and street.age(p) >= 70
        and (street.is_alone(p) or "独居老人" in p.reg_tags or (p.in_grid and "独居老人" in p.grid_tags))
    ]


def design_devices(rng: random.Random, street: Street) -> None:
    """Door cards, meters and detectors for every house and person, the elderly stories first."""
    water_fixed: dict[int, bool] = {}
    _design_elderly(rng, street, water_fixed)
    for house in street.houses:
        house.water = water_fixed.get(id(house), rng.random() < 0.75)
        house.electric = rng.random() < 0.15
        house.smoke = rng.random() < 0.25
    for kind in ("electric", "smoke"):  # every device type exists, however small the street
        if not any(getattr(h, kind) for h in street.houses):
            setattr(rng.choice(street.houses), kind, True)
    for person in street.persons:
        if person.design or street.age(person) < 8:
            continue
        if person.living and rng.random() < 0.7:
            person.cards = 2 if rng.random() < 0.03 else 1
        elif not person.living and rng.random() < 0.15:
            person.cards = 1  # the card of someone who left is seldom revoked
    dotted = [p for p in street.persons if "·" in p.name and p.living and not p.design and street.age(p) >= 8]
    if dotted and not any(p.cards for p in dotted):  # every name form reaches the IoT platform too
        rng.choice(dotted).cards = 1
    _add_outsiders(rng, street)
    for person in street.persons:  # nobody exists only in the generator's head
        if person.role == "resident" and not person.in_registry and not person.in_grid and not person.cards:
            person.in_grid = True


def _design_elderly(rng: random.Random, street: Street, water_fixed: dict[int, bool]) -> None:
    elderly = elderly_population(street)
    rng.shuffle(elderly)
    solo = [p for p in elderly if not any(q is not p and q.living for q in p.house.members)]
    solo_ids = {id(p) for p in solo}
    for person, design in zip(solo, REQUIRED_SOLO_DESIGNS, strict=False):
        person.design = design
    for person in elderly:
        if not person.design:
            person.design = _random_design(rng, id(person) in solo_ids)
        fixed = water_fixed.get(id(person.house))
        if fixed is not None:  # a second elderly person in a house follows the first one's meter
            person.design = (
                ("active" if rng.random() < 0.7 else "water_only")
                if fixed
                else ("card_only" if rng.random() < 0.7 else "no_device")
            )
        _apply_design(rng, street, person, water_fixed)


def _random_design(rng: random.Random, solo: bool) -> str:
    r = rng.random()
    if solo and r < 0.06:
        return rng.choice(SILENT_DESIGNS)
    if r < 0.16:
        return "no_device"
    if r < 0.24:
        return "water_only"
    return "card_only" if r < 0.34 else "active"


def _apply_design(rng: random.Random, street: Street, person: Person, water_fixed: dict[int, bool]) -> None:
    design = person.design
    if design in SILENT_DESIGNS:
        low, high = SILENT_SINCE_HOURS[design]
        person.stop_ms = street.t_ms - int(rng.uniform(low, high) * HOUR_MS)
        has_water = design == "silent_water" or rng.random() < 0.6
        person.cards = 0 if design == "silent_water" else 1
    else:
        has_water = design in ("active", "water_only")
        person.cards = (2 if rng.random() < 0.1 else 1) if design in ("active", "card_only") else 0
    water_fixed[id(person.house)] = has_water


def _add_outsiders(rng: random.Random, street: Street) -> None:
    """Caregivers of elderly people and tenants of empty flats: card holders no other system knows."""
    cared = [
        p for p in street.persons if p.design in ("active", "card_only", "water_only") and street.is_alone(p)
    ]
    homes = [p.house for p in cared if rng.random() < 0.25] or [p.house for p in cared[:1]]
    empty = [h for h in street.houses if not any(m.living for m in h.members)]
    rented = [h for h in empty if rng.random() < 0.4] or empty[:1]
    if not rented:
        quiet = [h for h in street.houses if not any(m.design for m in h.members)]
        rented = [rng.choice(quiet or street.houses)]
    for house in homes:
        _outsider(rng, street, house, "caregiver", randint(rng, 35, 60), 2 if rng.random() < 0.8 else 1)
    for house in rented:
        for _ in range(rng.choice((1, 1, 2))):
            _outsider(rng, street, house, "tenant", randint(rng, 20, 40), rng.choice((1, 2)))


def _outsider(rng: random.Random, street: Street, house, role: str, age: int, sex: int) -> None:
    person = outsider(rng, street, house, role, age, sex)
    house.members.append(person)
    street.persons.append(person)


def outsider(rng: random.Random, street: Street, house, role: str, age: int, sex: int) -> Person:
    """A person who is not registered on the street (a caregiver, a tenant, a visitor), placed at ``house``."""
    birth = street.as_of - dt.timedelta(days=int(age * 365.25) + randint(rng, 1, 364))
    return Person(
        pid=f"T{len(street.persons) + 1:07d}",
        name=names.person_name(rng, sex, birth.year),
        sex=sex,
        birth=birth,
        id_number=make_id(rng.choice(FLOATING_AREAS), birth, rng.randrange(sex % 2, 1000, 2)),
        ethnicity="汉族",
        hukou="流动",
        house=house,
        relation="其他",
        moved_in=random_date(
            rng, street.as_of - dt.timedelta(days=400), street.as_of - dt.timedelta(days=20)
        ),
        phone=mobile(rng),
        in_registry=False,
        role=role,
        cards=1,
    )
