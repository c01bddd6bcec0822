"""End-to-end: a markdown ROADMAP as a backlog source, edited while `--watch` runs."""

from __future__ import annotations

import re
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
        road.write_text(road.read_text() + "\n## US-011: Duplicate\n")
        git(p.repo, "commit", "-q", "-am", "roadmap: oops")
        assert wait_until(lambda: "invalid" in (p.state / "logs" / "controller.log").read_text())
    finally:
        out = stop_process(proc)
    assert "Traceback" not in out
    assert p.file_on_main("us-011.txt") == "import"
    assert p.merges().count("us-011") == 1
