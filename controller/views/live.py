"""The dashboard's live loop: redraw every interval on the alternate screen, and act on keys.

Keys are read without blocking: stdin goes to cbreak mode only when it is a terminal and is
polled with `select`; a key redraws at once. The screens (`screens`): the tasks (arrows or
j/k select one), the selected task's log (`l`, or `v` for its verify log, re-read every
interval, so it follows the attempt), the help (`?`). `r` and `s` give the orders `retry`
and `stop --task` about the selected task through `act`, which the command line provides
(ordering is not a view's business); its answer shows in the footer. `q` or Ctrl-C quits.
"""

from __future__ import annotations

import os
import select
import sys
import time
from collections.abc import Callable
from types import TracebackType
from typing import IO

from rich.console import Console
from rich.live import Live
from rich.text import Text

from controller.state import files
from controller.state.paths import StatePaths
from controller.views.dashboard import Dashboard, Frame, render
from controller.views.logs import LogRef, log_ref, tail_lines
from controller.views.screens import Ui, help_screen, log_screen
from controller.views.status import by_urgency

# (order kind, task) -> what happened, one line
Act = Callable[[str, str], str]
_SEQUENCES = {"\x1b[A": "up", "\x1b[B": "down", "\x1bOA": "up", "\x1bOB": "down"}
_NAMED = {"\r": "enter", "\n": "enter", "\x1b": "esc", "k": "up", "j": "down"}


def parse_keys(data: str) -> list[str]:
    """Key names in what the terminal sent: arrows, Esc, Enter, else the character."""
    keys, i = [], 0
    while i < len(data):
        seq = next((s for s in _SEQUENCES if data.startswith(s, i)), None)
        if seq is not None:
            keys.append(_SEQUENCES[seq])
            i += len(seq)
            continue
        if data[i] == "\x1b" and data[i + 1 : i + 2] == "[":  # another escape sequence
            end = i + 2
            while end < len(data) and not data[end].isalpha() and data[end] != "~":
                end += 1
            i = end + 1
            continue
        keys.append(_NAMED.get(data[i], data[i]))
        i += 1
    return keys


class Keys:
    """Non-blocking single keys: cbreak mode and `select`, only when stdin is a terminal."""

    def __init__(self, stream: IO[str] | None = None) -> None:
        self.stream = stream if stream is not None else sys.stdin
        self.fd: int | None = None
        self.saved: list[object] | None = None

    def __enter__(self) -> Keys:
        try:
            fd = self.stream.fileno()
        except (AttributeError, OSError, ValueError):
            return self
        if os.isatty(fd):
            import termios
            import tty

            self.fd = fd
            self.saved = termios.tcgetattr(fd)
            tty.setcbreak(fd)
        return self

    def __exit__(
        self, t: type[BaseException] | None, e: BaseException | None, tb: TracebackType | None
    ) -> None:
        if self.fd is not None and self.saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self.saved)

    def read(self, timeout: float) -> list[str]:
        """The keys pressed within `timeout` s (returns at the first ones; [] on timeout)."""
        if self.fd is None:
            time.sleep(max(0.0, timeout))
            return []
        ready, _, _ = select.select([self.fd], [], [], max(0.0, timeout))
        if not ready:
            return []
        return parse_keys(os.read(self.fd, 64).decode(errors="ignore"))

    def wait_for_quit(self, timeout: float) -> bool:
        """Wait up to `timeout` s; True when `q` was pressed."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if "q" in [k.lower() for k in self.read(left)]:
                return True
        return False


class Screen:
    """The interactive dashboard: what is shown, and what each key does."""

    def __init__(self, dash: Dashboard, act: Act | None) -> None:
        self.dash, self.act, self.ui = dash, act, Ui()
        self.frame: Frame | None = None

    def order(self) -> list[str]:
        return [v.task for v in by_urgency(self.frame.status.tasks)] if self.frame else []

    def refresh(self) -> None:
        self.frame = self.dash.refresh()
        self.ui.keep_valid(self.order())

    def draw(self, width: int, height: int) -> Text:
        assert self.frame is not None
        if self.ui.screen == "help":
            return help_screen(width, height)
        if self.ui.screen == "log" and self.ui.selected:
            title, lines = self.log(height)
            return log_screen(title, lines, self.ui.message, width, height)
        return render(self.frame, width, height, self.ui)

    def log(self, height: int) -> tuple[str, list[str]]:
        task = self.ui.selected or ""
        ref = log_ref(self.dash.spec, task, None, self.ui.verify)
        if not isinstance(ref, LogRef):
            return f"{task}: no log", [ref]
        root = StatePaths(self.dash.spec.state_path).root
        try:
            return ref.what, tail_lines(root, ref.path, max(1, height - 2))
        except FileNotFoundError:
            return ref.what, ["(no such log yet)"]
        except (files.UnsafeFile, OSError) as exc:
            return ref.what, [f"(not read: {exc})"]

    def key(self, key: str) -> bool:
        """Handle one key; False when it quits. Sets `ui.message` for an action's outcome."""
        ui = self.ui
        if key in ("q", "Q"):
            if ui.screen == "tasks":
                return False
            ui.screen = "tasks"
        elif key == "esc" or (key == "?" and ui.screen == "help"):
            ui.screen = "tasks"
        elif key == "?":
            ui.screen = "help"
        elif key in ("up", "down") and ui.screen == "tasks":
            ui.move(self.order(), -1 if key == "up" else 1)
        elif key in ("l", "enter", "v") and ui.selected:
            ui.screen, ui.verify = "log", key == "v"
        elif key in ("r", "s") and ui.selected:
            kind = "retry" if key == "r" else "stop"
            ui.message = self.act(kind, ui.selected) if self.act else "read-only dashboard"
            self.refresh()
        return True


def run_live(dash: Dashboard, console: Console, keys: Keys, act: Act | None = None) -> None:
    """Redraw every `dash.interval` seconds, and at each key, until `q` or Ctrl-C."""
    screen = Screen(dash, act)
    with (
        keys,
        Live(
            console=console,
            screen=True,
            auto_refresh=False,
            redirect_stdout=False,
            redirect_stderr=False,
        ) as live,
    ):
        screen.refresh()
        due = time.monotonic() + dash.interval
        while True:
            width, height = console.size
            live.update(screen.draw(width, height), refresh=True)
            pressed = keys.read(due - time.monotonic())
            for key in pressed:
                if not screen.key(key):
                    return
            if time.monotonic() >= due:
                screen.refresh()
                due = time.monotonic() + dash.interval
