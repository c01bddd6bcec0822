"""Notifications end to end: a failing task's `exhausted` event reaches the notify command's
stdin as JSON, and a notify command that hangs does not slow the loop (pass times measured
with and without it). The figures themselves: `bench/notify_passes.py`."""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from controller.loop.controller import Controller
from controller.specfile.load import load_spec
from tests.support.project import Project, kill_fake_agents, stop_process, task, wait_until

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(autouse=True)
def _no_leftover_agents(tmp_path: Path):
    yield
    kill_fake_agents(tmp_path)


def writer(path: Path) -> list[str]:
    """A notify command that appends what it reads on stdin to `path`."""
    return [sys.executable, "-c", f"import sys; open({str(path)!r}, 'a').write(sys.stdin.read())"]


def test_an_exhausted_task_reaches_the_notify_command_as_json(tmp_path: Path) -> None:
    got = tmp_path / "notified.jsonl"
    p = Project(
        tmp_path,
        retries=1,
        backlog=[task("flaky", "exit 3"), task("fine")],
        notify={"command": writer(got), "on": ["exhausted", "merged"]},
    )
    proc = p.watch()
    try:
        assert wait_until(lambda: got.exists() and '"exhausted"' in got.read_text(), timeout=30)
    finally:
        out = stop_process(proc)
    assert "Traceback" not in out
    bodies = [json.loads(line) for line in got.read_text().splitlines()]
    by_kind = {b["notification"]: b for b in bodies}
    assert set(by_kind) == {"exhausted", "merged"}  # `failed` attempts were not asked for
    exhausted = by_kind["exhausted"]
    assert (exhausted["kind"], exhausted["task"]) == ("exhausted", "flaky")
    assert exhausted["message"].startswith("retries exhausted after 2 attempts: exit 3; ")
    assert exhausted["data"]["attempt"] == 2
    assert exhausted["repo"] == str(p.repo.resolve()) and exhausted["spec"].endswith(".yaml")
    assert by_kind["merged"]["task"] == "fine"


def pass_times(tmp: Path, notify: dict[str, Any] | None, passes: int) -> list[float]:
    """Seconds of each of `passes` reconcile passes of the in-process controller, on a fresh
    project: four tasks that fail (failed, exhausted) and four that merge (merged)."""
    backlog = [task(f"bad{i}", "exit 1") for i in range(4)] + [task(f"ok{i}") for i in range(4)]
    extra = {"notify": notify} if notify else {}
    p = Project(tmp, retries=0, maxParallel=8, backlog=backlog, **extra)
    times = []
    with Controller(p.spec_file, load_spec(p.spec_file)) as controller:
        for _ in range(passes):
            t0 = time.perf_counter()
            controller.run_pass(sync_merges=True)
            times.append(time.perf_counter() - t0)
            time.sleep(0.1)  # the agents exit; the next pass records it (and notifies)
        notifier = controller.reconciler.notifier
        sent, queued = notifier.sent, notifier.jobs.qsize()
        notifier.close(0)  # leaving would wait out the timeout for what is queued
    if notify:
        assert sent == 0 and queued > 0  # the command hung: nothing went out, the rest waited
    return times


def test_a_hanging_notify_command_does_not_slow_the_loop(tmp_path: Path) -> None:
    hangs = {"command": [sys.executable, "-c", "import time; time.sleep(60)"], "timeout": "20s",
             "on": ["failed", "exhausted", "merged", "converged"]}  # fmt: skip
    plain = pass_times(tmp_path / "plain", None, 12)
    started = time.monotonic()
    hanging = pass_times(tmp_path / "hanging", hangs, 12)
    took = time.monotonic() - started
    print(f"pass times, median / max: without notify {statistics.median(plain) * 1000:.0f} / "
          f"{max(plain) * 1000:.0f} ms; with a hanging notify command "
          f"{statistics.median(hanging) * 1000:.0f} / {max(hanging) * 1000:.0f} ms")  # fmt: skip
    # a pass that waited for the command would take its 20 s timeout: none comes close
    assert max(hanging) < 5.0, hanging
    assert took < 20.0
