"""A deterministic simulated street: the four source systems' data, with their quirks, and the truth.

``generate(out_dir, residents=..., seed=...)`` writes ``registry/``, ``grid/``, ``civil/``, ``iot/`` and
``truth/`` exactly in the layout of ``shared/source-systems/samples``; ``quirks=Quirks(...)`` (or a named
profile, ``PROFILES["reporters"]``) varies the quirk rates; ``load_registry`` copies the
registry into PostgreSQL or MariaDB. ``servers`` serves the grid and IoT files as HTTP APIs. See
``docs/simulator.md`` for what is produced, the quirk rates and the truth files.
"""

from islandbridge.devtools.simulator.days import Rates, simulate
from islandbridge.devtools.simulator.generator import generate
from islandbridge.devtools.simulator.quirks import PROFILES, Quirks
from islandbridge.devtools.simulator.registry import hard_delete, load_registry

__all__ = ["PROFILES", "Quirks", "Rates", "generate", "hard_delete", "load_registry", "simulate"]
