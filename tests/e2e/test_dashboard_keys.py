"""The dashboard's keys in a real terminal (tmux), against a real controller: `s` stops the
selected task's agent, `l` opens the selected task's log, `r` retries it and it merges.

tmux draws what the dashboard sends into a screen of its own and lets the test read it
(`capture-pane`, with `-e` for the reverse video of the selected row) and type into it
(`send-keys`). It runs on a private server socket, so a person's own tmux is never touched.
Without tmux the test fails, saying how to install it (`.ci/run` does).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tests.support.project import (
    Project,
    fake_agents_running,
    kill_fake_agents,
    stop_process,
    task,
    wait_until,
)

SELECTED = re.compile(r"^\x1b\[(?:[0-9;]*;)?7(?:;[0-9;]*)?m")
SGR = re.compile(r"\x1b\[[0-9;]*m")


class Tmux:
    """One tmux server of our own, with the dashboard in its one window."""

    def __init__(self, socket: str, env: dict[str, str]) -> None:
        self.socket, self.env = socket, env

    def __call__(self, *args: str) -> str:
        done = subprocess.run(
            ["tmux", "-L", self.socket, *args],
            capture_output=True,
            text=True,
            env=self.env,
            timeout=20,
        )
        return done.stdout

    def screen(self, escapes: bool = False) -> list[str]:
        return self("capture-pane", "-p", "-t", "dash", *(["-e"] if escapes else [])).splitlines()

    def shows(self, text: str) -> bool:
        return any(text in line for line in self.screen())

    def keys(self, *keys: str) -> None:
        self("send-keys", "-t", "dash", *keys)

    def rows(self) -> tuple[list[str], int | None]:
        """The task rows (task ids, in order) and which one is selected."""
        lines = self.screen(escapes=True)
        plain = [SGR.sub("", line) for line in lines]
        head = next(i for i, line in enumerate(plain) if line.startswith("TASK "))
        end = next(i for i, line in enumerate(plain) if line.startswith("timeline"))
        ids = [plain[i].split(" ", 1)[0] for i in range(head + 1, end)]
        chosen = next(
            (i - head - 1 for i in range(head + 1, end) if SELECTED.match(lines[i])), None
        )
        return ids, chosen

    def select(self, task_id: str) -> None:
        for _ in range(20):
            ids, chosen = self.rows()
            if chosen is not None and ids[chosen] == task_id:
                return
            if task_id in ids and chosen is not None:
                self.keys("j" if ids.index(task_id) > chosen else "k")
            time.sleep(0.4)
        pytest.fail(f"could not select {task_id}: rows {self.rows()}")


def phases(p: Project) -> dict[str, str]:
    done = p.cli("status", "-o", "json")
    return {t["task"]: t["phase"] for t in json.loads(done.stdout)["tasks"]}


@pytest.mark.timeout(120)
def test_dashboard_keys_stop_log_retry_in_tmux(tmp_path: Path) -> None:
    if shutil.which("tmux") is None:
        pytest.fail("tmux is needed for this test: apt-get install tmux (.ci/run installs it)")
    p = Project(
        tmp_path,
        retries=0,
        backlog=[task("flaky", "fail-until 2 1"), task("hang", "sleep 60")],
    )
    proc = p.watch()
    tmux = Tmux(f"orchestrator-test-{tmp_path.name}", p.env())
    try:
        assert wait_until(
            lambda: phases(p) == {"flaky": "failed", "hang": "running"}, timeout=30
        ), stop_process(proc)
        argv = [sys.executable, "-m", "controller", "dashboard", "-f", str(p.spec_file)]
        command = " ".join([*argv, "--interval", "0.3"])
        tmux("new-session", "-d", "-s", "dash", "-x", "120", "-y", "40", "-c", str(p.tmp), command)
        assert wait_until(lambda: tmux.shows("↑↓ select"), timeout=20), tmux.screen()

        # s: the selected task's agent is stopped, and the task held
        tmux.select("hang")
        tmux.keys("s")
        assert wait_until(lambda: phases(p).get("hang") == "stopped", timeout=20)
        assert wait_until(lambda: "hang" not in fake_agents_running(p.tmp), timeout=10)
        assert wait_until(lambda: tmux.shows("hang: stop requested"), timeout=15), tmux.screen()

        # l: the selected task's log, what its agent printed; Esc goes back
        tmux.select("flaky")
        tmux.keys("l")
        assert wait_until(lambda: tmux.shows("log of flaky attempt 1"), timeout=10)
        assert tmux.shows("failing attempt 1"), tmux.screen()
        tmux.keys("Escape")
        assert wait_until(lambda: tmux.shows("↑↓ select"), timeout=15)

        # r: the selected task gets a fresh budget, and this time it merges
        tmux.select("flaky")
        tmux.keys("r")
        assert wait_until(lambda: "flaky" in p.merges(), timeout=30), tmux.screen()
        assert wait_until(lambda: tmux.shows("flaky: retry requested"), timeout=15)
        tmux.keys("q")
        assert wait_until(lambda: "dash" not in tmux("list-sessions"), timeout=10)
    finally:
        tmux("kill-server")
        stop_process(proc)
        kill_fake_agents(p.tmp)
