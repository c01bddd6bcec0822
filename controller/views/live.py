"""The dashboard's live loop: redraw every interval on the alternate screen until `q`.

Keys are read without blocking: stdin goes to cbreak mode only when it is a terminal and is
polled with `select`; Ctrl-C exits too. The frames themselves come from `dashboard`.
"""

from __future__ import annotations

import os
import select
import sys
import time
from types import TracebackType
from typing import IO

from rich.console import Console
from rich.live import Live

from controller.views.dashboard import Dashboard, render


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

    def wait_for_quit(self, timeout: float) -> bool:
        """Wait up to `timeout` s; True when `q` was pressed."""
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return False
            if self.fd is None:
                time.sleep(left)
                return False
            ready, _, _ = select.select([self.fd], [], [], left)
            if ready:
                data = os.read(self.fd, 64).decode(errors="ignore")
                if "q" in data.lower():
                    return True


def run_live(dash: Dashboard, console: Console, keys: Keys) -> None:
    """Redraw every `dash.interval` seconds until `q` or Ctrl-C (KeyboardInterrupt)."""
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
        while True:
            frame = dash.refresh()
            width, height = console.size
            live.update(render(frame, width, height), refresh=True)
            if keys.wait_for_quit(dash.interval):
                return
