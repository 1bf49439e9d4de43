"""The one shape every connector has, and the context it extracts into.

A connector reads one source system. It declares its ``streams`` (the tables or endpoints it lands, each
with the column that keys a record) and implements ``extract``: read everything new since the state it is
handed, push records into ``ctx.sink``, and return the state to resume from next time. It never touches
the warehouse: the loader commits the landed data and the returned state in one transaction, so a crash
between the two can never advance a cursor past data that was not stored.

Accounting is the connector's duty and is checked: every record it *reads* must be landed, quarantined
with a reason, or counted as a duplicate; ``Sink.close`` raises if the numbers do not add up.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from islandbridge.config import SourceSettings
from islandbridge.errors import ConfigError, noun
from islandbridge.schemas import load_tables


@dataclass(frozen=True)
class Stream:
    """One table or endpoint of a source, landed as one dataset per run.

    ``key`` names the column (or columns) that identify a record; the record key written beside each
    row is the stream's ``key_prefix`` (default: its name) and the key values joined by ``:`` — the form
    the simulator's truth uses (``t_jm:100001``, ``dibao:202611:12``).
    """

    name: str
    key: str | tuple[str, ...]
    columns: tuple[str, ...]
    person_bearing: bool = False
    key_prefix: str | None = None
    #: Records of this stream may repeat within one extraction (an at-least-once log): the landing
    #: writer keeps one per record key and counts the others as duplicates, on disk, in bounded memory.
    dedupe: bool = False

    @property
    def key_columns(self) -> tuple[str, ...]:
        return (self.key,) if isinstance(self.key, str) else self.key

    def record_key(self, record: Mapping[str, Any]) -> str:
        parts = [str(record[c]).strip() for c in self.key_columns]
        return ":".join([self.key_prefix or self.name, *parts])

    def record_keys(self, records: Sequence[Mapping[str, Any]]) -> list[str]:
        """``record_key`` of each of ``records``, in one pass (the landing writer's batches)."""
        prefix, columns = self.key_prefix or self.name, self.key_columns
        if len(columns) == 1:
            (column,) = columns
            return [f"{prefix}:{str(r[column]).strip()}" for r in records]
        return [self.record_key(r) for r in records]


def declared_stream(kind: str, name: str, *, key_prefix: str | None = None, dedupe: bool = False) -> Stream:
    """The stream ``name`` of connector ``kind`` as its raw schema declares it (schemas/raw_*.yml): its
    key, its columns in order, and whether it is person-bearing (it files identifiers in the vault).
    The connector adds only its own plumbing: the record key's prefix and whether the source repeats."""
    table = load_tables()[kind, name]
    key = table.key[0] if len(table.key) == 1 else table.key
    return Stream(name, key, table.column_names, table.person_bearing, key_prefix=key_prefix, dedupe=dedupe)


@dataclass(frozen=True)
class ExtractContext:
    """What one extraction is given: the run, its as-of instant, the previous state and a sink."""

    run_id: str
    as_of: dt.datetime
    state: Mapping[str, Any]
    sink: Sink


class Sink(Protocol):
    """Where a connector puts what it read (implemented by ``islandbridge.landing.zone``)."""

    def read(self, stream: str, n: int = 1) -> None:
        """Count ``n`` records as read from the source, before any decision about them."""

    def write(self, stream: str, records: Iterable[Mapping[str, Any]]) -> int:
        """Land records (each counted as landed); returns how many."""

    def write_batch(self, stream: str, columns: Mapping[str, Any], record_keys: Any) -> int:
        """Land rows given as columns (``pyarrow`` text arrays, or lists of values converted as ``write``
        converts a record's), with their record keys (an Arrow text array); returns how many."""

    def write_table(self, stream: str, table: Any) -> int:
        """Land rows already converted column-wise: a ``pyarrow.Table`` of every declared column as text
        and the record key (``landing.zone.raw_schema``), each counted as landed; returns how many."""

    def quarantine(self, stream: str, record_key: str, reason: str, record: Mapping[str, Any]) -> None:
        """Set one record aside with a reason a person can act on."""

    def duplicate(self, stream: str, n: int = 1) -> None:
        """Count ``n`` records dropped as duplicates of records already landed."""

    def deleted(self, stream: str, record_keys: Iterable[str]) -> None:
        """Record keys that the source no longer has (hard deletions noticed by a key scan)."""

    def scrubbed(self, text: str) -> str:
        """``text`` as the warehouse may keep it in a connector's state: ID numbers, phones and bank cards
        replaced (the loader's scrubber), for a key a person may have typed an identifier into."""

    def file(self, stream: str | None, name: str, outcome: str, reason: str | None, rows: int = 0) -> None:
        """What became of one source *file* (``landed``, ``duplicate``, ``superseded``, ``kept``,
        ``refused``, ``ignored``), with the reason and the data rows read from it: the run's accounting of files, as
        the counts are of records. File-based connectors call it; a name, never a cell, in the reason."""


class Connector(ABC):
    """Base of all connectors. Subclasses set ``kind`` and ``system`` and implement two hooks.

    ``__init__`` checks the options and raises ``ConfigError`` listing every problem, so a wrong
    configuration fails when the pipeline is built, not halfway through a run.
    """

    kind: ClassVar[str]
    system: ClassVar[str]
    required_options: ClassVar[tuple[str, ...]] = ()

    def __init__(self, settings: SourceSettings) -> None:
        self.name = settings.name
        self.options = dict(settings.options)
        missing = [o for o in self.required_options if self.options.get(o) in (None, "")]
        if missing:
            raise ConfigError(
                f"sources.{self.name} ({self.kind}): missing {noun(len(missing), 'option')} {', '.join(missing)}; "
                f"required: {', '.join(self.required_options)}"
            )

    @abstractmethod
    def streams(self) -> Sequence[Stream]:
        """The streams this connector lands, in the order it lands them."""

    @abstractmethod
    def extract(self, ctx: ExtractContext) -> Mapping[str, Any]:
        """Land everything new since ``ctx.state`` up to ``ctx.as_of``; return the next state (JSON-able)."""

    def stream(self, name: str) -> Stream:
        for s in self.streams():
            if s.name == name:
                return s
        raise KeyError(f"{self.kind} has no stream {name!r}")

    def describe(self) -> str:
        """A log-safe one-line description (no secrets, no credentials in URLs)."""
        return f"{self.name} ({self.kind})"

    @classmethod
    def stored_state(cls, state: Mapping[str, Any], scrub: Callable[[str], str]) -> Mapping[str, Any]:
        """A state as the warehouse may keep it, ``scrub`` (`Sink.scrubbed`) applied to what a person typed;
        the loader re-stores states of earlier versions through it. Most states hold no such text."""
        return state


_REGISTRY: dict[str, type[Connector]] = {}


def register(cls: type[Connector]) -> type[Connector]:
    """Class decorator: make a connector available under its ``kind``."""
    if cls.kind in _REGISTRY and _REGISTRY[cls.kind] is not cls:
        raise ValueError(f"connector kind {cls.kind!r} is registered twice")
    _REGISTRY[cls.kind] = cls
    return cls


def connector_kinds() -> list[str]:
    return sorted(_REGISTRY)


def kind_class(kind: str) -> type[Connector] | None:
    """The connector class registered under ``kind``, or None."""
    return _REGISTRY.get(kind)


def build_connector(settings: SourceSettings) -> Connector:
    """Instantiate the connector for a source; an unknown kind lists the known ones. A source whose options
    were not read (``SourceSettings.resolved``: a command for other sources) raises ``ConfigError``."""
    if not settings.resolved:
        raise ConfigError(
            f"sources.{settings.name}: its options and secrets were not read for this command, which was "
            "given other sources"
        )
    return connector_class(settings)(settings)


def connector_class(settings: SourceSettings) -> type[Connector]:
    """The connector class of a source's kind (its ``system``, without options or secrets)."""
    try:
        return _REGISTRY[settings.kind]
    except KeyError:
        raise ConfigError(
            f"sources.{settings.name}: unknown kind {settings.kind!r}; known kinds: {', '.join(connector_kinds())}"
        ) from None
