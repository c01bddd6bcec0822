"""`orchestrator spawn-parallel` end to end: with and without a running controller, the
request as a fact in the store (shown by `diff` and `status`, cleared once the task started),
a task that cannot start now (its reason, exit 0), and an unknown id (exit 1)."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

from tests.support.project import Project, kill_fake_agents, stop_process, task, wait_until

pytestmark = pytest.mark.timeout(90)


@pytest.fixture(autouse=True)
def _no_leftover_agents(tmp_path: Path):
    yield
    kill_fake_agents(tmp_path)


def requests(p: Project) -> dict[str, float]:
    from controller.state.store import Store

    with Store.open(p.state / "orchestrator.db") as store:
        return store.requests()


def test_without_a_controller_it_starts_the_requested_task_and_nothing_else(
    tmp_path: Path,
) -> None:
    backlog = [task("us-001"), task("us-043", "sleep 0.5"), task("us-002")]
    p = Project(tmp_path, backlog=backlog)
    done = p.cli("spawn-parallel", "--priority", "43")
    assert done.returncode == 0, done.stderr
    assert re.search(r"^us-043  started: attempt 1, pid \d+ \(there is no priority-43\)$",
                     done.stdout, re.MULTILINE), done.stdout  # fmt: skip
    assert "no controller is running: `orchestrator start` merges" in done.stdout
    assert [s[0] for s in p.agent_starts()] == ["us-043"]  # only what was asked for
    assert requests(p) == {}  # started: the request is done
    # the next controller merges it, and runs the rest
    assert p.cli("reconcile").returncode == 0
    assert wait_until(lambda: p.cli("reconcile").returncode == 0 and len(p.merges()) == 3, 30)


def test_a_task_that_cannot_start_keeps_its_request_and_says_why(tmp_path: Path) -> None:
    backlog = [task("a", "sleep 30"), task("b", dependsOn=["a"]), task("c")]
    p = Project(tmp_path, backlog=backlog)
    done = p.cli("spawn-parallel", "--task", "b", "-o", "json")
    assert done.returncode == 0, done.stderr
    (asked,) = json.loads(done.stdout)["requests"]
    assert asked["state"] == "queued"
    assert re.fullmatch(
        r"requested at \d\d:\d\d:\d\d \(spawn-parallel\); blocked by a \(not merged\)",
        asked["reason"],
    ), asked
    assert list(requests(p)) == ["b"]
    diff = p.cli("diff")
    assert re.search(r"\. wait   b +requested at .* blocked by a", diff.stdout), diff.stdout
    status = p.cli("status", "-o", "json")
    rows = {t["task"]: t for t in json.loads(status.stdout)["tasks"]}
    assert rows["b"]["requested_at"] == requests(p)["b"] and rows["c"]["requested_at"] is None
    # asking again keeps the first request's place
    assert p.cli("spawn-parallel", "--task", "b").returncode == 0
    assert list(requests(p)) == ["b"]


def test_unknown_ids_exit_1_with_a_suggestion_and_record_nothing(tmp_path: Path) -> None:
    p = Project(tmp_path, backlog=[task("priority-43"), task("us-044")])
    wrong = p.cli("spawn-parallel", "--task", "us-04")
    assert wrong.returncode == 1
    assert "unknown task 'us-04'; did you mean 'us-044'?" in wrong.stderr
    missing = p.cli("spawn-parallel", "--priority", "42")
    assert missing.returncode == 1
    assert "no task priority-42 or us-42; did you mean 'priority-43'?" in missing.stderr
    nothing = p.cli("spawn-parallel")
    assert nothing.returncode == 1 and "--priority N or --task ID" in nothing.stderr
    assert "Traceback" not in wrong.stderr + missing.stderr + nothing.stderr
    assert not (p.state / "orchestrator.db").exists()


def test_a_running_controller_acts_on_the_request_at_once(tmp_path: Path) -> None:
    backlog = [task("a", "sleep 4"), task("b", "sleep 1"), task("c"), task("d")]
    p = Project(tmp_path, maxParallel=1, pollInterval="60s", backlog=backlog)
    proc = p.watch()
    try:
        assert wait_until(lambda: [s[0] for s in p.agent_starts()] == ["a"], timeout=30)
        t0 = time.monotonic()
        done = p.cli("spawn-parallel", "--task", "d", "--wait", "30")
        took = time.monotonic() - t0
        assert done.returncode == 0, done.stderr
        assert "d  queued: requested at" in done.stdout and "no slot: 1/1" in done.stdout
        assert "has not run a pass" not in done.stdout  # it was woken, not the 60 s resync
        assert took < 30
        assert wait_until(lambda: len(p.agent_starts()) >= 2, timeout=30)
        assert [s[0] for s in p.agent_starts()][:2] == ["a", "d"]  # d before b and c
        merged = p.cli("spawn-parallel", "--task", "a")
        assert "a  already merged; nothing to start" in merged.stdout
    finally:
        stop_process(proc)
    assert requests(p) == {}
