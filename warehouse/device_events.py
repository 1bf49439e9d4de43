"""``core.device_events``: the IoT platform's events as Parquet day partitions behind a view.

Events are kept as Parquet under ``events_dir/day=YYYY-MM-DD/events-<sha>.parquet`` (the
Asia/Shanghai day of the event's own ``ts``; a day may have several files, see below), one row per
``event_id`` across all runs (the copy delivered first is kept; later copies are counted as duplicates
in ``core.device_event_runs``). A
broken clock (``ts`` before 2000, or more than a day after the delivering run's as-of — or after the
arrival time its connector estimated for the log it read, ``reference_ms`` in the run's events state, when
that lies more than an hour after the as-of, `connectors.iot_clock`) is kept but
flagged (``clock_ok = false``, ``event_at`` NULL); a late event counts at its own ``ts`` and is flagged
``is_late`` when it happened before the previous run's T. Each build merges the raw slices of every run
up to T not merged yet (and its own run again), writing only the days they touch. The raw slices are
read directly (for an event log kept as Parquet parts, `islandbridge.landing.raw_parts`, only the
pending runs' parts).

Settling duplicates looks at keys only: the pending events' ``(event_id, received_ms, received_run)``
and the same three columns of the rows the touched days already hold; among the event_ids seen more
than once, the copies that lose (a later ``received_ms``, then a later run) go to ``_ib_ev_lost``.

**Several files a day.** A touched day keeps every file of it that holds no pending run's rows and no
losing row: its new rows (less the losers) go to one *additional* file of the day. Late events for a
day already written are the common case (a day's file of 2.7 million events at 300,000 residents gets a
few thousand late ones the next day), and a late copy of an event the day already holds loses to it (it
was delivered later), so the day's files stay as they are. Only a file that holds a pending run's rows
(the same run built again) or a row that loses (an earlier-delivered copy merged after it, e.g. a run
merged late) is rewritten: its remaining rows and the new rows together make the day's new file. When a
day would have more than `MAX_FILES_PER_DAY` files, the day's files but its largest are merged with the
new rows into one. Each new file is sorted by ``ts``; no sort or window runs over
all the columns of all the events.
Each day is read by DuckDB and its file written (zstd Parquet) by a second thread, so the next day is
read while the previous one is written; at most two days' rows are held at once.

Atomicity: a day's new content is written to a temporary file and renamed to a *content-addressed*
name before the transaction; nothing refers to it yet. The transaction then rebuilds the tables,
updates ``core.device_event_files`` (the live files of each day, keyed by day and file) and
re-creates the view over exactly those files. Files no longer listed are deleted only after the commit.
A failure or a kill at any point leaves the previous view on the previous files, both intact; leftovers
are removed by the next build. Re-running the same as-of writes the same bytes under the same names: nothing changes. A
warehouse whose file table is keyed by day alone (one file a day, before several were allowed) is
migrated by the next build, in a transaction of its own (``device_events.migrate``).

`islandbridge.warehouse.core.build_core` drives it: `EventStore.stage` before its transaction,
`EventStore.publish` inside it, `EventStore.collect_garbage` after the commit. The SQL is
``schemas/core/device_events.<step>.sql`` (``ddl``: the file and run tables; ``migrate``: the file
table keyed by day alone to (day, file); ``new``: the pending runs' events, ``{table}`` and
``{columns}`` filled in here; ``settle``: the losing copies, from the keys of
the new events and of the ``{kept}`` rows; ``runs``: each run's counts).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from islandbridge.connectors.iot_clock import EARLIEST_MS, READ_LATE_MS, SLACK_MS
from islandbridge.errors import TerminalError, count, noun
from islandbridge.landing import folder_owner, raw_parts
from islandbridge.schemas import core_sql
from islandbridge.storage import existing_columns, transaction

log = logging.getLogger(__name__)

LOCAL_TZ = "Asia/Shanghai"  # a day partition is the local day of the event's own ts


class EventFilesError(TerminalError):
    """Files listed in ``core.device_event_files`` are gone; `build_core` raises it as a CoreBuildError.

    Terminal: the warehouse lost files it depends on; rebuild or restore them, retrying cannot help.
    """


EVENT_SCHEMA = pa.schema(
    [
        ("event_id", pa.string()),
        ("ts_ms", pa.int64()),
        ("day", pa.date32()),
        ("device_id", pa.string()),
        ("event_type", pa.string()),
        ("holder_id", pa.string()),
        ("reading", pa.float64()),
        ("alarm_code", pa.string()),
        ("clock_ok", pa.bool_()),
        ("clock_issue", pa.string()),
        ("is_late", pa.bool_()),
        ("received_run", pa.string()),
        ("received_ms", pa.int64()),
    ]
)
_EVENT_COLUMNS = ", ".join(EVENT_SCHEMA.names)
RAW_EVENT_COLUMNS = ("event_id", "ts", "device_id", "type", "holder_id", "value", "alarm_code")
EARLIEST_VALID_MS = EARLIEST_MS  # 2000-01-01: a clock before this was never set (ts = 0), as the connector's
AHEAD_MS = SLACK_MS  # a day after the run's T (or its log's arrival), as the connector's limit
ROW_GROUP_ROWS = 128 * 1024
# A merge of more raw events than this spools them to Parquet by day instead of a DuckDB temp table: at
# ~150 bytes an event, about what the default 2 GiB memory limit holds. Measured on 19.3 million events
# (a 300,000-resident street's first sync) the spool peaked 410 MiB lower for 12 % more CPU; a whole first
# build of 6.4 million took 34 instead of 24 CPU-s with it, so smaller merges (a day of a 300,000 street is
# ~2 million events) keep the temp table.
SPOOL_ABOVE_ROWS = 12_000_000
# A day holds at most this many files: its first file and the late events of up to seven later runs. A
# run that would add one more merges the day's files but its largest (the first, as a rule) with its new
# rows instead. The merged files are small (late events: ~0.7 % of a day each at 300,000 residents), so
# a compaction costs little; the bound keeps a year's view at most 8 files a day, ~2,900 in all.
MAX_FILES_PER_DAY = 8


FileEntry = tuple[str, int, str, list[str]]  # a row of core.device_event_files but its day


@dataclass(frozen=True)
class DayChange:
    """A day's change: the files it drops (relative to the root) and the file it gains, if any."""

    dropped: tuple[str, ...]
    added: FileEntry | None


@dataclass
class StagedEvents:
    """What a build will publish: the change of each affected day (files not named stay as they are)."""

    days: dict[dt.date, DayChange]
    runs: list[tuple]
    duplicates: int = 0


class EventStore:
    """The Parquet day partitions of ``core.device_events`` under one directory (see the module docstring)."""

    def __init__(self, root: Path, spool_above: int | None = None) -> None:
        self.root = Path(root).absolute()
        self.spool_above = SPOOL_ABOVE_ROWS if spool_above is None else spool_above

    def stage(self, con, bound: Mapping[str, str], at: dt.datetime, run_id: str) -> StagedEvents:
        """Merge the pending runs' raw events into new day files (not yet referenced by anything)."""
        con.execute(core_sql("device_events.ddl"))
        _migrate(con)
        source = next((s for s, system in sorted(bound.items()) if system == "iot_platform"), None)
        table = f"raw.{source}__events" if source else None
        have = existing_columns(con, table) if table else set()
        if not have:
            return StagedEvents({}, [])
        self._check_live_files(con)
        pending = self._pending(con, table, at, run_id)
        columns = ", ".join(f'"{c}"' if c in have else f'NULL::VARCHAR AS "{c}"' for c in RAW_EVENT_COLUMNS)
        new_events = core_sql(
            "device_events.new",
            table=raw_parts.slice_rows_sql(con, table, pending),
            columns=columns,
            local_tz=LOCAL_TZ,
            earliest_valid_ms=EARLIEST_VALID_MS,
            ahead_ms=AHEAD_MS,
            read_late_ms=READ_LATE_MS,
            source="'" + source.replace("'", "''") + "'",
        )
        spool = None
        try:
            if _pending_rows(con, table, pending) > self.spool_above:
                spool = Path(tempfile.mkdtemp(prefix=".spool-", dir=self._ensure_root()))
                self._spool(con, new_events, pending, spool)
            else:
                con.execute(f"CREATE OR REPLACE TEMP TABLE _ib_ev_new AS {new_events}", {"pending": pending})
            return self._merge(con, pending)
        finally:
            con.execute("DROP VIEW IF EXISTS _ib_ev_new" if spool else "DROP TABLE IF EXISTS _ib_ev_new")
            con.execute("DROP TABLE IF EXISTS _ib_ev_lost")
            if spool:
                shutil.rmtree(spool, ignore_errors=True)

    def _ensure_root(self) -> Path:
        self.root.mkdir(parents=True, exist_ok=True)
        return self.root

    @staticmethod
    def _spool(con, new_events: str, pending: list[str], spool: Path) -> None:
        """The pending events, typed, into Parquet under ``spool`` by day; ``_ib_ev_new`` is a view over them.

        Streamed, not held: a first build of a large street merges tens of millions of events, more than
        DuckDB's memory limit (held in a temp table they spill, and every day's sort then spills too), and
        each day is then read back alone. Writing the spool costs more CPU than the temp table, so only a
        merge of more than ``spool_above`` raw events takes this path (`SPOOL_ABOVE_ROWS`)."""
        con.execute(
            f"COPY ({new_events}) TO '{_quoted(spool)}' (FORMAT parquet, PARTITION_BY (day), "
            "WRITE_PARTITION_COLUMNS true)",
            {"pending": pending},
        )
        if any(spool.rglob("*.parquet")):
            source = (
                f"SELECT {_EVENT_COLUMNS}, new_row FROM read_parquet('{_quoted(spool)}/**/*.parquet', "
                "hive_partitioning = false)"
            )
        else:
            empty = ", ".join(f"NULL::{_SQL_TYPES[f.type]} AS {f.name}" for f in EVENT_SCHEMA)
            source = f"SELECT {empty}, NULL::BIGINT AS new_row WHERE false"
        con.execute(f"CREATE OR REPLACE TEMP VIEW _ib_ev_new AS {source}")

    def _check_live_files(self, con) -> None:
        gone = [
            r[0]
            for r in con.execute("SELECT file FROM core.device_event_files ORDER BY day, file").fetchall()
            if not (self.root / r[0]).is_file()
        ]
        if gone:
            raise EventFilesError(
                f"{count(len(gone), 'device-event file')} listed in core.device_event_files {noun(len(gone), 'is', 'are')} missing under "
                f"{self.root} (first: {gone[0]}); restore the folder, or rebuild every day from the raw event "
                "slices: DELETE FROM core.device_event_files; DELETE FROM core.device_event_runs; then build again"
            )

    def _pending(self, con, table: str, at: dt.datetime, run_id: str) -> list[str]:
        """This run, and every earlier run up to T whose events were never merged (a core added later)."""
        rows = con.execute(
            f"SELECT e._run_id FROM ({raw_parts.loaded_runs_sql(con, table)}) e "
            "JOIN meta.runs r ON r.run_id = e._run_id "
            "WHERE r.as_of <= $as_of AND e._run_id NOT IN (SELECT run_id FROM core.device_event_runs)",
            {"as_of": at},
        ).fetchall()
        return sorted({run_id, *(r[0] for r in rows)})

    def _merge(self, con, pending: list[str]) -> StagedEvents:
        """Settle the pending runs' events against the kept rows of the days they touch, by key only: an
        event_id seen more than once keeps its first-delivered copy (``received_ms``, then the run)."""
        days = [
            r[0]
            for r in con.execute(
                "SELECT DISTINCT day FROM _ib_ev_new UNION SELECT day FROM core.device_event_files "
                "WHERE len(list_intersect(runs, $pending)) > 0 ORDER BY 1",
                {"pending": pending},
            ).fetchall()
        ]
        old: dict[dt.date, list[tuple[str, int, list[str]]]] = {}
        for day, file, rows, runs in con.execute(
            "SELECT day, file, rows, runs FROM core.device_event_files WHERE list_contains($days, day) "
            "ORDER BY day, file",
            {"days": days},
        ).fetchall():
            old.setdefault(day, []).append((file, rows, runs))
        files = [self.root / f for entries in old.values() for f, _, _ in entries]
        kept = (
            _kept_sql(files, pending, "event_id, received_ms, received_run, day, filename")
            if files
            else _NO_KEPT_KEYS
        )
        for statement in core_sql("device_events.settle", kept=kept).split(";\n"):
            if statement.strip():
                con.execute(statement)
        adding = {
            r[0]
            for r in con.execute(
                "SELECT DISTINCT day FROM _ib_ev_new WHERE new_row NOT IN "
                "(SELECT new_row FROM _ib_ev_lost WHERE new_row IS NOT NULL)"
            ).fetchall()
        }
        losing = {
            r[0]
            for r in con.execute(
                "SELECT DISTINCT old_file FROM _ib_ev_lost WHERE old_file IS NOT NULL"
            ).fetchall()
        }
        changes: dict[dt.date, DayChange] = {}
        # a day's Parquet file is written (zstd, GIL released) on a second thread while DuckDB reads the
        # next day: one write in flight, so at most two days' rows are held at once
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="ib-day-writer") as writer:
            flight: tuple[dt.date, tuple[str, ...], Future] | None = None
            for day in days:
                redone = self._redone(old.get(day, []), set(pending), losing, day in adding)
                if not redone and day not in adding:
                    continue  # only late copies of events the day holds: its files stay as they are
                data = self._day_rows(con, day, [self.root / f for f in redone], pending)
                if flight is not None:
                    changes[flight[0]] = DayChange(flight[1], flight[2].result())
                flight = (
                    (day, redone, writer.submit(self._write_day, day, data)) if data is not None else None
                )
                if data is None and redone:
                    changes[day] = DayChange(redone, None)
            if flight is not None:
                changes[flight[0]] = DayChange(flight[1], flight[2].result())
        staged = StagedEvents(dict(sorted(changes.items())), self._run_stats(con, pending))
        staged.duplicates = sum(r[4] for r in staged.runs)
        return staged

    def _redone(
        self, entries: list[tuple[str, int, list[str]]], pending: set[str], losing: set[str], adding: bool
    ) -> tuple[str, ...]:
        """The day's files its new file replaces: those holding a pending run's rows or a losing row; and,
        when a new file would bring the day over `MAX_FILES_PER_DAY` files, all but its largest."""
        redone = [f for f, _, runs in entries if pending & set(runs or ()) or str(self.root / f) in losing]
        left = [(rows, f) for f, rows, _ in entries if f not in redone]
        if (adding or redone) and len(left) >= MAX_FILES_PER_DAY:
            largest = max(left, key=lambda e: (e[0], e[1]))[1]
            redone += [f for _, f in left if f != largest]
        return tuple(sorted(redone))

    def _day_rows(self, con, day: dt.date, redone: list[Path], pending: list[str]) -> pa.Table | None:
        """The rows of the day's new file: the rows of the files it replaces but the losers and the pending
        runs' rows, and the day's new rows but the losers (None: nothing to write)."""
        kept = (
            f"SELECT {_EVENT_COLUMNS} FROM {_kept_sql(redone, pending, _EVENT_COLUMNS)} o "
            "WHERE NOT EXISTS (SELECT 1 FROM _ib_ev_lost l WHERE l.old_day = o.day "
            "AND l.event_id = o.event_id AND l.received_run = o.received_run) UNION ALL "
            if redone
            else ""
        )
        data = con.sql(
            f"SELECT * FROM ({kept}SELECT {_EVENT_COLUMNS} FROM _ib_ev_new WHERE day = $day AND new_row NOT IN "
            "(SELECT new_row FROM _ib_ev_lost WHERE new_row IS NOT NULL)) ORDER BY ts_ms, event_id",
            params={"day": day},
        ).to_arrow_table()
        return data.cast(EVENT_SCHEMA) if data.num_rows else None

    def _write_day(self, day: dt.date, data: pa.Table) -> FileEntry:
        """Write a day's rows to a temporary file and rename it to its content-addressed name."""
        folder = self.root / f"day={day.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        handle, temp = tempfile.mkstemp(prefix=".tmp-", suffix=".parquet", dir=folder)
        os.close(handle)
        try:
            pq.write_table(data, temp, compression="zstd", row_group_size=ROW_GROUP_ROWS)
            digest = _sha256(Path(temp))
            final = folder / f"events-{digest[:16]}.parquet"
            if final.exists():  # the same content as before: the live file stays as it is
                os.unlink(temp)
            else:
                os.replace(temp, final)
        except BaseException:
            Path(temp).unlink(missing_ok=True)
            raise
        runs = sorted(set(data.column("received_run").to_pylist()))
        return final.relative_to(self.root).as_posix(), data.num_rows, digest, runs

    @staticmethod
    def _run_stats(con, pending: list[str]) -> list[tuple]:
        rows = con.execute(core_sql("device_events.runs")).fetchall()
        seen = {r[0] for r in rows}  # a pending run that delivered no events still gets its row
        return rows + [(r, None, 0, 0, 0, 0, 0) for r in pending if r not in seen]

    def publish(self, con, staged: StagedEvents) -> None:
        """Inside the build's transaction: point the file table and the view at the staged files. Raises
        `SharedFolderError` when ``root`` belongs to another warehouse (its owner would delete them)."""
        folder_owner.require(con, self.root)
        con.execute(core_sql("device_events.ddl"))
        for day, change in sorted(staged.days.items()):
            con.execute(
                "DELETE FROM core.device_event_files WHERE day = ? AND list_contains(?, file)",
                [day, list(change.dropped)],
            )
            if change.added is not None:
                con.execute(
                    "INSERT INTO core.device_event_files VALUES (?, ?, ?, ?, ?)", [day, *change.added]
                )
        for row in staged.runs:
            con.execute("DELETE FROM core.device_event_runs WHERE run_id = ?", [row[0]])
            con.execute("INSERT INTO core.device_event_runs VALUES (?, ?, ?, ?, ?, ?, ?)", list(row))
        self._view(con)

    def drop_days_before(self, con, day: dt.date, *, apply: bool) -> tuple[int, int]:
        """Retention: the day partitions before ``day`` (every file of them) leave ``core.device_event_files``
        and the view (the files go with the next `collect_garbage`). Returns (days, events) dropped, or that
        would be."""
        if not con.execute(
            "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'core' "
            "AND table_name = 'device_event_files'"
        ).fetchall()[0][0]:
            return 0, 0
        days, rows = con.execute(
            "SELECT count(DISTINCT day), coalesce(sum(rows), 0) FROM core.device_event_files WHERE day < ?",
            [day],
        ).fetchall()[0]
        if apply and days:
            con.execute("DELETE FROM core.device_event_files WHERE day < ?", [day])
            self._view(con)
        return int(days), int(rows)

    def view_elsewhere(self, con) -> bool:
        """Whether ``core.device_events`` does not read every listed day file under ``root``: the warehouse
        was copied, moved or restored, and its view (absolute paths: DuckDB takes a relative one from the
        working folder) still names the original's files; or the view was made while a file was lost
        (`rebase` with ``lost_ok``) and leaves it out. The file table itself lists paths relative to
        ``root``."""
        if not existing_columns(con, "core.device_event_files"):
            return False
        files = [r[0] for r in con.execute("SELECT file FROM core.device_event_files").fetchall()]
        view = con.execute(
            "SELECT sql FROM duckdb_views() WHERE database_name = current_database() AND schema_name = 'core' "
            "AND view_name = 'device_events'"
        ).fetchall()
        if not files:
            return False
        return not view or any("'" + _quoted(self.root / f) + "'" not in view[0][0] for f in files)

    def rebase(self, con, *, lost_ok: bool = False) -> bool:
        """Re-create the view over the files under ``root`` when it reads another folder (`view_elsewhere`);
        whether it did. Raises `EventFilesError` when a listed file is not under ``root``; ``lost_ok``
        leaves such files out of the view with a warning instead (the warehouse can still be queried; a
        build still stops on them)."""
        if not self.view_elsewhere(con):
            return False
        if not lost_ok:
            self._check_live_files(con)
        self._view(con, lost_ok=lost_ok)
        return True

    def _view(self, con, *, lost_ok: bool = False) -> None:
        """Re-create ``core.device_events`` over the files listed in ``core.device_event_files``; with
        ``lost_ok``, over those that are there (a lost one is named in a warning, and the view counts as
        elsewhere until it is back: `view_elsewhere`)."""
        files = [
            self.root / r[0]
            for r in con.execute("SELECT file FROM core.device_event_files ORDER BY day, file").fetchall()
        ]
        lost = [f for f in files if not f.is_file()] if lost_ok else []
        if lost:
            log.warning(
                "%s listed in core.device_event_files %s missing under %s (first: %s): core.device_events "
                "leaves %s out; restore the folder before the next build",
                count(len(lost), "device-event file"),
                noun(len(lost), "is", "are"),
                self.root,
                lost[0].relative_to(self.root).as_posix(),
                noun(len(lost), "it", "them"),
            )
        present = [f for f in files if f not in lost]
        con.execute(f"CREATE OR REPLACE VIEW core.device_events AS {_events_view_sql(present)}")

    def collect_garbage(self, con) -> int:
        """After the commit: delete day files no longer listed (and leftovers of a failed build), only in a
        folder this warehouse owns (`folder_owner`: not one shared with another warehouse file)."""
        if not self.root.exists():
            return 0
        if not folder_owner.claim(con, self.root):
            log.warning(
                "%s", folder_owner.shared_message(self.root, folder_owner.other_owner(con, self.root))
            )
            return 0
        live = {r[0] for r in con.execute("SELECT file FROM core.device_event_files").fetchall()}
        removed = 0
        for spool in sorted(self.root.glob(".spool-*")):  # a build killed while merging
            shutil.rmtree(spool, ignore_errors=True)
        for folder in sorted(self.root.glob("day=*")):
            for path in sorted(folder.iterdir()):
                relative = path.relative_to(self.root).as_posix()
                if path.is_file() and relative not in live and (path.name.startswith((".tmp-", "events-"))):
                    path.unlink()
                    removed += 1
            if not any(folder.iterdir()):
                folder.rmdir()
        return removed


def _events_view_sql(files: Sequence[Path]) -> str:
    columns = (
        "event_id, ts_ms, CASE WHEN clock_ok THEN make_timestamptz(ts_ms * 1000) END AS event_at, day, "
        "device_id, event_type, holder_id, reading, alarm_code, clock_ok, clock_issue, is_late, received_run, "
        "make_timestamptz(received_ms * 1000) AS received_by"
    )
    if files:
        return f"SELECT {columns} FROM read_parquet({_path_list(files)})"
    empty = ", ".join(f"NULL::{_SQL_TYPES[f.type]} AS {f.name}" for f in EVENT_SCHEMA)
    return f"SELECT {columns} FROM (SELECT {empty}) WHERE false"


_SQL_TYPES = {
    pa.string(): "VARCHAR",
    pa.int64(): "BIGINT",
    pa.date32(): "DATE",
    pa.float64(): "DOUBLE",
    pa.bool_(): "BOOLEAN",
}


_NO_KEPT_KEYS = (
    "(SELECT NULL::VARCHAR AS event_id, NULL::BIGINT AS received_ms, NULL::VARCHAR AS received_run, "
    "NULL::DATE AS day, NULL::VARCHAR AS filename WHERE false)"
)


def _kept_sql(files: Sequence[Path], pending: list[str], columns: str) -> str:
    """``columns`` of the rows of day ``files`` not delivered by a pending run (those are merged again);
    ``filename`` is the file a row is in, as the path was given."""
    runs = "[" + ", ".join("'" + r.replace("'", "''") + "'" for r in pending) + "]"
    return (
        f"(SELECT {columns} FROM read_parquet({_path_list(files)}, filename = true) "
        f"WHERE NOT list_contains({runs}, received_run))"
    )


def _migrate(con) -> None:
    """A file table keyed by day alone (one file a day, the layout before several) re-keyed by (day, file)."""
    key = con.execute(
        "SELECT constraint_column_names FROM duckdb_constraints() WHERE schema_name = 'core' "
        "AND table_name = 'device_event_files' AND constraint_type = 'PRIMARY KEY'"
    ).fetchall()
    if key and key[0][0] == ["day"]:
        with transaction(con):
            for statement in core_sql("device_events.migrate").split(";\n"):
                if statement.strip():
                    con.execute(statement)


def _pending_rows(con, table: str, pending: list[str]) -> int:
    """How many raw events the pending runs delivered (their parts' row counts; a table's rows counted)."""
    if raw_parts.is_parts(con, table):
        sql = "SELECT coalesce(sum(rows), 0) FROM meta.raw_parts WHERE relation = ? AND list_contains(?, run_id)"
        return int(con.execute(sql, [table, pending]).fetchall()[0][0])
    return int(
        con.execute(f"SELECT count(*) FROM {table} WHERE list_contains(?, _run_id)", [pending]).fetchall()[0][
            0
        ]
    )


def _quoted(path: Path) -> str:
    return str(path).replace("'", "''")


def _path_list(paths: Sequence[Path]) -> str:
    return "[" + ", ".join("'" + str(p).replace("'", "''") + "'" for p in paths) + "]"


def _sha256(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()
