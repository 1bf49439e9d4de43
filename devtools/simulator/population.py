"""The true street: estates, houses, households and the people in them, before any system writes them down.

This is the generator's model of reality, and the ground truth is computed from it. The four systems
(``registry``, ``grid``, ``civil``, ``iot``) only *render* it, each with its own omissions and damage;
nothing here knows how a system spells a phone number. Designed cases that the department answers rely
on (silent elderly people, stale subsidy rows) are added afterwards by ``scenarios``.
"""

from __future__ import annotations

import datetime as dt
import functools
import math
import random
from dataclasses import dataclass, field

from islandbridge.devtools.simulator import names
from islandbridge.devtools.simulator.common import (
    Chooser,
    add_months,
    age_on,
    epoch_ms,
    local_midnight,
    randint,
    random_date,
)
from islandbridge.devtools.simulator.formats import FLOATING_AREAS, LOCAL_AREAS, make_id, mobile, passport
from islandbridge.devtools.simulator.quirks import Quirks

RESIDENTS_PER_ESTATE = 4000
GRIDS_PER_COMMUNITY = 6
BUILDINGS, UNITS, FLOORS, ROOMS_PER_FLOOR = 24, 4, 18, 4

# The first households of every street, so that a 300-resident street still holds every case the
# department answers need (elderly people living alone, a foreign household, floating families).
PRELUDE = (
    ["elder_single"] * 8 + ["elder_couple"] * 2 + ["three_gen", "foreign", "floating", "floating", "uyghur"]
)
HOUSEHOLD_KINDS = Chooser(
    {
        "elder_single": 9,
        "elder_couple": 9,
        "young_single": 10,
        "couple": 12,
        "family": 34,
        "three_gen": 16,
        "floating": 8,
        "foreign": 0.6,
    }
)
ETHNICITY = Chooser(names.ETHNICITIES)


@dataclass(slots=True, eq=False)
class Estate:
    code: str
    name: str
    community_code: str
    community_name: str


@dataclass(slots=True, eq=False)
class House:
    fwbh: str
    estate: Estate
    building: int
    unit: int
    room: int
    grid_code: str
    members: list[Person] = field(default_factory=list)
    water: bool = False
    electric: bool = False
    smoke: bool = False


@dataclass(slots=True, eq=False)
class Person:
    """One true person. ``house`` is where they live (or last lived); statuses follow the registry's codes."""

    pid: str
    name: str
    sex: int
    birth: dt.date
    id_number: str
    ethnicity: str
    hukou: str
    house: House
    relation: str
    moved_in: dt.date
    status: int = 1
    exit_date: dt.date | None = None
    phone: str | None = None
    phone2: str | None = None
    stale_phone: str | None = None
    in_registry: bool = True
    in_grid: bool = False
    prev_house: House | None = None
    prev_moved_in: dt.date | None = None
    prev_exit: dt.date | None = None
    reg_tags: list[str] = field(default_factory=list)
    grid_tags: list[str] = field(default_factory=list)
    role: str = "resident"
    cards: int = 0
    design: str = ""
    stop_ms: int | None = None
    resume_ms: int | None = None  # a silent person's devices see them again from here (days.py)
    flags: set[str] = field(default_factory=set)

    @property
    def living(self) -> bool:
        return self.status == 1


@dataclass(slots=True, eq=False)
class Grid:
    code: str
    name: str
    community_code: str
    community_name: str


@dataclass(eq=False)
class Street:
    """The whole model of one street as of the end of ``as_of`` (local time)."""

    seed: int
    code: str
    name: str
    as_of: dt.date
    estates: list[Estate]
    grids: list[Grid]
    houses: list[House] = field(default_factory=list)
    persons: list[Person] = field(default_factory=list)
    quirks: Quirks = field(default_factory=Quirks)

    @functools.cached_property
    def t_end(self) -> dt.datetime:
        """T: the end of the as-of date in Asia/Shanghai, the instant every answer is for."""
        return local_midnight(self.as_of + dt.timedelta(days=1))

    @functools.cached_property
    def t_ms(self) -> int:
        return epoch_ms(self.t_end)

    @property
    def month_first(self) -> dt.date:
        """The first day of roster month M (the month of the as-of date)."""
        return self.as_of.replace(day=1)

    @property
    def prev_month_first(self) -> dt.date:
        return add_months(self.as_of, -1)

    def age(self, person: Person) -> int:
        """Age at T, in completed years on the as-of date."""
        return age_on(person.birth, self.as_of)

    def is_alone(self, person: Person) -> bool:
        """The only living member of their house in the registry (the departments' definition)."""
        if not (person.in_registry and person.living):
            return False
        return not any(q is not person and q.in_registry and q.living for q in person.house.members)

    def residents(self) -> list[Person]:
        return [p for p in self.persons if p.role == "resident"]


def build_population(
    seed: int, residents: int, as_of: dt.date, street_code: str, quirks: Quirks | None = None
) -> Street:
    """Households of ``residents`` people, their exits, registry presence and earlier stays.

    Phones, tags and grid presence come later (``assign_*``), after the designed stories have set the
    statuses they depend on. ``quirks`` (default ``Quirks()``) is kept on the street for every writer.
    """
    rng = random.Random(f"islandbridge-simulator:{seed}:population")
    street = _geography(rng, seed, residents, as_of, street_code)
    street.quirks = quirks or Quirks()
    _households(rng, street, residents)
    _exits(rng, street)
    _registry_presence(rng, street)
    _moved_back(rng, street)
    return street


def _geography(rng: random.Random, seed: int, residents: int, as_of: dt.date, code: str) -> Street:
    n_estates = max(15, math.ceil(residents / RESIDENTS_PER_ESTATE))
    n_communities = max(5, math.ceil(n_estates / 3))
    communities = [(f"{code}{i + 1:03d}", names.community_name(i)) for i in range(n_communities)]
    estates = [
        Estate(f"XQ{i + 1:03d}", name, *communities[i % n_communities])
        for i, name in enumerate(names.estate_names(n_estates))
    ]
    grids = [
        Grid(f"{c_code}{g + 1:02d}", f"{g + 1:02d}号网格", c_code, c_name)
        for c_code, c_name in communities
        for g in range(GRIDS_PER_COMMUNITY)
    ]
    return Street(seed, code, names.street_name(code), as_of, estates, grids)


class _HouseFactory:
    """Hands out distinct rooms; a building belongs to one grid of its estate's community."""

    def __init__(self, rng: random.Random, street: Street) -> None:
        self.rng, self.street = rng, street
        self.taken: set[tuple[int, int, int, int]] = set()
        self.building_grid: dict[tuple[int, int], str] = {}

    def new(self) -> House:
        rng, street = self.rng, self.street
        while True:
            e = int(rng.random() * len(street.estates))
            key = (
                e,
                randint(rng, 1, BUILDINGS),
                randint(rng, 1, UNITS),
                randint(rng, 1, FLOORS) * 100 + randint(rng, 1, ROOMS_PER_FLOOR),
            )
            if key not in self.taken:
                break
        self.taken.add(key)
        estate = street.estates[e]
        if (e, key[1]) not in self.building_grid:
            own = [g.code for g in street.grids if g.community_code == estate.community_code]
            self.building_grid[(e, key[1])] = rng.choice(own)
        house = House(
            f"FW{len(street.houses) + 1:07d}", estate, key[1], key[2], key[3], self.building_grid[(e, key[1])]
        )
        street.houses.append(house)
        return house


def _household_shape(rng: random.Random, kind: str) -> list[tuple[str, int, int]]:
    """(relation, sex, age) of each member; the head first."""
    head_sex = rng.choice((1, 2))
    other = 3 - head_sex
    if kind == "elder_single":
        return [("户主", head_sex, rng.choice((randint(rng, 70, 84), randint(rng, 72, 98))))]
    if kind == "elder_couple":
        age = randint(rng, 68, 94)
        return [("户主", head_sex, age), ("配偶", other, max(60, age + randint(rng, -5, 4)))]
    if kind == "young_single":
        return [("户主", head_sex, randint(rng, 22, 45))]
    if kind == "couple":
        age = randint(rng, 25, 66)
        return [("户主", head_sex, age), ("配偶", other, max(20, age + randint(rng, -5, 5)))]
    if kind == "foreign":
        age = randint(rng, 25, 60)
        return [("户主", head_sex, age)] + (
            [("配偶", other, age + randint(rng, -5, 5))] if rng.random() < 0.6 else []
        )
    age = randint(rng, 28, 55)
    members = [("户主", head_sex, age), ("配偶", other, max(21, age + randint(rng, -5, 5)))]
    members += [
        ("子女", rng.choice((1, 2)), randint(rng, 0, max(0, age - 22)))
        for _ in range(rng.choice((1, 1, 2, 2, 3)))
    ]
    if kind == "three_gen":
        members += [
            ("父母", rng.choice((1, 2)), min(99, age + randint(rng, 22, 36)))
            for _ in range(rng.choice((1, 1, 2)))
        ]
    return members


def _households(rng: random.Random, street: Street, residents: int) -> None:
    houses, issued = _HouseFactory(rng, street), set()
    while len(street.persons) < residents:
        index = len(street.houses)
        kind = PRELUDE[index] if index < len(PRELUDE) else HOUSEHOLD_KINDS.pick(rng)
        hukou = {"foreign": "境外", "floating": "流动"}.get(kind) or (
            "户籍" if rng.random() < 0.9 else "流动"
        )
        shape = _household_shape(rng, "family" if kind == "uyghur" else kind)[
            : residents - len(street.persons)
        ]
        _add_household(rng, street, houses.new(), kind, hukou, shape, issued)


def _add_household(rng, street: Street, house: House, kind: str, hukou: str, shape, issued: set[str]) -> None:
    as_of = street.as_of
    area = rng.choice(FLOATING_AREAS if hukou == "流动" else LOCAL_AREAS[:1] * 4 + LOCAL_AREAS)
    surname = rng.choice(names.SURNAMES)
    arrived = random_date(rng, as_of - dt.timedelta(days=2000), as_of - dt.timedelta(days=10))
    ethnicity = "维吾尔族" if kind == "uyghur" else ETHNICITY.pick(rng)
    for relation, sex, age in shape:
        birth = as_of - dt.timedelta(days=int(age * 365.25) + randint(rng, 1, 364))
        own_ethnicity = (
            "汉族" if kind == "foreign" else ethnicity if rng.random() < 0.85 else ETHNICITY.pick(rng)
        )
        if kind == "foreign":
            name, number = names.foreign_name(rng, sex), passport(rng)
        else:
            family = surname if relation in ("户主", "子女") and rng.random() < 0.9 else None
            if own_ethnicity == "维吾尔族":
                name = names.uyghur_name(rng, sex)
            else:
                name = names.person_name(rng, sex, birth.year, family)
            own_area = area if relation != "配偶" or rng.random() < 0.5 else rng.choice(LOCAL_AREAS)
            number = _unique_id(rng, issued, own_area, birth, sex)
        moved_in = max(
            birth + dt.timedelta(days=randint(rng, 10, 60)),
            random_date(rng, arrived - dt.timedelta(days=200), arrived),
        )
        person = Person(
            pid=f"T{len(street.persons) + 1:07d}",
            name=name,
            sex=sex,
            birth=birth,
            id_number=number,
            ethnicity=own_ethnicity,
            hukou=hukou,
            house=house,
            relation=relation,
            moved_in=min(moved_in, as_of - dt.timedelta(days=1)),
        )
        house.members.append(person)
        street.persons.append(person)


def _unique_id(rng: random.Random, issued: set[str], area: str, birth: dt.date, sex: int) -> str:
    """A fresh ID number; its sequence is odd for men and even for women, as GB 11643 has it."""
    while True:
        number = make_id(area, birth, sex % 2 + 2 * int(rng.random() * 500))
        if number not in issued:
            issued.add(number)
            return number


def _exit_date(rng: random.Random, person: Person, as_of: dt.date) -> dt.date:
    return random_date(rng, person.moved_in + dt.timedelta(days=30), as_of - dt.timedelta(days=1))


def _exits(rng: random.Random, street: Street) -> None:
    """Households that left, people who left alone, and deaths (more often among the old)."""
    for house in street.houses:
        if rng.random() < 0.025 and house.members[0].hukou != "境外":
            when = _exit_date(rng, max(house.members, key=lambda m: m.moved_in), street.as_of)
            for member in house.members:
                member.status, member.exit_date = 2, when
    for person in street.persons:
        if person.status != 1:
            continue
        age, r = street.age(person), rng.random()
        if r < (0.06 if age >= 75 else 0.012 if age >= 60 else 0.001):
            person.status = 3
        elif 18 <= age <= 40 and r < 0.035:
            person.status = 2
        if person.status != 1:
            person.exit_date = _exit_date(rng, person, street.as_of)
    for status in (2, 3):  # every street shows both kinds of exit, however small
        if not any(p.status == status for p in street.persons):
            candidates = [
                p for p in street.persons if p.living and p.hukou == "户籍" and 20 <= street.age(p) < 70
            ]
            person = rng.choice(candidates or street.persons)
            person.status, person.exit_date = status, _exit_date(rng, person, street.as_of)


def _registry_presence(rng: random.Random, street: Street) -> None:
    """Floating residents are often missing from the registry: whole households, or single members."""
    for house in street.houses:
        members = house.members
        if members[0].hukou == "流动" and rng.random() < 0.25:
            for member in members:
                member.in_registry = False
    for person in street.persons:
        if person.hukou == "流动" and rng.random() < 0.04:
            person.in_registry = False
    if not any(not p.in_registry and p.living for p in street.persons):
        rng.choice([p for p in street.persons if p.hukou == "流动" and p.living]).in_registry = False


def _moved_back(rng: random.Random, street: Street) -> None:
    """People who moved out and back in: an old registry row (status 2) and a new one (status 1)."""
    candidates = [
        p
        for p in street.persons
        if p.in_registry
        and p.living
        and street.age(p) >= 22
        and p.hukou != "境外"
        and p.moved_in > p.birth + dt.timedelta(days=23 * 365)
    ]
    count = max(1, round(len(candidates) * 0.012))
    for person in rng.sample(candidates, min(count, len(candidates))):
        make_moved_back(rng, street, person)


def make_moved_back(
    rng: random.Random, street: Street, person: Person, before: dt.date | None = None
) -> None:
    """Give ``person`` an earlier stay that ended with a move out; ``before`` bounds the re-entry date."""
    if before is not None and person.moved_in >= before:
        person.moved_in = random_date(rng, before - dt.timedelta(days=400), before - dt.timedelta(days=20))
    earliest = person.birth + dt.timedelta(days=18 * 365)
    person.prev_moved_in = max(earliest, person.moved_in - dt.timedelta(days=randint(rng, 500, 1500)))
    person.prev_exit = random_date(
        rng, person.prev_moved_in + dt.timedelta(days=60), person.moved_in - dt.timedelta(days=20)
    )
    person.prev_house = person.house if rng.random() < 0.5 else rng.choice(street.houses)


def assign_phones(rng: random.Random, street: Street) -> None:
    """Own numbers for people 16 and over; old people often give a child's number instead."""
    used: set[str] = set()
    stale = min(1.0, 0.12 * street.quirks.stale_phones)

    def fresh() -> str:
        while (number := mobile(rng)) in used:
            pass
        used.add(number)
        return number

    for person in street.persons:
        if street.age(person) >= 16:
            person.phone = fresh()
            person.phone2 = fresh() if rng.random() < 0.05 else None
            person.stale_phone = fresh() if rng.random() < stale else None
    adults = [p for p in street.persons if 30 <= street.age(p) <= 55 and p.phone]
    for person in street.persons:
        age = street.age(person)
        if age < 16 and rng.random() < 0.3:
            parent = next(
                (m for m in person.house.members if m.relation in ("户主", "配偶") and m.phone), None
            )
            person.phone = parent.phone if parent else None
        elif age >= 75 and rng.random() < 0.45 and adults:
            kids = [m for m in person.house.members if street.age(m) <= age - 18 and m.phone]
            child = rng.choice(kids or adults)
            person.stale_phone, person.phone = person.phone, child.phone
            person.flags.add("shared_phone")


def add_namesakes(rng: random.Random, street: Street) -> None:
    """Namesakes on purpose (``Quirks.namesakes_flat`` / ``namesakes_estate``): in a share of households,
    a member takes the name of another of the same sex (a mother and daughter both 冯语嫣); a share of
    people take the name of someone of the same sex in another flat of their estate. Different people
    all the same (IDs, births, phones differ): the identity model must not merge them."""
    q = street.quirks
    if q.namesakes_flat:
        for house in street.houses:
            members = [m for m in house.members if m.hukou != "境外"]
            by_sex = [[m for m in members if m.sex == sex] for sex in (1, 2)]
            pairs = [group for group in by_sex if len(group) >= 2]
            if pairs and rng.random() < q.namesakes_flat:
                first, second = rng.sample(rng.choice(pairs), 2)
                second.name = first.name
                second.flags.add("namesake_flat")
    if q.namesakes_estate:
        pool: dict[tuple[str, int], list[Person]] = {}
        for p in street.persons:
            if p.hukou != "境外" and p.role == "resident":
                pool.setdefault((p.house.estate.code, p.sex), []).append(p)
        for p in street.persons:
            if p.hukou == "境外" or p.role != "resident" or rng.random() >= q.namesakes_estate:
                continue
            others = pool[(p.house.estate.code, p.sex)]
            for _ in range(5):
                other = rng.choice(others)
                if other.house is not p.house and other.name != p.name:
                    p.name = other.name
                    p.flags.add("namesake_estate")
                    break


def assign_tags(rng: random.Random, street: Street) -> None:
    """独居老人 / 残疾人 / 退役军人 in the registry and the grid: overlapping, each incomplete, a few stale."""
    for person in street.persons:
        age = street.age(person)
        if age >= 70 and person.living:
            alone = street.is_alone(person)
            if rng.random() < (0.6 if alone else 0.04):
                person.reg_tags.append("独居老人")
            if rng.random() < (0.5 if alone else 0.03):
                person.grid_tags.append("独居老人")
        if rng.random() < 0.03:
            for tags, chance in ((person.reg_tags, 0.8), (person.grid_tags, 0.7)):
                if rng.random() < chance:
                    tags.append("残疾人")
        if person.sex == 1 and age >= 40 and rng.random() < 0.02:
            person.reg_tags.append("退役军人")
    registered = [p for p in street.persons if p.in_registry]
    for tag in ("独居老人", "残疾人", "退役军人"):
        if not any(tag in p.reg_tags for p in registered):
            pool = (
                [p for p in registered if street.age(p) >= 70 and street.is_alone(p)]
                if tag == "独居老人"
                else []
            )
            rng.choice(pool or registered).reg_tags.append(tag)


def assign_grid_presence(rng: random.Random, street: Street) -> None:
    """Who the grid workers have registered: most residents, floating people the registry lacks, and
    a good part of those who left (marked 已迁出, or still 在册 when nobody updated them)."""
    for person in street.persons:
        if person.role != "resident":
            continue
        if not person.in_registry:
            chance = 0.85
        else:
            chance = 0.78 if person.living else 0.55
        person.in_grid = rng.random() < chance
    dotted = [p for p in street.persons if "·" in p.name and p.role == "resident" and p.living]
    if dotted and not any(p.in_grid for p in dotted):  # every name form reaches the grid platform
        rng.choice(dotted).in_grid = True
