"""The spec backlog end to end: the architect writes each specification before its
implementation starts, never more than `ahead` specifications ahead, and removing
`specBacklog` removes the generated tasks by the usual rules (nothing lost)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import pytest

from tests.support import FAKE_AGENT
from tests.support.project import Project, kill_fake_agents, stop_process, wait_until
from tests.support.repo import git

pytestmark = pytest.mark.timeout(90)

AGENTS = {
    "dev": {"command": [sys.executable, FAKE_AGENT], "owns": ["src/**"]},
    "architect": {"command": [sys.executable, FAKE_AGENT], "owns": ["docs/**"]},
}
SPEC_BACKLOG = {
    "agent": "architect",
    "ahead": 2,
    "path": "docs/specs/SPEC-{id}.md",
    "prompt": "sleep 0.3\nwrite docs/specs/SPEC-{id}.md: how to build {title}",
}


def item(n: int, sleep: float = 0.3) -> dict[str, Any]:
    task_id = f"us-{n:03d}"
    prompt = f"sleep {sleep}\nwrite src/{task_id}.txt: built from its spec"
    return {"id": task_id, "agent": "dev", "title": f"Item {n}", "prompt": prompt,
            "paths": [f"src/{task_id}.txt"]}  # fmt: skip


@pytest.fixture(autouse=True)
def _no_leftover_agents(tmp_path: Path):
    yield
    kill_fake_agents(tmp_path)


def event_log(p: Project) -> list[dict[str, Any]]:
    result = p.cli("events", "-o", "json")
    assert result.returncode == 0, result.stderr
    return list(json.loads(result.stdout))


def test_six_items_two_specs_ahead(tmp_path: Path) -> None:
    items = [item(n) for n in range(1, 7)]
    p = Project(tmp_path, agents=AGENTS, maxParallel=4, backlog=items, specBacklog=SPEC_BACKLOG)
    proc = p.watch()
    try:
        assert wait_until(lambda: len(set(p.merges())) == 12, timeout=60), p.merges()
        # the pass after the last merge records the convergence
        converged_seen = lambda: any(e["kind"] == "converged" for e in event_log(p))  # noqa: E731
        assert wait_until(converged_seen, timeout=15)
    finally:
        out = stop_process(proc)
    assert "Traceback" not in out
    ids = [t["id"] for t in items]
    assert sorted(p.merges()) == sorted(ids + [f"{i}-spec" for i in ids])  # each merged once
    for task_id in ids:
        assert p.file_on_main(f"docs/specs/SPEC-{task_id}.md") == f"how to build Item {task_id[-1]}"
    log = event_log(p)
    # the architect is never more than two specifications ahead of the implementation:
    # a spec counts from its agent's start until its task is merged
    ahead: set[str] = set()
    most = 0
    for e in log:
        if e["kind"] == "spawn" and e["task"].endswith("-spec"):
            ahead.add(e["task"])
        elif e["kind"] == "merge" and e["task"] in ids:
            ahead.discard(f"{e['task']}-spec")
        most = max(most, len(ahead))
    assert 1 <= most <= 2  # never more than two (how close it gets depends on timing)
    # every implementation starts after its specification merged
    merged_at = {e["task"]: e["id"] for e in log if e["kind"] == "merge"}
    spawned_at = {e["task"]: e["id"] for e in log if e["kind"] == "spawn"}
    for task_id in ids:
        assert spawned_at[task_id] > merged_at[f"{task_id}-spec"], task_id
    # once, when everything had merged
    (converged,) = [e for e in log if e["kind"] == "converged"]
    assert converged["message"] == "all 12 tasks merged" and converged["id"] > max(
        merged_at.values()
    )
    # the generated tasks are marked as such in status
    status = json.loads(p.cli("status", "-o", "json").stdout)
    marked = {t["task"]: t["generated_for"] for t in status["tasks"]}
    assert marked["us-001-spec"] == "us-001" and marked["us-001"] is None


def test_removing_the_spec_backlog_loses_nothing(tmp_path: Path) -> None:
    slow = dict(SPEC_BACKLOG, prompt="write docs/specs/SPEC-{id}.md: draft\nhang")
    p = Project(tmp_path, agents=AGENTS, backlog=[item(1), item(2)], specBacklog=slow)
    proc = p.watch()
    try:
        draft = tmp_path / "state" / "worktrees" / "us-001-spec" / "docs" / "specs"
        assert wait_until(lambda: (draft / "SPEC-us-001.md").exists(), timeout=30)
        diff = p.cli("diff")
        assert "[spec of us-002]" in diff.stdout  # generated tasks are marked in the plan
        p.write_spec(agents=AGENTS, backlog=[item(1), item(2)])  # specBacklog removed
        assert wait_until(lambda: {"us-001", "us-002"} <= set(p.merges()), timeout=40)
    finally:
        out = stop_process(proc)
    assert "Traceback" not in out
    assert not any(m.endswith("-spec") for m in p.merges())
    log = event_log(p)
    stopped = [e for e in log if e["kind"] == "stop" and e["task"] == "us-001-spec"]
    assert stopped and stopped[0]["message"] == "removed from the spec"
    # its draft is kept: the worktree's uncommitted work in an archive ref, its branch too
    archives = git(p.repo, "for-each-ref", "--format=%(refname)", "refs/orchestrator/archive/")
    (ref,) = [r for r in archives.split() if "/us-001-spec/" in r]
    assert git(p.repo, "show", f"{ref}:docs/specs/SPEC-us-001.md") == "draft"
    assert git(p.repo, "rev-parse", "--verify", "-q", "refs/heads/orchestrator/us-001-spec")
