"""``islandbridge privacy scan``: the leak scanner (``leakscan``) over a folder a run left behind.

The export columns a department's policy fills from the vault (a name, an ID, a phone) are allowed to
hold them: their hits are counted as *allowed*, not as leaks, unless ``policies=False``. The policies
are the shipped ones (``schemas/policies``) or those of ``policies_dir``.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

from islandbridge.delivery.policy import load_policies
from islandbridge.devtools.leakscan import allow_rules, needles_from_street, scan_tree


def policy_locations(policies_dir: Path | None = None) -> list[str]:
    """``FILE_GLOB::LOCATION_GLOB`` of each export column a policy fills from the vault, for a scan rooted
    at a run's folder (``exports/<department>/<day>/…``), above it (``…/exports/…``) or at its exports
    folder (``<department>/…``)."""
    locations = []
    for policy in load_policies(policies_dir).values():
        for report in policy.reports.values():
            for column in report.columns:
                if column.kind != "vault":
                    continue
                for prefix in ("exports/", "*/exports/", ""):
                    base = f"{prefix}{policy.department}/*/{report.name}"
                    locations += [f"{base}.{ext}::{column.name}" for ext in ("csv", "parquet")]
                    # the workbook locates a cell by "<sheet>/<column header>"
                    locations.append(f"{base}.xlsx::*/{column.header}")
    return locations


def command(
    street: Path,
    root: Path,
    *,
    exclude: Sequence[Path] = (),
    allow: Sequence[str] = (),
    terms: Sequence[str] = (),
    policies: bool = True,
    policies_dir: Path | None = None,
    show: int = 50,
    json_out: Path | None = None,
    out=None,
) -> int:
    """Print the summary and the first hits; 0 when clean, 1 otherwise.

    The street folder is excluded when it lies under ``root``: it is where the needles come from.
    ``FileNotFoundError`` when ``street`` holds no simulated street.
    """
    out = out or sys.stdout
    needles = needles_from_street(street)
    skip = list(exclude)
    street_path, root_path = Path(street).resolve(), Path(root).resolve()
    if street_path == root_path or root_path in street_path.parents:
        skip.append(street_path)
    locations = [*allow, *(policy_locations(policies_dir) if policies else [])]
    result = scan_tree(root, needles, exclude=skip, allow=allow_rules(locations=locations, terms=terms))
    print(f"needles: {len(needles)} ({', '.join(f'{k} {n}' for k, n in needles.counts().items())})", file=out)
    print(result.summary(), file=out)
    if policies and result.allowed:
        print(f"allowed: {len(result.allowed)} hits in export columns their policy allows", file=out)
    if result.hits and show:
        print(result.report(limit=show), file=out)
    if json_out is not None:
        Path(json_out).write_text(
            json.dumps(result.to_dict(), ensure_ascii=False, indent=1), encoding="utf-8"
        )
    return 0 if result.ok else 1
