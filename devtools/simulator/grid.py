"""System B, the grid platform: writes ``grid/{grids,workers,residents,events,visits}.json``.

Each file is the full list of items exactly as the REST API returns them; the simulated server pages
and filters them. The grid workers type what residents tell them, so names carry pinyin-input typos
and traditional characters, ID numbers are mostly masked by the vendor, phones may be an old number,
and the address is free text in whichever style the worker prefers.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import random
from pathlib import Path

from islandbridge.devtools.simulator import names, quirks
from islandbridge.devtools.simulator.common import (
    Chooser,
    ensure_each,
    epoch_ms,
    local_text,
    randint,
    random_date,
    sub_rng,
    write_json_list,
)
from islandbridge.devtools.simulator.formats import (
    ADDRESS_STYLES,
    PHONE_FORMS,
    legacy15,
    masked_id,
    mobile,
    render_address,
    render_phone,
    spaced_id,
)
from islandbridge.devtools.simulator.population import House, Person, Street
from islandbridge.devtools.simulator.scenarios import outsider

# Quirk rates per record under the default ``Quirks()``; ``quirks.tables`` derives a street's own.
NAME_TABLE = {"plain": 88, "typo": 6, "traditional": 6}
ID_CARD_TABLE = {"masked": 50, "full": 27, "spaces": 2, "trailing": 2, "legacy15": 1.5, "null": 17.5}
PHONE_TABLE = {"plain": 55, "plus86": 10, "cc86": 8, "dashed": 6, "spaced": 6, "fullwidth": 5, "null": 10}
ADDRESS_TABLE = {"full": 40, "dashed": 15, "xiaoqu": 15, "city": 15, "bare": 15}
NAME, ID_CARD, PHONE, ADDRESS = (Chooser(t) for t in (NAME_TABLE, ID_CARD_TABLE, PHONE_TABLE, ADDRESS_TABLE))
TITLES = {
    "环境卫生": ["楼道堆放杂物", "垃圾清运不及时", "小区绿化带积水"],
    "消防安全": ["消防通道被车辆占用", "电动车楼道充电", "灭火器过期"],
    "矛盾纠纷": ["邻里噪音纠纷", "楼上漏水引发纠纷", "停车位纠纷"],
    "设施维修": ["路灯不亮", "电梯故障", "单元门禁损坏"],
    "民生服务": ["独居老人需要帮助", "咨询高龄补贴办理", "申请低保咨询"],
    "治安隐患": ["高空抛物", "陌生人员频繁出入", "窨井盖缺失"],
}
FINDINGS = ["身体状况良好", "无异常", "需要助餐服务", "行动不便", "独居，子女不在身边", "已协助联系社区医生"]


def write_grid(
    rng: random.Random, street: Street, out: Path
) -> tuple[dict[str, int], list[tuple[str, str, str]]]:
    """Write the five lists; return item counts and the truth records."""
    out.mkdir(parents=True, exist_ok=True)
    workers = _workers(rng, street)
    grids = [
        {
            "grid_code": g.code,
            "grid_name": g.name,
            "community_code": g.community_code,
            "community_name": g.community_name,
            "worker_id": workers[i]["worker_id"],
            "update_time": _day_text(rng, street),
        }
        for i, g in enumerate(street.grids)
    ]
    people = [p for p in street.persons if p.role == "resident" and p.in_grid]
    residents = _residents(rng, street, people)
    events, reporters = _events(rng, street)
    visits = _visits(rng, street, residents, people, {g["grid_code"]: g["worker_id"] for g in grids})
    for name, items in (
        ("grids", grids),
        ("workers", workers),
        ("residents", residents),
        ("events", events),
        ("visits", visits),
    ):
        write_json_list(out / f"{name}.json", items)
    records = [
        ("grid_platform", f"residents:{r['person_id']}", p.pid)
        for r, p in zip(residents, people, strict=True)
    ]
    records += [("grid_platform", f"events:{e['event_id']}", p.pid) for e, p in reporters]
    counts = {
        "grids": len(grids),
        "workers": len(workers),
        "residents": len(residents),
        "events": len(events),
        "visits": len(visits),
    }
    return counts, records


def _day_text(rng: random.Random, street: Street) -> str:
    return f"{random_date(rng, street.as_of.replace(month=1, day=1), street.as_of)} 00:00:00"


def _moment(rng: random.Random, street: Street, days_back: int) -> dt.datetime:
    """A whole-minute local moment within ``days_back`` days before T (the vendor stores minutes)."""
    return street.t_end - dt.timedelta(minutes=randint(rng, 1, days_back * 24 * 60))


def _workers(rng: random.Random, street: Street) -> list[dict]:
    """One active worker per grid, and some who left (inactive) whose visits remain."""
    staff = [(g.code, True) for g in street.grids] + [
        (rng.choice(street.grids).code, False) for _ in range(max(1, len(street.grids) // 10))
    ]
    return [
        {
            "worker_id": f"W{i + 1:04d}",
            "name": names.person_name(rng, rng.choice((1, 2)), randint(rng, 1970, 1998)),
            "phone": mobile(rng),
            "grid_code": code,
            "active": active,
            "update_time": _day_text(rng, street),
        }
        for i, (code, active) in enumerate(staff)
    ]


def grid_name(rng: random.Random, name: str, kind: str) -> str:
    if kind == "typo":
        return names.homophone_typo(name) or name
    if kind == "traditional":
        return names.traditional(name) or name
    return name


def _residents(rng: random.Random, street: Street, people: list[Person]) -> list[dict]:
    q, t = street.quirks, quirks.tables(street.quirks)
    stale, fullwidth = quirks.rate(0.4 * q.stale_phones), quirks.rate(0.25 * q.fullwidth_digits)
    kinds = {
        "name": [t.grid_name.pick(rng) for _ in people],
        "id": [t.grid_id.pick(rng) for _ in people],
        "phone": [
            ("stale" if p.stale_phone and rng.random() < stale else t.grid_phone.pick(rng))
            if p.phone
            else "null"
            for p in people
        ],
        "address": [t.grid_address.pick(rng) for _ in people],
        "fullwidth": ["fw" if rng.random() < fullwidth else "ascii" for _ in people],
        "status": ["left" if not p.living else "在册" for p in people],
    }
    kinds["status"] = [
        ("stale" if rng.random() < 0.2 else "已迁出") if k == "left" else k for k in kinds["status"]
    ]
    ensure_each(rng, kinds["status"], ("已迁出",), "stale")
    ensure_each(
        rng,
        kinds["name"],
        quirks.present(t.grid_name, ("typo", "traditional")),
        "plain",
        lambda i, k: (names.homophone_typo if k == "typo" else names.traditional)(people[i].name) is not None,
    )
    for i, p in enumerate(people):  # a worker copying an ID from paper keeps its lowercase x
        if kinds["id"][i] == "full" and p.id_number.endswith("X") and rng.random() < 0.4:
            kinds["id"][i] = "lower_x"
    ensure_each(
        rng,
        kinds["id"],
        quirks.present(t.grid_id, ("masked", "full", "null", "legacy15", "lower_x", "spaces", "trailing")),
        "full",
        lambda i, k: people[i].hukou != "境外" and (k != "lower_x" or people[i].id_number.endswith("X")),
    )
    ensure_each(
        rng,
        kinds["phone"],
        ("stale", *PHONE_FORMS) if stale > 0 else PHONE_FORMS,
        "plain",
        lambda i, k: bool(people[i].phone) and (k != "stale" or bool(people[i].stale_phone)),
    )
    styles = quirks.present(t.grid_address, ADDRESS_STYLES)
    ensure_each(rng, kinds["address"], styles, ("full",) if "full" in styles else styles)
    ensure_each(rng, kinds["fullwidth"], ("fw",) if fullwidth > 0 else (), "ascii")
    return [_resident(rng, street, i, p, {k: v[i] for k, v in kinds.items()}) for i, p in enumerate(people)]


def _resident(rng: random.Random, street: Street, i: int, p: Person, kind: dict[str, str]) -> dict:
    return {
        "person_id": f"GP{i + 1:06d}",
        "name": grid_name(rng, p.name, kind["name"]),
        "gender": "男" if p.sex == 1 else "女",
        "id_card": _id_card(p, kind["id"]),
        "phone": _phone(p, kind["phone"]),
        "address": address(p.house, kind["address"], kind["fullwidth"] == "fw"),
        "grid_code": p.house.grid_code,
        "tags": list(p.grid_tags),
        "status": "在册" if kind["status"] in ("在册", "stale") else "已迁出",
        "update_time": local_text(_moment(rng, street, 320)),
    }


def _id_card(p: Person, kind: str) -> str | None:
    if p.hukou == "境外":
        return p.id_number if kind in ("full", "masked") else None
    return {
        "masked": masked_id(p.id_number),
        "full": p.id_number,
        "spaces": spaced_id(p.id_number),
        "trailing": p.id_number + " ",
        "legacy15": legacy15(p.id_number),
        "lower_x": p.id_number.lower(),
        "null": None,
    }[kind]


def _phone(p: Person, kind: str) -> str | None:
    if kind == "null" or not p.phone:
        return None
    if kind == "stale":
        return p.stale_phone
    return render_phone(p.phone, kind)


def address(house: House, style: str, fullwidth: bool = False) -> str:
    return render_address(house.estate.name, house.building, house.unit, house.room, style, fullwidth)


def _events(rng: random.Random, street: Street) -> tuple[list[dict], list[tuple[dict, Person]]]:
    """Incidents; a resident reporter's name and phone sometimes end up in the free-text description."""
    q, t = street.quirks, quirks.tables(street.quirks)
    callers = [
        p for p in street.persons if p.role == "resident" and p.living and p.phone and street.age(p) >= 18
    ]
    count = max(30, round(len(street.residents()) * q.incidents_per_resident))
    who = [
        rng.choice(callers) if rng.random() < q.reported_incidents or seq == 0 else None
        for seq in range(count)
    ]
    who = _visitors(street, who)
    phone_kinds = [t.grid_phone.pick(rng) for _ in who]
    ensure_each(rng, phone_kinds, PHONE_FORMS, "plain", lambda i, _k: who[i] is not None)
    forms = reporter_forms(street, who)
    events, reporters = [], []
    for seq, (reporter, phone_kind, form) in enumerate(zip(who, phone_kinds, forms, strict=True)):
        house = (
            reporter.house if reporter and rng.random() < q.reporter_in_flat else rng.choice(street.houses)
        )
        # The first event always leaks its reporter into the text, so every street has the case.
        leak = bool(reporter) and (rng.random() < 0.12 or seq == 0)
        event = _event(rng, street, seq, reporter, house, leak, form[0] or phone_kind, form[1])
        events.append(event)
        if reporter:
            reporters.append((event, reporter))
    return events, reporters


def _visitors(street: Street, who: list[Person | None]) -> list[Person | None]:
    """``who`` with ``quirks.outside_reporters`` of the reporters replaced by people who live elsewhere,
    drawn from a generator of their own (at the default share of 0, the very same list)."""
    share = street.quirks.outside_reporters
    if not share:
        return who
    qrng = sub_rng(street.seed, "quirks:visitors")
    out: list[Person | None] = []
    for seq, reporter in enumerate(who):
        if reporter is None or qrng.random() >= share:
            out.append(reporter)
            continue
        house = qrng.choice(street.houses)  # where the visitor "lives": the incident is anywhere
        visitor = outsider(qrng, street, house, "visitor", qrng.randint(18, 80), qrng.choice((1, 2)))
        out.append(dataclasses.replace(visitor, pid=f"V{seq + 1:07d}", cards=0))
    return out


def reporter_forms(street: Street, who: list[Person | None], concern: str = "events"):
    """Per incident, ``(phone kind or None, name form)`` from the reporter knobs of ``street.quirks``,
    drawn from a generator of their own: ``("null", …)`` drops the phone, a name form other than
    ``plain`` pads it. Under the default quirks every incident keeps its drawn phone and plain name."""
    q = street.quirks
    if q.reporter_without_phone is None and not q.reporter_name_variants:
        return [(None, "plain")] * len(who)
    qrng = sub_rng(street.seed, f"quirks:{concern}")
    forms = []
    for reporter in who:
        phone = (
            "null"
            if reporter and q.reporter_without_phone and qrng.random() < q.reporter_without_phone
            else None
        )
        name = "plain"
        if reporter and qrng.random() < q.reporter_name_variants:
            name = qrng.choice(
                ("pad", "ideographic", "trailing") if len(reporter.name) == 2 else ("trailing",)
            )
        forms.append((phone, name))
    return forms


def reporter_name(name: str, form: str) -> str:
    """``陈  佳`` (padded), ``陈\u3000佳`` (an ideographic space) or ``陈佳 `` (a trailing space)."""
    if form == "pad":
        return names.pad_two(name)
    if form == "ideographic" and len(name) == 2:
        return f"{name[0]}\u3000{name[1]}"
    return name + " " if form == "trailing" else name


def _event(
    rng: random.Random,
    street: Street,
    seq: int,
    reporter: Person | None,
    house: House,
    leak: bool,
    phone_kind: str,
    name_form: str = "plain",
) -> dict:
    q, t = street.quirks, quirks.tables(street.quirks)
    category = rng.choice(list(TITLES))
    text = rng.choice(TITLES[category])
    if leak:
        text += f"，联系人{reporter.name}电话{reporter.phone}"
    created = _moment(rng, street, 150)
    status = rng.choices(("已办结", "处理中", "待受理"), (60, 25, 15))[0]
    closed = (
        min(created + dt.timedelta(minutes=randint(rng, 120, 96 * 60)), street.t_end)
        if status == "已办结"
        else None
    )
    updated = min((closed or created) + dt.timedelta(minutes=randint(rng, 0, 12 * 60)), street.t_end)
    reporter_name_ = reporter.name if reporter else None
    if reporter and rng.random() < 0.03 * q.typos:
        reporter_name_ = names.homophone_typo(reporter.name) or reporter.name
    if reporter_name_ is not None:
        reporter_name_ = reporter_name(reporter_name_, name_form)
    return {
        "event_id": f"EV{created:%Y%m%d}{seq:05d}",
        "category": category,
        "title": text[:8],
        "description": text,
        "reporter_name": reporter_name_,
        "reporter_phone": _phone(reporter, phone_kind) if reporter else None,
        "address": address(house, t.grid_address.pick(rng), rng.random() < 0.2 * q.fullwidth_digits),
        "grid_code": house.grid_code,
        "status": status,
        "created_at": epoch_ms(created),
        "update_time": local_text(updated),
        "closed_at": local_text(closed) if closed else None,
    }


def _visits(
    rng: random.Random, street: Street, residents: list[dict], people: list[Person], worker_of: dict[str, str]
) -> list[dict]:
    """Welfare visits, mostly to older people, by the worker of the person's grid."""
    weights = [4 if street.age(p) >= 60 else 1 for p in people]
    count = round(len(residents) * 0.4)
    chosen = rng.choices(range(len(people)), weights, k=count) if people else []
    visits = []
    for n, i in enumerate(chosen):
        when = _moment(rng, street, 90)
        visits.append(
            {
                "visit_id": f"VS{n + 1:07d}",
                "worker_id": worker_of[residents[i]["grid_code"]],
                "person_id": residents[i]["person_id"],
                "visit_time": local_text(when),
                "visit_type": "走访" if rng.random() < 0.65 else "电话回访",
                "findings": rng.choice(FINDINGS),
                "update_time": local_text(
                    min(when + dt.timedelta(minutes=randint(rng, 10, 600)), street.t_end)
                ),
            }
        )
    return visits
