"""Identity reconciliation: which source records are the same person, under a stable ``person_key``.

- `records` — the person-bearing record table, normalised, from the newest raw versions
- `deterministic` — equal valid full ID numbers
- `probabilistic` — Splink (Fellegi-Sunter, EM) scoring of candidate pairs, and the evidence rules
- `clusters` — union-find under hard constraints; ambiguous and conflicting pairs go to review
- `decided` — people's decisions on pairs (same person / different people) as clustering constraints
- `review` — the review queue: list, show (masked), decide (``islandbridge review``), and the decisions
- `keys` — stable person keys across runs, merge/split events, churn
- `evaluate` — pairwise scores (links per system pair in every run; precision and recall against a truth)
- `tables` — the identity tables: map, events, redirects, review pairs, decisions, saved models
- `filing` — each record's identifiers filed in the vault under its person_key
- `reconcile` — the pipeline step that runs them all and writes the warehouse

May import: `quality` and below (`landing`, `privacy`, `connectors`, `schemas`, `transforms`,
`islandbridge.storage`, `islandbridge.config`, `islandbridge.errors`). See docs/identity.md.
"""
