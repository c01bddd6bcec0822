"""Rendering the status and summary models for people: kubectl-style text and markdown.

A header block of `Key: value` lines, then a table whose columns are padded to their widest
cell (like kubectl's tabwriter; the last column is never cut). Tables are built as plain
strings, not rich `Table`s: rich measures every cell, which costs over a second for a
thousand tasks, while this stays linear and cheap. On a terminal the phase column is
coloured (rich `Text` spans); elsewhere the lines are plain. Every cell and value is made
safe for a terminal first (`model.safe_text.shown`): reasons carry agent-chosen file names.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from typing import TYPE_CHECKING

from controller.model.durations import format_duration
from controller.model.money import format_usd
from controller.model.safe_text import shown
from controller.views.costs import cost_line
from controller.views.foreign import SCAN_LIMIT
from controller.views.ratelimits import rate_limit_line
from controller.views.status import PHASE_STYLE, StatusModel, TaskView

if TYPE_CHECKING:
    from rich.text import Text

    from controller.model.problems import Problem
    from controller.views.summary import Summary, TaskActivity

GAP = "   "


def clock(ts: float | None) -> str:
    return "-" if ts is None else time.strftime("%H:%M:%S", time.localtime(ts))


def ago(now: float, ts: float | None) -> str:
    return "never" if ts is None else f"{format_duration(max(0.0, now - ts))} ago"


def human_bytes(n: int | None) -> str:
    if n is None:
        return "unknown"
    value = float(n)
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} TB"


def span(start: float, end: float) -> str:
    """`2024-05-01 10:00 to 11:00:05` (the end's date only when it differs)."""
    a, b = time.localtime(start), time.localtime(end)
    same = a[:3] == b[:3]
    return (
        f"{time.strftime('%Y-%m-%d %H:%M', a)} to "
        f"{time.strftime('%H:%M:%S' if same else '%Y-%m-%d %H:%M:%S', b)}"
    )


def pct(x: float) -> str:
    return f"{x * 100:.0f}%"


def short_path(path: str | None) -> str:
    """`path` relative to the working directory when it lies under it."""
    if not path:
        return "-"
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return path
    return path if rel.startswith("..") else rel


def table(headers: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    """Aligned columns; the last one is left ragged. Pure strings."""
    if not headers:
        return []
    rows = [[shown(cell) for cell in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in rows:
        for i, cell in enumerate(row[:-1]):
            if len(cell) > widths[i]:
                widths[i] = len(cell)
    lines = []
    for row in [list(headers), *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append(GAP.join([*cells, row[-1]]).rstrip())
    return lines


def header(pairs: Sequence[tuple[str, str]]) -> list[str]:
    width = max(len(k) for k, _ in pairs) + 2
    return [f"{(k + ':').ljust(width)}{shown(v)}" for k, v in pairs]


# --- status -----------------------------------------------------------------------------


def controller_line(m: StatusModel) -> str:
    c = m.controller
    if c.generation is None:
        gen = "no spec generation recorded yet"
    elif m.generation_current:
        gen = f"spec generation {c.generation} (current)"
    else:
        gen = f"spec generation {c.generation} (the file is now {m.generation})"
    if c.running:
        pid = f"pid {c.pid}" if c.pid else "pid unknown"
        since = f", since {clock(c.started_at)}" if c.started_at else ""
        return f"running ({pid}{since}); last pass {ago(m.now, c.last_pass)}; acting on {gen}"
    if c.elsewhere is not None:
        other = c.elsewhere
        pid = f"pid {other.pid}" if other.pid else "pid unknown"
        return (
            f"not running on this spec; another controller ({pid}) runs on this repository "
            f"with spec {short_path(other.spec_file)} (state {short_path(other.state)})"
        )
    if not m.has_store:
        return "not running (no state database yet: nothing has run)"
    last = f"last pid {c.pid}, " if c.pid else ""
    return f"not running ({last}last pass {ago(m.now, c.last_pass)}); last acted on {gen}"


def disk_text(m: StatusModel) -> str:
    """`disk 42% used (allows 4), 12.3 GB free`; `(no rule)` when the spec sets none."""
    a = m.admission
    used = "unknown" if m.disk_percent is None else f"{m.disk_percent:.0f}% used"
    if not m.disk_rule:
        allows = " (no rule)"
    elif a.get("disk_limit") is None:
        allows = " (rule not applied: use unknown)"
    else:
        allows = f" (allows {a['disk_limit']})"
    return f"disk {used}{allows}, {human_bytes(m.disk_free_bytes)} free"


def resources_line(m: StatusModel) -> str:
    a = m.admission
    return (
        f"cpu {m.cpu_percent:.0f}% (allows {a['cpu_limit']}), memory {m.memory_percent:.0f}% "
        f"(allows {a['memory_limit']}), {disk_text(m)}; "
        f"admission limit {a['limit']} ({a['bound_by']}); {m.running} running"
    )


def speedup_line(
    p_speedup: float, work: float, busy: float, rate: float, saved: float, eff: float, limit: int
) -> str:
    if busy <= 0:
        return "no attempt has run yet"
    return (
        f"{p_speedup:.2f}x agent time / busy time ({format_duration(work)} of agent time, "
        f"failed attempts included, in {format_duration(busy)} with an agent running; "
        f"2+ agents {pct(rate)} of that time; {format_duration(saved)} of it overlapped; "
        f"efficiency {pct(eff)} of maxParallel {limit})"
    )


def eta_cell(v: TaskView) -> str:
    if v.eta.seconds is None:
        return "-"
    label = {"progress": "rate", "history": "median"}.get(v.eta.basis, v.eta.basis)
    prefix = "~" if v.eta.basis == "history" else ""
    return f"{prefix}{format_duration(v.eta.seconds)} ({label})"


def task_row(v: TaskView, wide: bool) -> list[str]:
    row = [
        v.task,
        v.phase,
        f"{v.attempt}/{v.max_attempts}" if v.attempt else f"-/{v.max_attempts}",
        v.agent or "-",
        str(v.pid) if v.pid else "-",
        format_duration(v.elapsed_s) if v.elapsed_s is not None else "-",
        f"{v.progress:.0f}%" if v.progress is not None else "-",
        eta_cell(v),
        format_usd(v.cost_usd) if v.cost_usd else "-",
    ]
    if wide:
        row += [short_path(v.worktree), v.branch or "-"]
    return [*row, reason_cell(v)]


def reason_cell(v: TaskView) -> str:
    """The reason, marked for a generated task: `[spec of us-001] ...`."""
    if v.generated_for is None:
        return v.reason
    return f"[spec of {v.generated_for}] {v.reason}".rstrip()


def foreign_lines(m: StatusModel) -> list[str]:
    """The commits on the integration branch that bypassed the controller, if any."""
    f = m.foreign
    if not f.commits:
        return []
    n = len(f.commits)
    scope = f" (of the newest {SCAN_LIMIT})" if f.truncated else ""
    lines = [
        "",
        f"Unattributed commits on {m.integration_branch}{scope}: {n} not merged by the "
        "controller and not made by a known person (your git identity or trustedAuthors):",
    ]
    for c in f.commits:
        who = f"author {c.author_name} <{c.author_email}>"
        if c.committer_email != c.author_email:
            who += f", committer {c.committer_name} <{c.committer_email}>"
        lines.append(shown(f"  {c.sha[:12]}  {c.subject}  ({who})"))
    return lines


def status_lines(m: StatusModel, *, wide: bool = False) -> list[str]:
    p = m.parallelism
    counts = ", ".join(f"{n} {phase}" for phase, n in m.counts.items()) or "none in the spec"
    pairs = [
        ("Controller", controller_line(m)),
        (
            "Spec",
            f"{short_path(m.spec_file)} (generation {m.generation}), repo "
            f"{short_path(m.repo)}, integration branch {m.integration_branch}",
        ),
        ("Worktrees", f"{short_path(m.worktree_root)}/<task>, branches orchestrator/<task>"),
        ("Settings", ", ".join(s.text() for s in m.settings) or "-"),
        ("Resources", resources_line(m)),
        (
            "Parallelism",
            speedup_line(
                p.speedup,
                p.work_s,
                p.busy_s,
                p.parallelization_rate,
                p.time_saved_s,
                p.efficiency(m.limit),
                m.limit,
            ),
        ),
        ("Tasks", counts),
        ("Cost", cost_line(m.costs)),
    ]
    limited = rate_limit_line(m.rate_limits)
    if limited:
        pairs.append(("Rate limits", limited))
    lines = header(pairs)
    lines += foreign_lines(m)
    if not m.tasks:
        return lines
    heads = ["TASK", "PHASE", "ATTEMPT", "AGENT", "PID", "ELAPSED", "PROGRESS", "ETA", "COST"]
    if wide:
        heads += ["WORKTREE", "BRANCH"]
    heads.append("REASON")
    return [*lines, "", *table(heads, [task_row(v, wide) for v in m.tasks])]


def invalid_spec_banner(m: StatusModel, problems: Sequence[Problem]) -> list[str]:
    """Lines above the status when the spec file is invalid and the view shows the last valid
    spec (`views.fallback`): what is wrong with the file, and what is shown instead."""
    if not problems:
        return []
    n = len(problems)
    who = (
        "the running controller keeps acting on it"
        if m.controller.running
        else "the last one a controller ran on"
    )
    head = (
        f"! {short_path(m.spec_file)} is invalid ({n} problem{'s' if n != 1 else ''}); "
        f"showing the last valid spec (generation {m.generation}): {who}"
    )
    return [shown(head), *(shown(f"!   {p}") for p in problems), ""]


def styled(lines: Sequence[str], m: StatusModel, *, banner: int = 0) -> Text:
    """The status lines with the PHASE column coloured (for terminals), and the first
    `banner` lines (an invalid spec's) in yellow."""
    from rich.text import Text  # only a terminal gets colours: pipes skip loading rich

    text = Text()
    start_row = len(lines) - len(m.tasks)
    # the column starts where its header does: cells are padded to the widest one
    col = lines[start_row - 1].find("PHASE") if m.tasks else -1
    for i, line in enumerate(lines):
        if i:
            text.append("\n")
        if i >= start_row and col >= 0:
            v = m.tasks[i - start_row]
            style = PHASE_STYLE.get(v.phase, "")
            text.append(line[:col])
            text.append(line[col : col + len(v.phase)], style=style)
            text.append(line[col + len(v.phase) :])
        else:
            text.append(line, style="yellow" if i < banner else "")
    return text


# --- activity summary ---------------------------------------------------------------------


def _task_rows(tasks: Sequence[TaskActivity]) -> list[list[str]]:
    return [
        [
            t.task,
            t.agent or "-",
            t.outcome,
            str(t.attempts),
            format_duration(t.duration_s),
            format_usd(t.cost_usd) if t.cost_usd else "-",
        ]
        for t in tasks
    ]


def summary_figures(s: Summary) -> list[tuple[str, str]]:
    p = s.parallelism
    merged = sum(1 for t in s.completed if t.outcome == "merged")
    other = len(s.completed) - merged
    done = f"{len(s.completed)} completed ({merged} merged"
    done += f", {other} not merged)" if other else ")"
    return [
        ("Window", f"last {s.hours:g}h ({span(s.start, s.now)})"),
        ("Tasks", f"{done}, {len(s.active)} active, {len(s.queued)} queued"),
        (
            "Attempts",
            f"{s.attempts} ({sum(s.retries.values())} retries, "
            f"{sum(s.failures.values())} failures)",
        ),
        (
            "Parallelism",
            f"{p.speedup:.2f}x agent time / busy time: {format_duration(p.work_s)} of agent "
            f"time (failed attempts included) in {format_duration(p.busy_s)} wall-clock with "
            "at least one agent running (no sequential run is measured)",
        ),
        ("Efficiency", f"{pct(s.efficiency)} (parallelism / maxParallel {s.limit})"),
        ("Parallel", f"{pct(p.parallelization_rate)} of the busy time had 2+ agents running"),
        ("Overlap", format_duration(p.time_saved_s) + " of agent time ran beside another agent"),
        ("Cost", cost_line(s.costs)),
    ]


def summary_lines(s: Summary) -> list[str]:
    lines = header(summary_figures(s))
    heads = ["TASK", "AGENT", "OUTCOME", "ATTEMPTS", "DURATION", "COST"]
    for title, tasks in (("Completed", s.completed), ("Active", s.active), ("Queued", s.queued)):
        if tasks:
            lines += ["", f"{title}:", *("  " + ln for ln in table(heads, _task_rows(tasks)))]
    for title, counts in (("Failures by reason", s.failures), ("Retries by reason", s.retries)):
        if counts:
            lines += ["", f"{title}:", *(f"  {n:>3}  {shown(r)}" for r, n in counts.items())]
    return lines


def _md_cell(text: str) -> str:
    return shown(text.replace("|", "\\|").replace("\n", " "))


def summary_markdown(s: Summary) -> str:
    out = [f"## Activity summary: last {s.hours:g}h", ""]
    out += ["| Figure | Value |", "|---|---|"]
    out += [f"| {k} | {_md_cell(v)} |" for k, v in summary_figures(s)]
    for title, tasks in (("Completed", s.completed), ("Active", s.active), ("Queued", s.queued)):
        if not tasks:
            continue
        out += ["", f"### {title} ({len(tasks)})", ""]
        out += [
            "| Task | Agent | Outcome | Attempts | Duration | Cost |",
            "|---|---|---|---:|---:|---:|",
        ]
        out += ["| " + " | ".join(_md_cell(c) for c in row) + " |" for row in _task_rows(tasks)]
    for title, counts in (("Failures by reason", s.failures), ("Retries by reason", s.retries)):
        if counts:
            out += ["", f"### {title}", "", "| Count | Reason |", "|---:|---|"]
            out += [f"| {n} | {_md_cell(reason)} |" for reason, n in counts.items()]
    return "\n".join(out) + "\n"
