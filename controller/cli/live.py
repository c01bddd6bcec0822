"""A live task table for long-running commands (`demo`, `reconcile --watch` on a terminal).

On a terminal it redraws a rich table in place while log lines scroll above it; elsewhere
(CI, pipes) it prints the log lines only, so output stays readable in files. Lines and
reasons are made safe for a terminal first (`model.safe_text.shown`).
"""

from __future__ import annotations

from types import TracebackType

from rich.console import Console
from rich.live import Live
from rich.table import Table
from rich.text import Text

from controller.core.plan import Plan
from controller.model.observed import Observed
from controller.model.safe_text import shown

_STYLE = {
    "merged": "green",
    "running": "cyan",
    "starting": "cyan",
    "verifying": "magenta",
    "merging": "magenta",
    "retrying": "yellow",
    "failed": "red",
    "rejected": "red",
    "blocked": "dim",
    "queued": "dim",
}


class LiveTable:
    def __init__(self, console: Console):
        self.console = console
        self.live: Live | None = None
        self.table = Table()

    def __enter__(self) -> LiveTable:
        if self.console.is_terminal:
            self.live = Live(
                self.table, console=self.console, refresh_per_second=8, transient=False
            )
            self.live.__enter__()
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.live is not None:
            self.live.__exit__(t, e, tb)

    def echo(self, line: str) -> None:
        self.console.print(shown(line), markup=False, highlight=False)

    def update(self, plan: Plan, observed: Observed) -> None:
        if self.live is None:
            return
        table = Table(expand=False, title=f"slots {plan.running}/{plan.admission.limit}")
        table.add_column("task")
        table.add_column("phase")
        table.add_column("why / what", overflow="fold")
        reasons = {w.task: w.reason for w in plan.waits}
        reasons.update({a.task: f"{a.kind}: {a.reason}" for a in plan.actions})
        for task, phase in plan.phases.items():
            style = _STYLE.get(phase, "")
            reason = shown(reasons.get(task, ""))
            table.add_row(task, f"[{style}]{phase}[/]" if style else phase, Text(reason))
        self.live.update(table)
