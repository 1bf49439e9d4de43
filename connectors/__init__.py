"""Connectors: one module per source system, all of one shape (see ``base``).

Importing this package registers the built-in kinds. Adding a fifth system means adding a module with a
``@register``-ed ``Connector`` subclass and importing it below — nothing else changes.
May import: `schemas`, `transforms`, `islandbridge.storage`, `islandbridge.config`, `islandbridge.errors`;
never a pipeline step (connectors hand records to a sink and know nothing of what happens next).
"""

# Registration side effects: each module registers its kind.
from islandbridge.connectors import civil_files, grid_rest, iot_rest, sql_registry  # noqa: E402, F401, I001
from islandbridge.connectors.base import (
    Connector,
    ExtractContext,
    Sink,
    Stream,
    build_connector,
    connector_class,
    connector_kinds,
    register,
)

__all__ = [
    "Connector",
    "ExtractContext",
    "Sink",
    "Stream",
    "build_connector",
    "connector_class",
    "connector_kinds",
    "register",
]
