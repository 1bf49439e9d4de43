"""The run report's drawing kit: inline SVG charts, tiles and tables, all HTML-escaped, nothing fetched.

Labels are never cut short: the label column of a chart is as wide as its longest label (a CJK character
counts about twice a Latin one), so ``居民标签 registry resident tags`` shows in full. Hovering a bar shows
its number through an SVG ``<title>``. Small counts stay visible: a non-zero segment of a stacked bar is
drawn at least ``MIN_SEGMENT`` pixels wide (taken from the largest segment), so 36 quarantined of
200,000 read is a visible sliver, and the exact numbers are printed beside the bar.
"""

from __future__ import annotations

import html
import unicodedata
from collections.abc import Sequence
from typing import Any

from islandbridge.errors import count

PALETTE = ("#2f6fdf", "#d9822b", "#8e6ccf", "#18794e", "#b42318", "#5b6b7b", "#c2a100", "#0f8b8d", "#d6336c")
MIN_SEGMENT = 4.0
FONT_PX = 12


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def text_width(text: str, px: int = FONT_PX) -> int:
    """About how wide ``text`` is drawn at ``px`` pixels: wide (CJK) characters count ~1 em, others ~0.6."""
    return int(sum(px if unicodedata.east_asian_width(c) in "WF" else px * 0.6 for c in str(text))) + 4


def bars(
    rows: Sequence[tuple[str, Sequence[int]]],
    series: Sequence[str],
    colors: Sequence[str] = PALETTE,
    plot_w: int = 440,
    share: bool = False,
    notes: Sequence[str] | None = None,
) -> str:
    """Horizontal bars, stacked when there are several series; the total (or ``notes[i]``) after each bar.

    ``share`` draws every bar full width, split by each series' share of its total (rates, not volumes).
    """
    if not rows:
        return ""
    label_w = max(text_width(label) for label, _ in rows) + 8
    row_h = 22
    after = [notes[i] if notes else f"{sum(v):,}" for i, (_, v) in enumerate(rows)]
    width = label_w + plot_w + 12 + max(text_width(a) for a in after)
    top = max(sum(v) for _, v in rows) or 1
    height = row_h * len(rows) + (8 + 16 * legend_lines(series, label_w, width) if len(series) > 1 else 4)
    parts = [f"<svg width='{width}' height='{height}' role='img' font-size='{FONT_PX}'>"]
    for i, (label, values) in enumerate(rows):
        y, x = i * row_h, label_w
        scale = (sum(values) or 1) if share else top
        parts.append(f"<text x='{label_w - 6}' y='{y + 15}' text-anchor='end'>{esc(label)}</text>")
        for j, w in enumerate(_widths(values, plot_w, scale)):
            parts.append(
                f"<rect x='{x:.1f}' y='{y + 3}' width='{w:.1f}' height='{row_h - 6}' fill='"
                f"{colors[j % len(colors)]}'><title>{esc(label)} — {esc(series[j])}: {values[j]:,}</title></rect>"
            )
            x += w
        parts.append(f"<text x='{x + 5:.1f}' y='{y + 15}' fill='#444'>{esc(after[i])}</text>")
    if len(series) > 1:
        parts.append(legend(series, colors, label_w, row_h * len(rows) + 14, width))
    return "".join(parts) + "</svg>"


def _widths(values: Sequence[int], plot_w: float, scale: float) -> list[float]:
    """Segment widths: proportional, each non-zero one at least ``MIN_SEGMENT`` (from the widest one)."""
    widths = [plot_w * v / scale for v in values]
    short = [i for i, v in enumerate(values) if v and widths[i] < MIN_SEGMENT]
    if short:
        widest = max(range(len(widths)), key=widths.__getitem__)
        for i in short:
            if i != widest:
                widths[widest] -= MIN_SEGMENT - widths[i]
                widths[i] = MIN_SEGMENT
        widths[widest] = max(widths[widest], MIN_SEGMENT if values[widest] else 0.0)
    return widths


def grouped(rows: Sequence[tuple[str, Sequence[int]]], series: Sequence[str], plot_w: int = 440) -> str:
    """Side-by-side bars per row (overlapping counts such as "in registry" and "in two or more")."""
    label_w, bar_h = max(text_width(label) for label, _ in rows) + 8, 9
    width = label_w + plot_w + 70
    scale = max(max(v) for _, v in rows) or 1
    group_h = bar_h * len(series) + 10
    height = group_h * len(rows) + 8 + 16 * legend_lines(series, label_w, width)
    parts = [f"<svg width='{width}' height='{height}' role='img' font-size='{FONT_PX}'>"]
    for i, (label, values) in enumerate(rows):
        y = i * group_h
        parts.append(
            f"<text x='{label_w - 6}' y='{y + group_h / 2 + 4:.0f}' text-anchor='end'>{esc(label)}</text>"
        )
        for j, value in enumerate(values):
            w = plot_w * value / scale
            parts.append(
                f"<rect x='{label_w}' y='{y + j * bar_h + 4}' width='{w:.1f}' height='{bar_h - 1}' "
                f"fill='{PALETTE[j % len(PALETTE)]}'><title>{esc(label)} — {esc(series[j])}: {value:,}"
                f"</title></rect><text x='{label_w + w + 4:.1f}' y='{y + j * bar_h + 12}' font-size='9' "
                f"fill='#444'>{value:,}</text>"
            )
    parts.append(legend(series, PALETTE, label_w, group_h * len(rows) + 14, width))
    return "".join(parts) + "</svg>"


def legend(series: Sequence[str], colors: Sequence[str], x0: int, y: int, width: int = 720) -> str:
    """Legend entries left to right from ``x0``, wrapping to a new line (16 px lower) at ``width``."""
    parts, x = [], x0
    for j, name in enumerate(series):
        step = 24 + text_width(name)
        if x > x0 and x + step > width:
            x, y = x0, y + 16
        parts.append(
            f"<rect x='{x}' y='{y - 9}' width='10' height='10' fill='{colors[j % len(colors)]}'/>"
            f"<text x='{x + 14}' y='{y}'>{esc(name)}</text>"
        )
        x += step
    return "".join(parts)


def legend_lines(series: Sequence[str], x0: int, width: int = 720) -> int:
    lines, x = 1, x0
    for name in series:
        step = 24 + text_width(name)
        if x > x0 and x + step > width:
            lines, x = lines + 1, x0
        x += step
    return lines


def heatmap(links: dict[str, int], short: dict[str, str]) -> str:
    """A symmetric systems × systems matrix of link counts; the diagonal is links within one system."""
    if not links:
        return "<p class='muted'>No links recorded.</p>"
    pairs = {tuple(k.split("~", 1)) if "~" in k else (k, k): int(v) for k, v in links.items()}
    systems = sorted({s for pair in pairs for s in pair})
    cell, top = 86, 26
    left = max(text_width(short.get(s, s)) for s in systems) + 10
    scale = max(pairs.values()) or 1
    size = (left + cell * len(systems) + 4, top + cell * len(systems) // 2 + 4)
    parts = [f"<svg width='{size[0]}' height='{size[1]}' role='img' font-size='{FONT_PX}'>"]
    h = cell // 2
    for j, name in enumerate(systems):
        parts.append(
            f"<text x='{left + j * cell + cell / 2:.0f}' y='{top - 8}' text-anchor='middle'>"
            f"{esc(short.get(name, name))}</text>"
        )
    for i, a in enumerate(systems):
        parts.append(
            f"<text x='{left - 6}' y='{top + i * h + h / 2 + 4:.0f}' text-anchor='end'>"
            f"{esc(short.get(a, a))}</text>"
        )
        for j, b in enumerate(systems):
            n = pairs.get((a, b), pairs.get((b, a), 0))
            shade = 0.08 + 0.85 * n / scale
            ink = "#fff" if shade > 0.55 else "#1d1d1f"
            parts.append(
                f"<rect x='{left + j * cell}' y='{top + i * h}' width='{cell - 2}' height='{h - 2}' "
                f"fill='#2f6fdf' fill-opacity='{shade:.2f}'><title>{esc(a)} ~ {esc(b)}: {count(n, 'link')}"
                f"</title></rect><text x='{left + j * cell + cell / 2 - 1:.0f}' y='{top + i * h + h / 2 + 3:.0f}'"
                f" text-anchor='middle' fill='{ink}'>{n:,}</text>"
            )
    return "".join(parts) + "</svg>"


def tiles(items: Sequence[tuple[str, str]]) -> str:
    return (
        "<div class='tiles'>"
        + "".join(f"<div class='tile'><b>{esc(v)}</b><span>{esc(k)}</span></div>" for v, k in items)
        + "</div>"
    )


def table(head: Sequence[str], rows: Sequence[Sequence[Any]], raw_cols: frozenset[int] = frozenset()) -> str:
    def cell(i: int, v: Any) -> str:
        if i in raw_cols:
            return f"<td>{v}</td>"  # already-built markup of our own
        if isinstance(v, int) and not isinstance(v, bool):
            return f"<td class='n'>{v:,}</td>"
        return f"<td>{esc('' if v is None else v)}</td>"

    return (
        "<table><tr>"
        + "".join(f"<th>{esc(h)}</th>" for h in head)
        + "</tr>"
        + "".join("<tr>" + "".join(cell(i, v) for i, v in enumerate(r)) + "</tr>" for r in rows)
        + "</table>"
    )


def change(before: int | None, now: int | None) -> str:
    """``▲ +19 (+0.7%)``, ``▼ −3``, ``= 0`` or ``new``: markup for a comparison cell."""
    if now is None:
        return "<span class='muted'>—</span>"
    if before is None:
        return "<span class='muted'>new</span>"
    diff = now - before
    pct = f" ({diff / before:+.1%})" if before and diff else ""
    if diff > 0:
        return f"<span class='up'>▲ +{diff:,}{pct}</span>"
    if diff < 0:
        return f"<span class='down'>▼ −{-diff:,}{pct.replace('-', '−')}</span>"
    return "<span class='muted'>= 0</span>"
