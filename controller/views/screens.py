"""The dashboard's interactive screens, k9s-style: which task is selected, the log of the
selected task, the help. Pure: a state and some lines in, rich `Text` out, within a given
width and height (like `dashboard.render`).

Keys (read by `live`): arrows or j/k select a task, `l` (or Enter) opens its log, `v` its
verify log, `r` retries it, `s` stops it, `?` shows the help, Esc (or `q` in a log or the
help) goes back, `q` quits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from rich.text import Text

from controller.model.safe_text import shown

HELP = (
    ("↑ ↓  j k", "select a task"),
    ("l  Enter", "its log (what its agent printed), followed live"),
    ("v", "the verify log of its merge"),
    ("r", "retry it: a fresh budget of attempts (failed, rejected, stopped tasks)"),
    ("s", "stop its agent (work snapshotted) and hold it until a retry"),
    ("Esc", "back to the tasks"),
    ("?", "this help"),
    ("q", "quit (the controller and its agents go on)"),
)
FOOTER_KEYS = "↑↓ select · l log · r retry · s stop · ? help · q quit"


@dataclass
class Ui:
    """What the person is looking at: the screen, the selected task, the last message."""

    screen: str = "tasks"  # tasks | log | help
    selected: str | None = None
    verify: bool = False  # the log screen shows the verify log
    message: str = ""  # the outcome of the last action, shown in the footer

    def move(self, order: list[str], step: int) -> None:
        """Select the task `step` rows away in the displayed `order` (clamped)."""
        if not order:
            self.selected = None
            return
        i = order.index(self.selected) if self.selected in order else 0
        self.selected = order[max(0, min(len(order) - 1, i + step))]

    def keep_valid(self, order: list[str]) -> None:
        """The selection stays on its task while it is listed; else the first one."""
        if self.selected not in order:
            self.selected = order[0] if order else None


def window(count: int, rows: int, selected: int | None) -> tuple[int, int]:
    """The slice [start, end) of `count` rows shown in `rows` lines, keeping `selected` in."""
    if count <= rows or selected is None or selected < rows:
        return 0, min(count, rows)
    start = selected - rows + 1
    return start, start + rows


def help_screen(width: int, height: int) -> Text:
    lines = [Text(_pad("orchestrator dashboard: keys", width), style="bold reverse")]
    for keys, what in HELP:
        line = Text(f"  {keys:<10}", style="bold")
        line.append(what)
        lines.append(line)
    lines.append(Text(""))
    lines.append(Text("Esc, q or ? goes back", style="dim"))
    return fit(lines, width, height)


def log_screen(title: str, lines: list[str], note: str, width: int, height: int) -> Text:
    """The last lines of a log that fit under a title, with the keys in the footer."""
    body = max(0, height - 2)
    head = Text(_pad(shown(title), width), style="bold reverse")
    shown_lines = [Text(shown(line)) for line in lines[-body:]] if body else []
    shown_lines += [Text("")] * (body - len(shown_lines))
    footer = Text("Esc back · v verify log · l agent log · r retry · s stop · q quit", style="dim")
    if note:
        footer.append(f" · {shown(note)}", style="yellow")
    return fit([head, *shown_lines, footer], width, height)


def footer(interval: float, clock: str, message: str, notes: tuple[str, ...]) -> Text:
    """The last line: an action's outcome and notes first (a narrow terminal cuts the end
    of the line), then the keys, the refresh interval and the time."""
    text = Text()
    for note in (message, *notes):
        if note:
            text.append(f"{shown(note)} · ", style="yellow")
    text.append(f"{FOOTER_KEYS} · every {interval:g}s · {clock}", style="dim")
    return text


def _pad(text: str, width: int) -> str:
    return text[:width].ljust(width)


def fit(lines: list[Any], width: int, height: int) -> Text:
    """`lines` cut to `height` lines of at most `width` cells each (an ellipsis where cut)."""
    lines = lines[: max(1, height)]
    for line in lines:
        line.no_wrap = True
        line.overflow = "ellipsis"
        line.truncate(width, overflow="ellipsis")
    return Text("\n").join(lines)
