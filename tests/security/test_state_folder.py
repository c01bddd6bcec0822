"""Attacks through the state folder, whose path every agent learns from
`ORCHESTRATOR_PROGRESS_FILE`: symlinks planted there must not lead the controller's writes or
removals outside it (finding 3), and pipes or endless files must not hang or exhaust it
(finding 9). See docs/security.md.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tests.security.hostile import (
    cli_bounded,
    hostile_project,
    job,
    passes,
    phase,
    stop_all,
)
from tests.support.project import Project, wait_until
from tests.support.repo import git

pytestmark = pytest.mark.timeout(150)


def tree_snapshot(root: Path) -> dict[str, str]:
    """Every file under `root` with its content (symlinks as their target)."""
    found = {}
    for path in sorted(root.rglob("*")):
        rel = str(path.relative_to(root))
        if path.is_symlink():
            found[rel] = "-> " + os.readlink(path)
        elif path.is_file():
            found[rel] = path.read_bytes().decode(errors="replace")
    return found


# --- 3. symlinks planted in the state folder are never followed -------------------------------


def test_a_scratch_symlink_removes_nothing_outside(tmp_path: Path) -> None:
    """The agent replaces `state/scratch` by a symlink to the folder holding the user's own
    worktrees (one named like a verify worktree) and data; the next controller start clears
    scratch space. Nothing there may be removed, and merging with verify still works."""
    attack = job("sc", "symlink $STATE/scratch -> {mine}", "write src/sc.py: sc", "commit sc")
    p = hostile_project(tmp_path, verify=["true"], backlog=[])
    mine = tmp_path / "mine"
    for name in ("verify-keep", "work"):
        git(p.repo, "worktree", "add", "-q", "-b", f"user/{name}", str(mine / name))
        (mine / name / "notes.txt").write_text(f"the user's uncommitted {name} notes\n")
    (mine / "verify-data").mkdir()
    (mine / "verify-data" / "data.csv").write_text("1,2,3\n")
    before = tree_snapshot(mine)
    attack["prompt"] = attack["prompt"].replace("{mine}", str(mine))
    p.write_spec(backlog=[attack])
    passes(p, n=20, until=lambda: phase(p, "sc")[0] in ("merged", "rejected", "failed"))
    assert phase(p, "sc")[0] == "merged", phase(p, "sc")
    assert tree_snapshot(mine) == before
    registered = git(p.repo, "worktree", "list", "--porcelain")
    assert str(mine / "verify-keep") in registered and str(mine / "work") in registered
    assert (p.state / "scratch").is_symlink() is False


def test_a_planted_verify_log_symlink_truncates_nothing(tmp_path: Path) -> None:
    """A symlink at `state/logs/<task>/<n>.verify.log` pointing at a file outside: the
    verify run used to open it with open("wb"), truncating that file."""
    canary = tmp_path / "outside" / "canary.txt"
    canary.parent.mkdir()
    canary.write_text("the user's file\n")
    attack = job(
        "vl",
        f"symlink $STATE/logs/vl/$ATTEMPT.verify.log -> {canary}",
        "write src/vl.py: vl",
        "commit vl",
    )
    p = hostile_project(tmp_path, verify=["echo", "verified"], backlog=[attack])
    passes(p, n=20, until=lambda: phase(p, "vl")[0] in ("merged", "rejected", "failed"))
    assert phase(p, "vl")[0] == "merged", phase(p, "vl")
    assert canary.read_text() == "the user's file\n"
    log = p.state / "logs" / "vl" / "1.verify.log"
    assert not log.is_symlink() and "verified" in log.read_text()


def test_a_planted_agent_log_symlink_is_not_written_through(tmp_path: Path) -> None:
    """Attempt 1 plants a symlink where attempt 2's log will be, pointing at a file outside,
    and fails; attempt 2's output must go to a log of its own, not into that file."""
    canary = tmp_path / "outside" / "canary.txt"
    canary.parent.mkdir()
    canary.write_text("the user's file\n")
    attack = job(
        "al",
        f"attempt 1: symlink $STATE/logs/al/$NEXT.log -> {canary}",
        "attempt 1: exit 3",
        "write src/al.py: al",
        "commit al",
    )
    p = hostile_project(tmp_path, backlog=[attack])
    passes(p, n=20, until=lambda: phase(p, "al")[0] in ("merged", "failed"))
    assert phase(p, "al")[0] == "merged", phase(p, "al")
    assert canary.read_text() == "the user's file\n"
    log = p.state / "logs" / "al" / "2.log"
    assert not log.is_symlink() and "al attempt 2 done" in log.read_text()


# --- 9. pipes and endless files in the state folder, or as a roadmap --------------------------


def _wait_planted(path: Path, kind: str) -> None:
    def planted() -> bool:
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return False
        return stat.S_ISFIFO(mode) if kind == "fifo" else stat.S_ISLNK(mode)

    assert wait_until(planted, timeout=30), f"the agent did not plant {path}"


def _commands_finish(p: Project) -> None:
    """`status` (text and JSON) and a reconcile pass finish promptly, without a traceback."""
    for args in (("status",), ("status", "-o", "json"), ("reconcile",)):
        result = cli_bounded(p, *args, timeout=30)
        assert result.returncode == 0, (args, result.stdout, result.stderr)
        assert "Traceback" not in result.stderr and "MemoryError" not in result.stderr


@pytest.mark.parametrize("record", ["progress", "exit"])
def test_a_fifo_record_hangs_neither_status_nor_a_pass(tmp_path: Path, record: str) -> None:
    """The agent replaces its progress file, or its exit record before it exits, by a named
    pipe nobody writes: opening one for reading used to block `status` and every pass."""
    target = "$PROGRESS" if record == "progress" else "$RUNS/$ATTEMPT.exit.json"
    attack = job("ff", f"fifo {target}", "write src/ff.py: ff", "commit ff", "sleep 6")
    keep = job("keep", "write src/keep.py: keep", "commit keep")
    p = hostile_project(tmp_path, backlog=[attack, keep])
    assert cli_bounded(p, "reconcile").returncode == 0
    planted = p.state / "runs" / "ff" / ("1.progress" if record == "progress" else "1.exit.json")
    _wait_planted(planted, "fifo")
    _commands_finish(p)
    # when the agent exits, the shim's exit record replaces the pipe: the work still lands
    passes(p, n=30, until=lambda: phase(p, "ff")[0] in ("merged", "failed", "rejected"))
    assert phase(p, "ff")[0] == "merged", phase(p, "ff")


def test_dev_zero_as_progress_and_exit_record_is_bounded(tmp_path: Path) -> None:
    """Both the progress file and the exit record become symlinks to /dev/zero: reading
    them used to run until MemoryError."""
    attack = job(
        "dz",
        "symlink $PROGRESS -> /dev/zero",
        "symlink $RUNS/$ATTEMPT.exit.json -> /dev/zero",
        "sleep 30",
    )
    keep = job("keep", "write src/keep.py: keep", "commit keep")
    p = hostile_project(tmp_path, backlog=[attack, keep])
    try:
        assert cli_bounded(p, "reconcile").returncode == 0
        _wait_planted(p.state / "runs" / "dz" / "1.exit.json", "symlink")
        _commands_finish(p)
    finally:
        stop_all(p, [keep])


def test_a_roadmap_linked_to_dev_zero_is_refused_with_its_location(tmp_path: Path) -> None:
    """A roadmap committed as a symlink to /dev/zero: loading the spec used to read it until
    MemoryError. It is refused as a located problem, promptly, and nothing runs."""
    p = hostile_project(tmp_path, backlog=[])
    (p.repo / "docs").mkdir()
    os.symlink("/dev/zero", p.repo / "docs" / "ROADMAP.md")
    git(p.repo, "add", "docs/ROADMAP.md")
    git(p.repo, "commit", "-q", "-m", "roadmap")
    p.write_spec(backlogFrom={"roadmap": "docs/ROADMAP.md", "agent": "dev"})
    for args in (("validate",), ("reconcile",), ("diff",)):
        result = cli_bounded(p, *args, timeout=30)
        assert result.returncode == 1, (args, result.stdout, result.stderr)
        output = result.stdout + result.stderr
        assert "docs/ROADMAP.md:1:1: backlogFrom.roadmap" in output, output
        assert "character device" in output and "Traceback" not in output
    assert not (p.state / "worktrees").exists() or not any((p.state / "worktrees").iterdir())
