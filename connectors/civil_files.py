"""Civil-affairs rosters (民政业务系统): the monthly 低保 and 高龄补贴 files in a shared folder.

Each file is the whole roster of one street, month and programme, named
``{street_code}_{YYYYMM}_{低保|高龄补贴}[_更正[N]].{xlsx|csv}``, the extension in any case; an ``.xls`` is
taken as a roster too, read if it is a 2007+ workbook and otherwise refused with a reason (never ignored),
as is a password-protected workbook.
What this connector decides:

* **Newest version only.** Of a street/month/programme it lands only the newest file (base < ``_更正`` <
  ``_更正2`` …, also against the version landed by an earlier run). Older files are not opened; the
  returned state lists them under ``superseded`` (file → the file that replaces it). Of several files of
  one version (``_更正.xls`` and ``_更正.xlsx`` or ``_更正1.xlsx``), one readable (the ``.xlsx`` saved from a
  refused ``.xls``) is the version and the unreadable ones are superseded by it (each one record read and
  quarantined); when none is readable each is refused with its own reason. When a correction
  replaces a version landed earlier, the record keys the correction no longer has are reported with
  ``sink.deleted``, so the warehouse holds the month exactly as corrected.
* **Only a whole version replaces a month.** A file with any row quarantined never replaces a version
  landed earlier (all its rows are quarantined, nothing is deleted, the earlier version stays), and a
  file of which no row can land, or with no data rows, never becomes a month's roster.
* **Once per content, per month.** The state keeps ``<stream>:<YYYYMM>:<sha256>`` of every file landed; the
  month's landed version again (even renamed as a correction) lands nothing and its rows are counted as
  duplicates. The same bytes under another month's name are that month's roster and land.
* **Every file accounted.** Each file in the folder gets an outcome with a reason (``sink.file``):
  landed, duplicate, superseded, kept (the month's landed version, whose newer file was refused),
  refused, ignored; the loader keeps them in ``meta.source_files``.
* **Record keys** ``dibao:<YYYYMM>:<序号>``; each row also carries ``roster_month``, ``source_file``,
  ``file_sha256`` and ``source_row`` (its 1-based row number in the file).
* **Reasons, not crashes.** A file that cannot be read as rows (corrupt, Excel 97-2003, zip bomb, wrong
  encoding, no header, too big, a symlink) is quarantined as one record keyed ``file:<file name>`` and
  counted as one read. A file whose ``合计`` row is missing or does not match the sum of its rows, or whose
  header lacks or repeats a SPEC column, has *every* row quarantined with that reason.
* **Unknown columns described, not read.** A column beyond the SPEC's (a 备注) with all the SPEC's
  present: the file lands by the SPEC's columns; the column is in the file's outcome and the state's
  ``unknown_columns`` by position and length (a header cell a clerk typed is never repeated, except a
  harmless 备注/说明), its values are never read. A row of the wrong shape, without 序号 or repeating
  one, is quarantined alone. Files in the folder that are not rosters are listed with the reason under ``ignored`` in the
  returned state (and logged), since they belong to no stream.

Example configuration::

    civil: {kind: civil_files, path: /mnt/minzheng/511403001, max_file_mb: 50, max_rows: 200000}
"""

from __future__ import annotations

import hashlib
import logging
import os
import re
import stat
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from islandbridge.connectors.options import option, parse_options
from islandbridge.errors import ConfigError, FatalSourceError, count, noun

from .base import Connector, ExtractContext, Stream, declared_stream, register
from .roster_files import LAYOUTS, Layout, Limits, Roster, RosterError, parse_roster, totals_problem

log = logging.getLogger(__name__)

# ASCII digits only (``\d`` alone takes full-width and Arabic-Indic digits, which would land as a month
# like ``２０２６11``), and a year of this century: ``000011`` or ``999912`` is a typo, not a roster month.
NAME = re.compile(
    r"(?P<street>[0-9]{6,12})_(?P<month>20[0-9]{2}(?:0[1-9]|1[0-2]))_(?P<programme>低保|高龄补贴)"
    r"(?:_更正(?P<n>[1-9][0-9]?)?)?\.(?P<ext>(?i:xlsx|xls|csv))"
)
NAME_HELP = "{street_code}_{20YYMM}_{低保|高龄补贴}[_更正[N]].{xlsx|csv} (extension in any case)"
EXTRA_COLUMNS = ("roster_month", "source_file", "file_sha256", "source_row")
STATE_VERSION = 2


def _stream(layout: Layout) -> Stream:
    """The roster's stream as the raw schema declares it (schemas/raw_civil.yml): the bureau's columns
    (``layout.columns``, which a file's header must match), then `EXTRA_COLUMNS`."""
    stream = declared_stream("civil_files", layout.stream, key_prefix=layout.stream)
    if stream.columns != (*layout.columns, *EXTRA_COLUMNS):
        raise ConfigError(
            f"schemas/raw_civil.yml: the {layout.stream} columns differ from the {layout.programme} layout"
        )
    return stream


STREAMS = tuple(_stream(layout) for layout in LAYOUTS.values())


@dataclass(frozen=True)
class RosterFile:
    """A file whose name says which roster it is; ``rank`` 0 is the base, N the N-th correction."""

    name: str
    street: str
    month: str
    layout: Layout
    rank: int
    ext: str

    @property
    def group(self) -> str:
        return f"{self.layout.stream}:{self.month}"


@dataclass(frozen=True)
class Options:
    """The options of one civil-affairs roster folder (`connectors.options.parse_options`)."""

    path: str = option(required=True)
    max_file_mb: float = option(50, positive=True)
    max_rows: int = option(200_000, positive=True)
    street_code: str | None = option(None)


@register
class CivilFilesConnector(Connector):
    """Lands the rosters in the folder at option ``path``.

    Options: ``path`` (the folder, required), ``max_file_mb`` (50; larger files get a reason),
    ``max_rows`` (200000 data rows per file), ``street_code`` (default: the configuration's ``street.code``;
    other streets' files are refused with a reason).
    Raises ``FatalSourceError`` if the folder is missing; everything wrong with a file is a reason.
    """

    kind = "civil_files"
    system = "civil_affairs"
    required_options = ("path",)

    def __init__(self, settings) -> None:
        super().__init__(settings)
        opts = parse_options(Options, self.name, self.kind, self.options)
        self.folder = Path(opts.path)
        self.max_bytes = int(opts.max_file_mb * (1 << 20))
        self.limits = Limits(max_rows=opts.max_rows, max_unzipped_bytes=10 * self.max_bytes)
        street = opts.street_code or getattr(settings, "street_code", None)
        self.street = str(street) if street not in (None, "") else None

    def streams(self) -> Sequence[Stream]:
        return STREAMS

    @classmethod
    def stored_state(cls, state: Mapping[str, Any], scrub: Callable[[str], str]) -> Mapping[str, Any]:
        """Each month's 序号 scrubbed (`_Run._remember`), also in states stored before they were."""
        months = state.get("months")
        if not isinstance(months, Mapping):
            return state
        return {
            **state,
            "months": {
                group: {**month, "keys": _serials(scrub(k) for k in month.get("keys", []))}
                for group, month in months.items()
            },
        }

    def extract(self, ctx: ExtractContext) -> Mapping[str, Any]:
        old = self.stored_state(_upgrade(ctx.state), ctx.sink.scrubbed)
        run = _Run(self, ctx, dict(old.get("files", {})), dict(old.get("months", {})))
        files, ignored = self._scan()
        for group in sorted({f.group for f in files}):
            run.take_group([f for f in files if f.group == group])
        for name, reason in sorted(ignored.items()):
            found = NAME.fullmatch(name)
            stream = LAYOUTS[found["programme"]].stream if found else None
            run.outcome(name, stream, "refused" if found else "ignored", reason)
            log.warning("%s: ignored %s: %s", self.name, name, reason)
        return {
            "version": STATE_VERSION,
            "files": run.files,
            "months": run.months,
            "superseded": dict(sorted(run.superseded.items())),
            "ignored": ignored,
            "unknown_columns": dict(sorted(run.unknown.items())),
        }

    def _scan(self) -> tuple[list[RosterFile], dict[str, str]]:
        """The folder's roster files, and a reason for each other entry (nothing below it is read)."""
        try:
            names = sorted(os.listdir(self.folder))
        except OSError as exc:
            raise FatalSourceError(
                f"cannot list the roster folder {self.folder}: {exc.strerror}; "
                "check the share is mounted and readable"
            ) from None
        files, ignored = [], {}
        for name in names:
            found = classify_name(name, self.street)
            if isinstance(found, str):
                ignored[name] = found
            else:
                files.append(found)
        return files, ignored


def classify_name(name: str, street: str | None) -> RosterFile | str:
    """The roster a file name declares, or the reason it is not one."""
    if "/" in name or "\\" in name or ".." in name or any(ord(ch) < 32 for ch in name):
        return "the name contains a path separator, '..' or a control character: not read"
    match = NAME.fullmatch(name)
    if match is None:
        return f"not a roster file name ({NAME_HELP})"
    if street and match["street"] != street:
        return f"a roster of street {match['street']}, but this source is street {street}"
    rank = 0 if "_更正" not in name else int(match["n"] or 1)
    layout = LAYOUTS[match["programme"]]
    return RosterFile(name, match["street"], match["month"], layout, rank, match["ext"].lower())


class _Run:
    """One extraction's decisions over the roster groups, and the state they leave."""

    def __init__(
        self, connector: CivilFilesConnector, ctx: ExtractContext, files: dict, months: dict
    ) -> None:
        self.c, self.sink, self.files, self.months = connector, ctx.sink, files, months
        self.run_id = ctx.run_id
        self.superseded: dict[str, str] = {}
        self.unknown: dict[
            str, list[str]
        ] = {}  # file → its columns beyond the SPEC's (described, not values)

    def outcome(self, name: str, stream: str | None, outcome: str, reason: str | None, rows: int = 0) -> None:
        """Record what became of one file of the folder (``sink.file``), if the sink keeps such records."""
        record = getattr(self.sink, "file", None)
        if record is not None:
            record(stream, name, outcome, reason, rows)

    def take_group(self, group: list[RosterFile]) -> None:
        """Land the newest version of one month's roster; note the older ones as superseded."""
        landed = self.months.get(group[0].group)
        top = max(f.rank for f in group)
        if landed and landed["rank"] > top:
            for f in group:
                self._supersede(f, landed["file"])
            return
        newest, problem = self._one_version(group, [f for f in group if f.rank == top])
        for f in newest:
            if problem:
                self._reject_file(f, problem, None)
            else:
                self._take(f)
        kept = self.months.get(group[0].group)
        for f in group:
            if f.rank >= top:
                continue
            if kept and kept["file"] == f.name:  # the newer file was refused: this one stays the month's
                reason = f"the month's landed roster stays: {newest[0].name} was refused; not read again"
                self.outcome(f.name, f.layout.stream, "kept", reason)
            else:
                self._supersede(f, newest[0].name)

    def _one_version(
        self, group: list[RosterFile], newest: list[RosterFile]
    ) -> tuple[list[RosterFile], str | None]:
        """The files to take as the month's newest version, and why they must all be refused instead.

        Several files of one version (``_更正.xls`` beside ``_更正.xlsx``, or beside ``_更正1.xlsx``: one
        version spelt two ways) are the bureau answering a refusal: when exactly one can be read it is the
        version, and each other one is superseded by it (counted as one record read and quarantined). When
        none can be read they cannot collide, so each is refused with its own reason (a password-protected
        ``.xlsx`` says so). Two readable ones would collide on record keys: all of them are refused."""
        streets = sorted({f.street for f in group})
        if len(streets) > 1:
            return newest, (
                f"rosters of several streets ({', '.join(streets)}) for one month and programme in one "
                "folder; set the source's street_code option"
            )
        if len(newest) < 2:
            return newest, None
        readable = [f for f in newest if self._readable(f)]
        if not readable:
            return newest, None
        if len(readable) > 1:
            names = ", ".join(f.name for f in newest)
            return newest, f"{len(newest)} files claim the same version of this roster: {names}"
        (good,) = readable
        for f in newest:
            if f is not good:
                self.superseded[f.name] = good.name
                reason = (
                    f"superseded by {good.name}: the same version in a file that can be read, while this "
                    "one cannot; remove it from the folder"
                )
                self._reject_file(f, reason, None, "superseded")
        return [good], None

    def _readable(self, f: RosterFile) -> bool:
        try:
            data = read_file(self.c.folder, f.name, self.c.max_bytes)
            parse_roster(data, f.ext, f.layout, self.c.limits)
        except RosterError:
            return False
        return True

    def _supersede(self, f: RosterFile, by: str) -> None:
        self.superseded[f.name] = by
        self.outcome(f.name, f.layout.stream, "superseded", f"an older version than {by}: not read")

    def _take(self, f: RosterFile) -> None:
        try:
            data = read_file(self.c.folder, f.name, self.c.max_bytes)
        except RosterError as exc:
            self._reject_file(f, str(exc), None)
            return
        sha = hashlib.sha256(data).hexdigest()
        month = self.months.get(f.group)
        if month and month["sha"] == sha and _file_key(f, sha) in self.files:
            self._repeat(f, sha, month)
            return
        try:
            roster = parse_roster(data, f.ext, f.layout, self.c.limits)
        except RosterError as exc:
            self._reject_file(f, str(exc), sha)
            return
        self._land(f, sha, roster)

    def _repeat(self, f: RosterFile, sha: str, month: dict) -> None:
        """The month's landed version again (perhaps renamed as a correction): its rows are duplicates."""
        known = self.files[_file_key(f, sha)]
        self.sink.read(f.layout.stream, known["rows"])
        self.sink.duplicate(f.layout.stream, known["rows"])
        if f.rank > month["rank"]:
            self.months[f.group] = {**month, "file": f.name, "rank": f.rank}
        landed = f"landed in run {known['run']}" if "run" in known else "already landed"
        if known["file"] == f.name:  # the file an earlier run landed, still in the folder as it was
            reason = f"unchanged since it {landed.removeprefix('already ')} for {f.month}"
        else:
            reason = f"the same content as {known['file']}, {landed} for {f.month}"
        self.outcome(f.name, f.layout.stream, "duplicate", reason, known["rows"])
        log.info("%s: %s: %s; %s", self.c.name, f.name, reason, count(known["rows"], "duplicate row"))

    def _land(self, f: RosterFile, sha: str, roster: Roster) -> None:
        stream = self.c.stream(f.layout.stream)
        problem = totals_problem(roster, f.layout)
        if not roster.rows:
            self._reject_file(f, problem or "the roster has no data rows: it never replaces a month", sha)
            return
        self.sink.read(stream.name, len(roster.rows))
        unknown = self._unknown_columns(f, roster)
        seen: dict[str, int] = {}
        rows = []
        for row in roster.rows:
            record = {
                **row.values,
                "roster_month": f.month,
                "source_file": f.name,
                "file_sha256": sha,
                "source_row": row.number,
            }
            rows.append((record, problem or row.problem or _key_problem(record, seen)))
        bad = sum(1 for _, reason in rows if reason)
        refusal = problem or self._version_refusal(f, bad, len(rows))
        records = []
        for record, reason in rows:
            if reason or refusal:
                self.sink.quarantine(stream.name, _row_key(stream, record), reason or refusal, record)
            else:
                records.append(record)
        self.sink.write(stream.name, records)
        log.debug(
            "%s: %s landed %s, quarantined %d",
            self.c.name,
            f.name,
            count(len(records), "row"),
            len(rows) - len(records),
        )
        if refusal:
            self.outcome(f.name, stream.name, "refused", refusal, len(rows))
            log.warning("%s: %s refused: %s", self.c.name, f.name, refusal)
            return
        notes = [f"{count(bad, 'row')} quarantined, each with its reason" if bad else None, unknown]
        self.outcome(f.name, stream.name, "landed", "; ".join(n for n in notes if n) or None, len(rows))
        self._remember(f, sha, stream, records, len(rows))

    def _unknown_columns(self, f: RosterFile, roster: Roster) -> str | None:
        """Note the file's columns beyond the SPEC's (a 备注 a clerk added) in the state's
        ``unknown_columns``: by position and size (`roster_files.extra_column`), never the text a clerk
        typed into the header; their values are never read, so no free text lands."""
        if not roster.extra_columns:
            return None
        names = list(roster.extra_columns)
        self.unknown[f.name] = names
        log.warning("%s: %s: %s not in the SPEC, not read", self.c.name, f.name, count(len(names), "column"))
        return (
            f"{count(len(names), 'column')} not in the SPEC not read (its values are not landed): "
            + ", ".join(names)
        )

    def _version_refusal(self, f: RosterFile, bad: int, read: int) -> str | None:
        """Why a readable file must not become the month's roster: no row of it can land, or it would
        replace a version landed earlier while some of its rows are quarantined (that would delete the
        earlier rows and erase their identifiers for rows the bureau never meant to drop)."""
        previous = self.months.get(f.group)
        keep = f"; {previous['file']} stays the month's roster" if previous else ""
        if bad == read:
            return f"none of the file's {count(read, 'row')} can be landed: it does not become the month's roster{keep}"
        if previous and bad:
            return (
                f"{bad} of the file's {count(read, 'row')} {noun(bad, 'is', 'are')} quarantined, so it does not replace the version "
                f"landed earlier{keep}; ask the bureau for a clean file"
            )
        return None

    def _remember(self, f: RosterFile, sha: str, stream: Stream, records: list[dict], read: int) -> None:
        """Record the landed version; keys the previous version had and this one lacks are deleted. The
        state keeps each 序号 scrubbed: one holding an ID number or a phone is a row the quality gate sets
        aside, and the state is stored in the warehouse (``meta.source_state``)."""
        keys = _serials(self.sink.scrubbed(str(r["序号"]).strip()) for r in records)
        previous = self.months.get(f.group)
        if previous:
            gone = _serials(set(previous["keys"]) - set(keys))
            self.sink.deleted(stream.name, [f"{stream.key_prefix}:{f.month}:{k}" for k in gone])
        self.files[_file_key(f, sha)] = {
            "file": f.name,
            "stream": stream.name,
            "month": f.month,
            "rows": read,
            "sha": sha,
            "run": self.run_id,
        }
        self.months[f.group] = {"file": f.name, "rank": f.rank, "sha": sha, "keys": keys}

    def _reject_file(self, f: RosterFile, reason: str, sha: str | None, outcome: str = "refused") -> None:
        """A file that yields no rows: one quarantined record, counted as one read."""
        self.sink.read(f.layout.stream)
        record = {"source_file": f.name, "file_sha256": sha, "roster_month": f.month}
        self.sink.quarantine(f.layout.stream, f"file:{f.name}", reason, record)
        self.outcome(f.name, f.layout.stream, outcome, reason)
        log.warning("%s: %s %s: %s", self.c.name, f.name, outcome, reason)


def _serials(keys: Iterable[str]) -> list[str]:
    """Distinct 序号 in their roster order (``2`` before ``10``)."""
    return sorted(set(keys), key=lambda k: (len(k), k))


def _file_key(f: RosterFile, sha: str) -> str:
    """A landed file in the state's ``files``: its content *for its month* (``senior:202612:<sha>``), so a
    month whose file is byte-identical to the month before (a roster that did not change) still lands."""
    return f"{f.group}:{sha}"


def landed_rows(state: Mapping[str, Any], file_name: str, sha: str) -> int | None:
    """How many data rows the connector read from a landed file (for the quality gate's roster check)."""
    for key, info in (state.get("files") or {}).items():
        if info.get("file") == file_name and (info.get("sha") or key) == sha:
            return int(info["rows"])
    return None


def _upgrade(state: Mapping[str, Any]) -> dict[str, Any]:
    """A state of an earlier version in this one's shape (version 1 keyed ``files`` by sha alone)."""
    if state.get("version") == STATE_VERSION:
        return dict(state)
    if state.get("version") != 1:
        return {}
    files = {
        f"{info['stream']}:{info['month']}:{sha}": {**info, "sha": sha}
        for sha, info in (state.get("files") or {}).items()
    }
    return {**state, "version": STATE_VERSION, "files": files}


def _key_problem(record: Mapping[str, Any], seen: dict[str, int]) -> str | None:
    key = "" if record["序号"] is None else str(record["序号"]).strip()
    if not key:
        return "序号 is empty: the row has no record key"
    if key in seen:
        return f"序号 {key} repeats row {seen[key]}"
    seen[key] = record["source_row"]
    return None


def _row_key(stream: Stream, record: Mapping[str, Any]) -> str:
    if record["序号"] is None or not str(record["序号"]).strip():
        return f"file:{record['source_file']}:{record['source_row']}"
    return stream.record_key(record)


def read_file(folder: Path, name: str, max_bytes: int) -> bytes:
    """The bytes of a regular file directly in ``folder``: never through a symlink, never above a cap."""
    path = folder / name
    if path.is_symlink():
        raise RosterError("a symbolic link: links are not followed")
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)  # O_NONBLOCK: a FIFO named like a roster must not hang the run
    except OSError as exc:
        raise RosterError(f"cannot open the file: {exc.strerror}") from None
    info = os.fstat(fd)
    if not stat.S_ISREG(info.st_mode) or info.st_size > max_bytes:
        os.close(fd)
        raise RosterError(
            "not a regular file"
            if not stat.S_ISREG(info.st_mode)
            else f"the file is {info.st_size / (1 << 20):.2f} MB; max_file_mb allows "
            f"{max_bytes / (1 << 20):.2f} MB"
        )
    with os.fdopen(fd, "rb") as handle:
        data = handle.read(max_bytes + 1)
    if len(data) > max_bytes:
        raise RosterError(f"the file grew beyond max_file_mb ({max_bytes / (1 << 20):.2f} MB) while read")
    return data
