"""What used to be accepted without a word: symlinks out of the repository, and commits an
agent put straight onto the integration branch.

Finding 11 of the review (docs/security.md).
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from tests.security.hostile import (
    commit_on_main,
    head,
    hostile_project,
    job,
    passes,
    phase,
    run_json,
)
from tests.support.repo import GIT_ENV, git

pytestmark = pytest.mark.timeout(120)


def test_a_symlink_out_of_the_repository_is_rejected_unless_allowed(tmp_path: Path) -> None:
    links = (
        "symlink src/passwd -> /etc/passwd",
        "symlink src/deep/up -> ../../../outside.txt",
        "symlink src/readme -> ../README.md",  # inside the repository: fine
        "write src/ok.py: ok",
    )
    p = hostile_project(tmp_path, backlog=[job("ln", *links, "commit links")])
    before = head(p.repo)
    passes(p, until=lambda: phase(p, "ln")[0] in ("rejected", "merged"))
    state, reason = phase(p, "ln")
    assert state == "rejected", (state, reason)
    assert "src/passwd -> /etc/passwd" in reason and "src/deep/up -> ../../../outside.txt" in reason
    assert "src/readme" not in reason and "allowExternalSymlinks" in reason
    assert head(p.repo) == before
    # allowed: merged, and each external link reported as an event
    p.write_spec(allowExternalSymlinks=True, backlog=[job("ln2", *links, "commit links")])
    passes(p, until=lambda: "ln2" in p.merges())
    assert "ln2" in p.merges()
    assert git(p.repo, "ls-tree", "main", "src/passwd").startswith("120000")
    events = json.loads(p.cli("events", "--kind", "external_symlink", "-o", "json").stdout)
    assert sorted(e["data"]["path"] for e in events if e["task"] == "ln2") == [
        "src/deep/up",
        "src/passwd",
    ]


def commit_onto_main(repo: Path, message: str, name: str, email: str) -> str:
    """A commit on main made by `name <email>`, without a checkout of main."""
    who = {"GIT_AUTHOR_NAME": name, "GIT_AUTHOR_EMAIL": email}
    who |= {"GIT_COMMITTER_NAME": name, "GIT_COMMITTER_EMAIL": email}
    env = {**os.environ, **GIT_ENV, **who}
    tree = git(repo, "rev-parse", "main^{tree}")
    argv = ["git", "-C", str(repo), "commit-tree", tree, "-p", "main", "-m", message]
    sha = subprocess.run(argv, env=env, check=True, capture_output=True, text=True).stdout
    git(repo, "update-ref", "refs/heads/main", sha.strip())
    return sha.strip()


def test_a_commit_straight_onto_the_integration_branch_is_shown(tmp_path: Path) -> None:
    """The agent commits an out-of-scope file and moves main to it itself; its task's merge
    then sits on top and looks like gated work. `status` names the commit; the person's
    own commits and a trusted teammate's are not listed."""
    sneak = job(
        "sneak",
        "write conf/backdoor.txt: open sesame",
        "commit tweak config",
        run_json("git", "update-ref", "refs/heads/main", "HEAD"),
        "write src/s.py: s",
    )
    p = hostile_project(tmp_path, backlog=[sneak])
    git(p.repo, "checkout", "-q", "-b", "work")  # the user works on a branch of their own
    passes(p, until=lambda: "sneak" in p.merges())
    assert "sneak" in p.merges()
    agent_commit = git(p.repo, "rev-parse", "main^")
    assert git(p.repo, "log", "-1", "--format=%s", agent_commit) == "tweak config"
    commit_onto_main(p.repo, "my own fix", GIT_ENV["GIT_AUTHOR_NAME"], GIT_ENV["GIT_AUTHOR_EMAIL"])
    mate = commit_onto_main(p.repo, "teammate's fix", "Mate", "mate@example.com")
    git(p.repo, "checkout", "-q", "main")
    commit_on_main(p.repo, "notes.txt", "n\n", "a commit in my checkout")

    def unattributed() -> list[dict]:
        status = json.loads(p.cli("status", "-o", "json").stdout)
        return status["unattributed_commits"]["commits"]

    assert [c["sha"] for c in unattributed()] == [mate, agent_commit]
    p.write_spec(trustedAuthors=["mate@example.com"], backlog=[sneak])
    found = unattributed()
    assert [c["sha"] for c in found] == [agent_commit], found
    assert found[0]["committer"]["email"] == "sneak@agents.orchestrator.invalid"
    text = p.cli("status").stdout
    assert "Unattributed commits on main" in text and agent_commit[:12] in text
    assert "tweak config" in text and "my own fix" not in text
