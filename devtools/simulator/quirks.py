"""The simulator's quirk rates as parameters: ``Quirks``, its named profiles, and the tables it implies.

``Quirks()`` is the street every test and demo has always had (its defaults are the literals the
writers used before; ``generate(out, residents=300, seed=7)`` is byte-identical with or without it).
A linkage evaluation over many streets (``islandbridge eval matrix``) varies them, so that a model is
judged on streets it was not tuned on. Two kinds of field:

- *scale factors* (1.0 = today) for rates spread over several systems: ``typos``, ``missing_phones``,
  ``stale_phones``, ``fullwidth_digits``;
- *shares* for one rate each: ``masked_ids``, ``reported_incidents``, ``reporter_in_flat``,
  ``reporter_without_phone``, ``reporter_name_variants``, ``outside_reporters``, ``namesakes_flat``,
  ``namesakes_estate``, and the weights of the five address styles.

A knob that adds something the default street does not have (reporter phones dropped, reporter names
padded, outside reporters, namesakes) draws from a random generator of its own (``common.sub_rng(seed, "quirks:…")``), so the
draws of every other writer are unchanged: only what the knob claims changes.
"""

from __future__ import annotations

import dataclasses
import functools
from dataclasses import dataclass
from types import SimpleNamespace

from islandbridge.devtools.simulator.common import Chooser


@dataclass(frozen=True)
class Quirks:
    """How often each quirk happens. Defaults: the street as it always was (docs/simulator.md)."""

    #: × every name typo rate (grid 6 %, rosters 6 %, IoT 3 %, incident reporter 3 %) and the registry's
    #: check-digit ID typo (1.5 %).
    typos: float = 1.0
    #: share of grid residents' ID cards the vendor masks (``510104********0696``); the other kinds
    #: (full, null, spaced, 15-digit …) keep their proportions in the rest.
    masked_ids: float = 0.50
    #: × the rates of a record without its person's phone: grid NULL 10 %, IoT null 15 %, registry
    #: ``NULL``/``''``/``无`` 13 %.
    missing_phones: float = 1.0
    #: weights of the grid address styles full, dashed, xiaoqu, city, bare (residents and incidents).
    address_styles: tuple[float, float, float, float, float] = (40, 15, 15, 15, 15)
    #: × the shares of grid addresses written with full-width digits (residents 25 %, incidents 20 %).
    fullwidth_digits: float = 1.0
    #: incidents per resident in a one-day street (at least 30); a reporter with several incidents makes
    #: many grid~grid pairs of the truth.
    incidents_per_resident: float = 0.18
    #: share of incidents reported by a resident (the others have no reporter).
    reported_incidents: float = 0.65
    #: share of reported incidents located at the reporter's own flat (the others anywhere in the street).
    reporter_in_flat: float = 0.70
    #: share of reported incidents whose ``reporter_phone`` is null. None: the grid's phone mix (10 % null
    #: × ``missing_phones``).
    reporter_without_phone: float | None = None
    #: share of reporter names written padded (``陈  佳``), with an ideographic space (``陈\u3000佳``) or
    #: a trailing space.
    reporter_name_variants: float = 0.0
    #: share of reported incidents whose reporter lives elsewhere (a visitor: a name drawn like a
    #: resident's, a phone nobody on the street holds, the incident anywhere in the street).
    outside_reporters: float = 0.0
    #: share of households of two or more (not foreign) where one member bears another's name
    #: (a mother and daughter both 冯语嫣).
    namesakes_flat: float = 0.0
    #: share of people (not foreign) who bear the name of someone of the same sex in another flat of
    #: their estate.
    namesakes_estate: float = 0.0
    #: × the share of people with an old number (12 %), of grid records giving it (40 %) and of IoT card
    #: holders giving it (5 %).
    stale_phones: float = 1.0

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name == "address_styles":
                if len(value) != 5 or any(w < 0 for w in value) or not sum(value):
                    raise ValueError("address_styles: five weights ≥ 0 (full, dashed, xiaoqu, city, bare)")
            elif value is not None and not value >= 0:
                raise ValueError(f"quirk {f.name}={value!r} must be ≥ 0")
        for name in SHARES:
            value = getattr(self, name)
            if value is not None and value > 1:
                raise ValueError(f"quirk {name}={value!r} is a share: 0..1")

    def changed(self) -> dict:
        """The fields that differ from the defaults (what a street's meta.json records)."""
        default = Quirks()
        return {
            f.name: getattr(self, f.name)
            for f in dataclasses.fields(self)
            if getattr(self, f.name) != getattr(default, f.name)
        }

    def with_values(self, assignments: list[str]) -> Quirks:
        """A copy with ``key=value`` assignments applied (the CLI's ``--quirk``); ``ValueError`` if bad."""
        changes: dict = {}
        names = {f.name for f in dataclasses.fields(self)}
        for text in assignments:
            key, sep, value = text.partition("=")
            key = key.strip().replace("-", "_")
            if not sep or key not in names:
                raise ValueError(
                    f"--quirk {text!r}: expected KEY=VALUE with KEY one of {', '.join(sorted(names))}"
                )
            try:
                if key == "address_styles":
                    changes[key] = tuple(float(w) for w in value.replace(",", "/").split("/"))
                elif key == "reporter_without_phone" and value.strip().lower() in ("", "none"):
                    changes[key] = None
                else:
                    changes[key] = float(value)
            except ValueError:
                raise ValueError(f"--quirk {text!r}: {value!r} is not a number") from None
        return dataclasses.replace(self, **changes)


SHARES = (
    "masked_ids",
    "reported_incidents",
    "reporter_in_flat",
    "reporter_without_phone",
    "reporter_name_variants",
    "outside_reporters",
    "namesakes_flat",
    "namesakes_estate",
)

#: Streets unlike the default one, each pushing one family of quirks (``--quirks NAME``); ``hard`` all at once.
#: ``reporters`` is shaped after independently generated streets whose incidents were mostly reported by a
#: registered resident of the same flat, without a phone, the name padded. ``homebound`` is shaped after the
#: source systems' sample (every named incident at the reporter's own flat), with 2 % of the reporters
#: from elsewhere: there an incident away from the reporter's home is an outsider's.
_REPORTERS = Quirks(
    incidents_per_resident=0.5,
    reported_incidents=0.9,
    reporter_in_flat=0.95,
    reporter_without_phone=0.85,
    reporter_name_variants=0.5,
)
PROFILES: dict[str, Quirks] = {
    "default": Quirks(),
    "typos_low": Quirks(typos=0.5),
    "typos_high": Quirks(typos=2.0),
    "masked_none": Quirks(masked_ids=0.0),
    "masked_high": Quirks(masked_ids=0.8),
    "phones_missing": Quirks(missing_phones=3.0),
    "addresses": Quirks(address_styles=(10, 20, 20, 20, 30), fullwidth_digits=2.0),
    "reporters": _REPORTERS,
    "visitors": dataclasses.replace(_REPORTERS, outside_reporters=0.15),
    "homebound": Quirks(
        incidents_per_resident=0.5, reported_incidents=0.9, reporter_in_flat=1.0, outside_reporters=0.02
    ),
    "namesakes": Quirks(namesakes_flat=0.04, namesakes_estate=0.03),
    "stale_phones": Quirks(stale_phones=3.0),
    "hard": Quirks(
        typos=2.0,
        masked_ids=0.7,
        missing_phones=2.0,
        address_styles=(10, 20, 20, 20, 30),
        fullwidth_digits=2.0,
        incidents_per_resident=0.5,
        reported_incidents=0.9,
        reporter_in_flat=0.95,
        reporter_without_phone=0.85,
        reporter_name_variants=0.5,
        namesakes_flat=0.04,
        namesakes_estate=0.03,
        stale_phones=2.5,
    ),
}


def profile(name: str) -> Quirks:
    try:
        return PROFILES[name]
    except KeyError:
        raise ValueError(f"unknown quirks profile {name!r}; known: {', '.join(PROFILES)}") from None


def scaled(table: dict[str, float], factors: dict[str, float], absorb: str) -> dict[str, float]:
    """``table`` with the kinds in ``factors`` multiplied and ``absorb`` taking up the difference, so the
    other kinds keep their rates. At factors of 1 the very same table (the same draws, byte for byte);
    when ``absorb`` would go negative it is 0 and the rest keep their proportions."""
    if all(f == 1 for f in factors.values()):
        return table
    out = dict(table)
    for kind, factor in factors.items():
        out[kind] = table[kind] * factor
    out[absorb] = max(0.0, table[absorb] + sum(table[k] - out[k] for k in factors))
    return out


def share_of(table: dict[str, float], kind: str, share: float) -> dict[str, float]:
    """``table`` with ``kind`` at ``share`` of the total and the other kinds keeping their proportions."""
    total = sum(table.values())
    if table[kind] == share * total:
        return table
    rest = total - table[kind]
    return {k: share * total if k == kind else w * (1 - share) * total / rest for k, w in table.items()}


def present(chooser: Chooser, kinds) -> tuple[str, ...]:
    """``kinds`` without those the chooser holds at weight 0: the ones ``ensure_each`` may still force
    (a kind the chooser does not hold, derived from another such as a lowercase ``x``, stays)."""
    weights = dict(zip(chooser.kinds, _weights(chooser), strict=True))
    return tuple(k for k in kinds if weights.get(k, 1) > 0)


def _weights(chooser: Chooser) -> list[float]:
    cum = chooser._cum
    return [c - (cum[i - 1] if i else 0) for i, c in enumerate(cum)]


@functools.cache
def tables(q: Quirks) -> SimpleNamespace:
    """The per-record choosers of every writer under ``q`` (the writers' defaults under ``Quirks()``)."""
    from islandbridge.devtools.simulator import civil, grid, iot, registry

    g_name, g_id, g_phone, g_address = (
        grid.NAME_TABLE,
        grid.ID_CARD_TABLE,
        grid.PHONE_TABLE,
        grid.ADDRESS_TABLE,
    )
    address_table = dict(zip(g_address, q.address_styles, strict=True))
    if list(address_table.values()) == list(g_address.values()):
        address_table = g_address
    return SimpleNamespace(
        grid_name=Chooser(scaled(g_name, {"typo": q.typos}, "plain")),
        grid_id=Chooser(share_of(g_id, "masked", q.masked_ids)),
        grid_phone=Chooser(scaled(g_phone, {"null": q.missing_phones}, "plain")),
        grid_address=Chooser(address_table),
        registry_sfzh=Chooser(scaled(registry.SFZH_TABLE, {"typo": q.typos}, "plain")),
        registry_lxdh=Chooser(
            scaled(
                registry.LXDH_TABLE,
                {"wu": q.missing_phones, "empty": q.missing_phones, "null": q.missing_phones},
                "plain",
            )
        ),
        civil_name=Chooser(scaled(civil.NAME_KIND_TABLE, {"typo": q.typos}, "plain")),
        iot_name=Chooser(scaled(iot.NAME_TABLE, {"typo": q.typos}, "plain")),
        iot_phone=Chooser(
            scaled(iot.PHONE_TABLE, {"none": q.missing_phones, "stale": q.stale_phones}, "true")
        ),
    )


def rate(value: float) -> float:
    """A probability from a scaled rate (a scale factor may push it past 1)."""
    return min(1.0, value)
