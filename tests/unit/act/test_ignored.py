"""Ignored files of a pruned worktree are archived (`act.ignored`), up to a stated cap.

Regression (issue 14, finding 6): a worktree's snapshot commits what the agent left
uncommitted, but an ignore rule kept build output and `.env` copies out of it, and
`worktree remove --force` then deleted them: the README's "nothing is lost" was not true.
"""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from controller import git as gitops
from controller.act import ignored
from controller.loop.controller import Controller
from controller.specfile.load import load_spec
from controller.state.paths import StatePaths
from tests.support.project import Project, task
from tests.support.repo import git

pytestmark = pytest.mark.timeout(30)


def worktree_with_ignored_files(repo: Path, root: Path, outside: Path) -> Path:
    (repo / ".gitignore").write_text("build/\n*.env\n")
    git(repo, "add", ".gitignore")
    git(repo, "commit", "-q", "-m", "ignore build output")
    path = gitops.ensure_worktree(repo, root, "t1", "main")
    (path / "build").mkdir()
    (path / "build" / "out.bin").write_bytes(b"\x00built\xff" * 100)
    (path / "local.env").write_text("TOKEN=abc\n")
    (path / "build" / "link").symlink_to(outside / "secret.txt")
    (path / "notes.txt").write_text("not ignored: goes into the snapshot\n")
    return path


def test_ignored_files_are_archived_before_the_worktree_goes(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    (repo / "README.md").write_text("# r\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "init")
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("never read into an archive\n")
    root = tmp_path / "worktrees"
    path = worktree_with_ignored_files(repo, root, outside)
    paths = StatePaths(tmp_path / "state")
    kept: list[ignored.IgnoredKept] = []
    ref = gitops.remove_worktree(
        repo,
        root,
        "t1",
        1,
        lambda wt, names: kept.append(ignored.keep_ignored(paths, "t1", 1, wt, names)),
    )
    assert not path.exists()
    assert ref is not None and git(repo, "show", f"{ref}:notes.txt").startswith("not ignored")
    archive = paths.ignored_archive("t1", 1)
    assert kept[0].archive == archive and (archive.stat().st_mode & 0o777) == 0o600
    with tarfile.open(archive) as tar:
        members = {m.name: m for m in tar.getmembers()}
        assert tar.extractfile("build/out.bin").read() == b"\x00built\xff" * 100  # type: ignore[union-attr]
        assert tar.extractfile("local.env").read() == b"TOKEN=abc\n"  # type: ignore[union-attr]
        assert members["build/link"].issym()  # a link is kept as a link, never followed
        assert members["build/link"].linkname == str(outside / "secret.txt")
        assert "notes.txt" not in members  # in the snapshot, not here
    assert (outside / "secret.txt").exists()


def test_what_is_over_the_cap_is_listed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(ignored, "LIMIT_BYTES", 1000)
    wt = tmp_path / "wt"
    wt.mkdir()
    for name, size in (("a.bin", 600), ("b.bin", 600), ("c.bin", 300)):
        (wt / name).write_bytes(b"x" * size)
    paths = StatePaths(tmp_path / "state")
    first = ignored.keep_ignored(paths, "t1", 2, wt, ["a.bin", "b.bin", "c.bin"])
    assert first.kept == ["a.bin", "c.bin"] and first.left_out == [("b.bin", 600)]
    assert "1 more (600 bytes) over the cap" in first.describe()
    with tarfile.open(first.archive) as tar:  # type: ignore[arg-type]
        manifest = tar.extractfile(ignored.MANIFEST).read().decode()  # type: ignore[union-attr]
    assert "deleted (over the cap) b.bin 600" in manifest
    second = ignored.keep_ignored(paths, "t1", 2, wt, ["c.bin"])
    assert second.archive == paths.ignored_archive("t1", 2).with_name("2-2.tar.gz")  # no overwrite


def test_a_prune_that_cannot_keep_them_removes_nothing(tmp_path: Path) -> None:
    p = Project(tmp_path, backlog=[task("t1")])
    outside = tmp_path / "outside"
    outside.mkdir()
    path = worktree_with_ignored_files(p.repo, p.state / "worktrees", outside)
    git(p.repo, "commit", "-q", "--allow-empty", "-m", "Merge\n\nOrchestrator-Task: t1")
    archive_dir = p.state / "archive" / "t1"
    archive_dir.parent.mkdir(parents=True)
    archive_dir.write_text("a file where the archive folder belongs")  # cannot be written
    with Controller(p.spec_file, load_spec(p.spec_file)) as controller:
        controller.reconcile_once()
        assert (path / "local.env").exists()  # kept in place: not deleted unkept
        archive_dir.unlink()
        controller.store.set_meta("holdoffs", "[]")
        controller.reconcile_once()
    assert not path.exists()
    with tarfile.open(p.state / "archive" / "t1" / "0.tar.gz") as tar:
        assert tar.extractfile("local.env").read() == b"TOKEN=abc\n"  # type: ignore[union-attr]


def test_an_archive_is_whole_or_absent(tmp_path: Path) -> None:
    """Found by `bench/chaos.py --seeds 1-5`: a controller killed while writing the tarball
    left a truncated archive. It is now written beside its name and renamed into place;
    what a kill leaves is a hidden temporary file, removed by the next archive there."""
    wt = tmp_path / "wt"
    wt.mkdir()
    (wt / "out.bin").write_bytes(b"x" * 5000)
    paths = StatePaths(tmp_path / "state")
    leftover = paths.ignored_archive("t1", 1).with_name(".1.tar.gz.4242.tmp")
    leftover.parent.mkdir(parents=True)
    leftover.write_bytes(b"\x1f\x8b truncated")  # what a kill mid-write used to leave
    kept = ignored.keep_ignored(paths, "t1", 1, wt, ["out.bin"])
    assert kept.archive == paths.ignored_archive("t1", 1) and not leftover.exists()
    with tarfile.open(kept.archive) as tar:
        assert tar.extractfile("out.bin").read() == b"x" * 5000  # type: ignore[union-attr]
    assert sorted(p.name for p in kept.archive.parent.iterdir()) == ["1.tar.gz"]
