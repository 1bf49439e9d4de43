"""Landing: where extracted records wait, and how they are committed to the warehouse's raw layer.

Owns the landing zone (`zone`: Parquet slices and manifests per run, source and stream, written by a
connector's sink) and the raw load with the run accounting (`raw`: ``raw.<source>__<stream>`` tables,
``meta.runs`` / ``meta.run_sources`` — every record read is landed, quarantined or counted as a
duplicate). May import: `privacy` (the load seals identifiers on the way in), `connectors` (the sink
contract), `schemas`, `transforms`, `islandbridge.storage`, `islandbridge.config`, `islandbridge.errors`.
"""
