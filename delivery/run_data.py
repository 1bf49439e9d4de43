"""What the run report reads: the warehouse's run tables and the export manifests (counts and names only).

Every reader degrades to "nothing" when its table is absent, so a page can be drawn for any warehouse.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path
from typing import Any

from islandbridge.config import LOCAL_TZ
from islandbridge.delivery.export import export_day
from islandbridge.storage import has_table
from islandbridge.warehouse.marts import TO_CHECK, report_rows

_RUN_ID_TIME = re.compile(r"^ib_(\d{8}T\d{6}Z)$")


def run_numbers(con, run_id: str) -> dict[str, int | None]:
    numbers: dict[str, int | None] = {}
    for r in select(
        con,
        "meta.run_sources",
        "SELECT source, sum(read) AS read, sum(landed) AS landed, sum(quarantined) AS q "
        "FROM meta.run_sources WHERE run_id = ? GROUP BY source ORDER BY source",
        [run_id],
    ):
        numbers[f"{r['source']} · records loaded"] = int(r["landed"] or 0)
        numbers[f"{r['source']} · records quarantined"] = int(r["q"] or 0)
    ident = select_one(
        con, "meta.identity_runs", "SELECT * FROM meta.identity_runs WHERE run_id = ?", [run_id]
    )
    if ident is not None:
        numbers["persons"] = ident.get("persons")
        numbers["pairs to review"] = ident.get("reviews")
    build = select_one(
        con, "meta.mart_builds", "SELECT counts FROM meta.mart_builds WHERE run_id = ?", [run_id]
    )
    counts = json.loads(build["counts"] or "{}") if build else {}
    for name, n in sorted(report_rows(counts).items()):
        numbers[f"report {name} · rows"] = int(n)
    if TO_CHECK in counts:
        numbers["persons to check (age or living alone unknown)"] = int(counts[TO_CHECK])
    return numbers


def find_manifests(exports_dir: Path, run_id: str, as_of: dt.datetime | None) -> list[tuple[Path, dict]]:
    """Export manifests of ``run_id``: ``exports_dir/<department>/<export day of as_of>/manifest.json`` that
    name this run (every day folder when ``as_of`` is unknown). Unreadable manifests, and exports still
    being written (dot folders), are skipped.
    """
    day = export_day(as_of) if as_of is not None else "*"
    found = []
    for path in sorted(Path(exports_dir).glob(f"*/{day}/manifest.json")):
        if path.parent.name.startswith("."):
            continue  # an export being written: not made yet
        try:
            manifest = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            continue
        if isinstance(manifest, dict) and manifest.get("run_id") == run_id:
            found.append((path.parent, manifest))
    return found


def manifest_rows(folder: Path, manifest: dict) -> list[list[Any]]:
    """One row per report of a manifest (its files grouped by report name)."""
    files = manifest.get("files") or manifest.get("reports") or []
    if isinstance(files, dict):
        files = [{"name": k, **v} if isinstance(v, dict) else {"name": k} for k, v in files.items()]
    reports: dict[str, dict[str, Any]] = {}
    for entry in (f for f in files if isinstance(f, dict)):
        name = str(entry.get("file") or entry.get("name") or entry.get("path") or "")
        report = str(entry.get("report") or Path(name).stem or "?")
        acc = reports.setdefault(report, {"rows": None, "files": [], "sha": ""})
        acc["rows"] = entry.get("rows", entry.get("row_count", acc["rows"]))
        acc["files"].append(str(entry.get("format") or Path(name).suffix.lstrip(".") or name))
        acc["sha"] = acc["sha"] or str(entry.get("sha256") or "")[:12]
    policy = manifest.get("policy")
    version = policy.get("version", "") if isinstance(policy, dict) else manifest.get("policy_version", "")
    department = manifest.get("department") or folder.parent.name
    return [
        [
            department,
            folder.name,
            report,
            acc["rows"],
            ", ".join(acc["files"]),
            acc["sha"],
            version,
            local_time(manifest.get("made_at", "")),
        ]
        for report, acc in sorted(reports.items())
    ]


def select(con, table: str, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    if not has_table(con, table):
        return []
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def select_one(con, table: str, sql: str, params: list[Any]) -> dict[str, Any] | None:
    rows = select(con, table, sql, params)
    return rows[0] if rows else None


def as_of_from_id(run_id: str) -> dt.datetime | None:
    match = _RUN_ID_TIME.match(run_id)
    return dt.datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC) if match else None


def local_time(value: Any) -> str:
    """A time in Asia/Shanghai, ``2026-11-21 11:05``; ISO text (an export manifest's) is converted too."""
    if isinstance(value, str) and value:
        try:
            value = dt.datetime.fromisoformat(value)
        except ValueError:
            return value
        if value.tzinfo is None:
            return str(value)
    if isinstance(value, dt.datetime):
        return value.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
    return "" if value is None else str(value)
