"""Warehouse: the core model and the department marts, built from the raw layer and the identity map.

Owns `core` (residency history, rosters, incidents, devices, day-partitioned device events — one
``core.*`` table per YAML in ``schemas/core``) and `marts` (the department reports). Every long query
lives in a ``.sql`` file beside its table's YAML. May import: `identity`, `schemas`, `transforms`,
`islandbridge.storage`, `islandbridge.config`, `islandbridge.errors`.
"""
