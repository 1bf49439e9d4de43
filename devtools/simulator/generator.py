"""The entry point: build the true street, let each system write it down, then write the truth."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

from islandbridge.devtools.simulator import population, scenarios
from islandbridge.devtools.simulator.civil import write_civil
from islandbridge.devtools.simulator.common import sub_rng
from islandbridge.devtools.simulator.grid import write_grid
from islandbridge.devtools.simulator.iot import write_iot
from islandbridge.devtools.simulator.quirks import Quirks
from islandbridge.devtools.simulator.registry import write_registry
from islandbridge.devtools.simulator.truth import write_truth
from islandbridge.perf import collector_paused

MIN_RESIDENTS, MAX_RESIDENTS = 300, 300_000


def build_street(
    seed: int, residents: int, as_of: dt.date, street_code: str, quirks: Quirks | None = None
) -> population.Street:
    """The true model: random population first, then the designed stories, then devices and cards."""
    street = population.build_population(seed, residents, as_of, street_code, quirks)
    if street.quirks.namesakes_flat or street.quirks.namesakes_estate:
        population.add_namesakes(sub_rng(seed, "quirks:namesakes"), street)
    scenarios.design_rosters(sub_rng(seed, "rosters"), street)
    population.assign_phones(sub_rng(seed, "phones"), street)
    population.assign_tags(sub_rng(seed, "tags"), street)
    population.assign_grid_presence(sub_rng(seed, "grid-presence"), street)
    scenarios.design_devices(sub_rng(seed, "devices"), street)
    return street


def generate(
    out_dir: Path,
    *,
    residents: int,
    seed: int,
    as_of: dt.date = dt.date(2026, 11, 20),
    street_code: str = "511403001",
    quirks: Quirks | None = None,
) -> dict:
    """Generate one simulated street: the four source systems' data and the ground truth, under ``out_dir``.

    Same arguments, byte-identical files. ``quirks`` sets the quirk rates (``Quirks()``, the default,
    is the street as it always was; ``quirks.PROFILES`` has named variations). ``residents`` (300..300,000) is the number of people living in
    the street's households; caregivers and tenants known only to the IoT platform come on top.
    Returns counts per system, e.g. ``summary["iot"]["events"]``. Raises ``ValueError`` for a resident
    count outside the supported range or a street code that is not nine digits.

    >>> summary = generate(Path("/tmp/street"), residents=300, seed=7)  # doctest: +SKIP
    >>> sorted(summary)  # doctest: +SKIP
    ['civil_affairs', 'grid_platform', 'iot_platform', 'people', 'resident_registry', 'truth']
    """
    if not MIN_RESIDENTS <= residents <= MAX_RESIDENTS:
        raise ValueError(f"residents={residents} is outside the supported {MIN_RESIDENTS}..{MAX_RESIDENTS}")
    if not (len(street_code) == 9 and street_code.isdigit()):
        raise ValueError(
            f"street_code={street_code!r} must be the nine-digit code of a street (e.g. 511403001)"
        )
    with collector_paused():
        return _generate(Path(out_dir), residents, seed, as_of, street_code, quirks)


def _generate(
    out: Path, residents: int, seed: int, as_of: dt.date, street_code: str, quirks: Quirks | None = None
) -> dict:
    street = build_street(seed, residents, as_of, street_code, quirks)
    (out / "registry").mkdir(parents=True, exist_ok=True)
    registry, rec_a = write_registry(sub_rng(seed, "registry"), street, out / "registry" / "rrs.sqlite")
    grid, rec_b = write_grid(sub_rng(seed, "grid"), street, out / "grid")
    civil, rec_c, month_rows = write_civil(sub_rng(seed, "civil"), street, out / "civil")
    iot, rec_d, observed = write_iot(seed, sub_rng(seed, "iot"), street, out / "iot")
    meta = {"seed": seed, "residents": residents, "street_code": street_code, "street_name": street.name}
    if street.quirks.changed():  # the default street's meta.json stays as it always was
        meta["quirks"] = street.quirks.changed()
    truth = write_truth(street, out / "truth", rec_a + rec_b + rec_c + rec_d, month_rows, observed, meta)
    return {
        "people": len(street.persons),
        "resident_registry": registry,
        "grid_platform": grid,
        "civil_affairs": civil,
        "iot_platform": iot,
        "truth": truth,
    }
