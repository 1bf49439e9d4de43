"""Scanning a tree: every file opened the way its kind needs, every text handed to the needles' matcher.

`scan_tree` walks the folder; `_Scanner` recognises each file by content (`_file_kind`), unpacks gzip and
zip, reads text (UTF-8, else GB18030) and bytes, and leaves structured files to `formats`. A hit goes to
``hits``, or to ``allowed`` when the ``allow`` predicate accepts it.
"""

from __future__ import annotations

import bisect
import contextlib
import csv
import gzip
import io
import os
import re
import shutil
import tempfile
import time
import zipfile
import zlib
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator, Sequence
from pathlib import Path
from typing import BinaryIO

from islandbridge.devtools.leakscan.formats import _BATCH, _SEALED_NOTE, StructuredFiles
from islandbridge.devtools.leakscan.needles import Needles, _Match
from islandbridge.devtools.leakscan.results import Hit, ScanResult
from islandbridge.devtools.leakscan.text import (
    _CHUNK,
    _CONTEXT,
    _ESCAPES,
    _csv_column,
    _decoded_chunks,
    _escaped_variants,
    _join_via,
    _masked_context,
    _shift,
)


def scan_tree(
    root: Path, needles: Needles, *, exclude: Iterable[Path] = (), allow: Callable[[Hit], bool] | None = None
) -> ScanResult:
    """Scan every file under ``root`` (or ``root`` itself, a file) for ``needles``.

    ``exclude``: files or folders left out (the street itself, say). ``allow``: a predicate for expected
    hits (a policy column, an innocent word; see ``allow_rules``); they go to ``ScanResult.allowed``
    rather than ``hits``. Nothing under ``root`` is written: databases are opened read-only or copied to
    a temporary folder first. A file that cannot be read is listed in ``errors`` and makes the result
    not ``ok``.

    >>> scan_tree(Path("var/demo"), needles, exclude=[Path("var/demo/street")]).summary()
    """
    started = time.perf_counter()
    root = Path(root)
    skip = [Path(p).resolve() for p in exclude]
    scanner = _Scanner(root, needles, allow)
    for path in _walk(root):
        resolved = path.resolve()
        if any(resolved == s or s in resolved.parents for s in skip):
            scanner.result.excluded += 1
            continue
        scanner.scan_file(path.name if path == root else path.relative_to(root).as_posix(), path)
    scanner.result.elapsed = time.perf_counter() - started
    return scanner.result


def _walk(root: Path) -> Iterator[Path]:
    if root.is_file():
        yield root
        return
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            path = Path(folder) / name
            if not path.is_symlink():
                yield path


_TEXT_SUFFIXES = {
    ".csv",
    ".tsv",
    ".json",
    ".jsonl",
    ".ndjson",
    ".html",
    ".htm",
    ".log",
    ".txt",
    ".yml",
    ".yaml",
    ".md",
    ".xml",
    ".cfg",
    ".ini",
    ".toml",
    ".sql",
    ".py",
    ".out",
    ".err",
}
_OVERLAP = 256  # bytes carried between chunks of a byte scan: more than the longest needle
_WAL_NOTE = (
    "DuckDB *.wal files are byte-scanned (they cannot be opened alone): a value held there in a "
    "non-text form (a BIGINT phone) would be missed"
)


class _Scanner(StructuredFiles):
    def __init__(self, root: Path, needles: Needles, allow: Callable[[Hit], bool] | None) -> None:
        self.needles, self.allow = needles, allow
        self.result = ScanResult(root=root)

    def scan_file(self, rel: str, path: Path) -> None:
        try:
            size = path.stat().st_size
            kind = _file_kind(path.name, _head(path))
            self.result.files[kind] += 1
            self.result.bytes_scanned += size
            if size:
                self._dispatch(rel, path, kind, "")
        except Exception as exc:  # noqa: BLE001 - an unreadable file is reported, and the scan goes on
            message = self.needles.redact(f"{type(exc).__name__}: {exc}".splitlines()[0][:300])
            self.result.errors.append((rel, message))

    def _dispatch(self, rel: str, path: Path, kind: str, via: str) -> None:
        getattr(self, f"_scan_{kind}")(rel, path, via)

    # -- containers ---------------------------------------------------------------------------------

    def _scan_gzip(self, rel: str, path: Path, via: str) -> None:
        with tempfile.TemporaryDirectory(prefix="leakscan-") as tmp:
            inner = Path(tmp) / (path.name.removesuffix(".gz") if path.name.endswith(".gz") else "inner")
            with gzip.open(path, "rb") as src, inner.open("wb") as dst:
                shutil.copyfileobj(src, dst)
            self._dispatch(rel, inner, _file_kind(inner.name, _head(inner)), _join_via(via, "gzip"))

    def _scan_zip(self, rel: str, path: Path, via: str) -> None:
        with zipfile.ZipFile(path) as archive, tempfile.TemporaryDirectory(prefix="leakscan-") as tmp:
            for index, info in enumerate(archive.infolist()):
                if info.is_dir():
                    continue
                target = Path(tmp) / f"{index}-{Path(info.filename).name}"
                with archive.open(info) as src, target.open("wb") as dst:
                    shutil.copyfileobj(src, dst)
                kind = _file_kind(target.name, _head(target))
                self._dispatch(f"{rel}!{info.filename}", target, kind, _join_via(via, "zip"))
                target.unlink()

    # -- text and bytes ----------------------------------------------------------------------------

    def _scan_text(self, rel: str, path: Path, via: str) -> None:
        is_csv = path.suffix.lower() in (".csv", ".tsv")
        for encoding in ("utf-8", "gb18030"):
            try:
                hits = self._text_hits(rel, path, encoding, via, is_csv)
            except UnicodeDecodeError:
                continue
            for hit in hits:
                self._emit(hit)
            if encoding != "utf-8":
                # Valid GB18030 can still be UTF-8 text with a stray byte: look for UTF-8 names as well.
                with path.open("rb") as f:
                    self._bytes_stream(rel, f, via, names_only=True, gb18030=False)
            return
        self._scan_bytes(rel, path, via)

    def _scan_bytes(self, rel: str, path: Path, via: str) -> None:
        with path.open("rb") as f:
            self._bytes_stream(rel, f, via)

    def _scan_sealed(self, rel: str, path: Path, via: str) -> None:
        """A sealed file (AES-GCM, `privacy.sealed_files`) is ciphertext: bytes as UTF-8 only, never GB18030."""
        if _SEALED_NOTE not in self.result.notes:
            self.result.notes.append(_SEALED_NOTE)
        with path.open("rb") as f:
            self._bytes_stream(rel, f, via, gb18030=False)

    def _scan_wal(self, rel: str, path: Path, via: str) -> None:
        if _WAL_NOTE not in self.result.notes:
            self.result.notes.append(_WAL_NOTE)
        self._scan_bytes(rel, path, via)

    def _text_hits(self, rel: str, path: Path, encoding: str, via: str, is_csv: bool) -> list[Hit]:
        """Hits of a whole text file, decoded strictly (``UnicodeDecodeError`` if it is not ``encoding``)."""
        via = _join_via(via, "" if encoding == "utf-8" else encoding)
        hits: list[Hit] = []
        header = None
        for first_line, chunk in _decoded_chunks(path, encoding):
            if is_csv and header is None:
                header = next(csv.reader([chunk.split("\n", 1)[0]]), [])
            plain: set[tuple[int, int]] = set()  # (line, needle) found without decoding escapes
            for chunk_via, text in [(via, chunk), *_escaped_variants(chunk, via)]:
                matches = self.needles.find(text)
                starts = [m.start for m in matches]
                line, cursor = first_line, 0
                for m in matches:
                    line += text.count("\n", cursor, m.start)
                    cursor = m.start
                    if chunk_via == via:
                        plain.add((line, m.needle.index))
                    elif (line, m.needle.index) in plain:
                        continue
                    location = "text" if header is None else _csv_column(header, text, m.start)
                    hits.append(
                        self._hit(rel, location, f"line {line}", text, matches, starts, m, 1, chunk_via)
                    )
        return hits

    def _bytes_stream(
        self,
        rel: str,
        f: BinaryIO,
        via: str,
        *,
        position: str | None = None,
        rows: int = 1,
        location: str = "bytes",
        names_only: bool = False,
        gb18030: bool = True,
    ) -> None:
        """UTF-8 (bad bytes replaced) over overlapping chunks; GB18030 names in segments that are not UTF-8."""
        tail, offset = b"", 0
        while data := f.read(_CHUNK):
            block, base = tail + data, offset - len(tail)
            seen_chars = len(tail.decode("utf-8", errors="replace")) if tail else 0
            text = block.decode("utf-8", errors="replace")
            matches = self.needles.find(text)
            starts = [m.start for m in matches]
            for m in matches:
                if m.end > seen_chars and (not names_only or m.needle.kind == "name"):
                    at = position if position is not None else f"offset ~{base + m.start}"
                    self._emit(
                        self._hit(rel, location, at, text, matches, starts, m, rows, _join_via(via, "bytes"))
                    )
            if gb18030:
                for segment in _GB_SEGMENT.finditer(block):
                    if segment.end() > len(tail):
                        at = position if position is not None else f"offset ~{base + segment.start()}"
                        self._gb18030_names(rel, location, at, segment.group(), rows, via)
            tail, offset = block[-_OVERLAP:], offset + len(data)

    def _gb18030_names(
        self, rel: str, location: str, position: str, data: bytes, rows: int, via: str
    ) -> None:
        try:
            data.decode("utf-8")
            return  # UTF-8 text: scanned as such
        except UnicodeDecodeError:
            pass
        try:
            text = data.decode("gb18030")
        except UnicodeDecodeError:
            return
        matches = [m for m in self.needles.find(text) if m.needle.kind == "name"]
        starts = [m.start for m in matches]
        for m in matches:
            self._emit(
                self._hit(rel, location, position, text, matches, starts, m, rows, _join_via(via, "gb18030"))
            )

    def blob(
        self,
        rel: str,
        location: str,
        data: bytes,
        position: str,
        via: str,
        rows: int = 1,
        *,
        ciphertext=False,
    ) -> None:
        """A binary value: inflated if zlib/gzip, read as text if it decodes, else scanned as bytes;
        ``ciphertext``: UTF-8 only, never GB18030 (random bytes decode into Han text)."""
        if data[:2] == b"\x1f\x8b" or (
            len(data) > 2 and data[0] == 0x78 and (data[0] << 8 | data[1]) % 31 == 0
        ):
            with contextlib.suppress(OSError, zlib.error, EOFError):
                data, via = _inflate(data), _join_via(via, "gzip" if data[:2] == b"\x1f\x8b" else "zlib")
        for encoding in ("utf-8",) if ciphertext else ("utf-8", "gb18030"):
            with contextlib.suppress(UnicodeDecodeError):
                text = data.decode(encoding)
                self.values(
                    rel,
                    location,
                    [text],
                    rows=[rows],
                    positions=[position],
                    via=_join_via(via, "" if encoding == "utf-8" else encoding),
                )
                return
        self._bytes_stream(
            rel,
            io.BytesIO(data),
            via,
            position=position,
            rows=rows,
            location=location,
            gb18030=not ciphertext,
        )

    def values(
        self,
        rel: str,
        location: str,
        values: Sequence[str],
        *,
        rows: Sequence[int] | None = None,
        positions: Sequence[str] | None = None,
        via: str = "",
    ) -> None:
        """Scan many short texts: joined with NUL (which no pattern crosses) so the regexes run in C."""
        for at in range(0, len(values), _BATCH):
            batch = [v.replace("\x00", " ") for v in values[at : at + _BATCH]]
            starts, offset = [], 0
            for value in batch:
                starts.append(offset)
                offset += len(value) + 1
            joined = "\x00".join(batch)
            grouped: dict[int, list[_Match]] = defaultdict(list)
            for m in self.needles.find(joined):
                grouped[bisect.bisect_right(starts, m.start) - 1].append(m)
            escaped = (
                [i for i, v in enumerate(batch) if _ESCAPES.search(v)] if _ESCAPES.search(joined) else []
            )
            for i in sorted(set(grouped) | set(escaped)):
                n = rows[at + i] if rows else 1
                position = positions[at + i] if positions else ""
                self._value_hits(
                    rel, location, position, batch[i], [_shift(m, -starts[i]) for m in grouped[i]], n, via
                )

    def _value_hits(
        self, rel: str, location: str, position: str, value: str, matches: list[_Match], rows: int, via: str
    ) -> None:
        """One hit per needle in a value (``rows`` says how often the value occurs), escapes decoded too."""
        seen = set()
        for value_via, text, found in [
            (via, value, matches),
            *((v, t, self.needles.find(t)) for v, t in _escaped_variants(value, via)),
        ]:
            starts = [m.start for m in found]
            for m in found:
                if m.needle.index not in seen:
                    seen.add(m.needle.index)
                    self._emit(self._hit(rel, location, position, text, found, starts, m, rows, value_via))

    def _hit(
        self,
        rel: str,
        location: str,
        position: str,
        text: str,
        matches: list[_Match],
        starts: list[int],
        m: _Match,
        rows: int,
        via: str,
    ) -> Hit:
        lo, hi = max(0, m.start - _CONTEXT), min(len(text), m.end + _CONTEXT)
        return Hit(
            rel,
            location,
            position,
            m.needle.kind,
            m.needle.variant,
            m.needle.masked,
            _masked_context(text, matches, starts, m),
            rows,
            m.embedded,
            via,
            _raw=text[lo:hi],
            _span=(m.start - lo, m.end - lo),
        )

    def _emit(self, hit: Hit) -> None:
        (self.result.allowed if self.allow is not None and self.allow(hit) else self.result.hits).append(hit)


_GB_SEGMENT = re.compile(rb"[\x09\x0a\x0d\x20-\x7e\x81-\xfe]{4,}")


def _head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(64)


def _file_kind(name: str, head: bytes) -> str:
    name = name.lower()
    if name.endswith(".sealed"):
        return "sealed"
    if head[8:12] == b"DUCK":
        return "duckdb"
    if head.startswith(b"SQLite format 3\x00"):
        return "sqlite"
    if head.startswith(b"PAR1"):
        return "parquet"
    if head.startswith(b"\x1f\x8b"):
        return "gzip"
    if head.startswith(b"PK\x03\x04"):
        return "xlsx" if name.endswith((".xlsx", ".xlsm")) else "zip"
    if name.endswith(".wal"):
        return "wal"
    if Path(name).suffix in _TEXT_SUFFIXES or (head and b"\x00" not in head):
        return "text"  # text is decoded strictly; what does not decode falls back to a byte scan
    return "bytes"


def _inflate(data: bytes) -> bytes:
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else zlib.decompress(data)
