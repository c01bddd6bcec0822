"""The attempts timeline (a Gantt chart): as terminal cells for the dashboard, and as SVG.

Pure: both take the summary's `Bar`s (one per attempt, already clipped to the window) and a
time range, and return cells or SVG text. The SVG is written by hand (no dependency): one
lane per task, one bar per attempt coloured by its outcome, a strip below showing how many
agents ran at each moment, a time axis and a legend.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class _Frame:
    """The SVG's layout: lanes on top, the concurrency strip, the time axis, the legend."""

    start: float
    end: float
    width: int
    lanes: int
    label_w: int = 150
    right: int = 20
    top: int = 62
    row_h: int = 22
    strip_h: int = 44

    @property
    def span(self) -> float:
        return max(self.end - self.start, 1e-9)

    @property
    def plot_w(self) -> int:
        return self.width - self.label_w - self.right

    @property
    def lanes_h(self) -> int:
        return max(1, self.lanes) * self.row_h

    @property
    def axis_y(self) -> int:
        return self.top + self.lanes_h + self.strip_h + 14

    @property
    def legend_y(self) -> int:
        return self.axis_y + 34

    @property
    def height(self) -> int:
        return self.legend_y + 24

    def x(self, t: float) -> float:
        return self.label_w + (t - self.start) / self.span * self.plot_w


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
    f = _Frame(start, end, width, len(lanes))
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{f.height}" '
        f'viewBox="0 0 {width} {f.height}" font-family="Menlo, Consolas, monospace" '
        'font-size="12">',
        f'<rect width="{width}" height="{f.height}" fill="#ffffff"/>',
        _svg_text(12, 24, title, font_size="16", font_weight="bold", fill="#222"),
        _svg_text(12, 44, subtitle, fill="#555"),
    ]
    for i, task in enumerate(lanes):
        y = f.top + i * f.row_h
        if i % 2 == 0:
            parts.append(f'<rect x="0" y="{y}" width="{width}" height="{f.row_h}" fill="#f5f6f8"/>')
        parts.append(_svg_text(12, y + 15, task, fill="#222"))
    parts += _svg_axis(f)
    parts += _svg_bars(f, bars, lanes)
    parts += _svg_strip(f, bars)
    parts += _svg_legend(f, bars)
    parts.append("</svg>")
    return "\n".join(parts) + "\n"


def _svg_axis(f: _Frame) -> list[str]:
    parts = [
        f'<line x1="{f.label_w}" y1="{f.axis_y}" x2="{f.label_w + f.plot_w}" y2="{f.axis_y}" '
        'stroke="#888"/>'
    ]
    step = tick_step(f.span)
    k = 0
    while k * step <= f.span + 1e-9:
        tx = f.x(f.start + k * step)
        parts.append(
            f'<line x1="{tx:.1f}" y1="{f.top}" x2="{tx:.1f}" y2="{f.axis_y + 4}" stroke="#ddd"/>'
        )
        parts.append(
            _svg_text(tx, f.axis_y + 18, tick_label(k * step), text_anchor="middle", fill="#555")
        )
        k += 1
    return parts


def _svg_bars(f: _Frame, bars: Sequence[Bar], lanes: Sequence[str]) -> list[str]:
    """One bar per attempt, coloured by its outcome, with a tooltip."""
    parts = []
    lane_of = {t: i for i, t in enumerate(lanes)}
    for b in bars:
        y = f.top + lane_of[b.task] * f.row_h + 3
        w = max(1.5, f.x(b.end) - f.x(b.start))
        colour = OUTCOMES.get(b.outcome, UNKNOWN)[1]
        tip = (
            f"{b.task} attempt {b.number} ({b.agent or '?'}): {b.outcome}, "
            f"{format_duration(b.end - b.start)}"
        )
        parts.append(
            f'<rect x="{f.x(b.start):.1f}" y="{y}" width="{w:.1f}" height="{f.row_h - 6}" '
            f'rx="3" fill="{colour}"><title>{escape(tip)}</title></rect>'
        )
    return parts


def _svg_strip(f: _Frame, bars: Sequence[Bar]) -> list[str]:
    """The concurrency strip: how many agents ran at each moment."""
    steps = concurrency(bars)
    peak = max((c for _, c in steps), default=0)
    base = f.top + f.lanes_h + f.strip_h
    parts = [_svg_text(12, base - f.strip_h / 2 + 4, f"agents (max {peak})", fill="#555")]
    if peak:
        path = [f"M{f.x(f.start):.1f},{base}"]
        level = 0
        for t, count in steps:
            path.append(f"L{f.x(t):.1f},{base - level / peak * (f.strip_h - 8):.1f}")
            level = count
            path.append(f"L{f.x(t):.1f},{base - level / peak * (f.strip_h - 8):.1f}")
        path.append(f"L{f.x(f.end):.1f},{base - level / peak * (f.strip_h - 8):.1f}")
        path.append(f"L{f.x(f.end):.1f},{base}Z")
        parts.append(f'<path d="{" ".join(path)}" fill="#9cc3e6" stroke="#3b7dd8"/>')
    return parts


def _svg_legend(f: _Frame, bars: Sequence[Bar]) -> list[str]:
    """The legend: only the outcomes present."""
    parts = []
    present = [o for o in OUTCOMES if any(b.outcome == o for b in bars)]
    lx: float = f.label_w
    for outcome in present:
        _, colour, label = OUTCOMES[outcome]
        parts.append(
            f'<rect x="{lx}" y="{f.legend_y - 10}" width="12" height="12" rx="2" fill="{colour}"/>'
        )
        parts.append(_svg_text(lx + 16, f.legend_y, label, fill="#333"))
        lx += 30 + 7.5 * len(label)
    return parts
