"""A command on a real pseudo-terminal (80x24 by default), as a person runs it: for the live
dashboard, which draws on the alternate screen and reads keys only from a terminal."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import signal
import struct
import subprocess
import termios
import time
from collections.abc import Sequence
from pathlib import Path


def _controlling_tty() -> None:
    """In the child: a new session whose controlling terminal is the pty on stdin, so that
    Ctrl-C typed into it becomes SIGINT, as in a real terminal."""
    os.setsid()
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


def run_in_pty(
    argv: Sequence[str],
    env: dict[str, str],
    cwd: Path,
    key: bytes,
    *,
    ready: bytes = b"q quit",
    after_s: float = 0.0,
    size: tuple[int, int] = (24, 80),
    timeout: float = 20.0,
) -> tuple[int, bytes]:
    """Run `argv` on a pseudo-terminal; once `ready` has been drawn and `after_s` seconds
    have passed, type `key`. Returns the exit code and everything the terminal received."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))
    env = {**env, "TERM": "xterm-256color"}
    env.pop("COLUMNS", None)
    env.pop("LINES", None)
    proc = subprocess.Popen(
        list(argv),
        stdin=slave,
        stdout=slave,
        stderr=slave,
        cwd=cwd,
        env=env,
        preexec_fn=_controlling_tty,
        close_fds=True,
    )
    os.close(slave)
    out = b""
    deadline = time.monotonic() + timeout
    seen: float | None = None
    sent = False
    try:
        while time.monotonic() < deadline:
            readable, _, _ = select.select([master], [], [], 0.1)
            if readable:
                try:
                    chunk = os.read(master, 65536)
                except OSError:
                    break
                if not chunk:
                    break
                out += chunk
            if seen is None and ready in out:
                seen = time.monotonic()
            if not sent and seen is not None and time.monotonic() - seen >= after_s:
                os.write(master, key)
                sent = True
            if sent and proc.poll() is not None:
                break
        code = proc.wait(timeout=5)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        os.close(master)
    return code, out
