"""Identity reconciliation: which source records are the same person, under a stable ``person_key``.

- `records` — the person-bearing record table, normalised, from the newest raw versions
- `deterministic` — equal valid full ID numbers
- `probabilistic` — Splink (Fellegi-Sunter, EM) scoring of candidate pairs, and the evidence rules
- `clusters` — union-find under hard constraints; ambiguous and conflicting pairs go to review
- `keys` — stable person keys across runs, merge/split events, churn
- `evaluate` — pairwise and cluster scores against a simulated street's truth

The pipeline step that runs them and writes the warehouse is `islandbridge.identity.reconcile`; see
docs/identity.md.
"""
