"""Attacks through git: history that hides what lands, a redirected `.git` file, and
programs planted in the shared repository (hooks, fsmonitor, filter drivers).

Findings 1, 2 and 4 of the review (docs/security.md).
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from controller import git as gitlayer
from controller.model import names
from tests.security.hostile import head, hostile_project, job, passes, phase, run_json
from tests.support.oracle import blob_text
from tests.support.project import wait_until
from tests.support.repo import git

pytestmark = pytest.mark.timeout(120)


def commit_on_main(repo: Path, rel: str, text: str, message: str) -> str:
    (repo / rel).parent.mkdir(parents=True, exist_ok=True)
    (repo / rel).write_text(text)
    git(repo, "add", rel)
    git(repo, "commit", "-q", "-m", message)
    return head(repo)


# --- 1. the scope check sees what lands, not what the branch's history claims -----------------


def test_a_revert_hidden_behind_a_second_merge_base_is_rejected(tmp_path: Path) -> None:
    """sa forks, then a person fixes conf/secret.txt on main, then sa merges. sb (scope
    src/**) resets to sa's tip, merges the person's commit with `-s ours` (keeping the old
    secret) and adds one file under src/. sa's tip and the person's commit are now both
    merge bases of main and sb: a diff against one of them shows only src/b.py, while the
    merge (against their virtual base) silently reverts the person's fix."""
    sa = job("sa", "write src/a.py: a", "commit sa")
    p = hostile_project(tmp_path, backlog=[sa])
    commit_on_main(p.repo, "conf/secret.txt", "old secret\n", "conf")
    p.cli("reconcile")  # spawns sa, forked before the fix
    assert wait_until(lambda: any(r[0] == "sa" for r in p.agent_ends()), timeout=30)
    fix = commit_on_main(p.repo, "conf/secret.txt", "fixed secret\n", "person: rotate secret")
    passes(p, until=lambda: "sa" in p.merges())
    assert "sa" in p.merges()
    sb = job(
        "sb",
        run_json("git", "reset", "-q", "--hard", "orchestrator/sa"),
        run_json("git", "merge", "-q", "--no-ff", "-s", "ours", "-m", "take main", fix),
        "write src/b.py: b",
        "commit sb",
        dependsOn=["sa"],
    )
    p.write_spec(backlog=[sa, sb])
    passes(p, until=lambda: phase(p, "sb")[0] in ("rejected", "merged"))
    assert phase(p, "sb")[0] == "rejected", phase(p, "sb")
    assert "conf/secret.txt" in phase(p, "sb")[1]
    assert blob_text(p.repo, "main", "conf/secret.txt") == "fixed secret\n"
    assert "sb" not in p.merges()


def test_a_submodule_pointer_hidden_from_diff_is_rejected(tmp_path: Path) -> None:
    """The agent sets `diff.ignoreSubmodules=all` in the shared config and commits a gitlink
    outside its scope: a diff that honours the setting does not list it."""
    p = hostile_project(tmp_path, backlog=[])
    tip = head(p.repo)
    attack = job(
        "gl",
        "config diff.ignoreSubmodules: all",
        "write src/ok.py: ok",
        run_json("mkdir", "-p", "vendor/lib"),  # an uninitialised submodule's directory
        run_json("git", "add", "src/ok.py"),
        run_json("git", "update-index", "--add", "--cacheinfo", f"160000,{tip},vendor/lib"),
        run_json("git", "commit", "-q", "-m", "vendor a submodule"),
    )
    p.write_spec(backlog=[attack])
    passes(p, until=lambda: phase(p, "gl")[0] in ("rejected", "merged"))
    assert phase(p, "gl")[0] == "rejected", phase(p, "gl")
    assert "vendor/lib" in phase(p, "gl")[1]
    assert git(p.repo, "ls-tree", "main", "vendor/lib") == ""
    assert blob_text(p.repo, "main", "src/ok.py") is None  # nothing of the attempt landed


# --- 2. a `.git` file edited by the agent does not redirect the controller's writes -----------


def test_a_redirected_gitdir_cannot_commit_onto_the_users_branch(tmp_path: Path) -> None:
    """The agent leaves out-of-scope work uncommitted and points its `.git` file at the
    user's repository; the controller's leftover commit must not land on `main`, and the
    user's staged-only content must stay staged."""
    p = hostile_project(tmp_path, verify=["false"], backlog=[])
    git(p.repo, "checkout", "-q", "-b", "work")  # the user works on a branch of their own
    (p.repo / "staged.txt").write_text("the user's staged work\n")
    git(p.repo, "add", "staged.txt")
    before = {ref: head(p.repo, ref) for ref in ("work", "main")}
    attack = job("rd", "write conf/evil.txt: evil", f"redirect-gitdir {p.repo / '.git'}")
    p.write_spec(backlog=[attack])
    passes(p, until=lambda: phase(p, "rd")[0] in ("rejected", "merged", "failed"))
    assert phase(p, "rd")[0] == "rejected", phase(p, "rd")
    assert ".git" in phase(p, "rd")[1]
    assert {ref: head(p.repo, ref) for ref in ("work", "main")} == before
    assert git(p.repo, "diff", "--cached", "--name-only") == "staged.txt"
    assert git(p.repo, "show", ":staged.txt") == "the user's staged work"
    assert git(p.repo, "log", "--all", "--format=%s").count("uncommitted work") == 0


def test_a_redirected_gitdir_cannot_reset_the_users_branch(tmp_path: Path) -> None:
    """A fresh start (after a conflict) resets the task branch: with the worktree's `.git`
    pointing at the user's repository, `reset --hard` used to move the user's branch."""
    p = hostile_project(tmp_path, backlog=[])
    root = tmp_path / "state" / "worktrees"
    path = gitlayer.ensure_worktree(p.repo, root, "rs", head(p.repo))
    ours = [commit_on_main(p.repo, f"mine{i}.txt", f"{i}\n", f"user commit {i}") for i in (1, 2)]
    env = {**p.env(), "ORCHESTRATOR_TASK": "rs", "ORCHESTRATOR_ATTEMPT": "1"}
    env["ORCHESTRATOR_PROMPT"] = f"write src/x.py: x\nredirect-gitdir {p.repo / '.git'}"
    env["ORCHESTRATOR_PROGRESS_FILE"] = str(tmp_path / "state" / "runs" / "rs" / "1.progress")
    subprocess.run([*p.base_spec()["agents"]["dev"]["command"]], cwd=path, env=env, check=True)
    gitlayer.reset_task_branch(p.repo, root, "rs", ours[0], 1)
    assert head(p.repo) == ours[1]  # the user's branch did not move
    assert git(p.repo, "rev-parse", "orchestrator/rs") == ours[0]
    assert git(p.repo, "show", f"{names.archive_ref('rs', 1)}:src/x.py") == "x"


# --- 4. hooks, fsmonitor and filter drivers planted by an agent never run ---------------------


def test_planted_hooks_fsmonitor_and_filters_never_run(tmp_path: Path) -> None:
    marks = tmp_path / "marks"
    marks.mkdir()

    def mark(name: str) -> str:
        return f"touch {marks / name}"

    fsmonitor = tmp_path / "fsmonitor.sh"
    fsmonitor.write_text(f"#!/bin/sh\n{mark('fsmonitor')}\nexit 1\n")
    fsmonitor.chmod(0o755)
    plant = job(
        "plant",
        f"hook post-checkout: {mark('post-checkout')}",
        f"hook post-merge: {mark('post-merge')}",
        f"hook post-commit: {mark('post-commit')}",
        f"hook prepare-commit-msg: {mark('prepare-commit-msg')}",
        f"hook reference-transaction: {mark('reference-transaction')}",
        f"config core.fsmonitor: {fsmonitor}",
        f"config filter.evil.smudge: {mark('smudge')}; cat",
        f"config filter.evil.clean: {mark('clean')}; cat",
        f"config merge.evil.driver: {mark('merge-driver')}; false",
        "attributes * filter=evil merge=evil",
        "write src/plant.py: planted",  # left uncommitted: the controller commits it
    )
    after = job("after", "write src/after.py: after", dependsOn=["plant"])
    p = hostile_project(tmp_path, backlog=[plant, after])
    passes(p, n=20, until=lambda: {"plant", "after"} <= set(p.merges()))
    assert {"plant", "after"} <= set(p.merges()), p.merges()
    for command in (["status"], ["diff"], ["status", "-o", "json"]):
        p.cli(*command)
    assert sorted(x.name for x in marks.iterdir()) == []
