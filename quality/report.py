"""The gate's report for people: one self-contained HTML page per run, and its JSON beside it.

``<reports dir>/<run_id>/quality.html`` and ``quality.json``. Both are built from ``GateResult`` alone,
which holds numbers, names, record keys and the failing values of ``pii: none`` columns only — so no
name, ID number or phone can reach them. Everything is HTML-escaped.
"""

from __future__ import annotations

import html
import json
import os
from collections.abc import Iterable
from pathlib import Path

from islandbridge.quality.results import CheckResult, GateResult

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI","Noto Sans CJK SC",sans-serif;margin:2em;color:#1d1d1f}
h1{font-size:1.5em;margin-bottom:.2em} h2{font-size:1.2em;margin-top:1.6em} h3{font-size:1em;margin:1.2em 0 .3em}
table{border-collapse:collapse;width:100%;margin:.4em 0} th,td{border:1px solid #d7d7db;padding:3px 6px;
text-align:left;vertical-align:top} th{background:#f3f3f5} .ok{color:#18794e} .bad{color:#b42318;font-weight:600}
.warn{color:#b54708;font-weight:600} .row{color:#6941c6;font-weight:600} .muted{color:#6b6b73}
.badge{display:inline-block;padding:2px 10px;border-radius:10px;color:#fff}
.pass{background:#18794e} .stop{background:#b42318} code{font-size:.92em}
"""


def write(gate: GateResult, folder: Path) -> tuple[Path, Path]:
    """Write ``quality.html`` and ``quality.json`` under ``folder``; returns their paths."""
    folder.mkdir(parents=True, exist_ok=True)
    html_path, json_path = folder / "quality.html", folder / "quality.json"
    gate.report_path, gate.summary_path = html_path, json_path
    _atomic_write(json_path, json.dumps(gate.to_json_dict(), ensure_ascii=False, indent=1, default=str))
    _atomic_write(html_path, render(gate))
    return html_path, json_path


def render(gate: GateResult) -> str:
    status = (
        '<span class="badge pass">PASSED</span>'
        if gate.passed
        else '<span class="badge stop">STOPPED — nothing loaded</span>'
    )
    parts = [
        f"<!doctype html><html lang='en'><head><meta charset='utf-8'><title>Quality — {_e(gate.run_id)}"
        f"</title><style>{_CSS}</style></head><body>",
        f"<h1>Data quality gate — run <code>{_e(gate.run_id)}</code></h1>",
        f"<p>{status} &nbsp; as of {_e(gate.as_of)} · {len(gate.results)} expectations · "
        f"{len(gate.critical_failures)} critical · {len(gate.warnings)} warning(s) · "
        f"{sum(n for s in gate.quarantined.values() for n in s.values())} row(s) quarantined</p>",
        "<p class='muted'>Values of personal-data columns are never shown: failing rows are named by "
        "record key. Quarantined rows are kept encrypted; see <code>islandbridge quarantine list</code>.</p>",
    ]
    parts += _section("Critical failures", gate.critical_failures)
    parts += _section("Warnings", gate.warnings)
    parts += _quarantine(gate)
    parts.append("<h2>All expectations</h2>")
    for (source, stream), results in _by_stream(gate.results):
        parts.append(f"<h3>{_e(source)}.{_e(stream)}</h3>")
        parts.append(_table(results))
    parts.append("</body></html>")
    return "\n".join(parts)


def _section(title: str, results: list[CheckResult]) -> list[str]:
    if not results:
        return []
    return (
        [f"<h2>{_e(title)}</h2><ul>"]
        + [f"<li><code>{_e(r.describe())}</code></li>" for r in results]
        + ["</ul>"]
    )


def _quarantine(gate: GateResult) -> list[str]:
    if not gate.quarantined:
        return []
    rows = "".join(
        f"<tr><td>{_e(src)}</td><td>{_e(stream)}</td><td>{n}</td></tr>"
        for src, streams in sorted(gate.quarantined.items())
        for stream, n in sorted(streams.items())
    )
    return [
        "<h2>Quarantined rows</h2><table><tr><th>source</th><th>stream</th><th>rows</th></tr>",
        rows,
        "</table>",
    ]


def _by_stream(results: Iterable[CheckResult]):
    groups: dict[tuple[str, str], list[CheckResult]] = {}
    for r in results:
        groups.setdefault((r.source, r.stream), []).append(r)
    return sorted(groups.items())


def _table(results: list[CheckResult]) -> str:
    head = (
        "<table><tr><th>expectation</th><th>column</th><th>severity</th><th>result</th><th>rows failing</th>"
        "<th>observed</th><th>record keys (sample)</th><th>engine</th></tr>"
    )
    return head + "".join(_row(r) for r in results) + "</table>"


def _row(r: CheckResult) -> str:
    if r.success:
        verdict = "<span class='ok'>pass</span>"
    else:
        cls = {"critical": "bad", "warning": "warn", "row": "row"}.get(r.severity, "bad")
        verdict = f"<span class='{cls}'>{'quarantined' if r.severity == 'row' else 'FAIL'}</span>"
    failing = "" if r.unexpected_count is None else f"{r.unexpected_count} / {r.element_count}"
    observed = dict(r.observed)
    if r.top_values:
        observed["failing values"] = ", ".join(f"{v!r}×{n}" for v, n in r.top_values)
    seen = "<br>".join(f"{_e(k)}: {_e(v)}" for k, v in observed.items())
    return (
        f"<tr><td><code>{_e(r.check)}</code><br><span class='muted'>{_e(r.gx_type or r.kind)}</span></td>"
        f"<td>{_e(r.column or '')}</td><td>{_e(r.severity)}</td><td>{verdict}</td><td>{failing}</td>"
        f"<td>{seen}</td><td>{_e(', '.join(r.sample_keys))}</td><td class='muted'>{_e(r.engine)}</td></tr>"
    )


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)
