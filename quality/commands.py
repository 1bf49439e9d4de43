"""What ``islandbridge quarantine list|show|replay`` call: settings in, printable results out.

Example::

    print(format_entries(quarantine_list(settings, source="registry")))
    print(json.dumps(quarantine_show(settings, "ib_20261120T160000Z", "registry", "t_jm", "t_jm:100123"),
                     ensure_ascii=False, default=str))
    quarantine_replay(settings, "registry")        # {'checked': 3, 'loaded': 1, 'still_failing': 2}
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from islandbridge.config import Settings
from islandbridge.landing import raw
from islandbridge.privacy.masking import mask_typed
from islandbridge.quality import quarantine
from islandbridge.quality.config import QualityConfig
from islandbridge.quality.errors import QuarantineError
from islandbridge.quality.replay import replay
from islandbridge.schemas import load_tables


def quarantine_list(
    settings: Settings,
    *,
    run_id: str | None = None,
    source: str | None = None,
    stream: str | None = None,
    include_replayed: bool = False,
) -> list[quarantine.Entry]:
    """Quarantined rows, the quality gate's and the connectors' (keys and failed checks or the connector's
    reason, never the row); an empty list when there is no warehouse yet."""
    if not settings.warehouse_path.exists():
        return []
    with raw.open_warehouse(settings, read_only=True) as con:
        return quarantine.list_quarantined(
            con, run_id=run_id, source=source, stream=stream, include_replayed=include_replayed
        )


def format_entries(entries: Sequence[quarantine.Entry]) -> str:
    """One line per row: run, the stage that set it aside, source, stream, key, and why (the checks it
    failed, or the connector's reason)."""
    lines = [f"{'run':<22} {'set aside by':<12} {'source':<10} {'stream':<12} {'record key':<44} why"]
    for e in entries:
        key = e.record_key + (f" #{e.seq}" if e.seq > 1 else "")
        why = (e.reason or "") if e.stage == quarantine.CONNECTOR else ", ".join(e.expectations_failed)
        lines.append(
            f"{e.run_id:<22} {e.stage:<12} {e.source:<10} {e.stream:<12} {key:<44} {why}"
            + (f"  (replayed {e.replayed_at:%Y-%m-%d %H:%M})" if e.replayed_at else "")
        )
    return "\n".join(lines)


def quarantine_show(
    settings: Settings,
    run_id: str,
    source: str,
    stream: str,
    record_key: str,
    seq: int = 1,
    quality_config: Mapping | None = None,
) -> dict[str, Any]:
    """One quarantined row, decrypted with ``keys.quarantine``: failed checks and masked field values."""
    cfg = QualityConfig.from_mapping(quality_config)
    table = load_tables().get((settings.source(source).kind, stream))
    if table is None:
        raise QuarantineError(f"no table definition for {mask_typed(source)}.{mask_typed(stream)}")
    if not settings.warehouse_path.exists():
        raise QuarantineError(f"no warehouse at {settings.warehouse_path}")
    ring = quarantine.keyring(settings, cfg.quarantine_key)
    with raw.open_warehouse(settings, read_only=True) as con:
        return quarantine.show(con, ring, table, run_id, source, record_key, seq)


def quarantine_replay(
    settings: Settings, source: str, *, run_id: str | None = None, quality_config: Mapping | None = None
) -> dict[str, int]:
    """Re-check and load the rows of ``source`` that now pass; see ``replay.replay``."""
    return replay(settings, source, run_id=run_id, quality_config=quality_config).to_dict()
