"""Shared fixtures: real git repositories in temporary directories (helpers: tests/support)."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.repo import GIT_ENV, init_repo


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A fresh repository with one commit on `main`."""
    return init_repo(tmp_path / "repo")
