"""Regressions the chaos harness (`bench/chaos.py`) found in merging: a branch with no common
history was retried forever, and a merge that errors was taken for a race.

Each test names the fault that exposed the bug and pins the fix, so that the harness's
figures (docs/reliability.md) stay true without rerunning it. The other layers' regression
tests sit beside their own tests: `tests/unit/*/test_regressions.py`, `tests/e2e/`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from controller import git as gitops
from controller.act.merge import MergeJob, land_task
from controller.model.outcomes import MergeOutcome
from tests.support.repo import git

pytestmark = pytest.mark.timeout(60)

# --- a task branch deleted by hand while its agent ran (world scenario) ----------------------


def test_a_branch_without_common_history_is_rejected_not_retried_forever(
    git_repo: Path, tmp_path: Path
) -> None:
    # the agent's commit after its branch was deleted: a new root commit
    git(git_repo, "checkout", "-q", "--orphan", "orchestrator/t1")
    (git_repo / "t1.txt").write_text("work\n")
    git(git_repo, "add", "-A")
    git(git_repo, "commit", "-q", "-m", "root commit")
    git(git_repo, "checkout", "-q", "-f", "main")
    outcome = land_task(
        git_repo,
        integration="main",
        task="t1",
        title="t1",
        attempt=1,
        worktree=None,
        scope=["**"],
        verify=None,
        verify_timeout_s=10,
        verify_log=tmp_path / "verify.log",
        scratch_root=tmp_path / "scratch",
    )
    assert outcome.kind == "rejected" and "no history" in outcome.message


def test_a_merge_that_errors_is_an_error_not_a_race(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object, **kwargs: object) -> MergeOutcome:
        raise gitops.GitError(["git", "merge-tree"], 128, "fatal: something is broken")

    monkeypatch.setattr("controller.act.merge.land_task", broken)
    job = MergeJob(
        task="t1",
        attempt=1,
        repo=tmp_path,
        integration="main",
        title="t1",
        worktree=None,
        scope=["**"],
        verify=None,
        verify_timeout_s=10,
        verify_log=tmp_path / "v.log",
        scratch_root=tmp_path / "scratch",
    )
    outcome = job.run()
    assert outcome.kind == "error" and "something is broken" in outcome.message
