"""The run report: one self-contained HTML page per run, to look at rather than read.

``<reports dir>/<run_id>/run.html``, beside the quality gate's ``quality.html``. Sections: records per
source and stream, the accounting (read = loaded + quarantined + duplicates), identity linkage (persons,
links per system pair as a heat map, merges, splits, churn, reviews), island coverage, quality results
and the department exports the run made. Charts are inline SVG drawn here (the machines are offline:
no script, font or stylesheet is fetched); hovering a bar shows its number through an SVG ``<title>``.

Only counts, names of sources, tables, checks and reports, and hash prefixes reach the page — the
warehouse tables it reads (``meta.*``, ``marts.island_coverage``) and the export manifests hold no
personal data, and no person key is shown. Everything is HTML-escaped. A section whose data is absent
says so instead of failing ("no exports for this run").

Example::

    write_run_report(settings.warehouse_path, "ib_20261120T160000Z", reports_root, settings.exports_dir)
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import duckdb

from islandbridge import storage
from islandbridge.config import LOCAL_TZ
from islandbridge.delivery.export import export_day
from islandbridge.storage import has_table

PALETTE = ("#2f6fdf", "#d9822b", "#8e6ccf", "#18794e", "#b42318", "#5b6b7b", "#c2a100", "#0f8b8d", "#d6336c")
SHORT_SYSTEM = {
    "resident_registry": "registry",
    "grid_platform": "grid",
    "civil_affairs": "civil",
    "iot_platform": "iot",
}
INTEGER_TYPES = {
    "TINYINT",
    "SMALLINT",
    "INTEGER",
    "BIGINT",
    "HUGEINT",
    "UTINYINT",
    "USMALLINT",
    "UINTEGER",
    "UBIGINT",
    "UHUGEINT",
}
# island_coverage columns from which "in one system only / two or three / all four" follows.
COVERAGE_SPREAD = (
    ("persons_known", "in_two_or_more", "in_all_four"),
    ("persons_known", "persons_in_two_or_more", "persons_in_all_four"),
)
SPREAD_COLORS = ("#b42318", "#d9822b", "#c2a100", "#18794e")
_RUN_ID_TIME = re.compile(r"^ib_(\d{8}T\d{6}Z)$")

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC",sans-serif;margin:2em auto;max-width:1100px;
color:#1d1d1f;padding:0 1.5em} h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.2em;margin-top:1.8em;
border-bottom:1px solid #e3e3e8;padding-bottom:.2em} table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #d7d7db;padding:3px 8px;text-align:left} th{background:#f3f3f5} td.n{text-align:right;
font-variant-numeric:tabular-nums} .muted{color:#6b6b73} .bad{color:#b42318;font-weight:600} .ok{color:#18794e}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:.6em 0} .tile{border:1px solid #e3e3e8;border-radius:8px;
padding:8px 14px;min-width:110px} .tile b{display:block;font-size:1.5em;font-variant-numeric:tabular-nums}
.tile span{color:#6b6b73;font-size:.85em} nav a{margin-right:1em} svg text{font-family:inherit}
.cellbar{background:#2f6fdf33;height:6px;margin-top:2px}
"""


def write_run_report(
    warehouse_path: Path, run_id: str, out_dir: Path, exports_dir: Path | None = None
) -> Path:
    """Write ``<out_dir>/<run_id>/run.html`` for ``run_id`` from the warehouse (opened read-only).

    ``out_dir`` is the reports root (the quality gate's ``reports`` folder); ``exports_dir`` the
    department exports folder whose manifests name this run. A missing warehouse gives a page whose
    sections all say their data is absent. Returns the page's path.
    """
    folder = Path(out_dir) / run_id
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(warehouse_path)
    con = storage.connect(str(path), read_only=True) if path.is_file() else storage.connect()
    try:
        page = render_run_report(
            con, run_id, exports_dir, has_quality_page=(folder / "quality.html").is_file()
        )
    finally:
        con.close()
    target = folder / "run.html"
    tmp = target.with_suffix(".html.tmp")
    tmp.write_text(page, encoding="utf-8")
    os.replace(tmp, target)
    return target


def render_run_report(
    con: duckdb.DuckDBPyConnection,
    run_id: str,
    exports_dir: Path | None = None,
    *,
    has_quality_page: bool = False,
) -> str:
    """The report's HTML for ``run_id`` over an open warehouse connection."""
    run = _one(
        con,
        "meta.runs",
        "SELECT as_of, status, started_at, finished_at, sources FROM meta.runs WHERE run_id = ?",
        [run_id],
    )
    as_of = run["as_of"] if run else _as_of_from_id(run_id)
    sections = [
        ("records", "Records per source", _records(con, run_id)),
        ("accounting", "Accounting", _accounting(con, run_id)),
        ("linkage", "Identity linkage", _linkage(con, run_id)),
        ("coverage", "Island coverage", _coverage(con)),
        ("quality", "Quality results", _quality(con, run_id, has_quality_page)),
        ("exports", "Exports made", _exports(con, exports_dir, run_id, as_of)),
    ]
    nav = "".join(f"<a href='#{key}'>{_e(title)}</a>" for key, title, _ in sections)
    body = "".join(f"<h2 id='{key}'>{_e(title)}</h2>{html_}" for key, title, html_ in sections)
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Run {_e(run_id)}</title>"
        f"<style>{_CSS}</style></head><body><h1>Run <code>{_e(run_id)}</code></h1>{_header(run, as_of)}"
        f"<nav>{nav}</nav>{body}<p class='muted'>Counts only: this page holds no personal data.</p>"
        "</body></html>"
    )


# ---- sections -------------------------------------------------------------------------------------------------


def _header(run: dict[str, Any] | None, as_of: dt.datetime | None) -> str:
    if run is None:
        when = f" (as of {_e(_local(as_of))})" if as_of else ""
        return f"<p class='bad'>This run is not in meta.runs{when}: nothing was loaded for it.</p>"
    took = (
        (run["finished_at"] - run["started_at"]).total_seconds()
        if run["finished_at"] and run["started_at"]
        else None
    )
    return (
        f"<p>as of <b>{_e(_local(as_of))}</b> (Asia/Shanghai) · status <b>{_e(run['status'])}</b> · sources "
        f"{_e(', '.join(run['sources'] or []))} · loaded {_e(_local(run['finished_at']))}"
        + (f" · load took {took:.1f} s" if took is not None else "")
        + "</p>"
    )


def _records(con, run_id: str) -> str:
    rows = _rows(
        con,
        "meta.run_sources",
        "SELECT source, stream, landed FROM meta.run_sources WHERE run_id = ? ORDER BY source, stream",
        [run_id],
    )
    if not rows:
        return "<p class='muted'>No source accounting for this run.</p>"
    by_source: dict[str, list[tuple[str, list[int]]]] = {}
    for r in rows:
        by_source.setdefault(r["source"], []).append((r["stream"], [r["landed"] or 0]))
    charts = "".join(
        f"<h3>{_e(source)}</h3>" + _bars(streams, ["records loaded"]) for source, streams in by_source.items()
    )
    return (
        _tiles(
            [
                (f"{sum(v[0] for _, v in streams):,}", f"{source} records loaded")
                for source, streams in by_source.items()
            ]
        )
        + "<p class='muted'>Records loaded per stream; each source is drawn to its own scale.</p>"
        + charts
    )


def _accounting(con, run_id: str) -> str:
    rows = _rows(
        con,
        "meta.run_sources",
        "SELECT source, stream, read, landed, quarantined, duplicates, deleted "
        "FROM meta.run_sources WHERE run_id = ? ORDER BY source, stream",
        [run_id],
    )
    if not rows:
        return "<p class='muted'>No source accounting for this run.</p>"
    series = ["loaded", "quarantined", "duplicates"]
    per_source: dict[str, list[int]] = {}
    for r in rows:
        acc = per_source.setdefault(r["source"], [0, 0, 0])
        for i, col in enumerate(("landed", "quarantined", "duplicates")):
            acc[i] += r[col] or 0
    head = ["source", "stream", "read", "loaded", "quarantined", "duplicates", "deleted", "adds up"]
    body = [
        [
            r["source"],
            r["stream"],
            r["read"],
            r["landed"],
            r["quarantined"],
            r["duplicates"],
            r["deleted"],
            _adds_up(r),
        ]
        for r in rows
    ]
    return (
        _bars(list(per_source.items()), series, share=True)
        + "<p class='muted'>Each bar is one source's records read (total at its end), split into loaded, "
        "quarantined with a reason, and duplicates.</p>" + _table(head, body, raw_cols=frozenset({7}))
    )


def _adds_up(r: dict[str, Any]) -> str:
    ok = (r["read"] or 0) == (r["landed"] or 0) + (r["quarantined"] or 0) + (r["duplicates"] or 0)
    return "<span class='ok'>yes</span>" if ok else "<span class='bad'>NO</span>"


def _linkage(con, run_id: str) -> str:
    run = _one(con, "meta.identity_runs", "SELECT * FROM meta.identity_runs WHERE run_id = ?", [run_id])
    if run is None:
        return "<p class='muted'>No identity reconciliation recorded for this run.</p>"
    links = json.loads(run.get("links") or "{}")
    tiles = [
        (f"{run.get(k) or 0:,}", label)
        for k, label in (
            ("persons", "persons"),
            ("records", "person records"),
            ("merges", "merges"),
            ("splits", "splits"),
            ("retired", "keys retired"),
            ("churn", "key churn"),
            ("reviews", "pairs to review"),
        )
    ]
    tiles.append((f"{sum(links.values()):,}", "links"))
    tiles.append((_e(run.get("model_version")), "linkage model version"))
    history = _rows(
        con,
        "meta.identity_runs",
        "SELECT run_id, persons, merges, splits, churn FROM "
        "meta.identity_runs WHERE as_of <= ? ORDER BY as_of DESC LIMIT 12",
        [run["as_of"]],
    )
    trend = _bars([(h["run_id"], [h["persons"] or 0]) for h in reversed(history)], ["persons"]) + _table(
        ["run", "persons", "merges", "splits", "churn"],
        [[h["run_id"], h["persons"], h["merges"], h["splits"], h["churn"]] for h in history],
    )
    return _tiles(tiles) + "<h3>Links per system pair</h3>" + _heatmap(links) + "<h3>Recent runs</h3>" + trend


def _coverage(con) -> str:
    if not has_table(con, "marts.island_coverage"):
        return "<p class='muted'>No island coverage mart in this warehouse.</p>"
    types = dict(
        con.execute(
            "SELECT column_name, data_type FROM information_schema.columns WHERE table_schema = "
            "'marts' AND table_name = 'island_coverage' ORDER BY ordinal_position"
        ).fetchall()
    )
    numeric = [c for c, t in types.items() if t.upper() in INTEGER_TYPES]
    labels = [c for c in types if c not in numeric]
    if not numeric:
        return "<p class='muted'>The island coverage mart has no counts.</p>"
    found = con.execute(
        f"SELECT {', '.join(_ident(c) for c in labels + numeric)} FROM marts.island_coverage "
        "ORDER BY ALL NULLS LAST"
    ).fetchall()
    if not found:
        return "<p class='muted'>The island coverage mart is empty.</p>"
    rows = [
        (
            ["(none)" if v is None else str(v) for v in r[: len(labels)]],
            [int(v or 0) for v in r[len(labels) :]],
        )
        for r in found
    ]
    scale = max(max(values) for _, values in rows) or 1
    head = "".join(f"<th>{_e(c)}</th>" for c in [*labels, *numeric])
    body = "".join(
        "<tr>"
        + "".join(f"<td>{_e(v)}</td>" for v in label)
        + "".join(
            f"<td class='n'>{n:,}<div class='cellbar' style='width:{100 * n / scale:.0f}%'></div></td>"
            for n in values
        )
        + "</tr>"
        for label, values in rows
    )
    named = [
        (" / ".join(label) or "(all)", dict(zip(numeric, values, strict=True))) for label, values in rows
    ]
    chart = _systems_chart(con, named) or _grouped([(n, list(v.values())) for n, v in named], numeric)
    return (
        chart
        + f"<table><tr>{head}</tr>{body}</table>"
        + "<p class='muted'>Plain counts as the mart holds them; exports to the street office show counts "
        "under 5 as &lt;5.</p>"
    )


def _systems_chart(con, rows: list[tuple[str, dict[str, int]]]) -> str:
    """Persons per community by how many of the four systems know them.

    Exact from ``core.persons`` (its ``systems`` count) when the core has it; else derived from the
    mart's totals (known, in two or more, in all four), which can only tell 1 / 2–3 / 4.
    """
    title = "<h3>Persons by the number of systems that know them</h3>"
    if _columns(con, "core.persons") >= {"systems", "community_name"}:
        counts = con.execute(
            "SELECT coalesce(community_name, '(no community)'), systems, count(*) FROM core.persons "
            "GROUP BY ALL ORDER BY 1, 2"
        ).fetchall()
        by_community: dict[str, list[int]] = {}
        for community, systems, n in counts:
            if 1 <= (systems or 0) <= 4:
                by_community.setdefault(community, [0, 0, 0, 0])[systems - 1] = n
        return (
            title
            + _bars(
                list(by_community.items()),
                ["1 system", "2 systems", "3 systems", "all 4"],
                colors=SPREAD_COLORS,
            )
            + "<h3>Persons per system</h3>"
        )
    spread_columns = next(
        (names for names in COVERAGE_SPREAD if rows and set(names) <= set(rows[0][1])), None
    )
    if spread_columns is None:
        return ""
    known, two, four = spread_columns
    spread = [(label, [max(v[known] - v[two], 0), max(v[two] - v[four], 0), v[four]]) for label, v in rows]
    return (
        title
        + _bars(spread, ["1 system", "2 or 3 systems", "all 4"], colors=SPREAD_COLORS[::2] + ("#18794e",))
        + "<h3>Persons per system</h3>"
    )  # the table below, with a bar in each cell


def _quality(con, run_id: str, has_page: bool) -> str:
    link = (
        "<p>Details: <a href='quality.html'>quality.html</a></p>"
        if has_page
        else "<p class='muted'>No quality.html beside this report.</p>"
    )
    rows = _rows(
        con,
        "meta.quality_results",
        "SELECT source, stream, expectation, column_name, severity, success, "
        "element_count, unexpected_count FROM meta.quality_results WHERE run_id = ? "
        "ORDER BY source, stream, expectation",
        [run_id],
    )
    if not rows:
        return "<p class='muted'>No quality results recorded for this run.</p>" + link
    failed = [r for r in rows if not r["success"]]
    by_severity = {s: sum(1 for r in failed if r["severity"] == s) for s in ("critical", "warning", "row")}
    tiles = [(f"{len(rows):,}", "expectations"), (f"{len(rows) - len(failed):,}", "passed")] + [
        (f"{n:,}", f"{s} failing") for s, n in by_severity.items()
    ]
    per_stream: dict[str, list[int]] = {}
    for r in rows:
        per_stream.setdefault(f"{r['source']}.{r['stream']}", [0, 0])[0 if r["success"] else 1] += 1
    table = (
        _table(
            ["source.stream", "expectation", "column", "severity", "rows failing"],
            [
                [
                    f"{r['source']}.{r['stream']}",
                    r["expectation"],
                    r["column_name"] or "",
                    r["severity"],
                    ""
                    if r["unexpected_count"] is None
                    else f"{r['unexpected_count']:,} / {r['element_count']:,}",
                ]
                for r in failed
            ],
        )
        if failed
        else "<p class='ok'>Every expectation passed.</p>"
    )
    return (
        _tiles(tiles)
        + _bars(list(per_stream.items()), ["passed", "failed"], colors=("#18794e", "#b42318"), share=True)
        + "<h3>Failing expectations</h3>"
        + table
        + link
    )


def _exports(con, exports_dir: Path | None, run_id: str, as_of: dt.datetime | None) -> str:
    manifests = find_manifests(exports_dir, run_id, as_of) if exports_dir else []
    rows = [row for folder, manifest in manifests for row in _manifest_rows(folder, manifest)]
    head = ["department", "day", "report", "rows", "files", "sha256", "policy version", "made at"]
    made = (
        _bars([(f"{r[0]}/{r[2]}", [r[3] or 0]) for r in rows], ["rows exported"]) + _table(head, rows)
        if rows
        else "<p class='muted'>No exports for this run.</p>"
    )
    return made + _marts_built(con, run_id)


def _marts_built(con, run_id: str) -> str:
    """Rows per report as the marts were built for this run (what the exports were cut from)."""
    build = _one(con, "meta.mart_builds", "SELECT counts FROM meta.mart_builds WHERE run_id = ?", [run_id])
    counts = json.loads(build["counts"] or "{}") if build else {}
    if not counts:
        return ""
    return "<h3>Report marts built for this run</h3>" + _bars(
        [(name, [int(n)]) for name, n in sorted(counts.items())], ["rows in the mart"], colors=("#5b6b7b",)
    )


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


def _manifest_rows(folder: Path, manifest: dict) -> list[list[Any]]:
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
            manifest.get("made_at", ""),
        ]
        for report, acc in sorted(reports.items())
    ]


# ---- charts (inline SVG) --------------------------------------------------------------------------------------


def _bars(
    rows: Sequence[tuple[str, Sequence[int]]],
    series: Sequence[str],
    colors: Sequence[str] = PALETTE,
    width: int = 720,
    share: bool = False,
) -> str:
    """Horizontal bars, stacked when there are several series; totals printed at the end of each bar.

    ``share`` draws every bar full width, split by each series' share of its total (rates, not volumes).
    """
    if not rows:
        return ""
    label_w, row_h, total_w = 230, 22, 70
    plot_w = width - label_w - total_w
    top = max(sum(v) for _, v in rows) or 1
    height = row_h * len(rows) + (8 + 16 * _legend_lines(series, label_w) if len(series) > 1 else 4)
    parts = [f"<svg width='{width}' height='{height}' role='img' font-size='12'>"]
    for i, (label, values) in enumerate(rows):
        y, x = i * row_h, label_w
        scale = (sum(values) or 1) if share else top
        parts.append(f"<text x='{label_w - 6}' y='{y + 15}' text-anchor='end'>{_e(_clip(label, 34))}</text>")
        for j, value in enumerate(values):
            w = max(plot_w * value / scale, 1.5 if value else 0.0)  # a non-zero count stays visible
            parts.append(
                f"<rect x='{x:.1f}' y='{y + 3}' width='{w:.1f}' height='{row_h - 6}' fill='"
                f"{colors[j % len(colors)]}'><title>{_e(label)} — {_e(series[j])}: {value:,}</title></rect>"
            )
            x += w
        parts.append(f"<text x='{x + 5:.1f}' y='{y + 15}' fill='#444'>{sum(values):,}</text>")
    if len(series) > 1:
        parts.append(_legend(series, colors, label_w, row_h * len(rows) + 14))
    return "".join(parts) + "</svg>"


def _grouped(rows: Sequence[tuple[str, Sequence[int]]], series: Sequence[str]) -> str:
    """Side-by-side bars per row (overlapping counts such as "in registry" and "in two or more")."""
    label_w, bar_h, width = 230, 9, 720
    plot_w = width - label_w - 70
    scale = max(max(v) for _, v in rows) or 1
    group_h = bar_h * len(series) + 10
    height = group_h * len(rows) + 8 + 16 * _legend_lines(series, label_w)
    parts = [f"<svg width='{width}' height='{height}' role='img' font-size='12'>"]
    for i, (label, values) in enumerate(rows):
        y = i * group_h
        parts.append(
            f"<text x='{label_w - 6}' y='{y + group_h / 2 + 4:.0f}' text-anchor='end'>"
            f"{_e(_clip(label, 34))}</text>"
        )
        for j, value in enumerate(values):
            w = plot_w * value / scale
            parts.append(
                f"<rect x='{label_w}' y='{y + j * bar_h + 4}' width='{w:.1f}' height='{bar_h - 1}' "
                f"fill='{PALETTE[j % len(PALETTE)]}'><title>{_e(label)} — {_e(series[j])}: {value:,}"
                f"</title></rect><text x='{label_w + w + 4:.1f}' y='{y + j * bar_h + 12}' font-size='9' "
                f"fill='#444'>{value:,}</text>"
            )
    parts.append(_legend(series, PALETTE, label_w, group_h * len(rows) + 14))
    return "".join(parts) + "</svg>"


def _legend(series: Sequence[str], colors: Sequence[str], x0: int, y: int, width: int = 720) -> str:
    """Legend entries left to right from ``x0``, wrapping to a new line (16 px lower) at ``width``."""
    parts, x = [], x0
    for j, name in enumerate(series):
        step = 24 + 7 * len(str(name))
        if x > x0 and x + step > width:
            x, y = x0, y + 16
        parts.append(
            f"<rect x='{x}' y='{y - 9}' width='10' height='10' fill='{colors[j % len(colors)]}'/>"
            f"<text x='{x + 14}' y='{y}'>{_e(name)}</text>"
        )
        x += step
    return "".join(parts)


def _legend_lines(series: Sequence[str], x0: int, width: int = 720) -> int:
    lines, x = 1, x0
    for name in series:
        step = 24 + 7 * len(str(name))
        if x > x0 and x + step > width:
            lines, x = lines + 1, x0
        x += step
    return lines


def _heatmap(links: dict[str, int]) -> str:
    """A symmetric systems × systems matrix of link counts; the diagonal is links within one system."""
    if not links:
        return "<p class='muted'>No links recorded.</p>"
    pairs = {tuple(k.split("~", 1)) if "~" in k else (k, k): int(v) for k, v in links.items()}
    systems = sorted({s for pair in pairs for s in pair})
    cell, left, top = 86, 110, 26
    scale = max(pairs.values()) or 1
    size = (left + cell * len(systems) + 4, top + cell * len(systems) // 2 + 4)
    parts = [f"<svg width='{size[0]}' height='{size[1]}' role='img' font-size='12'>"]
    h = cell // 2
    for j, name in enumerate(systems):
        parts.append(
            f"<text x='{left + j * cell + cell / 2:.0f}' y='{top - 8}' text-anchor='middle'>"
            f"{_e(SHORT_SYSTEM.get(name, name))}</text>"
        )
    for i, a in enumerate(systems):
        parts.append(
            f"<text x='{left - 6}' y='{top + i * h + h / 2 + 4:.0f}' text-anchor='end'>"
            f"{_e(SHORT_SYSTEM.get(a, a))}</text>"
        )
        for j, b in enumerate(systems):
            n = pairs.get((a, b), pairs.get((b, a), 0))
            shade = 0.08 + 0.85 * n / scale
            ink = "#fff" if shade > 0.55 else "#1d1d1f"
            parts.append(
                f"<rect x='{left + j * cell}' y='{top + i * h}' width='{cell - 2}' height='{h - 2}' "
                f"fill='#2f6fdf' fill-opacity='{shade:.2f}'><title>{_e(a)} ~ {_e(b)}: {n:,} links"
                f"</title></rect><text x='{left + j * cell + cell / 2 - 1:.0f}' y='{top + i * h + h / 2 + 3:.0f}'"
                f" text-anchor='middle' fill='{ink}'>{n:,}</text>"
            )
    return "".join(parts) + "</svg>"


def _tiles(items: Sequence[tuple[str, str]]) -> str:
    return (
        "<div class='tiles'>"
        + "".join(f"<div class='tile'><b>{_e(v)}</b><span>{_e(k)}</span></div>" for v, k in items)
        + "</div>"
    )


def _table(head: Sequence[str], rows: Sequence[Sequence[Any]], raw_cols: frozenset[int] = frozenset()) -> str:
    def cell(i: int, v: Any) -> str:
        if i in raw_cols:
            return f"<td>{v}</td>"  # already-built markup of our own
        if isinstance(v, int) and not isinstance(v, bool):
            return f"<td class='n'>{v:,}</td>"
        return f"<td>{_e('' if v is None else v)}</td>"

    return (
        "<table><tr>"
        + "".join(f"<th>{_e(h)}</th>" for h in head)
        + "</tr>"
        + "".join("<tr>" + "".join(cell(i, v) for i, v in enumerate(r)) + "</tr>" for r in rows)
        + "</table>"
    )


# ---- reading the warehouse --------------------------------------------------------------------------------------


def _columns(con, qualified: str) -> set[str]:
    schema, table = qualified.split(".", 1)
    return {
        r[0]
        for r in con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_schema = ? AND table_name = ?",
            [schema, table],
        ).fetchall()
    }


def _rows(con, table: str, sql: str, params: list[Any]) -> list[dict[str, Any]]:
    if not has_table(con, table):
        return []
    cursor = con.execute(sql, params)
    names = [d[0] for d in cursor.description]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def _one(con, table: str, sql: str, params: list[Any]) -> dict[str, Any] | None:
    rows = _rows(con, table, sql, params)
    return rows[0] if rows else None


def _as_of_from_id(run_id: str) -> dt.datetime | None:
    match = _RUN_ID_TIME.match(run_id)
    return dt.datetime.strptime(match.group(1), "%Y%m%dT%H%M%SZ").replace(tzinfo=dt.UTC) if match else None


def _local(value: Any) -> str:
    if isinstance(value, dt.datetime):
        return value.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")
    return "" if value is None else str(value)


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _clip(text: str, n: int) -> str:
    return text if len(text) <= n else text[: n - 1] + "…"


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)
