"""Identity reconciliation: which source records are the same person, under a stable ``person_key``.

- `records` — the person-bearing record table, normalised, from the newest raw versions
- `deterministic` — equal valid full ID numbers
- `probabilistic` — Splink (Fellegi-Sunter, EM) scoring of candidate pairs, and the evidence rules
- `clusters` — union-find under hard constraints; ambiguous and conflicting pairs go to review
- `links` — the rule of every link (``core.identity_links``), record fingerprints, and the links a run
  keeps from the one before (an unchanged or still-agreeing record keeps its links unless contradicted)
- `decided` — people's decisions on pairs (same person / different people) as clustering constraints
- `review` — the review queue: list, show (masked), decide (``islandbridge review``), and the decisions
- `keys` — stable person keys across runs, merge/split events, churn
- `churn` — why keys changed: each record's change, and whether each split is explained by the day's data
- `explain` — a person's records (masked) and the rule of each link; churn per run (``islandbridge explain``)
- `evaluate` — pairwise scores (links per system pair in every run; precision and recall against a truth)
- `tables` — the identity tables: map, events, redirects, links, review pairs, decisions, saved models
- `filing` — each record's identifiers filed in the vault under its person_key
- `reconcile` — the pipeline step that runs them all and writes the warehouse

May import: `quality` and below (`landing`, `privacy`, `connectors`, `schemas`, `transforms`,
`islandbridge.storage`, `islandbridge.config`, `islandbridge.errors`). See docs/identity.md.
"""
