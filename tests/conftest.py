"""Shared fixtures: real git repositories in temporary directories (helpers: tests/support)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from tests.support.repo import GIT_ENV, init_repo

# A suite started as a background job of a non-interactive shell inherits SIGINT ignored, and
# so would every process the tests start (Python then never raises KeyboardInterrupt): the
# tests of Ctrl-C would hang. They get the default, as in a terminal.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture(autouse=True)
def _git_identity(monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in GIT_ENV.items():
        monkeypatch.setenv(key, value)


@pytest.fixture
def git_repo(tmp_path: Path) -> Path:
    """A fresh repository with one commit on `main`."""
    return init_repo(tmp_path / "repo")
