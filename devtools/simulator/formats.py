"""How one true value is written down by each system: ID numbers, phone numbers, addresses.

The population model holds clean truths (an 18-character ID with a valid check digit, an 11-digit mobile
number, estate/building/unit/room); the writers pass them through these renderers to get the forms the
real systems hold. Each renderer is a pure function of its inputs, so a quirk is easy to test alone.
"""

from __future__ import annotations

import datetime as dt
import random

from islandbridge.devtools.simulator.common import randint, to_fullwidth

MOBILE_PREFIXES = "130 131 132 133 135 136 137 138 139 150 151 152 153 155 156 157 158 159 177 180 181 182 183 186 187 188 189 191 199".split()

# Where ID numbers of each registration type were issued (the first six digits).
LOCAL_AREAS = ["511403", "511402", "511421", "511423", "510104", "510107", "510108"]
FLOATING_AREAS = ["420102", "360102", "410102", "450102", "500101", "530102", "130102", "511302"]


def check_digit(body17: str) -> str:
    """GB 11643 MOD 11-2 check character of the first 17 digits.

    The weights 2^(17-i) mod 11 make the weighted sum equal to ``2 * int(body, 2)``-like arithmetic;
    reading the digits as a base-13 number gives the same residue (13 ≡ 2 mod 11) in one C call.
    """
    check = (1 - 2 * int(body17, 13)) % 11
    return "X" if check == 10 else str(check)


def make_id(area: str, birth: dt.date, sequence: int) -> str:
    """An 18-character resident ID; ``sequence`` (0-999) is odd for men, even for women by convention."""
    body = f"{area}{birth:%Y%m%d}{sequence:03d}"
    return body + check_digit(body)


def is_valid_id(number: str) -> bool:
    return len(number) == 18 and number[:17].isdigit() and check_digit(number[:17]) == number[17]


def legacy15(id18: str) -> str:
    """The pre-1999 15-digit form: no century, no check digit (``511403900308350``)."""
    return id18[:6] + id18[8:14] + id18[14:17]


def spaced_id(id18: str) -> str:
    """``511403 19470228 1733``: area, birth date and sequence split the way they are read aloud."""
    return f"{id18[:6]} {id18[6:14]} {id18[14:]}"


def typo_id(rng: random.Random, id18: str) -> str:
    """One sequence digit mistyped, so the check digit no longer fits (always fails validation)."""
    while True:
        pos = randint(rng, 14, 16)
        wrong = id18[:pos] + str(randint(rng, 0, 9)) + id18[pos + 1 :]
        if not is_valid_id(wrong):
            return wrong


def masked_id(id18: str) -> str:
    """The grid vendor's mask: ``510104********0696``."""
    return f"{id18[:6]}********{id18[-4:]}"


def passport(rng: random.Random) -> str:
    return rng.choice("EGP") + f"{randint(rng, 0, 99_999_999):08d}"


def excel_float(id18: str) -> float:
    """What an ID typed into a number cell becomes: a double, ``4.201021959100794e+17``; the last digits are gone."""
    return float(f"{int(id18):.16g}")


def excel_csv_text(id18: str) -> str:
    """What Excel writes for that cell to CSV in General format: ``5.11403E+17``."""
    return f"{int(id18):.5E}"


def mobile(rng: random.Random) -> str:
    return rng.choice(MOBILE_PREFIXES) + f"{randint(rng, 0, 99_999_999):08d}"


PHONE_FORMS = ("plain", "dashed", "plus86", "cc86", "spaced", "fullwidth")


def render_phone(number: str, form: str) -> str:
    """One 11-digit mobile number in one of the forms people type it in."""
    match form:
        case "plain":
            return number
        case "dashed":
            return f"{number[:3]}-{number[3:7]}-{number[7:]}"
        case "plus86":
            return f"+86 {number}"
        case "cc86":
            return f"86{number}"
        case "spaced":
            return f"{number[:3]} {number[3:7]} {number[7:]}"
        case "fullwidth":
            return to_fullwidth(number)
    raise ValueError(f"unknown phone form {form!r}; known: {', '.join(PHONE_FORMS)}")


ADDRESS_STYLES = ("full", "dashed", "xiaoqu", "city", "bare")
CITY_PREFIX = "眉山市彭山区"


def render_address(
    estate: str, building: int, unit: int, room: int, style: str, fullwidth: bool = False
) -> str:
    """A free-text address in one of the five styles the grid platform holds.

    ``full`` 锦江苑3栋2单元501室 · ``dashed`` 锦江苑3-2-501 · ``xiaoqu`` 锦江苑小区3幢2单元501号 ·
    ``city`` 眉山市彭山区锦江苑3栋2单元501 · ``bare`` 3栋2单元501. ``fullwidth`` writes the digits
    full-width (and drops 室, as people do when typing on a phone).
    """
    xiaoqu = estate if estate.endswith("小区") else estate + "小区"
    match style:
        case "full":
            text = f"{estate}{building}栋{unit}单元{room}" + ("" if fullwidth else "室")
        case "dashed":
            text = f"{estate}{building}-{unit}-{room}"
        case "xiaoqu":
            text = f"{xiaoqu}{building}幢{unit}单元{room}号"
        case "city":
            text = f"{CITY_PREFIX}{estate}{building}栋{unit}单元{room}"
        case "bare":
            text = f"{building}栋{unit}单元{room}"
        case _:
            raise ValueError(f"unknown address style {style!r}; known: {', '.join(ADDRESS_STYLES)}")
    return to_fullwidth(text) if fullwidth else text
