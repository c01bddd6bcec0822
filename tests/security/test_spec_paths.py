"""Paths from the spec: the state folder and the worktree root never land on the user's data.

Finding 6 of the review (docs/security.md): `stateDir` and `worktreeRoot` accepted `/`,
`/etc`, the repository root or a tracked folder, and the state folder's pattern in the
shared `.git/info/exclude` hid an agent's new file from `add -A` (merged empty, then
deleted by prune).
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.security.hostile import commit_on_main, hostile_project, job, passes
from tests.support.repo import git

pytestmark = pytest.mark.timeout(120)


def test_a_state_folder_inside_tracked_content_is_refused(tmp_path: Path) -> None:
    """stateDir inside src/ (tracked): validate and reconcile refuse the spec, located at
    the field, and nothing is created or started."""
    p = hostile_project(
        tmp_path, stateDir="../repo/src/state", backlog=[job("nw", "write src/new.py: new")]
    )
    commit_on_main(p.repo, "src/app.py", "app\n", "app")
    result = p.cli("validate")
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"orchestrator\.yaml:\d+:\d+: stateDir: .*'src' is tracked", result.stderr)
    assert "Traceback" not in result.stderr
    run = p.cli("reconcile")
    assert run.returncode == 1 and "nothing was done" in run.stderr, run.stderr
    assert not (p.repo / "src" / "state").exists()
    assert p.worktrees() == [] and not p.agent_starts()


@pytest.mark.parametrize(
    ("field", "value", "why"),
    [
        ("stateDir", "/", "system folder"),
        ("stateDir", "/etc/orchestrator", "inside the system folder /etc"),
        ("worktreeRoot", "/usr", "system folder"),
        ("stateDir", "~", "your home folder itself"),
        ("stateDir", "../repo", "the repository itself"),
        ("worktreeRoot", "..", "contains the repository"),
        ("stateDir", "../repo/.git/state", "git directory"),
        ("worktreeRoot", "../repo/docs/trees", "'docs' is tracked"),
    ],
)
def test_dangerous_locations_are_refused(tmp_path: Path, field: str, value: str, why: str) -> None:
    p = hostile_project(tmp_path, backlog=[])
    p.extra_env["HOME"] = str(tmp_path / "home")
    (tmp_path / "home").mkdir()
    commit_on_main(p.repo, "docs/index.md", "docs\n", "docs")
    p.write_spec(**{field: value})
    result = p.cli("validate")
    assert result.returncode == 1, result.stdout
    line = next(ln for ln in result.stderr.splitlines() if f": {field}: " in ln)
    assert re.match(r".*orchestrator\.yaml:\d+:\d+: ", line) and why in line, line


def test_tilde_in_a_spec_path_is_the_home_folder(tmp_path: Path) -> None:
    home = tmp_path / "home"
    home.mkdir()
    p = hostile_project(tmp_path, stateDir="~/orch-state", backlog=[job("t", "write src/t.py: t")])
    p.extra_env["HOME"] = str(home)
    assert p.cli("validate").returncode == 0
    passes(p, until=lambda: "t" in p.merges())
    assert "t" in p.merges()
    assert (home / "orch-state" / "orchestrator.db").is_file()
    assert (home / "orch-state" / "logs" / "controller.log").is_file()
    assert not any(x.name == "~" for x in tmp_path.rglob("~"))


def test_nothing_in_the_shared_exclude_hides_an_agents_files(tmp_path: Path) -> None:
    """The state folder inside the repository (untracked: allowed) is hidden by a
    `.gitignore` inside it, not by a pattern in the shared `.git/info/exclude`; even a
    pattern an agent plants there does not hide another agent's uncommitted new file."""
    planter = job("planter", "exclude src/", "exclude *.py", "write src/planted.py: planted")
    victim = job("victim", "write src/new.py: new", dependsOn=["planter"])
    p = hostile_project(tmp_path, stateDir="../repo/.orchestrator", backlog=[planter, victim])
    exclude = p.repo / ".git" / "info" / "exclude"
    before = exclude.read_bytes() if exclude.exists() else b""
    passes(p, n=20, until=lambda: {"planter", "victim"} <= set(p.merges()))
    assert {"planter", "victim"} <= set(p.merges()), p.merges()
    assert p.file_on_main("src/new.py") == "new"
    assert p.file_on_main("src/planted.py") == "planted"
    # the controller wrote nothing there: only the planter's two lines were added
    assert exclude.read_bytes() == before + b"src/\n*.py\n"
    marker = (p.repo / ".orchestrator" / ".gitignore").read_text()
    assert marker.splitlines()[-1] == "*"
    assert ".orchestrator" not in git(p.repo, "status", "--porcelain", "--ignored=no")
