"""Benchmark of `normalize_table` on a synthetic district: numbers to report, not a pass/fail test.

Run ``python -c "from islandbridge.transforms.normalize import bench_normalize; bench_normalize()"``.
The table mimics the sources' quirks in plausible proportions and a district's cardinalities: ID
numbers and phones nearly all distinct, names and addresses repeating.
"""

from __future__ import annotations

import random
import time

import pyarrow as pa
from stdnum.cn import ric

_REGIONS = ("511403", "511402", "511421", "511423", "510104", "510107", "510108", "450102")
_SURNAMES = (
    "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢"
)
_GIVEN = (
    "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超秀兰霞平刚桂英华玉萍红娥玲芬燕彬浩宇佳欣怡子涵梓萱雨桐建国振华"
)
_TRADITIONAL = str.maketrans(
    "张陈刘杨黄赵吴孙马郭罗郑谢韩冯邓曹叶苏吕丽强军杰娟涛华红玲浩",
    "張陳劉楊黃趙吳孫馬郭羅鄭謝韓馮鄧曹葉蘇呂麗強軍傑娟濤華紅玲浩",
)
_MOBILE_PREFIXES = ("138", "139", "150", "151", "186", "188", "199", "166", "177", "133", "180", "159")
_FULL_WIDTH = str.maketrans("0123456789", "０１２３４５６７８９")
_ESTATE_WORDS = "锦江 蜀南 彭祖 滨江 岷江 凤鸣 观音 长寿 天府 翠湖 紫薇 丽景 江口 南街 青龙 桂花".split()
_ESTATE_SUFFIXES = "苑 花园 新城 小区 嘉园 华庭 新居 湾".split()


def bench_normalize(n: int = 1_000_000, seed: int = 7) -> dict[str, dict[str, float]]:
    """Normalise an `n`-row synthetic table column by column and all at once; print and return rows/s."""
    from islandbridge.transforms.normalize.table import normalize_table

    rng = random.Random(seed)
    t0 = time.perf_counter()
    estates = {
        f"{word}{suffix}": f"XQ{i:03d}"
        for i, (word, suffix) in enumerate((w, s) for w in _ESTATE_WORDS for s in _ESTATE_SUFFIXES[:4])
    }
    table = pa.table(
        {
            "sfzh": [_id(rng) for _ in range(n)],
            "lxdh": [_phone(rng) for _ in range(n)],
            "xm": [_name(rng) for _ in range(n)],
            "address": [_address(rng, list(estates)) for _ in range(n)],
        }
    )
    print(f"[bench] generated {n:,} rows in {time.perf_counter() - t0:.1f} s", flush=True)
    results: dict[str, dict[str, float]] = {}
    for column, kind in (
        ("sfzh", "id"),
        ("lxdh", "phone"),
        ("xm", "name"),
        ("address", "address"),
        (None, "all"),
    ):
        spec = (
            {"sfzh": "id", "lxdh": "phone", "xm": "name", "address": "address"}
            if column is None
            else {column: kind}
        )
        distinct = len(table[column].unique()) if column else float("nan")
        t0 = time.perf_counter()
        normalize_table(table, spec, known_estates=estates)
        seconds = time.perf_counter() - t0
        results[kind] = {"rows": n, "distinct": distinct, "seconds": seconds, "rows_per_s": n / seconds}
        print(
            f"[bench] {kind:<8} {n:>10,} rows  {distinct:>10,.0f} distinct  {seconds:6.2f} s  "
            f"{n / seconds:>12,.0f} rows/s",
            flush=True,
        )
    return results


def _id(rng: random.Random) -> str | None:
    born = f"{rng.randint(1930, 2020)}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"
    body = f"{rng.choice(_REGIONS)}{born}{rng.randrange(1000):03d}"
    number = body + ric.calc_check_digit(body + "0")
    roll = rng.random()
    if roll < 0.20:
        return f"{number[:6]}********{number[-4:]}"
    if roll < 0.22:
        return f"{float(number[:17]) * 10:.5E}"
    if roll < 0.24:
        return number[:6] + number[8:17]
    if roll < 0.25:
        return None
    if roll < 0.26:
        return f"E{rng.randrange(10**8):08d}"
    if roll < 0.27:
        return number[:-1] + ("0" if number[-1] != "0" else "1")
    if roll < 0.32:
        return f"{number[:6]} {number[6:14]} {number[14:].lower()}"
    return number


def _phone(rng: random.Random) -> str | None:
    number = f"{rng.choice(_MOBILE_PREFIXES)}{rng.randrange(10**8):08d}"
    roll = rng.random()
    styles = (
        (0.60, number),
        (0.70, f"{number[:3]}-{number[3:7]}-{number[7:]}"),
        (0.80, f"+86 {number}"),
        (0.84, f"86{number}"),
        (0.88, f"{number[:3]} {number[3:7]} {number[7:]}"),
        (0.91, number.translate(_FULL_WIDTH)),
        (0.94, f"{number}/138{rng.randrange(10**8):08d}"),
        (0.96, f"028-{rng.randrange(10**7, 10**8)}"),
        (0.98, "无"),
    )
    return next((value for limit, value in styles if roll < limit), None)


def _name(rng: random.Random) -> str:
    name = rng.choice(_SURNAMES) + "".join(rng.choice(_GIVEN) for _ in range(rng.choice((1, 1, 2))))
    roll = rng.random()
    if roll < 0.05:
        return name.translate(_TRADITIONAL)
    if roll < 0.10 and len(name) == 2:
        return f"{name[0]}  {name[1]}"
    if roll < 0.12:
        return f"{name} "
    return name


def _address(rng: random.Random, estates: list[str]) -> str:
    estate, b, u = rng.choice(estates), rng.randint(1, 20), rng.randint(1, 3)
    room = f"{rng.randint(1, 18)}{rng.randint(1, 4):02d}"
    styles = (
        f"{estate}{b}栋{u}单元{room}室",
        f"{estate}{b}-{u}-{room}",
        f"{estate}小区{b}幢{u}单元{room}号",
        f"眉山市彭山区{estate}{b}栋{u}单元{room}",
        f"{b}栋{u}单元{room}",
        f"{estate}{b}栋{u}单元{room}".translate(_FULL_WIDTH),
    )
    return rng.choice(styles)
