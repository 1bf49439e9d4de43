"""A deterministic simulated street: the four source systems' data, with their quirks, and the truth.

``generate(out_dir, residents=..., seed=...)`` writes ``registry/``, ``grid/``, ``civil/``, ``iot/`` and
``truth/`` exactly in the layout of ``shared/source-systems/samples``; ``quirks=Quirks(...)`` (or a named
profile, ``PROFILES["reporters"]``) varies the quirk rates; ``load_registry`` copies the
registry into PostgreSQL or MariaDB. ``servers`` serves the grid and IoT files as HTTP APIs. See
``docs/simulator.md`` for what is produced, the quirk rates and the truth files.
"""

from __future__ import annotations

import importlib

# Loaded on first use (PEP 562): the command line reads ``quirks.PROFILES`` for its help without paying
# for the simulator (numpy and every writer).
_HOMES = {
    "Rates": "days",
    "simulate": "days",
    "generate": "generator",
    "PROFILES": "quirks",
    "Quirks": "quirks",
    "hard_delete": "registry",
    "load_registry": "registry",
}
__all__ = sorted(_HOMES)


def __getattr__(name: str):
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
