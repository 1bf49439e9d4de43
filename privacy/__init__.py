"""Privacy: everything that touches a personal field, and nothing else does.

Owns the encrypted identifier vault (`vault`), keyrings and their rotation (`keys`, `keyops`), sealing
of identifiers and quarantine rows at load (`sealing`, `rowseal`), the tamper-evident audit log
(`audit`), work kept between runs sealed beside the vault (`sealed_files`), pseudonyms
(`pseudonymise`), free-text scrubbing (`scrub`) and masking for display (`masking`). Names, ID
numbers, phones and bank cards leave this package only sealed, masked or as keyed pseudonyms. May
import: `schemas`, `transforms`, `islandbridge.storage`, `islandbridge.config`, `islandbridge.errors` —
never a pipeline step above it.
"""
