"""The gate's report for people: one self-contained HTML page per run, and its JSON beside it.

``<reports dir>/<run_id>/quality.html`` and ``quality.json`` (a stopped run's also kept as
``quality-stopped-<time>.html``/``.json``). The page leads with what to act on:

1. the verdict and the run's totals, with both quarantines named — the records the *connectors* set
   aside while extracting (unreadable, with a reason) and the rows the *quality gate* set aside (failing
   a row-level check); their sum is the run report's "quarantined";
2. a summary per table (passed / warned / failed / rows set aside), failures first;
3. the failing expectations, then every table's expectations in a collapsible ``<details>`` (open when
   the table has a failure).

Both files are built from ``GateResult`` alone, which holds numbers, names, record keys and the failing
values of ``pii: none`` columns only — so no name, ID number or phone can reach them. Everything is
HTML-escaped; the page fetches nothing (no script, font or stylesheet).
"""

from __future__ import annotations

import datetime as dt
import html
import json
import os
from dataclasses import dataclass
from pathlib import Path

from islandbridge.config import LOCAL_TZ
from islandbridge.quality.results import CheckResult, GateResult

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC",sans-serif;margin:1.5em auto;
max-width:1200px;padding:0 1.5em;color:#1d1d1f} h1{font-size:1.5em;margin-bottom:.2em}
h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #e3e3e8;padding-bottom:.2em}
table{border-collapse:collapse;width:100%;margin:.4em 0} th,td{border:1px solid #d7d7db;padding:3px 6px;
text-align:left;vertical-align:top} th{background:#f3f3f5} td.n{text-align:right;font-variant-numeric:tabular-nums}
.ok{color:#18794e} .bad{color:#b42318;font-weight:600} .warn{color:#b54708;font-weight:600}
.row{color:#6941c6;font-weight:600} .muted{color:#6b6b73} .badge{display:inline-block;padding:2px 10px;
border-radius:10px;color:#fff} .pass{background:#18794e} .stop{background:#b42318} code{font-size:.92em}
tr.failed td:first-child{border-left:4px solid #b42318} tr.warned td:first-child{border-left:4px solid #b54708}
tr.setaside td:first-child{border-left:4px solid #6941c6} tr.passed td:first-child{border-left:4px solid #18794e}
.tiles{display:flex;flex-wrap:wrap;gap:10px;margin:.6em 0} .tile{border:1px solid #e3e3e8;border-radius:8px;
padding:6px 14px;min-width:100px} .tile b{display:block;font-size:1.4em;font-variant-numeric:tabular-nums}
.tile span{color:#6b6b73;font-size:.85em} details{margin:.3em 0;border:1px solid #e3e3e8;border-radius:6px;
padding:.2em .6em} summary{cursor:pointer;padding:.2em 0} details[open] summary{margin-bottom:.3em}
"""
_STATUS = {  # order: what needs a person first
    "failed": (0, "failed — nothing loaded", "bad"),
    "warned": (1, "warning", "warn"),
    "setaside": (2, "rows set aside", "row"),
    "passed": (3, "passed", "ok"),
}


@dataclass
class TableSummary:
    """One landed table's line in the summary: how its expectations went and what was set aside."""

    source: str
    stream: str
    label: str
    results: list[CheckResult]
    by_connectors: int = 0
    by_gate: int = 0

    @property
    def id(self) -> str:
        return f"{self.source}.{self.stream}"

    def count(self, status: str) -> int:
        return sum(1 for r in self.results if _status(r) == status)

    @property
    def rows(self) -> int | None:
        counts = [r.element_count for r in self.results if r.element_count is not None]
        return max(counts) if counts else None

    @property
    def status(self) -> str:
        if self.count("failed"):
            return "failed"
        if self.count("warned"):
            return "warned"
        return "setaside" if self.count("setaside") or self.by_gate or self.by_connectors else "passed"


def write(gate: GateResult, folder: Path, at: dt.datetime) -> tuple[Path, Path]:
    """Write ``quality.html`` and ``quality.json`` under ``folder``; returns their paths.

    A stopped run's pages are also kept as ``quality-stopped-<at, UTC>.html``/``.json``, whose paths are
    returned: a later sync of the same day rewrites ``quality.html``, and the stop's page must outlive
    it (the stop's message and ``meta.gate_stops`` name it). Both live in the run's folder, which
    retention removes whole."""
    folder.mkdir(parents=True, exist_ok=True)
    kept = [] if gate.passed else [_unused(folder, f"quality-stopped-{at.astimezone(dt.UTC):%Y%m%dT%H%M%SZ}")]
    for name in ["quality", *kept]:
        html_path, json_path = folder / f"{name}.html", folder / f"{name}.json"
        gate.report_path, gate.summary_path = html_path, json_path
        _atomic_write(json_path, json.dumps(gate.to_json_dict(), ensure_ascii=False, indent=1, default=str))
        _atomic_write(html_path, render(gate))
    return html_path, json_path


def _unused(folder: Path, stem: str) -> str:
    """``stem``, or ``stem-2``, ``stem-3``… when a stop of the same second already kept its page there."""
    name, n = stem, 1
    while (folder / f"{name}.html").exists() or (folder / f"{name}.json").exists():
        n += 1
        name = f"{stem}-{n}"
    return name


def summarise(gate: GateResult) -> list[TableSummary]:
    """One summary per landed table, failures first (failed, warned, rows set aside, passed), then by name."""
    tables: dict[tuple[str, str], TableSummary] = {}

    def table(source: str, stream: str) -> TableSummary:
        label = gate.labels.get(f"{source}.{stream}", stream)
        return tables.setdefault((source, stream), TableSummary(source, stream, label, []))

    for r in gate.results:
        table(r.source, r.stream).results.append(r)
    for source, streams in gate.connector_quarantined.items():
        for stream, n in streams.items():
            table(source, stream).by_connectors = n
    for source, streams in gate.quarantined.items():
        for stream, n in streams.items():
            table(source, stream).by_gate = n
    return sorted(tables.values(), key=lambda t: (_STATUS[t.status][0], t.source, t.stream))


def quarantine_sentence(by_connectors: int, by_gate: int) -> str:
    """``36 rows quarantined: 36 set aside by the connectors, 0 by the quality gate`` ("1 row …") — the run
    report's total, split by who set the rows aside."""
    total = by_connectors + by_gate
    return (
        f"{total:,} {'row' if total == 1 else 'rows'} quarantined: {by_connectors:,} set aside by the "
        f"connectors, {by_gate:,} by the quality gate"
    )


def render(gate: GateResult) -> str:
    status = (
        '<span class="badge pass">PASSED</span>'
        if gate.passed
        else '<span class="badge stop">STOPPED — nothing loaded</span>'
    )
    tables = summarise(gate)
    passed = sum(1 for r in gate.results if r.success)
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Quality — {_e(gate.run_id)}"
        f"</title><style>{_CSS}</style></head><body>",
        f"<h1>Data quality gate — run <code>{_e(gate.run_id)}</code></h1>",
        f"<p>{status} &nbsp; as of <b>{_e(_local(gate.as_of))}</b> (all times Asia/Shanghai) · "
        f"{len(tables)} tables · {len(gate.results)} expectations</p>",
        _tiles(
            [
                (f"{passed:,}", "expectations passed"),
                (f"{len(gate.warnings):,}", "warnings"),
                (f"{len(gate.critical_failures):,}", "critical failures"),
                (f"{gate.quarantined_by_connectors:,}", "rows set aside by the connectors"),
                (f"{gate.quarantined_by_gate:,}", "rows set aside by the quality gate"),
            ]
        ),
        f"<p id='quarantine-total'>{_e(quarantine_sentence(gate.quarantined_by_connectors, gate.quarantined_by_gate))}."
        " <span class='muted'>The connectors set aside records they could not read (with the reason); the "
        "gate sets aside rows that fail a row-level check. Both are kept encrypted and counted in the run "
        "report's accounting; see <code>islandbridge quarantine list</code>.</span></p>",
        "<p class='muted'>Values of personal-data columns are never shown: failing rows are named by "
        "record key.</p>",
        "<h2 id='summary'>Summary per table</h2>",
        _summary_table(tables),
    ]
    parts += _section("Critical failures", gate.critical_failures, "bad")
    parts += _section("Warnings", gate.warnings, "warn")
    parts.append("<h2 id='detail'>Every expectation, per table</h2>")
    for t in tables:
        order, text, cls = _STATUS[t.status]
        parts.append(
            f"<details id='t-{_e(t.id)}'{' open' if order < 2 else ''}><summary><b>{_e(t.label)}</b> "
            f"<code>{_e(t.id)}</code> — <span class='{cls}'>{_e(text)}</span> · "
            f"{len(t.results)} expectations</summary>{_table(t.results)}</details>"
        )
    parts.append("</body></html>")
    return "\n".join(parts)


def _summary_table(tables: list[TableSummary]) -> str:
    head = (
        "<table class='summary'><tr><th>table</th><th>status</th><th>rows checked</th><th>expectations</th>"
        "<th>passed</th><th>warned</th><th>failed</th><th>row checks failing</th>"
        "<th>set aside by the connectors</th><th>set aside by the quality gate</th></tr>"
    )
    rows = []
    for t in tables:
        _, text, cls = _STATUS[t.status]
        rows.append(
            f"<tr class='{t.status}' data-table='{_e(t.id)}'><td><a href='#t-{_e(t.id)}'>{_e(t.label)}</a>"
            f"<br><code class='muted'>{_e(t.id)}</code></td><td class='{cls}'>{_e(text)}</td>"
            + "".join(
                f"<td class='n'>{'' if n is None else f'{n:,}'}</td>"
                for n in (
                    t.rows,
                    len(t.results),
                    t.count("passed"),
                    t.count("warned"),
                    t.count("failed"),
                    t.count("setaside"),
                    t.by_connectors,
                    t.by_gate,
                )
            )
            + "</tr>"
        )
    return head + "".join(rows) + "</table>"


def _section(title: str, results: list[CheckResult], cls: str) -> list[str]:
    if not results:
        return []
    return (
        [f"<h2 class='{cls}'>{_e(title)}</h2><ul>"]
        + [f"<li><code>{_e(r.describe())}</code></li>" for r in results]
        + ["</ul>"]
    )


def _status(r: CheckResult) -> str:
    if r.success:
        return "passed"
    return {"warning": "warned", "row": "setaside"}.get(r.severity, "failed")


def _table(results: list[CheckResult]) -> str:
    head = (
        "<table><tr><th>expectation</th><th>column</th><th>severity</th><th>result</th><th>rows failing</th>"
        "<th>observed</th><th>record keys (sample)</th><th>engine</th></tr>"
    )
    ordered = sorted(results, key=lambda r: _STATUS[_status(r)][0])
    return head + "".join(_row(r) for r in ordered) + "</table>"


def _row(r: CheckResult) -> str:
    if r.success:
        verdict = "<span class='ok'>pass</span>"
    else:
        cls = {"critical": "bad", "warning": "warn", "row": "row"}.get(r.severity, "bad")
        verdict = f"<span class='{cls}'>{'quarantined' if r.severity == 'row' else 'FAIL'}</span>"
    failing = "" if r.unexpected_count is None else f"{r.unexpected_count:,}"
    if r.unexpected_count is not None and r.element_count is not None:
        failing += f" / {r.element_count:,}"
    observed = dict(r.observed)
    if r.top_values:
        observed["failing values"] = ", ".join(f"{v!r}×{n}" for v, n in r.top_values)
    seen = "<br>".join(f"{_e(k)}: {_e(v)}" for k, v in observed.items())
    return (
        f"<tr><td><code>{_e(r.check)}</code><br><span class='muted'>{_e(r.gx_type or r.kind)}</span></td>"
        f"<td>{_e(r.column or '')}</td><td>{_e(r.severity)}</td><td>{verdict}</td><td>{failing}</td>"
        f"<td>{seen}</td><td>{_e(', '.join(r.sample_keys))}</td><td class='muted'>{_e(r.engine)}</td></tr>"
    )


def _tiles(items: list[tuple[str, str]]) -> str:
    return (
        "<div class='tiles'>"
        + "".join(f"<div class='tile'><b>{_e(v)}</b><span>{_e(k)}</span></div>" for v, k in items)
        + "</div>"
    )


def _local(as_of: str) -> str:
    try:
        when = dt.datetime.fromisoformat(as_of)
    except ValueError:
        return as_of
    if when.tzinfo is None:
        return as_of
    return when.astimezone(LOCAL_TZ).strftime("%Y-%m-%d %H:%M")


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
