"""What a scan found: `Hit` (one occurrence, masks only), `allow_rules` (expected hits) and `ScanResult`
(hits, allowed hits, files read, errors; a summary of counts and a masked report).
"""

from __future__ import annotations

import fnmatch
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Hit:
    """One occurrence of a needle, with masks only (``_raw`` serves ``inside`` and is never shown)."""

    file: str  # relative to the scanned root; "a.zip!member" for a member of an archive
    location: str  # schema.table.column, parquet column, CSV column, sheet, "text", "bytes"
    position: str  # "line 12", "rowid 5", "B3", "offset ~4096"; "" for a column's distinct values
    kind: str
    variant: str
    masked: str
    context: str
    rows: int = 1  # rows holding the value: DuckDB and Parquet columns are read as distinct values
    embedded: bool = False
    via: str = ""  # how the text was obtained when not plain UTF-8: gb18030, json-escape, gzip, bytes...
    _raw: str = field(default="", repr=False, compare=False)
    _span: tuple[int, int] = field(default=(0, 0), repr=False, compare=False)

    def inside(self, term: str) -> bool:
        """True when this occurrence lies within an occurrence of ``term`` (an estate, a category)."""
        start, end = self._span
        at = self._raw.find(term)
        while at != -1:
            if at <= start and end <= at + len(term):
                return True
            at = self._raw.find(term, at + 1)
        return False

    def to_dict(self) -> dict:
        return {
            k: getattr(self, k)
            for k in (
                "file",
                "location",
                "position",
                "kind",
                "variant",
                "masked",
                "context",
                "rows",
                "embedded",
                "via",
            )
        }

    def __str__(self) -> str:
        where = f"{self.file} :: {self.location}" + (f" :: {self.position}" if self.position else "")
        extra = (" embedded" if self.embedded else "") + (f" via {self.via}" if self.via else "")
        rows = f" x{self.rows}" if self.rows > 1 else ""
        return f"{where}: {self.kind}/{self.variant} {self.masked}{rows}{extra} | {self.context}"


def allow_rules(*, locations: Iterable[str] = (), terms: Iterable[str] = ()) -> Callable[[Hit], bool]:
    """An ``allow`` predicate from location patterns and innocent words.

    ``locations``: ``FILE_GLOB`` or ``FILE_GLOB::LOCATION_GLOB`` (fnmatch, case-sensitive), e.g.
    ``"exports/civil_affairs/*::姓名"`` for a column a policy allows. ``terms``: words such as estate
    names; a name hit lying inside one of them is allowed.

    >>> allow = allow_rules(locations=["exports/*::name"], terms=["江口新居"])
    """
    patterns = [tuple((p.split("::", 1) + ["*"])[:2]) for p in locations]
    words = [t for t in terms if t]

    def allow(hit: Hit) -> bool:
        if any(
            fnmatch.fnmatchcase(hit.file, f) and fnmatch.fnmatchcase(hit.location, loc) for f, loc in patterns
        ):
            return True
        return hit.kind == "name" and any(hit.inside(word) for word in words)

    return allow


@dataclass
class ScanResult:
    """What ``scan_tree`` found. ``ok``: no hit outside ``allow`` and no file left unread."""

    root: Path
    hits: list[Hit] = field(default_factory=list)
    allowed: list[Hit] = field(default_factory=list)
    files: Counter[str] = field(default_factory=Counter)  # files scanned per kind
    bytes_scanned: int = 0
    elapsed: float = 0.0
    excluded: int = 0
    errors: list[tuple[str, str]] = field(default_factory=list)  # (file, message with needles masked)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.hits and not self.errors

    def counts(self, hits: Iterable[Hit] | None = None) -> Counter[tuple[str, str, str]]:
        """Hits per (file, location, kind), a hit on a column's distinct value counting its rows."""
        counts: Counter[tuple[str, str, str]] = Counter()
        for hit in self.hits if hits is None else hits:
            counts[(hit.file, hit.location, hit.kind)] += hit.rows
        return counts

    def summary(self, limit: int = 60) -> str:
        """Counts only: files per kind, bytes, time, hits per file/location/kind (weighted by rows)."""
        files = ", ".join(f"{k} {n}" for k, n in sorted(self.files.items())) or "none"
        lines = [
            f"scanned {sum(self.files.values())} files ({files}), {self.bytes_scanned:,} bytes "
            f"in {self.elapsed:.1f} s; {self.excluded} excluded",
            f"hits: {len(self.hits)} ({sum(h.rows for h in self.hits)} counting rows); "
            f"allowed: {len(self.allowed)}; "
            f"unreadable files: {len(self.errors)}",
        ]
        by_kind = Counter(h.kind for h in self.hits)
        if by_kind:
            embedded = sum(1 for h in self.hits if h.embedded)
            lines.append(
                "by kind: "
                + ", ".join(f"{k} {n}" for k, n in sorted(by_kind.items()))
                + f"; {embedded} inside longer text"
            )
        counts = self.counts()
        lines += [
            f"  {file} :: {location} :: {kind}: {rows}"
            for (file, location, kind), rows in counts.most_common(limit)
        ]
        if len(counts) > limit:
            lines.append(f"  ... {len(counts) - limit} more locations")
        lines += [f"  unreadable: {file}: {message}" for file, message in self.errors]
        lines += [f"  note: {note}" for note in self.notes]
        return "\n".join(lines)

    def report(self, limit: int = 50) -> str:
        """The first ``limit`` hits, one a line, masked."""
        lines = [str(hit) for hit in self.hits[:limit]]
        if len(self.hits) > limit:
            lines.append(f"... {len(self.hits) - limit} more hits")
        return "\n".join(lines)

    def to_dict(self) -> dict:
        return {
            "root": str(self.root),
            "ok": self.ok,
            "files": dict(self.files),
            "bytes_scanned": self.bytes_scanned,
            "elapsed_s": round(self.elapsed, 3),
            "excluded": self.excluded,
            "errors": [list(e) for e in self.errors],
            "notes": self.notes,
            "hits": [h.to_dict() for h in self.hits],
            "allowed": [h.to_dict() for h in self.allowed],
        }
