"""Delivery: what leaves the warehouse, and to whom.

Owns the department policies (`policy`: which reports, columns and identifiers a department may see),
the policy-enforced exports (`export`), the audited reveal of one person's identifiers (`reveal`), the
analysts' read-only snapshots (`snapshot`), the run report (`run_report`; its charts and tables in
`report_html`, what it reads in `run_data`), the data dictionary (`dictionary`) and durable file writes
(`durable`). May import: `warehouse` (the marts it delivers),
`identity`, `privacy`, `landing` (run accounting), `schemas`, `transforms`, `islandbridge.storage`,
`islandbridge.config`, `islandbridge.errors`.
"""
