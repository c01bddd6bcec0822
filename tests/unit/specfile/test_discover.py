"""Which spec a command uses without -f: specs/orchestrator.yaml from the current folder up
to the repository root, then $ORCHESTRATOR_SPEC; -f always wins."""

from __future__ import annotations

from pathlib import Path

import pytest

from controller.specfile.discover import search, spec_file
from tests.support.repo import init_repo


def _spec(folder: Path) -> Path:
    path = folder / "specs" / "orchestrator.yaml"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("apiVersion: orchestrator/v1\n")
    return path


def test_found_from_a_subfolder_up_to_the_repository_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = init_repo(tmp_path / "repo")
    spec = _spec(repo)
    deep = repo / "src" / "pkg"
    deep.mkdir(parents=True)
    monkeypatch.chdir(deep)
    monkeypatch.delenv("ORCHESTRATOR_SPEC", raising=False)
    found = spec_file(None)
    assert isinstance(found, Path) and found.resolve() == spec.resolve()
    assert str(found) == "../../specs/orchestrator.yaml"  # as a person would type it


def test_the_search_stops_at_the_repository_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _spec(tmp_path)  # above the repository: never picked up
    repo = init_repo(tmp_path / "repo")
    monkeypatch.chdir(repo)
    monkeypatch.delenv("ORCHESTRATOR_SPEC", raising=False)
    result = search()
    assert result.found is None and result.root == repo
    message = spec_file(None)
    assert isinstance(message, str)
    assert f"in {repo} (the repository root)" in message and "-f FILE" in message


def test_outside_a_repository_only_the_current_folder_counts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _spec(tmp_path)
    below = tmp_path / "below"
    below.mkdir()
    monkeypatch.chdir(below)
    monkeypatch.delenv("ORCHESTRATOR_SPEC", raising=False)
    assert search().found is None
    assert "(in no git repository)" in str(spec_file(None))


def test_the_variable_is_the_default_outside_a_project_and_f_always_wins(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    elsewhere = _spec(tmp_path / "other")
    monkeypatch.setenv("ORCHESTRATOR_SPEC", str(elsewhere))
    nowhere = tmp_path / "nowhere"
    nowhere.mkdir()
    monkeypatch.chdir(nowhere)
    assert spec_file(None) == elsewhere
    # inside a project, the project's own spec comes first: a stale variable never wins
    repo = init_repo(tmp_path / "repo")
    own = _spec(repo)
    monkeypatch.chdir(repo)
    assert Path(spec_file(None)).resolve() == own.resolve()
    given = tmp_path / "given.yaml"
    assert spec_file(given) == given
