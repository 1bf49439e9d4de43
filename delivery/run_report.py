"""The run report: one self-contained HTML page per run, to look at rather than read.

``<reports dir>/<run_id>/run.html``, beside the quality gate's ``quality.html``. Sections: records per
source and stream, the accounting (read = loaded + quarantined + duplicates, every bucket drawn and
counted, quarantine split into what the connectors and what the quality gate set aside), the comparison
with the previous run (rows per source, persons, report sizes, with ▲/▼ and the difference), identity
linkage (persons, links per system pair as a heat map, merges, splits, churn, the pairs to review and the
command that lists them), island coverage, quality results and the department exports the run made.
Streams are named as people know them (``居民标签 registry resident tags``, from the ``label`` of each
table in ``schemas/raw_*.yml``) with the stream code beside; labels are never cut short. Every time is
shown in Asia/Shanghai, and the page says so. Charts are inline SVG (``report_html``; the machines are
offline: no script, font or stylesheet is fetched).

Only counts, names of sources, tables, checks and reports, and hash prefixes reach the page — the
warehouse tables it reads (``meta.*``, ``marts.island_coverage``) and the export manifests hold no
personal data, and no person key is shown. Everything is HTML-escaped. A section whose data is absent
says so instead of failing ("no exports for this run").

Example::

    write_run_report(settings.warehouse_path, "ib_20261120T160000Z", reports_root, settings.exports_dir)
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import duckdb

from islandbridge import storage
from islandbridge.config import DuckDBResources
from islandbridge.delivery.report_html import bars, change, esc, grouped, heatmap, table, tiles
from islandbridge.delivery.run_data import (
    as_of_from_id,
    find_manifests,
    local_time,
    manifest_rows,
    run_numbers,
    select,
    select_one,
)
from islandbridge.errors import count, noun
from islandbridge.schemas import stream_label
from islandbridge.storage import existing_columns, has_table
from islandbridge.warehouse.marts import report_notes, report_rows

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
# The accounting's buckets, in the order they are stacked: loaded, the two quarantines, duplicates.
BUCKETS = ("loaded", "quarantined by the connectors", "quarantined by the quality gate", "duplicates")
BUCKET_COLORS = ("#2f6fdf", "#b42318", "#8e6ccf", "#d9822b")
REVIEW_COMMAND = "islandbridge review list"
TIME_ZONE_NOTE = (
    "All times are Asia/Shanghai (UTC+8); only a run id (ib_YYYYMMDDTHHMMSSZ) names its as-of in UTC."
)

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC",sans-serif;margin:1.5em auto;max-width:1200px;
color:#1d1d1f;padding:0 1.5em} h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.2em;margin-top:1.8em;
border-bottom:1px solid #e3e3e8;padding-bottom:.2em} table{border-collapse:collapse;margin:.5em 0}
th,td{border:1px solid #d7d7db;padding:3px 8px;text-align:left} th{background:#f3f3f5} td.n{text-align:right;
font-variant-numeric:tabular-nums} .muted{color:#6b6b73} .bad{color:#b42318;font-weight:600} .ok{color:#18794e}
.up,.down{color:#1d4ed8;white-space:nowrap} .tiles{display:flex;flex-wrap:wrap;gap:10px;margin:.6em 0}
.tile{border:1px solid #e3e3e8;border-radius:8px;padding:8px 14px;min-width:110px} .tile b{display:block;
font-size:1.5em;font-variant-numeric:tabular-nums} .tile span{color:#6b6b73;font-size:.85em} nav a{margin-right:1em}
svg text{font-family:inherit} .cellbar{background:#2f6fdf33;height:6px;margin-top:2px}
.act{background:#fff8e6;border:1px solid #f0d58c;border-radius:6px;padding:6px 10px}
"""


def write_run_report(
    warehouse_path: Path,
    run_id: str,
    out_dir: Path,
    exports_dir: Path | None = None,
    source_kinds: Mapping[str, str] | None = None,
    *,
    resources: DuckDBResources | None = None,
) -> Path:
    """Write ``<out_dir>/<run_id>/run.html`` for ``run_id`` from the warehouse (opened read-only, bounded
    by ``resources``: ``settings.duckdb``).

    ``out_dir`` is the reports root (the quality gate's ``reports`` folder); ``exports_dir`` the
    department exports folder whose manifests name this run; ``source_kinds`` (source name -> connector
    kind, from the configuration) names each stream by its table's label. A missing warehouse gives a page
    whose sections all say their data is absent. Returns the page's path.
    """
    folder = Path(out_dir) / run_id
    folder.mkdir(parents=True, exist_ok=True)
    path = Path(warehouse_path)
    con = storage.connect(
        str(path) if path.is_file() else ":memory:", read_only=path.is_file(), resources=resources
    )
    try:
        page = render_run_report(
            con,
            run_id,
            exports_dir,
            has_quality_page=(folder / "quality.html").is_file(),
            source_kinds=source_kinds,
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
    source_kinds: Mapping[str, str] | None = None,
) -> str:
    """The report's HTML for ``run_id`` over an open warehouse connection."""
    run = select_one(
        con,
        "meta.runs",
        "SELECT as_of, status, started_at, finished_at, sources FROM meta.runs WHERE run_id = ?",
        [run_id],
    )
    as_of = run["as_of"] if run else as_of_from_id(run_id)
    kinds = dict(source_kinds or {})

    def label(source: str, stream: str) -> str:
        name = stream_label(source, stream, kinds.get(source))
        return f"{source} · {name}" if name == stream else f"{name} ({stream})"

    sections = [
        ("records", "Records per source", _records(con, run_id, label)),
        ("accounting", "Accounting", _accounting(con, run_id, label)),
        ("previous", "Compared with the previous run", _compare(con, run_id, as_of)),
        ("linkage", "Identity linkage", _linkage(con, run_id)),
        ("coverage", "Island coverage", _coverage(con)),
        ("quality", "Quality results", _quality(con, run_id, has_quality_page, label)),
        ("exports", "Exports made", _exports(con, exports_dir, run_id, as_of)),
    ]
    nav = "".join(f"<a href='#{key}'>{esc(title)}</a>" for key, title, _ in sections)
    body = "".join(f"<h2 id='{key}'>{esc(title)}</h2>{html_}" for key, title, html_ in sections)
    return (
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Run {esc(run_id)}</title>"
        f"<style>{_CSS}</style></head><body><h1>Run <code>{esc(run_id)}</code></h1>{_header(run, as_of)}"
        f"<p class='muted' id='tz'>{esc(TIME_ZONE_NOTE)}</p><nav>{nav}</nav>{body}"
        "<p class='muted'>Counts only: this page holds no personal data.</p></body></html>"
    )


# ---- sections -------------------------------------------------------------------------------------------------


def _header(run: dict[str, Any] | None, as_of: dt.datetime | None) -> str:
    if run is None:
        when = f" (as of {esc(local_time(as_of))})" if as_of else ""
        return f"<p class='bad'>This run is not in meta.runs{when}: nothing was loaded for it.</p>"
    took = (
        (run["finished_at"] - run["started_at"]).total_seconds()
        if run["finished_at"] and run["started_at"]
        else None
    )
    return (
        f"<p>as of <b>{esc(local_time(as_of))}</b> · status <b>{esc(run['status'])}</b> · sources "
        f"{esc(', '.join(run['sources'] or []))} · loaded {esc(local_time(run['finished_at']))}"
        + (f" · load took {took:.1f} s" if took is not None else "")
        + "</p>"
    )


def _records(con, run_id: str, label) -> str:
    rows = select(
        con,
        "meta.run_sources",
        "SELECT source, stream, landed FROM meta.run_sources WHERE run_id = ? ORDER BY source, stream",
        [run_id],
    )
    if not rows:
        return "<p class='muted'>No source accounting for this run.</p>"
    by_source: dict[str, list[tuple[str, list[int]]]] = {}
    for r in rows:
        by_source.setdefault(r["source"], []).append((label(r["source"], r["stream"]), [r["landed"] or 0]))
    charts = "".join(
        f"<h3>{esc(source)}</h3>" + bars(streams, ["records loaded"]) for source, streams in by_source.items()
    )
    return (
        tiles(
            [
                (f"{n:,}", f"{source} {noun(n, 'record')} loaded")
                for source, n in (
                    (source, sum(v[0] for _, v in streams)) for source, streams in by_source.items()
                )
            ]
        )
        + "<p class='muted'>Records loaded per stream; each source is drawn to its own scale.</p>"
        + charts
    )


def _accounting(con, run_id: str, label) -> str:
    rows = select(
        con,
        "meta.run_sources",
        "SELECT source, stream, read, landed, quarantined, duplicates, deleted "
        "FROM meta.run_sources WHERE run_id = ? ORDER BY source, stream",
        [run_id],
    )
    if not rows:
        return "<p class='muted'>No source accounting for this run.</p>"
    by_connectors = _set_aside(con, "meta.quarantine", run_id)
    by_gate = _set_aside(con, "meta.quality_quarantine", run_id)
    for r in rows:
        key = (r["source"], r["stream"])
        r["by_connectors"], r["by_gate"] = by_connectors.get(key, 0), by_gate.get(key, 0)
        r["label"] = label(r["source"], r["stream"])
    total = {
        k: sum(r[k] or 0 for r in rows) for k in ("read", "landed", "quarantined", "duplicates", "deleted")
    }
    connectors, gate = sum(by_connectors.values()), sum(by_gate.values())
    head = ["stream", "read", "loaded", "quarantined", "by the connectors", "by the quality gate"]
    head += ["duplicates", "deleted", "adds up"]
    body = [
        [
            r["label"],
            r["read"],
            r["landed"],
            r["quarantined"],
            r["by_connectors"],
            r["by_gate"],
            r["duplicates"],
            r["deleted"],
            _adds_up(r),
        ]
        for r in rows
    ]
    chart_rows = [
        (r["label"], [r["landed"] or 0, r["by_connectors"], r["by_gate"], r["duplicates"] or 0]) for r in rows
    ]
    notes = [
        f"{r['read'] or 0:,} read = {r['landed'] or 0:,} loaded + {r['quarantined'] or 0:,} quarantined + "
        f"{count(r['duplicates'] or 0, 'duplicate')}"
        for r in rows
    ]
    other = total["quarantined"] - connectors - gate
    unattributed = (
        f" <span class='bad'>{count(other, 'quarantined row')} {noun(other, 'is', 'are')} in neither "
        "quarantine table.</span>"
        if other
        else ""
    )
    return (
        tiles(
            [
                (f"{total['read']:,}", "read"),
                (f"{total['landed']:,}", "loaded"),
                (f"{connectors:,}", "quarantined by the connectors"),
                (f"{gate:,}", "quarantined by the quality gate"),
                (f"{total['duplicates']:,}", noun(total["duplicates"], "duplicate")),
                (f"{total['deleted']:,}", "deleted at the source"),
            ]
        )
        + f"<p id='quarantine-total'>{count(total['quarantined'], 'row')} quarantined: {connectors:,} set aside by "
        f"the connectors, {gate:,} by the quality gate.{unattributed} <span class='muted'>List them with "
        "<code>islandbridge quarantine list</code>.</span></p>"
        + bars(chart_rows, BUCKETS, colors=BUCKET_COLORS, share=True, notes=notes)
        + "<p class='muted'>Each bar is one stream's records read, split into loaded, quarantined (by the "
        "connectors or by the quality gate, each with a reason) and duplicates; a non-zero bucket is always "
        "drawn, however small.</p>" + table(head, body, raw_cols=frozenset({8}))
    )


def _set_aside(con, table_name: str, run_id: str) -> dict[tuple[str, str], int]:
    rows = select(
        con,
        table_name,
        f"SELECT source, stream, count(*) AS n FROM {table_name} WHERE run_id = ? GROUP BY ALL",
        [run_id],
    )
    return {(r["source"], r["stream"]): int(r["n"]) for r in rows}


def _adds_up(r: dict[str, Any]) -> str:
    ok = (r["read"] or 0) == (r["landed"] or 0) + (r["quarantined"] or 0) + (r["duplicates"] or 0)
    return "<span class='ok'>yes</span>" if ok else "<span class='bad'>NO</span>"


def _compare(con, run_id: str, as_of: dt.datetime | None) -> str:
    """This run against the latest earlier run: rows per source, persons, pairs to review, report sizes."""
    prev = (
        select_one(
            con,
            "meta.runs",
            "SELECT run_id, as_of FROM meta.runs WHERE as_of < ? AND run_id <> ? ORDER BY as_of DESC LIMIT 1",
            [as_of, run_id],
        )
        if as_of is not None
        else None
    )
    if prev is None:
        return "<p class='muted'>No earlier run in this warehouse to compare with.</p>"
    this, before = run_numbers(con, run_id), run_numbers(con, prev["run_id"])
    names = list(dict.fromkeys([*before, *this]))
    rows = [
        [name, before.get(name), this.get(name), change(before.get(name), this.get(name))] for name in names
    ]
    return (
        f"<p>Previous run <code>{esc(prev['run_id'])}</code>, as of {esc(local_time(prev['as_of']))}.</p>"
        + table(["", "previous run", "this run", "change"], rows, raw_cols=frozenset({3}))
        + "<p class='muted'>▲ more than the previous run, ▼ fewer; the difference and its share of the "
        "previous number.</p>"
    )


# Records by why their key changed, and splits the day's data does not explain (identity.churn; docs/identity.md).
CHURN_COLUMNS = {
    "records_new": "new records",
    "records_merge": "records merged",
    "records_split": "records split",
    "records_retire": "records retired",
    "splits_unexplained": "unexplained splits",
}


def _churn_reasons(changes: str | None) -> list[object]:
    found = json.loads(changes) if changes else {}
    return [found.get(k, "–") for k in CHURN_COLUMNS]


def _linkage(con, run_id: str) -> str:
    run = select_one(con, "meta.identity_runs", "SELECT * FROM meta.identity_runs WHERE run_id = ?", [run_id])
    if run is None:
        return "<p class='muted'>No identity reconciliation recorded for this run.</p>"
    links = json.loads(run.get("links") or "{}")
    items = [
        (f"{run.get(k) or 0:,}", noun(run.get(k) or 0, one, many))
        for k, one, many in (
            ("persons", "person", None),
            ("records", "person record", None),
            ("merges", "merge", None),
            ("splits", "split", None),
            ("retired", "key retired", "keys retired"),
            ("churn", "key churn", "key churn"),
            ("reviews", "pair to review", "pairs to review"),
        )
    ]
    items.append((f"{sum(links.values()):,}", noun(sum(links.values()), "link")))
    items.append((esc(run.get("model_version")), "linkage model version"))
    reviews = run.get("reviews") or 0
    act = (
        f"<p class='act' id='review'><b>{count(reviews, 'pair')} to review</b>: records the linkage model was "
        f"unsure of. List them with <code>{REVIEW_COMMAND}</code>, then decide each (same person / "
        "different people); every later reconcile applies the decisions.</p>"
        if reviews
        else ""
    )
    why = "changes" if "changes" in existing_columns(con, "meta.identity_runs") else "NULL AS changes"
    history = select(
        con,
        "meta.identity_runs",
        f"SELECT run_id, as_of, persons, merges, splits, churn, reviews, {why} FROM "
        "meta.identity_runs WHERE as_of <= ? ORDER BY as_of DESC LIMIT 12",
        [run["as_of"]],
    )
    trend = bars([(h["run_id"], [h["persons"] or 0]) for h in reversed(history)], ["persons"]) + table(
        ["run", "as of", "persons", "merges", "splits", "churn", *CHURN_COLUMNS.values(), "pairs to review"],
        [
            [
                h["run_id"],
                local_time(h["as_of"]),
                h["persons"],
                h["merges"],
                h["splits"],
                h["churn"],
                *_churn_reasons(h.get("changes")),
                h["reviews"],
            ]
            for h in history
        ],
    )
    return (
        tiles(items)
        + act
        + "<h3>Links per system pair</h3>"
        + heatmap(links, SHORT_SYSTEM)
        + "<h3>Recent runs</h3>"
        + trend
    )


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
    head = "".join(f"<th>{esc(c)}</th>" for c in [*labels, *numeric])
    body = "".join(
        "<tr>"
        + "".join(f"<td>{esc(v)}</td>" for v in label)
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
    chart = _systems_chart(con, named) or grouped([(n, list(v.values())) for n, v in named], numeric)
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
    if existing_columns(con, "core.persons") >= {"systems", "community_name"}:
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
            + bars(
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
        + bars(spread, ["1 system", "2 or 3 systems", "all 4"], colors=SPREAD_COLORS[::2] + ("#18794e",))
        + "<h3>Persons per system</h3>"
    )  # the table below, with a bar in each cell


def _quality(con, run_id: str, has_page: bool, label) -> str:
    link = (
        "<p>Details, per table with failures first: <a href='quality.html'>quality.html</a></p>"
        if has_page
        else "<p class='muted'>No quality.html beside this report.</p>"
    )
    rows = select(
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
    counts = [
        (f"{len(rows):,}", noun(len(rows), "expectation")),
        (f"{len(rows) - len(failed):,}", "passed"),
    ] + [(f"{n:,}", f"{s} failing") for s, n in by_severity.items()]
    per_stream: dict[str, list[int]] = {}
    for r in rows:
        per_stream.setdefault(label(r["source"], r["stream"]), [0, 0])[0 if r["success"] else 1] += 1
    failing = (
        table(
            ["stream", "expectation", "column", "severity", "rows failing"],
            [
                [
                    label(r["source"], r["stream"]),
                    r["expectation"],
                    r["column_name"] or "",
                    r["severity"],
                    ""
                    if r["unexpected_count"] is None
                    else f"{r['unexpected_count']:,} / {r['element_count'] or 0:,}",
                ]
                for r in sorted(failed, key=lambda r: {"critical": 0, "warning": 1}.get(r["severity"], 2))
            ],
        )
        if failed
        else "<p class='ok'>Every expectation passed.</p>"
    )
    return (
        tiles(counts)
        + bars(list(per_stream.items()), ["passed", "failed"], colors=("#18794e", "#b42318"), share=True)
        + "<h3>Failing expectations</h3>"
        + failing
        + link
    )


def _exports(con, exports_dir: Path | None, run_id: str, as_of: dt.datetime | None) -> str:
    manifests = find_manifests(exports_dir, run_id, as_of) if exports_dir else []
    rows = [row for folder, manifest in manifests for row in manifest_rows(folder, manifest)]
    head = ["department", "day", "report", "rows", "files", "sha256", "policy version", "made at"]
    made = (
        bars([(f"{r[0]}/{r[2]}", [r[3] or 0]) for r in rows], ["rows exported"]) + table(head, rows)
        if rows
        else "<p class='muted'>No exports for this run.</p>"
    )
    return made + _marts_built(con, run_id)


def _marts_built(con, run_id: str) -> str:
    """Rows per report as the marts were built for this run (what the exports were cut from)."""
    build = select_one(
        con, "meta.mart_builds", "SELECT counts FROM meta.mart_builds WHERE run_id = ?", [run_id]
    )
    counts = report_rows(json.loads(build["counts"] or "{}")) if build else {}
    if not counts:
        return ""
    notes = report_notes(con, run_id)  # e.g. M's roster has not arrived: every senior is listed
    warned = "".join(f"<p class='bad'>{esc(r)}: {esc(n)}</p>" for r, ns in sorted(notes.items()) for n in ns)
    return (
        "<h3>Report marts built for this run</h3>"
        + warned
        + bars(
            [(name, [int(n)]) for name, n in sorted(counts.items())],
            ["rows in the mart"],
            colors=("#5b6b7b",),
        )
    )


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'
