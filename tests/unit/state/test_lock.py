"""The singleton lock names its holder even when two controllers start at the same moment.

Regression (issue 14): `bench/chaos.py --seed 9173 --quick` reported `two-controllers-at-once`
as 2 injected, 1 handled: the winner takes the lock a moment before it writes its pid into
the lock file, and the loser, reading the file in that moment, could not say who holds it.
"""

from __future__ import annotations

import fcntl
import json
import os
import threading
import time
from pathlib import Path

import pytest

from controller.state.lock import ControllerLock, LockHeld


def test_the_loser_names_a_holder_that_writes_its_pid_a_moment_late(tmp_path: Path) -> None:
    path = tmp_path / "controller.lock"
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # the winner: locked, pid not written

        def write_pid_late() -> None:
            time.sleep(0.3)
            os.write(fd, json.dumps({"pid": 4242, "started_at": time.time()}).encode())

        writer = threading.Thread(target=write_pid_late)
        writer.start()
        with pytest.raises(LockHeld) as caught:
            ControllerLock(path).acquire()
        writer.join()
        assert caught.value.pid == 4242
        assert "PID 4242" in str(caught.value)
    finally:
        os.close(fd)
