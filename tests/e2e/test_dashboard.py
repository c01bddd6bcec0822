"""`orchestrator dashboard` end to end: the view of a real run, the live loop in a pty, `--once`.

Frames are drawn by rich into a recording 80x24 console and read back as text; the live
dashboard runs as a process on an 80x24 pseudo-terminal and quits on `q` and on Ctrl-C;
`dashboard --once` runs as a process and prints one frame that fits.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from rich.cells import cell_len

from controller.specfile.load import load_spec
from controller.views.dashboard import HISTORY, Dashboard
from tests.support.project import Project, stop_process, task, wait_until
from tests.support.terminal import run_in_pty
from tests.support.views import agents_spec, invoke, kill_own_agents, own_agent, screen, started


@pytest.mark.timeout(60)
def test_the_view_follows_a_real_run(tmp_path: Path) -> None:
    agent = own_agent(tmp_path)
    p = Project(
        tmp_path,
        agents=agents_spec(agent, "dev"),
        backlog=[
            task("p", "progress 40\nsleep 2"),
            task("q", "sleep 0.2"),
            task("r", "sleep 0.2", dependsOn=["q"]),
        ],
    )
    dash = Dashboard(p.spec_file, load_spec(p.spec_file), interval=0.5)
    before = "\n".join(screen(dash.refresh()))
    assert "controller: not running" in before
    assert "blocked by q" in before and "no attempt" not in before
    assert not p.state.exists()  # reading never creates the state dir

    proc = p.watch()
    try:
        progress = tmp_path / "state" / "runs" / "p" / "1.progress"
        assert wait_until(lambda: started(p, "p") and progress.exists(), timeout=20)
        during = "\n".join(screen(dash.refresh()))
        assert "● running pid" in during
        assert any(
            ln.startswith("p ") and "running" in ln and "40%" in ln for ln in during.split("\n")
        )
        assert "spawn" in during  # recent events
        assert wait_until(lambda: {"p", "q", "r"} <= set(p.merges()), timeout=30)
        after_lines = screen(dash.refresh())
        after = "\n".join(after_lines)
        assert "3 merged" in after and "speedup" in after
        lanes = [ln for ln in after_lines if ln[:2] in ("p ", "q ", "r ")]
        assert len(lanes) >= 6  # task rows and timeline lanes for all three
        assert any("█" in ln for ln in lanes)
        assert len(dash.cpu) == 3 and dash.cpu.maxlen == HISTORY
    finally:
        stop_process(proc)
        kill_own_agents(agent)


def _run_in_pty(p: Project, key: bytes) -> tuple[int, bytes]:
    """Start the live dashboard on an 80x24 pseudo-terminal, press `key`, collect output."""
    argv = [sys.executable, "-m", "controller", "dashboard", "-f", str(p.spec_file)]
    return run_in_pty([*argv, "--interval", "0.2"], p.env(), p.tmp, key)


@pytest.mark.timeout(60)
def test_live_dashboard_in_a_terminal_quits_on_q_and_ctrl_c(tmp_path: Path) -> None:
    p = Project(tmp_path, backlog=[task("a"), task("b", dependsOn=["a"])])
    code, out = _run_in_pty(p, b"q")
    assert code == 0, out[-2000:]
    assert b"\x1b[?1049h" in out and b"\x1b[?1049l" in out  # alternate screen, restored
    assert b"controller: not running" in out and b"Traceback" not in out
    code, out = _run_in_pty(p, b"\x03")  # Ctrl-C through the terminal's line discipline
    assert code == 0, out[-2000:]
    assert not p.state.exists()


def test_once_and_screenshot_and_bad_interval(tmp_path: Path) -> None:
    p = Project(tmp_path, backlog=[task("a")])
    env = {**p.env(), "COLUMNS": "80", "LINES": "24"}
    result = subprocess.run(
        [sys.executable, "-m", "controller", "dashboard", "--once", "-f", str(p.spec_file)],
        capture_output=True,
        text=True,
        env=env,
        cwd=p.tmp,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.rstrip("\n").split("\n")
    assert len(lines) <= 24 and all(cell_len(ln) <= 80 for ln in lines)
    assert "controller: not running" in result.stdout
    shot = tmp_path / "dash.svg"
    code, out, err = invoke(p, "dashboard", "--svg", str(shot), "--width", "80", "--height", "24")
    assert code == 0, err
    assert shot.read_text().startswith("<svg")
    code, _, err = invoke(p, "dashboard", "--interval", "0")
    assert code == 1 and "--interval must be a positive number" in err
    assert not p.state.exists()
