"""The attempts timeline (a Gantt chart): as terminal cells for the dashboard, and as SVG.

Pure: both take the summary's `Bar`s (one per attempt, already clipped to the window) and a
time range, and return cells or SVG text. The SVG is written by hand (no dependency): one
lane per task, one bar per attempt coloured by its outcome, a strip below showing how many
agents ran at each moment, a time axis and a legend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from xml.sax.saxutils import escape

from controller.model.durations import format_duration
from controller.views.summary import Bar

# outcome -> (terminal style, SVG colour, legend label)
OUTCOMES: dict[str, tuple[str, str, str]] = {
    "merged": ("green", "#2e9d4f", "merged"),
    "succeeded": ("blue", "#3b7dd8", "done, merge pending"),
    "running": ("cyan", "#22a6c7", "running"),
    "failed": ("red", "#d64545", "failed"),
    "timeout": ("red", "#a83232", "timed out"),
    "lost": ("bright_black", "#8a8a8a", "lost"),
    "conflict": ("yellow", "#e0a526", "merge conflict"),
    "verify_failed": ("magenta", "#a64ca6", "verify failed"),
    "rejected": ("bright_red", "#7a1f1f", "rejected"),
    "stopped": ("bright_black", "#b0b0b0", "stopped"),
}
UNKNOWN = ("white", "#cccccc", "other")


def outcome_style(outcome: str) -> str:
    return OUTCOMES.get(outcome, UNKNOWN)[0]


def lane_order(bars: Sequence[Bar]) -> list[str]:
    """Tasks in order of their first attempt in the window."""
    first: dict[str, float] = {}
    for b in bars:
        first[b.task] = min(first.get(b.task, b.start), b.start)
    return sorted(first, key=lambda t: (first[t], t))


def cells(bars: Sequence[Bar], start: float, end: float, width: int) -> dict[str, list[str | None]]:
    """task -> `width` cells, each the outcome of the attempt covering it (or None)."""
    span = max(end - start, 1e-9)
    out: dict[str, list[str | None]] = {t: [None] * width for t in lane_order(bars)}
    for b in sorted(bars, key=lambda b: (b.start, b.number)):
        c0 = min(width - 1, max(0, int((b.start - start) / span * width)))
        c1 = min(width, max(c0 + 1, math.ceil((b.end - start) / span * width)))
        row = out[b.task]
        for c in range(c0, c1):
            row[c] = b.outcome
    return out


def concurrency(bars: Sequence[Bar]) -> list[tuple[float, int]]:
    """Step function of how many attempts ran: [(time, count from then on)], time-ordered."""
    points = sorted(
        [(b.start, 1) for b in bars] + [(b.end, -1) for b in bars], key=lambda p: (p[0], p[1])
    )
    steps: list[tuple[float, int]] = []
    depth = 0
    for t, delta in points:
        depth += delta
        if steps and steps[-1][0] == t:
            steps[-1] = (t, depth)
        else:
            steps.append((t, depth))
    return steps


def tick_step(span: float, max_ticks: int = 10) -> float:
    """A round tick interval (1s, 2s, 5s, 10s, ... 1h, 2h, ...) giving at most `max_ticks`."""
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 21600):
        if span / step <= max_ticks:
            return float(step)
    return 43200.0 * math.ceil(span / 43200.0 / max_ticks)


def tick_label(seconds: float) -> str:
    """Axis labels: 0s, 30s, 1m30s, 2h."""
    s = int(round(seconds))
    if s < 60:
        return f"{s}s"
    if s < 3600:
        return f"{s // 60}m" + (f"{s % 60:02d}s" if s % 60 else "")
    return f"{s // 3600}h" + (f"{(s % 3600) // 60:02d}m" if s % 3600 else "")


def _svg_text(x: float, y: float, text: str, **attrs: str) -> str:
    extra = "".join(f' {k.replace("_", "-")}="{v}"' for k, v in attrs.items())
    return f'<text x="{x:.1f}" y="{y:.1f}"{extra}>{escape(text)}</text>'


def timeline_svg(
    bars: Sequence[Bar],
    start: float,
    end: float,
    *,
    title: str,
    subtitle: str = "",
    width: int = 960,
) -> str:
    """The timeline as a standalone SVG document."""
    lanes = lane_order(bars)
    label_w, right, top, row_h = 150, 20, 62, 22
    plot_w = width - label_w - right
    strip_h = 44
    lanes_h = max(1, len(lanes)) * row_h
    axis_y = top + lanes_h + strip_h + 14
    legend_y = axis_y + 34
    height = legend_y + 24
    span = max(end - start, 1e-9)

    def x(t: float) -> float:
        return label_w + (t - start) / span * plot_w

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'viewBox="0 0 {width} {height}" font-family="Menlo, Consolas, monospace" '
        'font-size="12">',
        f'<rect width="{width}" height="{height}" fill="#ffffff"/>',
        _svg_text(12, 24, title, font_size="16", font_weight="bold", fill="#222"),
        _svg_text(12, 44, subtitle, fill="#555"),
    ]
    for i, task in enumerate(lanes):
        y = top + i * row_h
        if i % 2 == 0:
            parts.append(f'<rect x="0" y="{y}" width="{width}" height="{row_h}" fill="#f5f6f8"/>')
        parts.append(_svg_text(12, y + 15, task, fill="#222"))
    # axis
    parts.append(
        f'<line x1="{label_w}" y1="{axis_y}" x2="{label_w + plot_w}" y2="{axis_y}" stroke="#888"/>'
    )
    step = tick_step(span)
    k = 0
    while k * step <= span + 1e-9:
        tx = x(start + k * step)
        parts.append(
            f'<line x1="{tx:.1f}" y1="{top}" x2="{tx:.1f}" y2="{axis_y + 4}" stroke="#ddd"/>'
        )
        parts.append(
            _svg_text(tx, axis_y + 18, tick_label(k * step), text_anchor="middle", fill="#555")
        )
        k += 1
    lane_of = {t: i for i, t in enumerate(lanes)}
    for b in bars:
        y = top + lane_of[b.task] * row_h + 3
        w = max(1.5, x(b.end) - x(b.start))
        colour = OUTCOMES.get(b.outcome, UNKNOWN)[1]
        tip = (
            f"{b.task} attempt {b.number} ({b.agent or '?'}): {b.outcome}, "
            f"{format_duration(b.end - b.start)}"
        )
        parts.append(
            f'<rect x="{x(b.start):.1f}" y="{y}" width="{w:.1f}" height="{row_h - 6}" '
            f'rx="3" fill="{colour}"><title>{escape(tip)}</title></rect>'
        )
    # concurrency strip: how many agents ran at each moment
    steps = concurrency(bars)
    peak = max((c for _, c in steps), default=0)
    base = top + lanes_h + strip_h
    parts.append(_svg_text(12, base - strip_h / 2 + 4, f"agents (max {peak})", fill="#555"))
    if peak:
        path = [f"M{x(start):.1f},{base}"]
        level = 0
        for t, count in steps:
            path.append(f"L{x(t):.1f},{base - level / peak * (strip_h - 8):.1f}")
            level = count
            path.append(f"L{x(t):.1f},{base - level / peak * (strip_h - 8):.1f}")
        path.append(f"L{x(end):.1f},{base - level / peak * (strip_h - 8):.1f}")
        path.append(f"L{x(end):.1f},{base}Z")
        parts.append(f'<path d="{" ".join(path)}" fill="#9cc3e6" stroke="#3b7dd8"/>')
    # legend: only the outcomes present
    present = [o for o in OUTCOMES if any(b.outcome == o for b in bars)]
    lx = label_w
    for outcome in present:
        _, colour, label = OUTCOMES[outcome]
        parts.append(
            f'<rect x="{lx}" y="{legend_y - 10}" width="12" height="12" rx="2" fill="{colour}"/>'
        )
        parts.append(_svg_text(lx + 16, legend_y, label, fill="#333"))
        lx += 30 + 7.5 * len(label)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"
