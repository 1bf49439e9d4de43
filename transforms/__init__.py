"""Transforms: pure functions over Arrow/DuckDB data between the landing zone and the warehouse.

The step after the connectors. Raw records arrive as each source system wrote them; the transforms
make them comparable and then link them:

- `islandbridge.transforms.normalize` — ID-card numbers, phones, names and addresses to one canonical
  form each, with a status and a log-safe reason for every value that cannot be used
  (docs/normalisation.md).

Transforms never do I/O of their own and never read the clock: the same input gives the same output,
so every step can be re-run for its data interval and tested without services.
"""
