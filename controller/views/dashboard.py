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
from controller.views.screens import Ui, fit, footer, window
from controller.views.snapshot import recent_events, take
from controller.views.sparklines import resource_line
from controller.views.status import PHASE_STYLE, StatusModel, TaskView, build_status, by_urgency
from controller.views.summary import Bar, build_summary
from controller.views.text import ago, pct, reason_cell
from controller.views.timeline import cells, lane_order, outcome_style

HISTORY = 600  # samples kept per resource (10 minutes at the default interval)
EVENTS = 20  # newest events read per frame (more than any terminal shows)
TIMELINE_MAX_S = 3600.0  # the timeline shows at most the last hour


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
    disk: tuple[float, ...] = ()  # percent used of the repository's filesystem
    disk_rules: tuple[Threshold, ...] = ()  # empty: no disk rule in the spec


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
        self.disk: deque[float] = deque(maxlen=HISTORY)
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
        if res.disk_percent is not None:
            self.disk.append(res.disk_percent)
        in_spec = {t.id for t in snap.spec.backlog}
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
            snap.spec,
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
            disk=tuple(self.disk),
            disk_rules=tuple(self.spec.resources.disk or ()),
        )
        return self.last


# --- drawing (pure) -----------------------------------------------------------------------


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


def task_line(v: TaskView) -> Text:
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
    line.append(shown(doing(v) or reason_cell(v)), style="dim")
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
    elif c.elsewhere is not None:
        other = c.elsewhere
        line1.append("○ not on this spec: ", style="yellow")
        line1.append(f"pid {other.pid} runs {shown(other.spec_file or '?')} ")
    else:
        line1.append("○ controller: not running ", style="red")
    if c.generation:
        current = " (current)" if m.generation_current else f" (file: {m.generation})"
        line1.append(f"· gen {c.generation}{current}")
    p = m.parallelism
    a = m.admission
    line2 = Text(f"slots {m.running}/{a['limit']} ({a['bound_by']}) · ")
    line2.append(f"parallelism {p.speedup:.2f}x ", style="bold")
    line2.append(
        f"· eff {pct(p.efficiency(m.limit))} · 2+ agents {pct(p.parallelization_rate)}"
        f" · overlap {format_duration(p.time_saved_s)}"
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
    """Rows for tasks, timeline lanes and events within `height` (11 lines are fixed)."""
    free = max(0, height - 11)
    e = min(events, max(1, free // 5))
    rest = free - e
    t = min(tasks, max(1, math.ceil(rest / 2)))
    g = min(lanes, rest - t)
    t = min(tasks, rest - g)  # give what the timeline does not need back to the tasks
    return max(0, t), max(0, g), e


def task_rows(views: list[TaskView], rows: int, selected: str | None) -> list[Text]:
    """The task lines that fit in `rows`, scrolled to keep the selected task in view (shown
    reversed); the tasks left out are counted on the last line."""
    if len(views) <= rows:
        shown_views, hidden = views, []
    else:
        keep = max(1, rows - 1)  # one line says what is left out
        index = next((i for i, v in enumerate(views) if v.task == selected), None)
        start, end = window(len(views), keep, index)
        shown_views, hidden = views[start:end], views[:start] + views[end:]
    lines = []
    for v in shown_views:
        line = task_line(v)
        if v.task == selected:
            line.stylize("reverse")
        lines.append(line)
    if hidden:
        counts: dict[str, int] = {}
        for v in hidden:
            counts[v.phase] = counts.get(v.phase, 0) + 1
        more = ", ".join(f"{n} {p}" for p, n in counts.items())
        lines.append(Text(f"… {len(hidden)} more: {more}", style="dim"))
    return lines[: max(0, rows)]


def render(frame: Frame, width: int, height: int, ui: Ui | None = None) -> Text:
    """One frame, exactly within `width` x `height` (`ui`: the selection and the message of
    the interactive dashboard)."""
    m = frame.status
    views = by_urgency(m.tasks)
    lanes = len(lane_order(frame.bars))
    n_tasks, n_lanes, n_events = budgets(height, len(views), lanes, len(frame.events))
    a = m.admission
    lines: list[Text] = header_lines(frame)
    lines.append(resource_line("cpu", frame.cpu, frame.cpu_rules, a["cpu_limit"], width))
    lines.append(resource_line("mem", frame.memory, frame.memory_rules, a["memory_limit"], width))
    disk_limit = a.get("disk_limit")
    lines.append(resource_line("disk", frame.disk, frame.disk_rules, disk_limit, width))
    head = (
        f"{'TASK':<14} {'PHASE':<10} {'ATT':<5} {'PROGRESS':<12} {'TIME':<6} {'ETA':<6} "
        f"{'COST':<7} WHY"
    )
    lines.append(Text(head, style="bold reverse"))
    lines += task_rows(views, n_tasks, ui.selected if ui else None)
    lines.append(Text("timeline (attempts by outcome)", style="bold reverse"))
    lines += timeline_lines(frame, width, n_lanes)
    lines.append(Text("recent events", style="bold reverse"))
    lines += [event_text(e) for e in frame.events[-n_events:]] if n_events else []
    clock = time.strftime("%H:%M:%S")
    lines.append(footer(frame.interval, clock, ui.message if ui else "", frame.notes))
    return fit(lines, width, height)
