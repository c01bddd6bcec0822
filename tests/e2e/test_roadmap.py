"""End-to-end: a markdown ROADMAP as a backlog source, edited while `--watch` runs."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.project import Project, kill_fake_agents, stop_process, wait_until
from tests.support.repo import git

pytestmark = pytest.mark.timeout(90)

ROADMAP = """# Roadmap

## Overview

Prose, not an item.

### PRIORITY 1: Bootstrap ✅ Complete

Done long ago.

### PRIORITY 2: Config loader

**Status**: 📝 Planned (Depends on PRIORITY-1)

**Files to Modify**: `priority-2.txt`

write priority-2.txt: config

## US-010: Export

**Status**: Planned

**Dependencies**: PRIORITY 2

**Files to Modify**:
- `us-010.txt`

write us-010.txt: export
"""

ADDED = """
## US-011: Import

**Status**: 📝 Planned

**Dependencies**: US-010

**Files to Modify**: `us-011.txt`

write us-011.txt: import
"""


@pytest.fixture(autouse=True)
def _no_leftover_agents(tmp_path: Path):
    yield
    kill_fake_agents(tmp_path)


def roadmap_project(tmp_path: Path) -> Project:
    p = Project(tmp_path)
    road = p.repo / "docs" / "roadmap" / "ROADMAP.md"
    road.parent.mkdir(parents=True)
    road.write_text(ROADMAP)
    git(p.repo, "add", "-A")
    git(p.repo, "commit", "-q", "-m", "roadmap")
    p.write_spec(backlogFrom={"roadmap": "docs/roadmap/ROADMAP.md", "agent": "dev"})
    return p


def test_roadmap_items_become_tasks_with_their_dependencies(tmp_path: Path) -> None:
    p = roadmap_project(tmp_path)
    diff = p.cli("diff")
    assert diff.returncode == 2, diff.stderr
    assert "+ spawn  priority-2" in diff.stdout  # its dependency PRIORITY 1 is complete
    assert re.search(r"us-010 +blocked by priority-2 \(not merged\)", diff.stdout)
    assert "priority-1" not in diff.stdout  # complete items are not scheduled


def test_roadmap_problem_is_located_in_the_markdown(tmp_path: Path) -> None:
    p = roadmap_project(tmp_path)
    road = p.repo / "docs" / "roadmap" / "ROADMAP.md"
    text = ROADMAP + "\n## US-012: Loop\n\n**Dependencies**: US-099\n"
    road.write_text(text)
    result = p.cli("validate")
    assert result.returncode == 1
    line = text.splitlines().index("**Dependencies**: US-099") + 1
    assert f"ROADMAP.md:{line}:" in result.stderr, result.stderr
    assert "us-099" in result.stderr.lower()
    assert "Traceback" not in result.stderr


def test_roadmap_edit_during_watch_adds_a_task_that_runs_and_merges(tmp_path: Path) -> None:
    p = roadmap_project(tmp_path)
    proc = p.watch()
    try:
        assert wait_until(lambda: {"priority-2", "us-010"} <= set(p.merges()), timeout=30)
        # a person adds an item to the roadmap and commits it, while the loop runs
        road = p.repo / "docs" / "roadmap" / "ROADMAP.md"
        road.write_text(road.read_text() + ADDED)
        git(p.repo, "commit", "-q", "-am", "roadmap: add US-011")
        assert wait_until(lambda: "us-011" in p.merges(), timeout=30)
        # an edit that breaks the roadmap stops nothing: the last good backlog stays
        road.write_text(road.read_text() + "\n## US-012: Broken\n\n**Dependencies**: US-099\n")
        git(p.repo, "commit", "-q", "-am", "roadmap: oops")
        assert wait_until(lambda: "invalid" in (p.state / "logs" / "controller.log").read_text())
    finally:
        out = stop_process(proc)
    assert "Traceback" not in out
    assert p.file_on_main("us-011.txt") == "import"
    assert p.merges().count("us-011") == 1


# --------------------------------------------------------------------------- the real ROADMAP

REAL_ROADMAP = Path("/work/shared/fixtures/coffee-maker/ROADMAP.md")
PLANNED_IN_REAL_ROADMAP = 36  # stated in docs/roadmap.md


def real_roadmap() -> Path:
    """The 33,000-line ROADMAP of the original project (read in place, never copied into the
    project). Its absence is a failure, not a skip: this is the promise the tests check."""
    if not REAL_ROADMAP.is_file():
        pytest.fail(
            f"{REAL_ROADMAP} is missing: these tests check that the original project's own "
            "ROADMAP imports as it is; restore the shared fixtures to run them"
        )
    return REAL_ROADMAP


def test_import_roadmap_reads_the_real_roadmap_as_it_is(tmp_path: Path) -> None:
    p = Project(tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "controller", "import-roadmap", str(real_roadmap())],
        capture_output=True,
        text=True,
        timeout=60,
        env=p.env(),
    )
    assert result.returncode == 0, result.stderr[-2000:]
    ids = re.findall(r"^- id: (\S+)$", result.stdout, flags=re.MULTILINE)
    assert len(ids) == PLANNED_IN_REAL_ROADMAP
    assert len(set(ids)) == len(ids)
    warnings = [ln for ln in result.stderr.splitlines() if ln.startswith("warning: ")]
    assert warnings and all(re.match(r"warning: \S+ROADMAP\.md:\d+:\d+: ", w) for w in warnings)
    # the five duplicate ids are warnings that name the heading used
    dups = [w for w in warnings if "duplicate id" in w]
    assert len(dups) == 5 and all(" is used" in w or "both run" in w for w in dups)
    assert f"{PLANNED_IN_REAL_ROADMAP} planned items imported" in result.stderr
    # dependencies written in the forms the file uses are read
    assert "  - priority-28\n  - priority-27\n" in result.stdout  # (Depends on PRIORITY-28, 27)
    assert "Traceback" not in result.stderr


def test_the_real_roadmap_is_a_usable_backlog(tmp_path: Path) -> None:
    p = Project(tmp_path)
    road = p.repo / "docs" / "roadmap" / "ROADMAP.md"
    road.parent.mkdir(parents=True)
    road.write_bytes(real_roadmap().read_bytes())  # a scratch copy, deleted with tmp_path
    git(p.repo, "add", "-A")
    git(p.repo, "commit", "-q", "-m", "the original project's roadmap")
    p.write_spec(backlogFrom={"roadmap": "docs/roadmap/ROADMAP.md", "agent": "dev"})
    valid = p.cli("validate", "-o", "json")
    assert valid.returncode == 0, valid.stdout[-2000:]
    diff = p.cli("diff")
    assert diff.returncode == 2, diff.stderr[-2000:]
    assert re.search(r"priority-27 +blocked by priority-28 \(not merged\)", diff.stdout)
    assert re.search(r"priority-4 +blocked by priority-1 \(not merged\), priority-3", diff.stdout)
