"""`orchestrator dashboard`: a live terminal view that re-reads the world every interval.

Each frame is a pure function of a `Frame` (status model, timeline bars, recent events,
resource histories) and the terminal size, so it can be tested headless and always fits:
every line is cut to the width and the sections share the height (80x24 is the design
size). The loop (`live`) re-reads everything from the world each tick (nothing accumulates
but two bounded histories) and draws with rich `Live` on the alternate screen. A spec edit
that breaks the file keeps the last valid spec on screen. A running agent's reason shows its
turns and last action when it reports them; the header shows what the fleet has cost.
"""

from __future__ import annotations

import math
import sqlite3
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from rich.text import Text

from controller.git import GitError
from controller.model.durations import format_duration
from controller.model.money import format_usd
from controller.model.problems import SpecError
from controller.model.safe_text import shown
from controller.model.spec import Spec, Threshold
from controller.observe.resources import ResourceSampler
from controller.specfile.load import load_spec
from controller.state.store import EventRow, StoreError
from controller.views.ratelimits import rate_limit_line
from controller.views.snapshot import recent_events, take
from controller.views.status import PHASE_STYLE, StatusModel, TaskView, build_status, by_urgency
from controller.views.summary import Bar, build_summary
from controller.views.text import ago, pct
from controller.views.timeline import cells, lane_order, outcome_style

HISTORY = 600  # samples kept per resource (10 minutes at the default interval)
EVENTS = 20  # newest events read per frame (more than any terminal shows)
TIMELINE_MAX_S = 3600.0  # the timeline shows at most the last hour
SPARK = "▁▂▃▄▅▆▇█"
BAND_STYLES = ("green", "yellow", "dark_orange", "red")


@dataclass
class Frame:
    """What one dashboard frame shows; built by `Dashboard.refresh`, drawn by `render`."""

    status: StatusModel
    bars: tuple[Bar, ...]
    window: tuple[float, float]
    events: tuple[EventRow, ...]
    cpu: tuple[float, ...]
    memory: tuple[float, ...]
    cpu_rules: tuple[Threshold, ...]
    memory_rules: tuple[Threshold, ...]
    interval: float
    notes: tuple[str, ...] = field(default_factory=tuple)


class Dashboard:
    """Holds what must live across frames: the last valid spec, histories, the sampler."""

    def __init__(
        self,
        spec_file: Path,
        spec: Spec,
        *,
        repo: Path | None = None,
        interval: float = 1.0,
        sampler: ResourceSampler | None = None,
    ) -> None:
        self.spec_file, self.repo, self.spec, self.interval = spec_file, repo, spec, interval
        self.sampler = sampler
        self.cpu: deque[float] = deque(maxlen=HISTORY)
        self.memory: deque[float] = deque(maxlen=HISTORY)
        self.last: Frame | None = None

    def reload(self) -> str | None:
        try:
            self.spec = load_spec(self.spec_file, repo=self.repo)
        except SpecError as exc:
            return f"spec invalid ({exc.problems[0]}); showing the last valid one"
        except OSError as exc:
            return f"cannot read the spec: {exc}; showing the last valid one"
        return None

    def refresh(self, now: float | None = None) -> Frame:
        """Read the world afresh. A failed read keeps the previous frame, with a note."""
        note = self.reload()
        try:
            snap = take(self.spec, sampler=self.sampler, now=now)
            events = recent_events(self.spec, EVENTS)
        except (GitError, StoreError, sqlite3.Error, OSError) as exc:
            if self.last is None:
                raise
            self.last.notes = (f"read failed: {exc}",)
            return self.last
        status = build_status(snap)
        res = snap.observed.resources
        self.cpu.append(res.cpu_percent)
        self.memory.append(res.memory_percent)
        in_spec = {t.id for t in self.spec.backlog}
        starts = [
            a.started_at
            for t, rows in snap.attempts.items()
            if t in in_spec
            for a in rows
            if a.started_at is not None
        ]
        start = max(min(starts, default=snap.now), snap.now - TIMELINE_MAX_S)
        span = max(snap.now - start, 10.0)
        summary = build_summary(
            self.spec,
            {t: r for t, r in snap.attempts.items() if t in in_spec},
            snap.plan.phases,
            hours=span / 3600.0,
            now=snap.now,
        )
        self.last = Frame(
            status=status,
            bars=summary.bars,
            window=(snap.now - span, snap.now),
            events=tuple(events),
            cpu=tuple(self.cpu),
            memory=tuple(self.memory),
            cpu_rules=tuple(self.spec.resources.cpu),
            memory_rules=tuple(self.spec.resources.memory),
            interval=self.interval,
            notes=(note,) if note else (),
        )
        return self.last


# --- drawing (pure) -----------------------------------------------------------------------


def band(rules: Sequence[Threshold], value: float) -> int:
    """Index of the threshold rule `value` falls under (the one admission applies)."""
    for i, rule in enumerate(rules):
        if rule.below is None or value < rule.below:
            return i
    return len(rules) - 1


def band_style(rules: Sequence[Threshold], i: int) -> str:
    """Green for the most permissive rule, red for the strictest."""
    if len(rules) <= 1:
        return BAND_STYLES[0]
    scaled = round(i * (len(BAND_STYLES) - 1) / (len(rules) - 1))
    return BAND_STYLES[scaled]


def sparkline(values: Sequence[float], rules: Sequence[Threshold], width: int) -> Text:
    """The last `width` values (0-100) as block characters coloured by threshold band."""
    text = Text()
    shown = list(values)[-width:] if width > 0 else []
    text.append(" " * (width - len(shown)))
    for v in shown:
        level = min(len(SPARK) - 1, max(0, int(v / 100.0 * len(SPARK))))
        text.append(SPARK[level], style=band_style(rules, band(rules, v)))
    return text


def resource_line(
    name: str, values: Sequence[float], rules: Sequence[Threshold], limit: int, width: int
) -> Text:
    current = values[-1] if values else 0.0
    legend = Text()
    for i, rule in enumerate(rules):
        label = (
            f"<{rule.below:g}:{rule.parallel}" if rule.below is not None else f"≥:{rule.parallel}"
        )
        legend.append(("" if i == 0 else " ") + label, style=band_style(rules, i))
    tail = Text(f" {current:3.0f}% → {limit}  ")
    tail.append_text(legend)
    spark_w = max(4, width - 5 - len(tail.plain))
    line = Text(f"{name:<4} ", style="bold")
    line.append_text(sparkline(values, rules, spark_w))
    line.append_text(tail)
    return line


def progress_bar(p: float | None, width: int) -> Text:
    if p is None:
        return Text("·" * width + "     ", style="dim")
    full = p / 100.0 * width
    n = int(full)
    text = Text("█" * n, style="cyan")
    if n < width:
        text.append("▌" if full - n >= 0.5 else " ", style="cyan")
        text.append("░" * (width - n - 1), style="dim")
    text.append(f" {p:3.0f}%")
    return text


def _cell(value: str, width: int) -> str:
    return value[:width].ljust(width) if len(value) <= width else value[: width - 1] + "…"


def task_line(v: TaskView, width: int) -> Text:
    line = Text(_cell(v.task, 14) + " ")
    line.append(_cell(v.phase, 10), style=PHASE_STYLE.get(v.phase, ""))
    att = f"{v.attempt}/{v.max_attempts}" if v.attempt else "-"
    line.append(" " + _cell(att, 5) + " ")
    line.append_text(progress_bar(v.progress, 7))
    elapsed = format_duration(v.elapsed_s) if v.elapsed_s is not None else "-"
    eta = "-"
    if v.eta.seconds is not None:
        eta = ("~" if v.eta.basis == "history" else "") + format_duration(v.eta.seconds)
    cost = format_usd(v.cost_usd) if v.cost_usd else "-"
    line.append(f" {_cell(elapsed, 6)} {_cell(eta, 6)} {_cell(cost, 7)} ")
    line.append(shown(doing(v) or v.reason), style="dim")
    return line


def doing(v: TaskView) -> str:
    """What a running agent reported doing (`turn 3: Edit src/x.py`), else ""."""
    if v.phase != "running" or (v.turns is None and v.last_action is None):
        return ""
    turn = f"turn {v.turns}" if v.turns is not None else ""
    return ": ".join(part for part in (turn, v.last_action or "") if part)


def timeline_lines(frame: Frame, width: int, rows: int) -> list[Text]:
    if rows <= 0:
        return []
    start, end = frame.window
    label_w = 14
    cols = max(4, width - label_w - 1)
    grid = cells(frame.bars, start, end, cols)
    lanes = lane_order(frame.bars)
    if len(lanes) > rows:  # keep the most recently active lanes, in start order
        last_end = {t: max(b.end for b in frame.bars if b.task == t) for t in lanes}
        keep = set(sorted(lanes, key=lambda t: last_end[t])[-rows:])
        lanes = [t for t in lanes if t in keep]
    out = []
    for task in lanes:
        line = Text(_cell(task, label_w) + " ")
        for outcome in grid[task]:
            line.append("█" if outcome else " ", style=outcome_style(outcome) if outcome else "")
        out.append(line)
    left = f"-{format_duration(end - start)}"
    axis = Text(" " * (label_w + 1) + left, style="dim")
    axis.append("─" * max(0, cols - len(left) - 3) + "now", style="dim")
    return [*out, axis]


def header_lines(frame: Frame) -> list[Text]:
    m = frame.status
    c = m.controller
    # each styled span carries its own trailing space: SVG screenshots drop leading ones
    line1 = Text("orchestrator ", style="bold")
    if c.running:
        line1.append("● running ", style="green")
        line1.append(f"pid {c.pid} · pass {ago(m.now, c.last_pass)} ")
    else:
        line1.append("○ controller: not running ", style="red")
    if c.generation:
        current = " (current)" if m.generation_current else f" (file: {m.generation})"
        line1.append(f"· gen {c.generation}{current}")
    p = m.parallelism
    a = m.admission
    line2 = Text(f"slots {m.running}/{a['limit']} ({a['bound_by']}) · ")
    line2.append(f"speedup {p.speedup:.2f}x ", style="bold")
    line2.append(
        f"· eff {pct(p.efficiency(m.limit))} · 2+ agents {pct(p.parallelization_rate)}"
        f" · saved {format_duration(p.time_saved_s)}"
    )
    counts = " ".join(f"{n} {phase}" for phase, n in m.counts.items())
    line3 = Text(counts or "no tasks in the spec", style="dim")
    if m.costs.reported or m.costs.budgets:
        per = m.costs.per_merged_task_usd
        line3.append(f" · cost {format_usd(m.costs.total_usd)}", style="bold")
        line3.append(f" ({format_usd(per)}/merged)" if per is not None else "")
        agents = ", ".join(f"{a} {format_usd(c)}" for a, c in sorted(m.costs.by_agent.items()))
        line3.append(f" · {agents}" if agents else "")
        spent = [b["scope"] for b in m.costs.budgets if b["exhausted"]]
        if spent:
            line3.append(f" · budget spent: {', '.join(spent)}", style="yellow")
    limited = rate_limit_line(m.rate_limits)
    if limited:
        line2.append(f" · {limited}", style="yellow")
    return [line1, line2, line3]


def event_text(e: EventRow) -> Text:
    stamp = time.strftime("%H:%M:%S", time.localtime(e.ts))
    line = Text(f"{stamp} ")
    line.append(f"{e.kind:<9}", style="bold")
    line.append(f" {shown(e.task or '-'):<12} {shown(e.message)}")
    return line


def budgets(height: int, tasks: int, lanes: int, events: int) -> tuple[int, int, int]:
    """Rows for tasks, timeline lanes and events within `height` (10 lines are fixed)."""
    free = max(0, height - 10)
    e = min(events, max(1, free // 5))
    rest = free - e
    t = min(tasks, max(1, math.ceil(rest / 2)))
    g = min(lanes, rest - t)
    t = min(tasks, rest - g)  # give what the timeline does not need back to the tasks
    return max(0, t), max(0, g), e


def render(frame: Frame, width: int, height: int) -> Text:
    """One frame, exactly within `width` x `height`."""
    m = frame.status
    views = by_urgency(m.tasks)
    lanes = len(lane_order(frame.bars))
    n_tasks, n_lanes, n_events = budgets(height, len(views), lanes, len(frame.events))
    a = m.admission
    lines: list[Text] = header_lines(frame)
    lines.append(resource_line("cpu", frame.cpu, frame.cpu_rules, a["cpu_limit"], width))
    lines.append(resource_line("mem", frame.memory, frame.memory_rules, a["memory_limit"], width))
    head = (
        f"{'TASK':<14} {'PHASE':<10} {'ATT':<5} {'PROGRESS':<12} {'TIME':<6} {'ETA':<6} "
        f"{'COST':<7} WHY"
    )
    lines.append(Text(head, style="bold reverse"))
    shown = views[:n_tasks]
    lines += [task_line(v, width) for v in shown]
    if len(views) > len(shown):
        hidden: dict[str, int] = {}
        for v in views[len(shown) :]:
            hidden[v.phase] = hidden.get(v.phase, 0) + 1
        more = ", ".join(f"{n} {p}" for p, n in hidden.items())
        lines[-1] = Text(f"… {len(views) - len(shown)} more: {more}", style="dim")
    lines.append(Text("timeline (attempts by outcome)", style="bold reverse"))
    lines += timeline_lines(frame, width, n_lanes)
    lines.append(Text("recent events", style="bold reverse"))
    lines += [event_text(e) for e in frame.events[-n_events:]] if n_events else []
    footer = Text(f"q quit · every {frame.interval:g}s · {time.strftime('%H:%M:%S')}", style="dim")
    for note in frame.notes:
        footer.append(f" · {shown(note)}", style="yellow")
    lines.append(footer)
    lines = lines[: max(1, height)]
    for line in lines:
        line.no_wrap = True
        line.overflow = "ellipsis"
        line.truncate(width, overflow="ellipsis")
    return Text("\n").join(lines)
