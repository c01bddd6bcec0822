"""land_task against real repositories: merge, reject, conflict, verify, publish, race."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from controller import git as gitops
from controller.act.merge import land_task
from controller.model import names
from controller.model.outcomes import MergeOutcome
from tests.support.repo import git

INTEGRATION = "roadmap"


@dataclass
class Setup:
    repo: Path
    root: Path
    scratch: Path
    logs: Path

    def land(self, task: str = "t1", **overrides: Any) -> MergeOutcome:
        kwargs: dict[str, Any] = {
            "integration": INTEGRATION,
            "task": task,
            "title": "Add the feature",
            "attempt": 1,
            "worktree": self.root / task,
            "scope": ["src/**"],
            "verify": None,
            "verify_timeout_s": 20.0,
            "verify_log": self.logs / f"{task}.verify.log",
            "scratch_root": self.scratch,
        }
        kwargs.update(overrides)
        return land_task(self.repo, **kwargs)

    def worktree(self, task: str = "t1") -> Path:
        base = gitops.rev_parse(self.repo, INTEGRATION)
        assert base
        return gitops.ensure_worktree(self.repo, self.root, task, base)


@pytest.fixture
def env(git_repo: Path, tmp_path: Path) -> Setup:
    git(git_repo, "branch", INTEGRATION)
    return Setup(git_repo, tmp_path / "worktrees", tmp_path / "scratch", tmp_path / "logs")


def commit_file(repo: Path, rel: str, text: str, message: str = "change") -> str:
    (repo / rel).parent.mkdir(parents=True, exist_ok=True)
    (repo / rel).write_text(text)
    git(repo, "add", rel)
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def advance_integration(repo: Path, rel: str, text: str) -> str:
    """Commit onto the integration branch without checking it out (as another lander would)."""
    with gitops.scratch_worktree(repo, repo.parent / "elsewhere", INTEGRATION) as tmp:
        git(tmp, "checkout", "-q", INTEGRATION)
        sha = commit_file(tmp, rel, text, "someone else landed")
        git(tmp, "checkout", "-q", "--detach")
    return sha


def no_scratch_left(env: Setup) -> bool:
    leftovers = list(env.scratch.iterdir()) if env.scratch.exists() else []
    return not leftovers and len(gitops.list_worktrees(env.repo)) <= 2


def test_happy_path_merge_commit_with_trailers(env: Setup) -> None:
    old = gitops.rev_parse(env.repo, INTEGRATION)
    wt = env.worktree()
    tip = commit_file(wt, "src/feature.py", "x = 1\n")
    (wt / "src" / "leftover.py").write_text("y = 2\n")  # uncommitted, committed by land_task
    user_head, user_status = git(env.repo, "rev-parse", "HEAD"), git(env.repo, "status")
    outcome = env.land(attempt=2)
    assert outcome.kind == "merged" and outcome.sha
    assert gitops.rev_parse(env.repo, INTEGRATION) == outcome.sha
    parents = git(env.repo, "rev-list", "--parents", "-n1", outcome.sha).split()[1:]
    branch_tip = gitops.rev_parse(env.repo, "orchestrator/t1")
    assert parents == [old, branch_tip] and branch_tip != tip
    message = git(env.repo, "log", "-1", "--format=%B", outcome.sha)
    assert message.splitlines()[0] == "Merge task t1: Add the feature"
    trailers = git(env.repo, "log", "-1", "--format=%(trailers:only,unfold)", outcome.sha)
    assert f"{names.MERGE_TRAILER}: t1" in trailers and "Orchestrator-Attempt: 2" in trailers
    assert git(env.repo, "show", f"{outcome.sha}:src/leftover.py") == "y = 2"
    # the user's checkout (on main) is untouched
    assert git(env.repo, "rev-parse", "HEAD") == user_head
    assert git(env.repo, "status") == user_status
    assert not (env.repo / "src").exists()


def parents_of(repo: Path, sha: str | None) -> list[str]:
    assert sha
    return git(repo, "rev-list", "--parents", "-n1", sha).split()[1:]


def test_an_attempt_that_changed_nothing_is_not_merged(env: Setup) -> None:
    """No false "done": an agent that exits 0 having changed nothing (e.g. Claude Code whose
    writes were refused) must not land as an empty merge commit."""
    env.worktree()
    wt = env.worktree("t2")
    old = advance_integration(env.repo, "src/other.txt", "x\n")
    outcome = env.land()
    assert outcome.kind == "empty"
    assert gitops.rev_parse(env.repo, INTEGRATION) == old
    # the same content committed on the branch as already on main lands nothing either
    commit_file(wt, "src/other.txt", "x\n")
    assert env.land("t2").kind == "empty"
    assert gitops.rev_parse(env.repo, INTEGRATION) == old


def test_allow_empty_still_gets_a_merge_commit(env: Setup) -> None:
    env.worktree()
    base = gitops.rev_parse(env.repo, INTEGRATION)
    moved = advance_integration(env.repo, "other.txt", "x\n")
    outcome = env.land(allow_empty=True)
    assert outcome.kind == "merged"
    assert parents_of(env.repo, outcome.sha) == [moved, base]
    # branch tip == integration tip: git drops the duplicate parent, the trailer still lands
    env.worktree("t2")
    second = env.land("t2", title="noop", allow_empty=True)
    assert second.kind == "merged" and parents_of(env.repo, second.sha) == [outcome.sha]
    assert "Orchestrator-Task: t2" in git(env.repo, "log", "-1", "--format=%B", INTEGRATION)


def test_scope_violation_is_rejected(env: Setup) -> None:
    old = gitops.rev_parse(env.repo, INTEGRATION)
    wt = env.worktree()
    commit_file(wt, "src/ok.py", "ok\n")
    commit_file(wt, "docs/secret.md", "nope\n")
    git(wt, "rm", "-q", "README.md")
    git(wt, "commit", "-q", "-m", "delete readme")
    tip = git(wt, "rev-parse", "HEAD")
    outcome = env.land()
    assert outcome.kind == "rejected"
    assert outcome.offending == ("README.md", "docs/secret.md")
    assert gitops.rev_parse(env.repo, INTEGRATION) == old
    assert gitops.rev_parse(env.repo, "orchestrator/t1") == tip


def test_conflict_names_the_file(env: Setup) -> None:
    old = gitops.rev_parse(env.repo, INTEGRATION)
    wt = env.worktree()
    commit_file(wt, "src/a.py", "branch version\n")
    moved = advance_integration(env.repo, "src/a.py", "integration version\n")
    assert moved != old
    outcome = env.land()
    assert outcome.kind == "conflict" and outcome.conflicts == ("src/a.py",)
    assert gitops.rev_parse(env.repo, INTEGRATION) == moved


@pytest.mark.timeout(30)
def test_verify_failure_keeps_integration(env: Setup) -> None:
    old = gitops.rev_parse(env.repo, INTEGRATION)
    wt = env.worktree()
    commit_file(wt, "src/a.py", "a\n")
    script = "import os, sys; print('checked', sorted(os.listdir('src'))); sys.exit(4)"
    outcome = env.land(verify=[sys.executable, "-c", script])
    assert outcome.kind == "verify_failed"
    log = env.logs / "t1.verify.log"
    assert "code 4" in outcome.message and str(log) in outcome.message
    assert "checked ['a.py']" in log.read_text()
    assert gitops.rev_parse(env.repo, INTEGRATION) == old
    assert no_scratch_left(env)


@pytest.mark.timeout(30)
def test_verify_pass_and_timeout(env: Setup) -> None:
    wt = env.worktree()
    commit_file(wt, "src/a.py", "a\n")
    hang = [sys.executable, "-c", "import time; time.sleep(60)"]
    outcome = env.land(verify=hang, verify_timeout_s=0.5)
    assert outcome.kind == "verify_failed" and "timed out" in outcome.message
    ok = [sys.executable, "-c", "import pathlib; assert pathlib.Path('src/a.py').exists()"]
    assert env.land(verify=ok).kind == "merged"
    assert no_scratch_left(env)


def test_integration_checked_out_clean_is_fast_forwarded(env: Setup) -> None:
    git(env.repo, "checkout", "-q", INTEGRATION)
    (env.repo / "notes.txt").write_text("untracked user file\n")
    wt = env.worktree()
    commit_file(wt, "src/a.py", "a\n")
    outcome = env.land()
    assert outcome.kind == "merged"
    assert git(env.repo, "rev-parse", "HEAD") == outcome.sha
    assert (env.repo / "src" / "a.py").read_text() == "a\n"
    assert (env.repo / "notes.txt").exists()
    assert git(env.repo, "status", "--porcelain") == "?? notes.txt"


def test_integration_checked_out_dirty_is_blocked(env: Setup) -> None:
    git(env.repo, "checkout", "-q", INTEGRATION)
    old = gitops.rev_parse(env.repo, INTEGRATION)
    (env.repo / "README.md").write_text("user is editing\n")
    wt = env.worktree()
    commit_file(wt, "src/a.py", "a\n")
    outcome = env.land()
    assert outcome.kind == "blocked"
    assert str(env.repo) in outcome.message and "uncommitted" in outcome.message
    assert gitops.rev_parse(env.repo, INTEGRATION) == old
    assert (env.repo / "README.md").read_text() == "user is editing\n"
    assert not (env.repo / "src").exists()


def test_untracked_file_in_the_way_blocks(env: Setup) -> None:
    git(env.repo, "checkout", "-q", INTEGRATION)
    old = gitops.rev_parse(env.repo, INTEGRATION)
    (env.repo / "src").mkdir()
    (env.repo / "src" / "a.py").write_text("user's own untracked a.py\n")
    wt = env.worktree()
    commit_file(wt, "src/a.py", "a\n")
    outcome = env.land()
    assert outcome.kind == "blocked"
    assert gitops.rev_parse(env.repo, INTEGRATION) == old
    assert (env.repo / "src" / "a.py").read_text() == "user's own untracked a.py\n"


def _racing_verify(repo: Path, checkout: Path | None) -> list[str]:
    """A verify command that lands a commit on the integration branch while we verify."""
    target = str(checkout) if checkout else ""
    script = f"""
import subprocess, sys
repo, checkout = {str(repo)!r}, {target!r}
def git(*args, cwd=repo):
    return subprocess.run(["git", "-C", cwd, *args], check=True, capture_output=True,
                          text=True).stdout.strip()
if checkout:
    open(checkout + "/other.txt", "w").write("raced")
    git("add", "other.txt", cwd=checkout)
    git("commit", "-q", "-m", "racer", cwd=checkout)
else:
    tree = git("rev-parse", "{INTEGRATION}^{{tree}}")
    new = git("commit-tree", tree, "-p", "{INTEGRATION}", "-m", "racer")
    git("update-ref", "refs/heads/{INTEGRATION}", new)
"""
    return [sys.executable, "-c", script]


@pytest.mark.timeout(30)
def test_raced_cas(env: Setup) -> None:
    wt = env.worktree()
    commit_file(wt, "src/a.py", "a\n")
    outcome = env.land(verify=_racing_verify(env.repo, None))
    assert outcome.kind == "raced"
    racer = gitops.rev_parse(env.repo, INTEGRATION)
    assert git(env.repo, "log", "-1", "--format=%s", INTEGRATION) == "racer"
    # the next pass merges on top of the racer
    again = env.land()
    assert again.kind == "merged"
    assert git(env.repo, "rev-parse", f"{again.sha}^1") == racer


@pytest.mark.timeout(30)
def test_raced_in_checked_out_integration(env: Setup) -> None:
    git(env.repo, "checkout", "-q", INTEGRATION)
    wt = env.worktree()
    commit_file(wt, "src/a.py", "a\n")
    outcome = env.land(verify=_racing_verify(env.repo, env.repo))
    assert outcome.kind == "raced"
    assert git(env.repo, "log", "-1", "--format=%s") == "racer"
    assert not (env.repo / "src").exists()


def test_missing_branch_is_rejected(env: Setup) -> None:
    outcome = env.land(task="never-started", worktree=None)
    assert outcome.kind == "rejected" and "does not exist" in outcome.message
