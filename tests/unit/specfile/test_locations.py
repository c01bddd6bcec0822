"""Where the spec may put the state folder and the worktree root (real repositories)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from controller.model.problems import SpecError
from controller.model.spec import Spec, default_locations
from controller.specfile.load import load_spec
from tests.support.repo import git, init_repo


def project(tmp_path: Path, **fields: object) -> Path:
    repo = init_repo(tmp_path / "repo")
    (repo / "src").mkdir()
    (repo / "src" / "app.py").write_text("app\n")
    (repo / "notes.txt").write_text("n\n")
    git(repo, "add", ".")
    git(repo, "commit", "-q", "-m", "src")
    spec = {
        "apiVersion": "orchestrator/v1",
        "repo": "../repo",
        "agents": {"dev": {"command": ["agent"], "owns": ["src/**"]}},
        **fields,
    }
    path = tmp_path / "specs" / "orchestrator.yaml"
    path.parent.mkdir()
    path.write_text(json.dumps(spec, indent=2))
    return path


def problems(path: Path) -> list[str]:
    try:
        load_spec(path)
    except SpecError as exc:
        return [str(p) for p in exc.problems]
    return []


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"stateDir": "../repo/.orchestrator"},  # untracked, inside the repository
        {"stateDir": "../state", "worktreeRoot": "../trees"},
    ],
)
def test_good_locations(tmp_path: Path, fields: dict[str, str]) -> None:
    assert problems(project(tmp_path, **fields)) == []


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        (
            {"stateDir": "../repo/src"},
            r"orchestrator.yaml:14:15: stateDir: .* is tracked content \('src'",
        ),
        ({"stateDir": "../repo/src/state"}, r"stateDir: .* is inside tracked content \('src'"),
        ({"stateDir": "../repo/notes.txt"}, r"stateDir: .*'notes.txt' is tracked"),
        ({"worktreeRoot": "../repo/.git/trees"}, r"worktreeRoot: .*git directory"),
        ({"stateDir": "../s", "worktreeRoot": "../s"}, r"worktreeRoot: must not hold the state"),
        ({"worktreeRoot": "/sys/x"}, r"worktreeRoot: .*inside the system folder /sys"),
    ],
)
def test_bad_locations(tmp_path: Path, fields: dict[str, str], expected: str) -> None:
    found = problems(project(tmp_path, **fields))
    assert len(found) == 1 and re.search(expected, found[0]), found


def test_a_refused_default_location_says_which_field_to_set(tmp_path: Path) -> None:
    path = project(tmp_path)
    spec = json.loads(path.read_text())
    spec["repo"] = "."
    moved = tmp_path / "repo" / "specs" / "orchestrator.yaml"  # state/ would be repo/state
    moved.parent.mkdir()
    moved.write_text(json.dumps(spec))
    repo = tmp_path / "repo"
    (repo / "state").mkdir()
    (repo / "state" / "kept.txt").write_text("tracked\n")
    git(repo, "add", "state")
    git(repo, "commit", "-q", "-m", "a tracked state folder")
    found = problems(moved)
    assert len(found) == 1 and "(the default; set stateDir" in found[0], found


def test_tilde_is_expanded(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    spec = Spec.model_validate(
        {
            "apiVersion": "orchestrator/v1",
            "stateDir": "~/st",
            "worktreeRoot": "~/wt",
            "agents": {"dev": {"command": ["a"]}},
        }
    )
    loc = default_locations(spec, Path("/p/specs/orchestrator.yaml"))
    assert loc.state == tmp_path / "home" / "st" and loc.worktree_root == tmp_path / "home" / "wt"
