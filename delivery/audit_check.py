"""``islandbridge audit verify``: the re-identification log checked against every anchor recorded for it.

The log's own hash chain catches an entry edited, deleted, inserted or moved. The anchors catch the
newest entries being cut off (or cut off and written on again): the warehouse's ``meta.audit_anchors``
(one row per export run and per reveal) and each export's ``manifest.json`` (``audit.entries``,
``audit.head``) say that entry N had hash H, and it still must.

Example::

    verify_audit(settings)     # {'ok': True, 'entries': 12, 'head': '…', 'anchors': 5}
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import duckdb

from islandbridge import storage
from islandbridge.config import DuckDBResources, Settings
from islandbridge.delivery.snapshot import unopened
from islandbridge.errors import ConfigError
from islandbridge.privacy.audit import Anchor, AuditBrokenError, AuditLog, recorded_anchors


def verify_audit(settings: Settings) -> dict[str, Any]:
    """Verify the audit log against the warehouse's and the export manifests' anchors; returns counts and
    the head. Raises ``AuditBrokenError`` naming the first problem (a terminal error: exit status 4)."""
    anchors = warehouse_anchors(Path(settings.warehouse_path), settings.duckdb)
    if settings.exports_dir is not None:
        anchors += manifest_anchors(Path(settings.exports_dir))
    log = AuditLog(settings.audit_path)
    result = log.verify(anchors=anchors)
    if not result:
        raise AuditBrokenError(
            f"the re-identification audit log {log.path} was tampered with: {result.reason} "
            f"({result.entries} entries verified before it); restore it from a backup"
        )
    return {
        "ok": True,
        "log": str(log.path),
        "entries": result.entries,
        "head": result.head,
        "anchors": len(anchors),
    }


def warehouse_anchors(path: Path, resources: DuckDBResources | None = None) -> list[Anchor]:
    """The anchors in ``meta.audit_anchors`` (none when there is no warehouse yet); ``resources``
    (``settings.duckdb``) bound the connection. Raises ``WarehouseBusyError`` while another process holds
    the warehouse's lock, ``ConfigError`` when it cannot be opened otherwise (not a DuckDB file, damaged)."""
    if not path.is_file():
        return []
    try:
        con = storage.connect_sandboxed(str(path), resources=resources)
    except duckdb.Error as exc:  # not a DuckDB file, damaged: a ConfigError, as `sql` says it
        raise unopened(exc, f"cannot read the audit anchors in {path}", "verify again", ConfigError) from None
    try:
        return recorded_anchors(con)
    finally:
        con.close()


def manifest_anchors(exports_dir: Path) -> list[Anchor]:
    """The ``audit`` anchor of every published export manifest (``<department>/<day>/manifest.json``)."""
    anchors = []
    for manifest in sorted(exports_dir.glob("*/[0-9]*/manifest.json")):
        try:
            audit = json.loads(manifest.read_text(encoding="utf-8")).get("audit")
        except (OSError, ValueError):
            continue
        if isinstance(audit, dict) and isinstance(audit.get("entries"), int) and audit.get("head"):
            anchors.append(Anchor(audit["entries"], str(audit["head"]), str(manifest)))
    return anchors
