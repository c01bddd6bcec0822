"""LocalRunner + shim with real OS processes: fake agents are tiny python scripts."""

from __future__ import annotations

import contextlib
import gc
import os
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import psutil
import pytest

from controller.act.runners import proctree, shim
from controller.act.runners.base import LaunchRequest
from controller.act.runners.local import SHIM_PATH, LocalRunner
from controller.observe.runs import load_record as read_record
from controller.state.paths import StatePaths
from tests.support import DATA

pytestmark = pytest.mark.timeout(30)
PACKAGE_ROOT = Path(shim.__file__).resolve().parents[3]


def wait_for(predicate: Callable[[], object], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def request(
    tmp_path: Path,
    argv: list[str],
    *,
    number: int = 1,
    timeout_s: float | None = None,
    grace_s: float = 5.0,
    log_limit: int | None = None,
) -> LaunchRequest:
    state = StatePaths(tmp_path / "state")
    cwd = tmp_path / "wt"
    cwd.mkdir(exist_ok=True)
    return LaunchRequest(
        task="t1",
        number=number,
        argv=tuple(argv),
        cwd=cwd,
        env={"ORCHESTRATOR_TASK": "t1"},
        log_path=state.task_log("t1", number),
        start_record=state.start_record("t1", number),
        exit_record=state.exit_record("t1", number),
        progress_file=state.progress_file("t1", number),
        timeout_s=timeout_s,
        kill_grace_s=grace_s,
        log_limit=log_limit,
    )


def agent(tmp_path: Path, body: str) -> list[str]:
    script = tmp_path / "agent.py"
    script.write_text(body)
    return [sys.executable, str(script)]


def wait_exit(req: LaunchRequest, timeout_s: float = 15.0) -> dict[str, Any]:
    wait_for(req.exit_record.exists, timeout_s)
    record = read_record(req.exit_record)
    assert record is not None
    return record


def test_agent_success_writes_records_and_log(tmp_path: Path) -> None:
    argv = agent(
        tmp_path,
        "import os, pathlib\n"
        "pathlib.Path('out.txt').write_text(os.environ['ORCHESTRATOR_TASK'])\n"
        "print('hello from agent', flush=True)\n",
    )
    req = request(tmp_path, argv)
    runner = LocalRunner()
    launched = runner.start(req)
    record = wait_exit(req)
    assert record["exit_code"] == 0 and record["timed_out"] is False and record["signal"] is None
    start = read_record(req.start_record)
    assert start is not None and start["pid"] == launched.pid
    assert abs(start["create_time"] - launched.create_time) < 0.05
    assert "hello from agent" in req.log_path.read_text()
    assert (req.cwd / "out.txt").read_text() == "t1"
    assert record["ended_at"] >= start["started_at"] >= launched.started_at - 1
    wait_for(lambda: not runner.alive(launched.pid, launched.create_time))
    runner.reap()


def test_agent_exit_code_is_recorded(tmp_path: Path) -> None:
    req = request(tmp_path, agent(tmp_path, "import sys\nsys.exit(3)\n"))
    LocalRunner().start(req)
    assert wait_exit(req)["exit_code"] == 3


def test_hanging_agent_is_killed_on_timeout(tmp_path: Path) -> None:
    req = request(tmp_path, agent(tmp_path, "import time\ntime.sleep(60)\n"), timeout_s=1.0)
    started = time.monotonic()
    LocalRunner().start(req)
    record = wait_exit(req)
    assert record["timed_out"] is True
    assert record["signal"] == 15 and record["exit_code"] == 143
    assert time.monotonic() - started < 5


def test_timeout_escalates_to_sigkill(tmp_path: Path) -> None:
    body = (
        "import signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "print('ready', flush=True)\n"
        "time.sleep(60)\n"
    )
    req = request(tmp_path, agent(tmp_path, body), timeout_s=0.5, grace_s=0.5)
    LocalRunner().start(req)
    record = wait_exit(req)
    assert record["timed_out"] is True and record["signal"] == 9 and record["exit_code"] == 137


def group_alive(pgid: int) -> list[int]:
    return proctree.members(pgid)


def test_stop_kills_the_whole_group(tmp_path: Path) -> None:
    body = (
        "import pathlib, subprocess, time\n"
        "child = subprocess.Popen(['sleep', '60'])\n"
        "pathlib.Path('grandchild.pid').write_text(str(child.pid))\n"
        "time.sleep(60)\n"
    )
    req = request(tmp_path, agent(tmp_path, body))
    runner = LocalRunner()
    launched = runner.start(req)
    pid_file = req.cwd / "grandchild.pid"
    wait_for(lambda: pid_file.exists() and pid_file.read_text() != "")
    grandchild = int(pid_file.read_text())
    assert os.getpgid(grandchild) == launched.pid
    assert runner.alive(launched.pid, launched.create_time)
    assert runner.stop(launched.pid, launched.create_time, grace_s=3.0) is True
    assert group_alive(launched.pid) == []
    assert not runner.alive(launched.pid, launched.create_time)
    assert not psutil.pid_exists(grandchild) or (
        psutil.Process(grandchild).status() == psutil.STATUS_ZOMBIE
    )
    # the shim got SIGTERM, forwarded it and still wrote the exit record
    assert wait_exit(req)["exit_code"] == 143
    assert runner.stop(launched.pid, launched.create_time) is False  # already gone


def test_stop_escalates_when_agent_ignores_sigterm(tmp_path: Path) -> None:
    body = (
        "import pathlib, signal, time\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "pathlib.Path('ready').write_text('1')\n"
        "time.sleep(60)\n"
    )
    req = request(tmp_path, agent(tmp_path, body))
    runner = LocalRunner()
    launched = runner.start(req)
    wait_for((req.cwd / "ready").exists)
    assert runner.stop(launched.pid, launched.create_time, grace_s=0.5) is True
    assert group_alive(launched.pid) == []


def test_agent_outlives_the_runner_object(tmp_path: Path) -> None:
    body = "import time\ntime.sleep(0.5)\nprint('still here', flush=True)\n"
    req = request(tmp_path, agent(tmp_path, body))
    runner = LocalRunner()
    runner.start(req)
    del runner
    gc.collect()
    assert wait_exit(req)["exit_code"] == 0
    assert "still here" in req.log_path.read_text()


def test_shell_metacharacters_are_passed_literally(tmp_path: Path) -> None:
    nasty = "$(touch pwned); rm -rf x `touch pwned2` | tee y"
    argv = [*agent(tmp_path, "import sys\nprint(repr(sys.argv[1:]), flush=True)\n"), nasty, "*"]
    req = request(tmp_path, argv)
    (req.cwd / "x").mkdir()
    LocalRunner().start(req)
    assert wait_exit(req)["exit_code"] == 0
    assert repr([nasty, "*"]) in req.log_path.read_text()
    assert sorted(p.name for p in req.cwd.iterdir()) == ["x"]


def test_missing_executable_records_127(tmp_path: Path) -> None:
    req = request(tmp_path, [str(tmp_path / "no-such-agent"), "--flag"])
    LocalRunner().start(req)
    assert wait_exit(req)["exit_code"] == 127
    assert "no-such-agent" in req.log_path.read_text()


def test_non_executable_records_126(tmp_path: Path) -> None:
    script = tmp_path / "not-executable.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(stat.S_IRUSR | stat.S_IWUSR)
    req = request(tmp_path, [str(script)])
    LocalRunner().start(req)
    assert wait_exit(req)["exit_code"] == 126


def test_alive_rejects_recycled_pid() -> None:
    runner = LocalRunner()
    me = psutil.Process()
    assert runner.alive(me.pid, me.create_time())
    assert not runner.alive(me.pid, me.create_time() + 10.0)
    assert not runner.alive(None, None)
    # stop() refuses to signal a pid whose create_time does not match (this very process)
    assert runner.stop(me.pid, me.create_time() - 10.0, grace_s=0.1) is False


def test_restart_of_same_attempt_clears_stale_records(tmp_path: Path) -> None:
    req = request(tmp_path, agent(tmp_path, "import time\ntime.sleep(0.3)\n"))
    req.exit_record.parent.mkdir(parents=True)
    req.exit_record.write_text('{"exit_code": 99}')
    LocalRunner().start(req)
    assert not req.exit_record.exists() or read_record(req.exit_record) != {"exit_code": 99}
    assert wait_exit(req)["exit_code"] == 0


def test_shim_as_module_with_sigterm_forwarding(tmp_path: Path) -> None:
    """`python -m controller.act.runners.shim` works too; SIGTERM to the shim reaches the agent."""
    req = request(
        tmp_path,
        agent(
            tmp_path,
            "import pathlib, signal, sys, time\n"
            "def bye(*_):\n    print('got term', flush=True); sys.exit(5)\n"
            "signal.signal(signal.SIGTERM, bye)\n"
            "pathlib.Path('ready').write_text('1')\n"
            "time.sleep(60)\n",
        ),
    )
    argv = [sys.executable, "-m", "controller.act.runners.shim"]
    argv += ["--start-record", str(req.start_record), "--exit-record", str(req.exit_record)]
    argv += ["--log", str(req.log_path), "--", *req.argv]
    proc = subprocess.Popen(argv, cwd=req.cwd, env={**os.environ, "PYTHONPATH": str(PACKAGE_ROOT)})
    wait_for((req.cwd / "ready").exists)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=10) == 5
    record = wait_exit(req)
    assert record["exit_code"] == 5 and record["timed_out"] is False
    assert "got term" in req.log_path.read_text()


# --- the whole attempt, a capped log, who the shim is (docs/security.md) ---------------

LEAVE_A_DAEMON = (
    "import os, pathlib, sys, time\n"
    "if os.fork() == 0:\n"
    "    os.setsid()\n"
    "    if os.fork() == 0:\n"
    "        pathlib.Path('daemon.tmp').write_text(str(os.getpid()))\n"
    "        os.replace('daemon.tmp', 'daemon.pid')\n"
    "        time.sleep(60)\n"
    "    os._exit(0)\n"
    "while not os.path.exists('daemon.pid'):\n"
    "    time.sleep(0.01)\n"
    "time.sleep(float(sys.argv[1]))\n"
)


def _gone(pid: int) -> bool:
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


@pytest.mark.parametrize("how", ["exit", "stop"])
def test_a_setsid_orphan_is_stopped_with_its_attempt(tmp_path: Path, how: str) -> None:
    """A process that left the shim's session and was orphaned is stopped when the agent
    exits, and when the controller stops the attempt."""
    linger = "0" if how == "exit" else "60"
    req = request(tmp_path, [*agent(tmp_path, LEAVE_A_DAEMON), linger], grace_s=1.0)
    runner = LocalRunner()
    launched = runner.start(req)
    pid_file = req.cwd / "daemon.pid"
    wait_for(pid_file.exists)
    daemon = int(pid_file.read_text())
    try:
        assert os.getsid(daemon) != launched.pid  # it left the attempt's session
        if how == "stop":
            assert runner.stop(launched.pid, launched.create_time, grace_s=3.0) is True
        wait_exit(req)
        wait_for(lambda: _gone(daemon), 5.0)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(daemon, signal.SIGKILL)


def test_the_log_keeps_its_end_within_the_limit(tmp_path: Path) -> None:
    body = "for i in range(40000):\n    print(f'line {i:06d}')\nprint('the last line')\n"
    req = request(tmp_path, agent(tmp_path, body), log_limit=64 * 1024)
    LocalRunner().start(req)
    assert wait_exit(req)["exit_code"] == 0
    data = req.log_path.read_bytes()
    assert len(data) <= 64 * 1024 and data.endswith(b"line 039999\nthe last line\n")
    assert data.startswith(b"[orchestrator: ")


def test_only_this_attempts_shim_is_vouched_for(tmp_path: Path) -> None:
    from controller.observe.procs import SHIM_SCRIPT, is_attempt_shim

    assert SHIM_SCRIPT == SHIM_PATH
    req = request(tmp_path, agent(tmp_path, "import time\ntime.sleep(30)\n"))
    runner = LocalRunner()
    launched = runner.start(req)
    try:
        pid, ct = launched.pid, launched.create_time
        assert pid is not None
        wait_for(req.start_record.exists)  # vouching is asked only once a record exists
        assert is_attempt_shim(pid, ct, req.start_record)
        assert not is_attempt_shim(pid, ct, req.start_record.with_name("2.start.json"))
        assert not is_attempt_shim(pid, (ct or 0) - 10, req.start_record)
        me = psutil.Process()
        assert not is_attempt_shim(me.pid, me.create_time(), req.start_record)
    finally:
        runner.stop(launched.pid, launched.create_time, grace_s=1.0)


# --- prompt on stdin, setup, the agent's stream ----------------------------------------


def test_the_prompt_file_is_the_agents_stdin_whatever_its_size(tmp_path: Path) -> None:
    """A prompt far over the 128 KiB an argv element may hold reaches the agent whole."""
    prompt = tmp_path / "state" / "1.prompt"
    prompt.parent.mkdir(parents=True)
    prompt.write_text("p" * 300_000 + "\nend\n")
    argv = agent(
        tmp_path,
        "import sys, pathlib\npathlib.Path('got.txt').write_text(str(len(sys.stdin.read())))\n",
    )
    req = replace(request(tmp_path, argv), stdin_path=prompt)
    LocalRunner().start(req)
    assert wait_exit(req)["exit_code"] == 0
    assert (req.cwd / "got.txt").read_text() == str(300_000 + 5)


def test_setup_runs_first_and_its_failure_ends_the_attempt(tmp_path: Path) -> None:
    argv = agent(tmp_path, "import pathlib\npathlib.Path('agent-ran').write_text('yes')\n")
    ok = replace(
        request(tmp_path, argv),
        setup=("sh", "-c", "echo prepared > prepared.txt; echo set up"),
        setup_log=tmp_path / "state" / "1.setup.log",
    )
    LocalRunner().start(ok)
    assert wait_exit(ok)["exit_code"] == 0
    assert (ok.cwd / "prepared.txt").exists() and (ok.cwd / "agent-ran").exists()
    assert (tmp_path / "state" / "1.setup.log").read_text() == "set up\n"
    (ok.cwd / "agent-ran").unlink()
    bad = replace(
        request(tmp_path, argv, number=2),
        setup=("sh", "-c", "echo no network >&2; exit 7"),
        setup_log=tmp_path / "state" / "2.setup.log",
    )
    LocalRunner().start(bad)
    record = wait_exit(bad)
    assert record["exit_code"] == 7 and record["setup_failed"] is True
    assert record["setup_error"].startswith(
        "`sh -c echo no network >&2; exit 7` exited with code 7"
    )
    assert "2.setup.log" in record["setup_error"]
    assert not (bad.cwd / "agent-ran").exists()  # the agent never started
    assert "no network" in (tmp_path / "state" / "2.setup.log").read_text()
    assert "setup failed" in bad.log_path.read_text()


def test_the_stream_record_is_complete_before_the_exit_record(tmp_path: Path) -> None:
    sample = DATA / "claude" / "stream_success_acceptedits.jsonl"
    argv = agent(
        tmp_path,
        "import sys, time\n"
        f"lines = open({str(sample)!r}).read().splitlines(True)\n"
        "for line in lines:\n"
        "    sys.stdout.write(line); sys.stdout.flush(); time.sleep(0.05)\n",
    )
    req = request(tmp_path, argv)
    req.log_path.parent.mkdir(parents=True, exist_ok=True)
    req.log_path.write_text('{"type":"result","total_cost_usd":99}\n')  # before the agent
    req = replace(req, stream="claude-code", stream_record=tmp_path / "state" / "1.stream.json")
    LocalRunner().start(req)
    wait_exit(req)
    record = read_record(tmp_path / "state" / "1.stream.json")
    assert record is not None and record["finished"] is True
    assert record["usage"]["cost_usd"] == pytest.approx(0.02898)
    assert record["turns"] == 5 and record["last_action"] == "Bash cat a.txt b.txt > c.txt"


def test_notify_exits_calls_back_when_a_shim_it_started_exits(tmp_path: Path) -> None:
    runner = LocalRunner()
    seen: list[float] = []
    runner.notify_exits(lambda: seen.append(time.time()))
    req = request(tmp_path, agent(tmp_path, "import time\ntime.sleep(0.2)\n"))
    runner.start(req)
    wait_for(lambda: seen)
    assert req.exit_record.exists()  # the shim wrote it before it exited
    runner.reap()
