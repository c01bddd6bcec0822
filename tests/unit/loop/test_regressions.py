"""Regressions the chaos harness (`bench/chaos.py`) found in the controller: verify worktrees a
killed controller left behind, and a failing merge retried in a tight loop.

Each test names the fault that exposed the bug and pins the fix, so that the harness's
figures (docs/reliability.md) stay true without rerunning it. The other layers' regression
tests sit beside their own tests: `tests/unit/*/test_regressions.py`, `tests/e2e/`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

import pytest

from controller.act.merge import MergeOutcome
from controller.core.plan import MERGE, Action
from controller.loop.controller import Controller
from controller.specfile.load import load_spec
from tests.support.planning import make_spec, observed, run
from tests.support.project import Project, task
from tests.support.repo import git

pytestmark = pytest.mark.timeout(60)

# --- a killed controller's verify worktrees, and merges that keep failing -------------------


def test_a_controller_start_clears_leftover_verify_worktrees(tmp_path: Path) -> None:
    p = Project(tmp_path, backlog=[task("a")])
    scratch = p.state / "scratch"
    scratch.mkdir(parents=True)
    git(p.repo, "worktree", "add", "-q", "--detach", str(scratch / "verify-89ab"), "main")
    with Controller(p.spec_file, load_spec(p.spec_file)):
        pass
    assert list(scratch.iterdir()) == []


class _FailingTrain:
    """A merge train whose git fails: it reports an error for its one task."""

    tasks = ("a",)

    def run(self, report: Callable[[str, MergeOutcome], None]) -> None:
        report("a", MergeOutcome("error", message="git failed"))


def test_a_failing_merge_is_retried_with_backoff_not_at_once(tmp_path: Path) -> None:
    p = Project(tmp_path, backlog=[task("a")])
    controller = Controller(p.spec_file, load_spec(p.spec_file))
    action = Action(MERGE, "a", "merge", attempt=1)
    with controller:
        controller.merges.submit([action], _FailingTrain())  # type: ignore[arg-type]
        controller.reconciler.record_merges(controller.merges.collect(block=True))
        errors, until = controller.merges.holdoff["a"]
        assert errors == 1 and until > time.time()
        controller.reconciler.start_train([action], observed())
        assert "a" not in controller.merges.running  # held off: not submitted again yet
        wake = controller.loop.next_wake(run(make_spec([])), time.time())
        assert wake <= until - time.time() + 0.1
