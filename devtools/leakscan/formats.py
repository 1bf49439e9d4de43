"""The readers of structured files for the scan: DuckDB, SQLite, Parquet and xlsx.

`StructuredFiles` is a base of `scanner._Scanner`: each ``_scan_<kind>`` reads one kind of file and hands
the texts it finds to the scanner's ``values`` and the binary values to its ``blob``, noting what it
could not read on ``result``. DuckDB and SQLite are opened without writing beside the file scanned.
"""

from __future__ import annotations

import contextlib
import shutil
import sqlite3
import tempfile
import zipfile
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

from islandbridge.privacy import rowseal

_SEALED_NOTE = (
    "*.sealed files, the vault's BLOB columns and the quarantine tables' nonce and ciphertext are ciphertext: "
    "read as UTF-8 bytes only (the form a "
    "value written unencrypted would take), since GB18030 decodes random bytes into Han text"
)
# the BLOB columns of AES-GCM output in the warehouse: the sealed quarantine rows' (privacy.rowseal) only,
# so a plaintext written by mistake into a column of that name elsewhere is still read both ways
_SEALED_COLUMNS = {
    (*seal.table.split("."), column)
    for seal in (rowseal.CONNECTOR, rowseal.QUALITY)
    for column in ("nonce", "ciphertext")
}
_BATCH = 20_000  # values fetched from a column, and scanned by `values`, at a time


class StructuredFiles:
    """Readers of DuckDB, SQLite, Parquet and xlsx files; the scanner supplies ``needles``, ``result``,
    ``values`` and ``blob``."""

    def _scan_duckdb(self, rel: str, path: Path, via: str) -> None:
        import duckdb

        # the vault's BLOB columns are AES-GCM ciphertext (privacy.vault_columns)
        vault = path.name.lower().startswith("vault")
        with _duckdb_readonly(path) as (con, copied):
            if copied:
                self.result.notes.append(f"{rel}: held by another connection; scanned a copy with its WAL")
            for location, text in con.sql(_DUCKDB_CATALOG).fetchall():
                self.values(rel, location, [text], via=via)
            for schema, table, column, data_type in con.sql(_DUCKDB_COLUMNS).fetchall():
                how, location = _duckdb_reading(data_type), f"{schema}.{table}.{column}"
                if how is None:
                    continue
                # and so are the quarantine tables' sealed rows (privacy.rowseal), in the warehouse: read as
                # GB18030, the ~2 KB of them a demo run leaves held a name once in about 7,500 runs
                ciphertext = vault or (how == "blob" and (schema, table, column.lower()) in _SEALED_COLUMNS)
                if ciphertext and _SEALED_NOTE not in self.result.notes:
                    self.result.notes.append(_SEALED_NOTE)
                try:
                    self._duckdb_column(
                        rel,
                        con,
                        location,
                        f"{_ident(schema)}.{_ident(table)}",
                        _ident(column),
                        how,
                        via,
                        ciphertext=ciphertext,
                    )
                except duckdb.Error as exc:
                    self.result.errors.append((rel, f"{location}: {type(exc).__name__}"))

    def _duckdb_column(
        self, rel: str, con, location: str, source: str, column: str, how: str, via: str, *, ciphertext: bool
    ) -> None:
        value = column if how == "blob" else f"CAST({column} AS VARCHAR)"
        having = {"number": " HAVING length(v) >= 10", "text": " HAVING regexp_matches(v, $prefilter)"}.get(
            how, ""
        )
        parameters = {"prefilter": self.needles.sql_prefilter()} if how == "text" else {}
        cursor = con.execute(
            f"SELECT {value} AS v, count(*) FROM {source} WHERE {column} IS NOT NULL GROUP BY ALL{having}",
            parameters,
        )
        while batch := cursor.fetchmany(_BATCH):
            if how == "blob":
                for data, rows in batch:
                    self.blob(rel, location, bytes(data), "", via, rows, ciphertext=ciphertext)
            else:
                self.values(rel, location, [v for v, _ in batch], rows=[n for _, n in batch], via=via)

    def _scan_sqlite(self, rel: str, path: Path, via: str) -> None:
        # A copy, so that a WAL is replayed and no -shm/-wal is created beside the original.
        with tempfile.TemporaryDirectory(prefix="leakscan-") as tmp:
            copy = Path(tmp) / "db.sqlite"
            shutil.copyfile(path, copy)
            for suffix in ("-wal", "-journal"):
                sibling = path.with_name(path.name + suffix)
                if sibling.exists():
                    shutil.copyfile(sibling, copy.with_name(copy.name + suffix))
            con = sqlite3.connect(copy)
            try:
                con.text_factory = _text_or_bytes
                for (table,) in con.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
                    self._sqlite_table(rel, con, table, via)
            finally:
                con.close()

    def _sqlite_table(self, rel: str, con: sqlite3.Connection, table: str, via: str) -> None:
        names = [row[1] for row in con.execute(f"PRAGMA table_info({_ident(table)})")]
        try:
            cursor, prefix = con.execute(f"SELECT rowid, * FROM {_ident(table)}"), "rowid "
        except sqlite3.OperationalError:  # a WITHOUT ROWID table
            cursor, prefix = con.execute(f"SELECT NULL, * FROM {_ident(table)}"), ""
        while batch := cursor.fetchmany(5_000):
            for i, column in enumerate(names, start=1):
                self._cells(rel, f"{table}.{column}", [(row[0], row[i]) for row in batch], prefix, via)

    def _cells(self, rel: str, location: str, cells: list[tuple], prefix: str, via: str) -> None:
        texts, positions = [], []
        for key, value in cells:
            position = f"{prefix}{key}" if key is not None else ""
            if isinstance(value, bytes):
                self.blob(rel, location, value, position, via)
            elif isinstance(value, str) or (isinstance(value, int | float) and abs(value) >= 1e9):
                texts.append(repr(value) if isinstance(value, float) else str(value))
                positions.append(position)
        self.values(rel, location, texts, positions=positions, via=via)

    def _scan_parquet(self, rel: str, path: Path, via: str) -> None:
        import pyarrow.compute as pc
        import pyarrow.parquet as pq

        parquet = pq.ParquetFile(path)
        for key, value in (parquet.schema_arrow.metadata or {}).items():
            self.blob(rel, "metadata", key + b"=" + value, "", via)
        for batch in parquet.iter_batches(batch_size=65_536):
            for name, column in zip(batch.schema.names, batch.columns, strict=True):
                for location, array, how in _arrow_leaves(name, column):
                    if how == "number":
                        array = pc.cast(array, "string")
                        array = array.filter(pc.greater_equal(pc.utf8_length(array), 10))
                    counted = pc.value_counts(array.drop_null())
                    values, rows = counted.field("values").to_pylist(), counted.field("counts").to_pylist()
                    if how == "blob":
                        for value, n in zip(values, rows, strict=True):
                            self.blob(rel, location, value, "", via, n)
                    else:
                        self.values(rel, location, values, rows=rows, via=via)

    def _scan_xlsx(self, rel: str, path: Path, via: str) -> None:
        import openpyxl
        from openpyxl.utils import get_column_letter

        workbook = openpyxl.load_workbook(path, read_only=True, data_only=True)
        try:
            for sheet in workbook.worksheets:
                # A cell below a header row is located by its column's header, "<sheet>/<header>", so
                # that an allow rule can name a column a policy permits, as it does for CSV.
                cells: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
                header: tuple = ()
                for r, row in enumerate(sheet.iter_rows(values_only=True), start=1):
                    header = row if r == 1 else header
                    for c, value in enumerate(row, start=1):
                        if isinstance(value, str | int | float) and not isinstance(value, bool):
                            named = r > 1 and c <= len(header) and isinstance(header[c - 1], str)
                            texts, positions = cells[
                                f"{sheet.title}/{header[c - 1]}" if named else sheet.title
                            ]
                            texts.append(repr(value) if isinstance(value, float) else str(value))
                            positions.append(f"{get_column_letter(c)}{r}")
                for location, (texts, positions) in cells.items():
                    self.values(rel, location, texts, positions=positions, via=via)
        finally:
            workbook.close()
        # Document properties (creator, title), comments and custom XML live outside the cells.
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                name = info.filename
                if name.endswith((".xml", ".rels")) and not name.startswith(
                    ("xl/worksheets/", "xl/sharedStrings")
                ):
                    self.values(rel, name, [archive.read(info).decode("utf-8", errors="replace")], via=via)


_DUCKDB_CATALOG = """
SELECT 'view ' || schema_name || '.' || view_name, sql FROM duckdb_views() WHERE NOT internal
UNION ALL
SELECT 'comment ' || schema_name || '.' || table_name, comment FROM duckdb_tables() WHERE comment IS NOT NULL
UNION ALL
SELECT 'comment ' || schema_name || '.' || table_name || '.' || column_name, comment FROM duckdb_columns()
WHERE comment IS NOT NULL
"""
_DUCKDB_COLUMNS = """
SELECT c.schema_name, c.table_name, c.column_name, c.data_type FROM duckdb_columns() c
JOIN duckdb_tables() t USING (database_name, schema_name, table_name)
WHERE c.database_name = current_database() ORDER BY ALL
"""
_DUCKDB_NUMBERS = ("BIGINT", "UBIGINT", "HUGEINT", "UHUGEINT", "DOUBLE", "DECIMAL")


def _text_or_bytes(data: bytes) -> str | bytes:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        return data


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _duckdb_reading(data_type: str) -> str | None:
    """How a DuckDB column is read: as text, as bytes, as a wide number, or not at all."""
    if data_type == "BLOB":
        return "blob"
    if (
        data_type in ("VARCHAR", "JSON")
        or data_type.startswith(("ENUM", "STRUCT", "MAP", "UNION"))
        or data_type.endswith("]")
    ):
        return "text"
    if data_type.startswith(_DUCKDB_NUMBERS):
        return "number"
    return None


@contextlib.contextmanager
def _duckdb_readonly(path: Path):
    """A read-only connection (under the machine-derived memory limit, `storage.connect`); a file held by
    another connection is copied (with its WAL) first."""
    import duckdb

    from islandbridge import storage

    try:
        con = storage.connect(str(path), read_only=True)
    except duckdb.Error as exc:
        message = str(exc).lower()
        if "lock" not in message and "different configuration" not in message:
            raise
        with tempfile.TemporaryDirectory(prefix="leakscan-") as tmp:
            copy = Path(tmp) / "copy.duckdb"
            shutil.copyfile(path, copy)
            wal = path.with_name(path.name + ".wal")
            if wal.exists():
                shutil.copyfile(wal, copy.with_name(copy.name + ".wal"))
            con = storage.connect(str(copy), read_only=True)
            try:
                yield con, True
            finally:
                con.close()
        return
    try:
        yield con, False
    finally:
        con.close()


def _arrow_leaves(name: str, array) -> Iterator[tuple[str, object, str]]:
    """(column path, array, how) for every leaf worth reading: text, bytes or a wide number."""
    import pyarrow as pa
    import pyarrow.types as t

    kind = array.type
    if t.is_dictionary(kind):
        yield from _arrow_leaves(name, array.dictionary_decode())
    elif t.is_list(kind) or t.is_large_list(kind) or t.is_fixed_size_list(kind):
        yield from _arrow_leaves(f"{name}[]", array.flatten())
    elif t.is_map(kind):
        yield from _arrow_leaves(f"{name}.key", array.keys)
        yield from _arrow_leaves(f"{name}.value", array.items)
    elif t.is_struct(kind):
        for i in range(kind.num_fields):
            yield from _arrow_leaves(f"{name}.{kind.field(i).name}", array.field(i))
    elif t.is_string(kind) or t.is_large_string(kind) or t.is_string_view(kind):
        yield name, array.cast(pa.large_string()) if t.is_string_view(kind) else array, "text"
    elif (
        t.is_binary(kind) or t.is_large_binary(kind) or t.is_fixed_size_binary(kind) or t.is_binary_view(kind)
    ):
        yield name, array.cast(pa.large_binary()), "blob"
    elif t.is_int64(kind) or t.is_uint64(kind) or t.is_decimal(kind) or t.is_float64(kind):
        yield name, array, "number"
