"""Process identity (`state.identity`): one liveness check, and a wall-clock step changes
nothing where the start in clock ticks since boot is known.

A wall-clock step is simulated by moving psutil's boot time (what a step does to it: psutil
computes a create time as boot time + ticks since boot, and the kernel's boot time is
"now" minus the uptime); the real clock is never touched.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import psutil
import pytest

from controller.act.runners.local import LocalRunner
from controller.observe import observe
from controller.observe import procs as observe_procs
from controller.state import identity
from controller.state.paths import StatePaths
from controller.state.store import Store

pytestmark = pytest.mark.timeout(30)
LINUX = sys.platform.startswith("linux")


@pytest.fixture
def sleeper() -> Iterator[subprocess.Popen[bytes]]:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        yield proc
    finally:
        proc.kill()
        proc.wait()


def step_the_clock(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """Make psutil see a boot time `seconds` later, as after a wall-clock step."""
    from psutil import _pslinux

    real = _pslinux.boot_time
    monkeypatch.setattr(_pslinux, "boot_time", lambda: real() + seconds)
    monkeypatch.setattr(psutil, "boot_time", lambda: real() + seconds)


@pytest.mark.skipif(not LINUX, reason="start in clock ticks needs /proc (Linux)")
def test_identity_survives_a_wall_clock_step(
    sleeper: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    me = identity.identify(sleeper.pid)
    assert me.start_id and me.create_time
    step_the_clock(monkeypatch, 7.0)
    # psutil's create time moved with the clock: by it alone the agent would look gone
    assert abs(psutil.Process(sleeper.pid).create_time() - me.create_time) > 5
    assert not identity.is_alive(sleeper.pid, me.create_time)
    # the start in ticks since boot did not move
    assert identity.is_alive(sleeper.pid, me.create_time, me.start_id)
    assert LocalRunner().alive(sleeper.pid, me.create_time, me.start_id)


@pytest.mark.skipif(not LINUX, reason="start in clock ticks needs /proc (Linux)")
def test_a_running_attempt_stays_alive_across_a_clock_step(
    tmp_path: Path, sleeper: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Regression (issue 14, finding 4): with the create time alone, a stepped clock made a
    live agent `lost` -- and the planner then started the task a second time."""
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run(
        ["git", "-C", str(repo), "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q"]
        + ["--allow-empty", "-m", "init"],
        check=True,
    )
    state = StatePaths(tmp_path / "state")
    state.ensure()
    me = identity.identify(sleeper.pid)
    with Store.open(state.db) as store:
        store.begin_attempt("t1", 1, "dev", None, time.time())
        store.set_launched("t1", 1, me.pid, me.create_time, time.time(), None, me.start_id)
        step_the_clock(monkeypatch, -9.0)
        seen = observe(
            repo=repo,
            integration="main",
            worktree_root=tmp_path / "worktrees",
            state=state,
            store=store,
            sampler=None,
            now=time.time(),
        )
    attempt = seen.attempts["t1"][0]
    assert attempt.alive and attempt.start_id == me.start_id


def test_one_liveness_check_everywhere(
    sleeper: subprocess.Popen[bytes], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The local runner and observe answer alike: no start time recorded, or a create
    time that cannot be read (access denied), means not identified -> not alive."""
    runner = LocalRunner()
    me = identity.identify(sleeper.pid)
    checks = (runner.alive, observe_procs.is_alive, identity.is_alive)
    for check in checks:
        assert check(sleeper.pid, me.create_time, me.start_id)
        assert check(sleeper.pid, me.create_time)
        assert not check(sleeper.pid, None)  # nothing to identify it by
        assert not check(sleeper.pid, None, None)
        assert not check(None, me.create_time)
        assert not check(sleeper.pid, me.create_time - 10.0)  # a reused pid

    def denied(self: psutil.Process) -> float:
        raise psutil.AccessDenied(self.pid)

    monkeypatch.setattr(psutil.Process, "create_time", denied)
    for check in checks:
        assert not check(sleeper.pid, me.create_time)


@pytest.mark.skipif(not LINUX, reason="start in clock ticks needs /proc (Linux)")
def test_a_reused_pid_or_a_zombie_is_not_alive(sleeper: subprocess.Popen[bytes]) -> None:
    me = identity.identify(sleeper.pid)
    boot, _, ticks = (me.start_id or "").rpartition(":")
    assert not identity.is_alive(sleeper.pid, me.create_time, f"{boot}:{int(ticks) + 1}")
    assert not identity.is_alive(sleeper.pid, me.create_time, f"another-boot:{ticks}")
    sleeper.kill()
    deadline = time.monotonic() + 10
    while psutil.Process(sleeper.pid).status() != psutil.STATUS_ZOMBIE:
        assert time.monotonic() < deadline
        time.sleep(0.01)
    assert not identity.is_alive(sleeper.pid, me.create_time, me.start_id)  # a zombie
