"""Leak scanner: find a simulated street's personal data in every file a run leaves behind.

The privacy promise (docs/privacy.md) is that names, ID numbers, phones and bank cards live only in the
vault and in the columns a department's policy allows. This package checks it the blunt way: take every
such value the simulated sources hold (the *needles*) and look for each of them in every file under a
folder, opening each file the way its format needs (DuckDB and Parquet compress strings, so a byte grep
misses them).

    needles = needles_from_street(Path("var/demo/street"))
    result = scan_tree(Path("var/demo"), needles, exclude=[Path("var/demo/street")])
    print(result.summary())            # counts only: no personal data
    print(result.report(limit=20))     # hits with masked needle and masked context
    assert result.ok                   # no hit outside what `allow` accepts, and every file was read

**Needles** (``needles_from_street``) come from ``truth/persons.csv`` and from the sources as written
(registry SQLite, grid JSON, civil xlsx/csv, IoT card holders), so the typo'd, traditional and padded
names and the damaged IDs the sources really contain are looked for too:

- ID numbers: the 18-character number and its 15-digit legacy form; a source value whose check digit
  fails, as written; a passport number (``E12345678``) as a token; the float an ID becomes in a
  spreadsheet or a DOUBLE column (``5.114031982031164e+17``, ``511403198203116400``) when it keeps 15
  or more significant digits (``5.11403E+17`` identifies nobody and is no needle).
- phones: 11-digit mobiles (``+86``/``86``/``0086`` dropped; also as a float); landlines are not
  collected (the simulated sources hold none).
- bank cards: 16-19 digits.
- names: two or more Han characters once blanks (U+3000 too) and the middle dot of Uyghur names are
  removed.
- masked values (``138****8000``, ``张*伟``, ``510104********0696``) are no needles and never match, so
  a mask in a report or a department file is not a leak.

**Matching.** Digits are matched ignoring separators (space, tab, hyphen: ``138 0013 8000``,
``+86 138-0013-8000``) and width, as substrings of a run of digits, so ``8613800138000`` holds a phone.
Names are matched exactly as substrings of a run of Han characters (blanks and middle dots inside are
ignored). A two-character name can occur inside innocent text (an estate, a category): such a hit has
``embedded=True`` and a masked context and is never dropped; pass ``allow`` (``allow_rules(terms=
["江口新居"])``) to accept it. Text escaped as JSON ``\\uXXXX``, Python ``\\xHH``, HTML ``&#NNNN;``
or URL ``%HH`` is also scanned decoded.

**Files**, recognised by content: DuckDB (opened read-only; every table's text, BLOB, nested and wide
numeric columns, distinct values with their row counts, plus view definitions and comments; a file
another connection holds is copied with its WAL first), SQLite (a copy is opened, so a WAL is replayed
without touching the original; every table, values as text, JSON or bytes, zlib/gzip blobs inflated),
Parquet (every leaf of nested columns, and the key-value metadata), xlsx (every cell, plus document
properties and comments; unreferenced shared strings are not read), zip and gzip (unpacked and
dispatched), text (UTF-8, else GB18030; CSV hits name their header column) and anything else as bytes
(UTF-8, and GB18030 for segments that are not UTF-8; ``*.sealed`` files, the BLOB columns of a
``vault*.duckdb`` and the ``nonce``/``ciphertext`` BLOB columns of the warehouse's sealed quarantine
tables (``meta.quarantine``, ``meta.quality_quarantine``: `privacy.rowseal`) are ciphertext, read as UTF-8 only: GB18030 turns random bytes into
Han text, one two-character name in a few MB). Limitations: a DuckDB ``*.wal`` cannot be opened
alone and is byte-scanned, so a value it holds in a non-text form (a BIGINT phone) is missed there;
UTF-16 text is not decoded; symlinks are not followed.

**Reports** never hold a raw needle: a hit names its file, location (``schema.table.column``, CSV
column, sheet, ``text``, ``bytes``), position (line, row, cell, offset), needle kind and variant, the
needle masked with ``islandbridge.privacy.masking``, and a short context in which every needle is
masked (the hit itself between « ») and every other digit is ``#``.

**The package**: `needles` (the values and the matcher), `street` (needles from a simulated street),
`scanner` (walking a tree, text, bytes, archives), `formats` (DuckDB, SQLite, Parquet, xlsx), `text`
(escapes, whole-line decoding, masked context) and `results` (hits, allow rules, the result).
"""

from __future__ import annotations

from islandbridge.devtools.leakscan.needles import KINDS, Needle, Needles
from islandbridge.devtools.leakscan.results import Hit, ScanResult, allow_rules
from islandbridge.devtools.leakscan.scanner import scan_tree
from islandbridge.devtools.leakscan.street import needles_from_street

__all__ = [
    "KINDS",
    "Hit",
    "Needle",
    "Needles",
    "ScanResult",
    "allow_rules",
    "needles_from_street",
    "scan_tree",
]
