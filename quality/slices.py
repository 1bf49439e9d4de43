"""One source's landing slice as the gate sees it, and rewriting it without the quarantined rows.

The gate validates the rows as extracted. When rows must be quarantined it rewrites the slice so that
the unchanged loader (``raw.load_source``) loads only the rows that passed and books the others as
quarantined (read = landed + quarantined + duplicates still holds):

    {base}/_quality/manifest.original.json   the manifest as the extraction wrote it (kept once)
    {base}/_quality/original/{stream}/        the stream's parts as extracted (kept once)
    {base}/{stream}/part-00000.parquet        the rows that passed
    {base}/_manifest.json                     counts moved from landed to quarantined, plus "quality"

The originals stay, so gating a slice again (another configuration, a fixed suite) starts from what was
extracted and is idempotent. Re-extracting the source replaces the whole folder, originals included.
The landing zone holds source data as sent (see README); quarantined rows are also kept, encrypted, in
``meta.quality_quarantine``.
"""

from __future__ import annotations

import datetime as dt
import json
import posixpath
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as pads
import pyarrow.fs as pafs

from islandbridge.landing.raw import read_from, read_manifest
from islandbridge.landing.zone import (
    DELETED,
    MANIFEST,
    QUARANTINE,
    RECORD_KEY,
    open_root,
    path_exists,
    write_manifest,
    write_part,
)

QUALITY_DIR = "_quality"
ORIGINALS = posixpath.join(QUALITY_DIR, "original")
ORIGINAL_MANIFEST = posixpath.join(QUALITY_DIR, "manifest.original.json")


@dataclass
class LandingSlice:
    """The landed data of one source for one run, as extracted (before any quality rewrite)."""

    fs: pafs.FileSystem
    base: str
    run_id: str
    source: str
    manifest: dict[str, Any]

    @classmethod
    def open(cls, landing_url: str, run_id: str, source: str) -> LandingSlice:
        """Raises ``raw.LoadError`` if the source has no complete extraction for the run."""
        fs, root = open_root(landing_url)
        base = posixpath.join(root, run_id, source)
        manifest = read_manifest(fs, base, source, run_id)
        original = posixpath.join(base, ORIGINAL_MANIFEST)
        if path_exists(fs, original):
            with fs.open_input_stream(original) as f:
                manifest = json.loads(f.read())
        return cls(fs, base, run_id, source, manifest)

    @property
    def streams(self) -> Mapping[str, Mapping[str, Any]]:
        return self.manifest["streams"]

    @property
    def state(self) -> Mapping[str, Any]:
        return self.manifest.get("state") or {}

    @property
    def read_from(self) -> dt.datetime | None:
        """The as-of of the state the extraction resumed from (``None``: none, or not recorded)."""
        return read_from(self.manifest)

    def dataset(self, stream: str) -> pads.Dataset:
        """The stream's rows as extracted."""
        original = posixpath.join(self.base, ORIGINALS, stream)
        path = original if path_exists(self.fs, original) else posixpath.join(self.base, stream)
        return pads.dataset(path, filesystem=self.fs, format="parquet")

    def side_table(self, folder: str) -> pa.Table:
        """The connector's ``_quarantine`` or ``_deleted`` records of this slice."""
        return pads.dataset(
            posixpath.join(self.base, folder), filesystem=self.fs, format="parquet"
        ).to_table()

    def deleted(self) -> pa.Table:
        return self.side_table(DELETED)

    def connector_quarantine(self) -> pa.Table:
        return self.side_table(QUARANTINE)

    def apply(self, excluded: Mapping[str, pa.Array]) -> dict[str, int]:
        """Rewrite the slice without the rows whose record keys are ``excluded[stream]``; returns the
        rows set aside per stream. Streams gated before are rebuilt from their originals."""
        self._keep_original_manifest()
        moved: dict[str, int] = {}
        for stream in self.streams:
            keys = excluded.get(stream)
            original = posixpath.join(self.base, ORIGINALS, stream)
            if (keys is None or len(keys) == 0) and not path_exists(self.fs, original):
                continue
            moved[stream] = self._rewrite(
                stream, original, keys if keys is not None else pa.array([], pa.string())
            )
        self._write_manifest(moved)
        return {s: n for s, n in moved.items() if n}

    def _keep_original_manifest(self) -> None:
        target = posixpath.join(self.base, ORIGINAL_MANIFEST)
        if not path_exists(self.fs, target):
            self.fs.create_dir(posixpath.join(self.base, QUALITY_DIR), recursive=True)
            self.fs.copy_file(posixpath.join(self.base, MANIFEST), target)

    def _rewrite(self, stream: str, original: str, keys: pa.Array) -> int:
        current = posixpath.join(self.base, stream)
        if not path_exists(self.fs, original):
            self.fs.create_dir(posixpath.dirname(original), recursive=True)
            self.fs.move(current, original)
        table = pads.dataset(original, filesystem=self.fs, format="parquet").to_table()
        kept = table.filter(pc.invert(pc.is_in(table[RECORD_KEY], value_set=keys.cast(pa.string()))))
        staging = current + ".tmp"
        if path_exists(self.fs, staging):
            self.fs.delete_dir(staging)
        write_part(self.fs, staging, 0, kept)
        if path_exists(self.fs, current):
            self.fs.delete_dir(current)
        self.fs.move(staging, current)
        return table.num_rows - kept.num_rows

    def _write_manifest(self, moved: Mapping[str, int]) -> None:
        manifest = json.loads(json.dumps(self.manifest))
        for stream, n in moved.items():
            info = manifest["streams"][stream]
            info["landed"] -= n
            info["quarantined"] += n
            info["parts"] = 1
        manifest["quality"] = {"quarantined": {s: n for s, n in moved.items() if n}}
        write_manifest(self.fs, self.base, manifest)
