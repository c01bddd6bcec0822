"""`copy`: files from the main checkout into a worktree, careful on both sides."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from controller.act.worktree_setup import SetupError, copy_missing


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    (repo / "config").mkdir(parents=True)
    (repo / ".env").write_text("SECRET=1\n")
    os.chmod(repo / ".env", 0o600)
    (repo / "config" / "local.yaml").write_text("debug: true\n")
    return repo


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    wt = tmp_path / "wt"
    wt.mkdir()
    return wt


def test_missing_files_are_copied_with_their_mode(repo: Path, worktree: Path) -> None:
    assert copy_missing(repo, worktree, [".env", "config/local.yaml"]) == [
        ".env",
        "config/local.yaml",
    ]
    assert (worktree / ".env").read_text() == "SECRET=1\n"
    assert stat.S_IMODE(os.stat(worktree / ".env").st_mode) == 0o600
    assert (worktree / "config" / "local.yaml").read_text() == "debug: true\n"
    assert not list(worktree.glob(".*.orchestrator-copy"))


def test_a_file_already_there_is_never_overwritten(repo: Path, worktree: Path) -> None:
    (worktree / ".env").write_text("SECRET=changed by the agent\n")
    assert copy_missing(repo, worktree, [".env"]) == []
    assert (worktree / ".env").read_text() == "SECRET=changed by the agent\n"


def test_a_missing_source_names_the_file(repo: Path, worktree: Path) -> None:
    with pytest.raises(SetupError, match=r"config/none.yaml does not exist"):
        copy_missing(repo, worktree, ["config/none.yaml"])


def test_symlinks_in_the_main_checkout_are_refused(
    repo: Path, worktree: Path, tmp_path: Path
) -> None:
    (tmp_path / "secret").write_text("private key\n")
    (repo / "link.env").symlink_to(tmp_path / "secret")
    with pytest.raises(SetupError, match="link.env is a symlink"):
        copy_missing(repo, worktree, ["link.env"])
    (repo / "outside").symlink_to(tmp_path)
    with pytest.raises(SetupError, match="is a symlink; refused"):
        copy_missing(repo, worktree, ["outside/secret"])
    assert list(worktree.iterdir()) == []


def test_symlinks_an_agent_planted_in_its_worktree_are_not_followed(
    repo: Path, worktree: Path, tmp_path: Path
) -> None:
    victim = tmp_path / "victim"
    victim.mkdir()
    (worktree / ".env").symlink_to(victim / "written")
    assert copy_missing(repo, worktree, [".env"]) == []  # there already: left alone
    assert not (victim / "written").exists()
    (worktree / "config").symlink_to(victim)
    with pytest.raises(SetupError, match="is a symlink; refused"):
        copy_missing(repo, worktree, ["config/local.yaml"])
    assert list(victim.iterdir()) == []
