"""Transforms: pure functions that make raw values comparable, under every concern that needs them.

- `islandbridge.transforms.normalize` — ID-card numbers, phones, names and addresses to one canonical
  form each, with a status and a log-safe reason for every value that cannot be used
  (docs/normalisation.md). Quality checks, privacy sealing, identity matching and the core model call it.

Transforms never do I/O of their own and never read the clock: the same input gives the same output,
so every step can be re-run for its data interval and tested without services. May import only
`islandbridge.config`, `islandbridge.errors` and `islandbridge.perf`.
"""
