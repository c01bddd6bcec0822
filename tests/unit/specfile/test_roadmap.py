"""Markdown ROADMAP parsing: ids, fields, fences, problems, backlog entries and YAML."""

from __future__ import annotations

import random
import time
from io import StringIO
from pathlib import Path

import pytest
from ruamel.yaml import YAML

from controller.model.durations import parse_duration
from controller.model.names import task_id_problem
from controller.model.spec import Task
from controller.specfile.roadmap import (
    ItemStatus,
    RoadmapItem,
    RoadmapParse,
    backlog_entries,
    classify_status,
    completed_ids,
    format_estimate,
    parse_estimate,
    parse_roadmap,
    parse_roadmap_file,
    to_backlog_yaml,
)
from tests.support import DATA

SAMPLE = DATA / "roadmap_sample.md"
P, IP, C, B = (
    ItemStatus.PLANNED,
    ItemStatus.IN_PROGRESS,
    ItemStatus.COMPLETE,
    ItemStatus.BLOCKED,
)
H = 3600.0

# id -> (heading line as written, title, status, depends_on, paths, estimate seconds)
Row = tuple[str, str, ItemStatus, tuple[str, ...], tuple[str, ...], float | None]
EXPECTED: dict[str, Row] = {
    "priority-1": (
        "### PRIORITY 1: Bootstrap repository ✅ Complete",
        "Bootstrap repository",
        C,
        (),
        (),
        None,
    ),
    "priority-2": (
        "### PRIORITY 2: Config loader",
        "Config loader",
        C,
        (),
        ("app/config.py", "app/settings.py"),
        4 * H,
    ),
    "priority-2.5": (
        "### PRIORITY 2.5: Structured logging 📝 Planned",
        "Structured logging",
        P,
        ("priority-2",),
        (),
        24 * H,
    ),
    "priority-2.6": (
        "### PRIORITY 2.6: Metrics export",
        "Metrics export",
        IP,
        ("priority-2.5", "us-010"),
        ("app/metrics/exporter.py", "app/metrics/__init__.py", "app/server.py"),
        40 * H,
    ),
    "priority-3": ("### PRIORITY 3: Health checks", "Health checks", P, (), (), 0.5 * H),
    "priority-4": (
        "### 🔴 **PRIORITY 4: Rate limiting** ⚡ HIGH IMPACT",
        "Rate limiting",
        B,
        ("priority-3", "us-012"),
        (),
        80 * H,
    ),
    "priority-5": (
        "### ✅ **PRIORITY 5: Documentation site** ✅ **COMPLETE**",
        "Documentation site",
        C,
        (),
        (),
        None,
    ),
    "priority-6": ("### PRIORITY 6: Request tracing", "Request tracing", P, (), (), None),
    "priority-7": ("### PRIORITY 7: Retry budget", "Retry budget", IP, (), (), None),
    "priority-8": ("### PRIORITY 8: Graceful shutdown", "Graceful shutdown", C, (), (), None),
    "priority-9": ("### PRIORITY 9", "", B, (), (), None),
    "priority-10": (
        "### PRIORITY 10: Multi-region failover",
        "Multi-region failover",
        B,
        (),
        (),
        None,
    ),
    "priority-11": ("### PRIORITY 11: Dependency upgrades", "Dependency upgrades", C, (), (), None),
    "priority-12": ("### PRIORITY 12: Cache warming", "Cache warming", IP, (), (), None),
    "priority-13": (
        "### PRIORITY 13: US-020 - Wrapped user story",
        "US-020 - Wrapped user story",
        P,
        (),
        (),
        None,
    ),
    "priority-14": (
        "## 📦 PRIORITY 14: Packaging",
        "Packaging",
        P,
        ("priority-13",),
        ("packaging/build.py",),
        None,
    ),
    "priority-14.1": (
        "### PRIORITY 14.1: Wheel builds",
        "Wheel builds",
        P,
        (),
        ("packaging/wheel.py",),
        12 * H,
    ),
    "priority-14.2": (
        "### PRIORITY 14.2: Binary builds",
        "Binary builds",
        P,
        ("priority-14.1",),
        (),
        160 * H,
    ),
    "us-010": ("## US-010: Login page", "Login page", C, (), (), None),
    "us-011": ("## US-011: Password reset 📝", "Password reset", P, (), (), 24 * H),
    "us-012": (
        "## US-012 - Two-factor authentication",
        "Two-factor authentication",
        IP,
        ("us-011",),
        (),
        None,
    ),
    "us-013": ("## 📝 PLANNED: US-013 - Session timeout", "Session timeout", P, (), (), 8 * H),
    "us-014": ("## ✅ COMPLETE: US-014 - Audit log", "Audit log", C, (), (), None),
    "us-015": ("## ✅ RECENTLY COMPLETED: US-015 - Export CSV", "Export CSV", C, (), (), None),
    "us-016": (
        "## 📝 READY TO IMPLEMENT: US-016 - Import CSV",
        "Import CSV",
        P,
        ("us-015",),
        (),
        None,
    ),
    "us-017": (
        "## 🚨 US-017 - Fix crash on empty upload (CRITICAL)",
        "Fix crash on empty upload (CRITICAL)",
        P,
        (),
        ("app/upload.py", "tests/test_upload.py"),
        None,
    ),
    "us-018": ("### 🎯 [US-018] Dark mode", "Dark mode", P, (), (), None),
    "us-019": ("### US-019: Keyboard shortcuts 🔄", "Keyboard shortcuts", IP, (), (), None),
    "us-021": ("### US-021: Notifications ⏸️", "Notifications", B, (), (), None),
    "us-022": ("### US-022: Search", "Search", P, (), (), None),
    "us-023": (
        "### US-023: Tags",
        "Tags",
        P,
        ("us-022", "us-021", "priority-2.6"),
        ("app/tags/**", "app/models/tag.py", "web/tags/"),
        None,
    ),
    "us-024": ("### US-024: Bulk edit", "Bulk edit", B, ("us-012",), (), None),
    "us-025": ("### US-025: Archive", "Archive", C, (), (), None),
    "us-026": (
        "### US-026: Sharing",
        "Sharing",
        P,
        ("us-023", "priority-4", "priority-13"),
        (),
        None,
    ),
    "us-027": ("### US-027: Comments", "Comments", IP, (), (), None),
    "us-028": (
        "### US-028: Attachments",
        "Attachments",
        P,
        ("priority-2.6", "priority-3"),
        (),
        None,
    ),
    "us-029": ("### US-029: Mentions", "Mentions", IP, (), (), None),
    "us-030": ("### US-030: Webhooks", "Webhooks", P, (), (), 3 * H),
    "us-031": ("### US-031: Audit export", "Audit export", B, (), (), None),
    "us-032": ("### US-032: Code fences", "Code fences", P, (), (), None),
    "us-033": (
        "### US-033: Status only inside a fence",
        "Status only inside a fence",
        P,
        (),
        (),
        None,
    ),
    "us-034": ("### US-034: Sub-phase statuses", "Sub-phase statuses", P, (), (), None),
    "us-035": ("### US-035 – Retention policy", "Retention policy", IP, (), (), None),
    "us-036": ("### US-036: Quick fix", "Quick fix", P, (), (), 0.75 * H),
    "us-037": ("### US-037: Unknown size", "Unknown size", P, (), (), None),
    "us-038": ("### US-038: Closing hashes ###", "Closing hashes", P, (), (), None),
    "us-039": ("### us-039: Lower-case id", "Lower-case id", P, (), (), None),
    "priority-40": ("### Priority 40: Mixed-case keyword", "Mixed-case keyword", IP, (), (), None),
    "us-041": (
        "### US-041: Late item in the appendix",
        "Late item in the appendix",
        P,
        ("us-035",),
        (),
        None,
    ),
    "us-042": ("### US-042: Last item", "Last item", C, (), (), None),
}


def line_of(text: str, heading: str) -> int:
    """1-based line of the last line equal to `heading` (independent of the parser).

    The last: the sample repeats PRIORITY 1 in a fenced example above the real heading.
    """
    hits = [n for n, line in enumerate(text.split("\n"), 1) if line == heading]
    assert hits, heading
    return hits[-1]


@pytest.fixture(scope="module")
def sample_text() -> str:
    return SAMPLE.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def sample(sample_text: str) -> RoadmapParse:
    return parse_roadmap(sample_text, source="roadmap_sample.md")


def item(result: RoadmapParse, item_id: str) -> RoadmapItem:
    found = result.item(item_id)
    assert found is not None, item_id
    return found


# --------------------------------------------------------------------------- the sample


def test_sample_has_no_problems_and_all_items(sample: RoadmapParse) -> None:
    assert sample.problems == ()
    assert len(sample.items) >= 40
    assert [i.id for i in sample.items] == list(EXPECTED)


@pytest.mark.parametrize("item_id", list(EXPECTED))
def test_sample_item(sample: RoadmapParse, sample_text: str, item_id: str) -> None:
    heading, title, status, deps, paths, estimate = EXPECTED[item_id]
    it = item(sample, item_id)
    assert task_id_problem(it.id) is None
    assert it.line == line_of(sample_text, heading)
    assert it.title == title
    assert it.status is status
    assert it.depends_on == deps
    assert it.paths == paths
    assert it.estimate_s == estimate
    assert it.prompt.split("\n")[0] == heading


def test_estimate_text_is_kept_even_when_unparseable(sample: RoadmapParse) -> None:
    assert item(sample, "us-037").estimate_text == "X-Y days (TBD)"
    assert item(sample, "us-030").estimate_text == "2-3 hours"
    assert item(sample, "us-022").estimate_text is None


def test_prompt_is_the_section(sample: RoadmapParse) -> None:
    p26 = item(sample, "priority-2.6")
    assert p26.prompt.endswith("**Estimated Effort**: 1 week")
    assert "### PRIORITY 3" not in p26.prompt
    # a prose sub-heading stays in the section, the next item heading (any level) ends it
    p14 = item(sample, "priority-14")
    assert "### Design notes" in p14.prompt
    assert "PRIORITY 14.1" not in p14.prompt
    # the section of the last item of a block ends before the `---` rule
    p13 = item(sample, "priority-13")
    assert p13.prompt.endswith("so dependencies on US-020 mean this item.")
    # fenced examples are part of the prompt (only their headings are ignored)
    us32 = item(sample, "us-032")
    assert "## US-099: Not an item (inner fence)" in us32.prompt
    assert us32.prompt.endswith("**Status**: 📝 Planned")


def test_fenced_and_commented_headings_are_ignored(sample: RoadmapParse) -> None:
    ids = {i.id for i in sample.items}
    assert not ids & {"us-096", "us-097", "us-098", "us-099", "priority-99"}
    # the fenced copy of PRIORITY 1 does not make a duplicate
    assert [i.id for i in sample.items].count("priority-1") == 1


def test_ids_are_stable_when_sections_are_reordered(sample_text: str) -> None:
    head, *blocks = sample_text.split("\n---\n")
    assert len(blocks) > 10

    def fields(result: RoadmapParse) -> dict[str, tuple[object, ...]]:
        return {
            i.id: (i.title, i.status, i.depends_on, i.paths, i.estimate_s, i.prompt)
            for i in result.items
        }

    original = parse_roadmap(sample_text)
    for seed in range(5):
        shuffled = blocks[:]
        random.Random(seed).shuffle(shuffled)
        again = parse_roadmap("\n---\n".join([head, *shuffled]))
        assert again.problems == ()
        assert fields(again) == fields(original)
        assert [i.line for i in again.items] != [i.line for i in original.items]


def test_parse_roadmap_file(tmp_path: Path, sample_text: str) -> None:
    path = tmp_path / "ROADMAP.md"
    path.write_bytes(b"\xef\xbb\xbf" + sample_text.replace("\n", "\r\n").encode())
    result = parse_roadmap_file(path)
    assert result.source == str(path)
    assert [(i.id, i.line, i.title) for i in result.items] == [
        (i.id, i.line, i.title) for i in parse_roadmap(sample_text).items
    ]


# --------------------------------------------------------------------------- headings


@pytest.mark.parametrize(
    ("heading", "item_id", "title", "status"),
    [
        ("## US-043: Parallel agents", "us-043", "Parallel agents", None),
        ("## PRIORITY 23: Worktrees", "priority-23", "Worktrees", None),
        ("## PRIORITY 2.5: UX docs", "priority-2.5", "UX docs", None),
        ("### PRIORITY 2.65: Validation", "priority-2.65", "Validation", None),
        ("## 🔴 PRIORITY 5: Dashboard ✅", "priority-5", "Dashboard", C),
        ("## US-012 -", "us-012", "", None),
        ("## US-7: Short number", "us-7", "Short number", None),
        ("## US 12: Spaced", "us-12", "Spaced", None),
        ("## PRIORITY-28: Dashed", "priority-28", "Dashed", None),
        ("### PRIORITY 3: Daemon ⏸️ Blocked", "priority-3", "Daemon", B),
        ("### PRIORITY 3: Daemon 🔴 P0 CRITICAL - DO THIS FIRST!", "priority-3", "Daemon", None),
        (
            "### 🔴 **PRIORITY 2.7: Crash Recovery** 🔄 **RELIABILITY**",
            "priority-2.7",
            "Crash Recovery",
            IP,
        ),
        ("## ✅ COMPLETE: US-011 - Docs", "us-011", "Docs", C),
        ("## 📝 PLANNED: US-023 - Module hierarchy", "us-023", "Module hierarchy", P),
        ("### 🎯 [US-001] Deploy on GCP", "us-001", "Deploy on GCP", None),
        ("## US-044: Title ##", "us-044", "Title", None),
    ],
)
def test_heading_forms(heading: str, item_id: str, title: str, status: ItemStatus | None) -> None:
    result = parse_roadmap(f"{heading}\n\nBody.\n")
    assert result.problems == ()
    (item,) = result.items
    assert (item.id, item.title, item.line) == (item_id, title, 1)
    assert item.status is (status or P)


@pytest.mark.parametrize(
    "heading",
    [
        "## Overview",
        "## Priority Justification",
        "## TOP PRIORITY FOR code_developer (START HERE)",
        "## ✅ US-016 COMPLETION SUMMARY (2025-10-16)",
        "### Task Group Dependency Management (PRIORITY 32)",
        "#### Week 1-3: Analytics 🔴 PRIORITY 1",
        "## Overview: PRIORITY 3 in context",
        "## USB support",
        "    ## US-001: indented four spaces is code",
        "##US-001: no space after the hashes",
    ],
)
def test_prose_headings_are_not_items(heading: str) -> None:
    result = parse_roadmap(f"{heading}\n\nBody.\n")
    assert result.items == ()
    assert result.problems == ()


@pytest.mark.parametrize(
    "heading",
    [
        "## PRIORITY: missing number",
        "## US-: x",
        "### PRIORITY X: [Name] - Completion Summary",
        "## PRIORITY 2.x: bad number",
        "## US-12a: letters in the number",
        "### US-073 through US-077",
        "### US-078 through US-083: Reflector Agent",
        "## PRIORITY 3 - PRIORITY 5: a range",
    ],
)
def test_item_like_headings_that_cannot_be_placed_are_reported(heading: str) -> None:
    result = parse_roadmap(f"# Roadmap\n\n{heading}\n\n**Status**: 📝 Planned\n")
    assert result.items == ()
    (problem,) = result.problems
    assert (problem.line, problem.column, problem.kind) == (3, 1, "heading")


# --------------------------------------------------------------------------- fences


def test_fences_nested_tilde_indented_and_unclosed() -> None:
    text = "\n".join(
        [
            "## US-001: Real",  # 1
            "`````",  # 2  longer fence holds shorter ones
            "````",
            "## US-090: no",
            "````",
            "## US-091: no",
            "`````",  # 7
            "  ~~~~ text",  # 8 indented tilde fence with info
            "## US-092: no",
            "~~~",  # 10 too short to close
            "## US-093: no",
            "  ~~~~~",  # 12 closes
            "```inline``` is not a fence",  # 13
            "## US-002: Real too",  # 14
            "```python",  # 15 never closed
            "## US-094: swallowed",
        ]
    )
    result = parse_roadmap(text)
    assert [(i.id, i.line) for i in result.items] == [("us-001", 1), ("us-002", 14)]
    (problem,) = result.problems
    assert (problem.line, problem.kind) == (15, "fence")
    assert "never closed" in problem.message


def test_closing_fence_must_match_character_and_have_no_info() -> None:
    text = "```\n~~~\n## US-001: still code\n``` not a close\n```\n## US-002: out\n"
    assert [i.id for i in parse_roadmap(text).items] == ["us-002"]


def test_html_comment_hides_headings() -> None:
    text = "<!-- draft\n## US-001: hidden\n-->\n## US-002: shown\n<!-- one line --> \n"
    result = parse_roadmap(text)
    assert [i.id for i in result.items] == ["us-002"]
    assert result.problems == ()


# --------------------------------------------------------------------------- fields


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("📝 Planned", P),
        ("🔄 In Progress", IP),
        ("✅ Complete (2025-10-19) - HIGH PRIORITY", C),
        ("⏸️ Blocked", B),
        ("⏸ Paused", B),
        ("planned", P),
        ("TODO", P),
        ("to do", P),
        ("Not started", P),
        ("📝 In Planning", P),
        ("READY TO IMPLEMENT", P),
        ("in-progress", IP),
        ("🔄 **MOSTLY COMPLETE** (core done)", IP),
        ("Partially complete", IP),
        ("🧪 Ready for User Testing", IP),
        ("Ready for testing", IP),
        ("complete", C),
        ("Completed", C),
        ("done", C),
        ("✅ **MVP COMPLETE**", C),
        ("Documentation phase ✅ COMPLETE. Implementation phase ready.", C),
        ("🎉 PRODUCTION READY", C),
        ("blocked by legal", B),
        ("Deferred", B),
        ("on hold", B),
        ("❌ **FAILED** - did not work", B),
        ("Cancelled", B),
    ],
)
def test_classify_status(text: str, status: ItemStatus) -> None:
    assert classify_status(text) is status


@pytest.mark.parametrize("text", ["Accepted", "🚨 Critical - Blocking daemon", "", "⚡ NEW"])
def test_classify_status_unknown(text: str) -> None:
    assert classify_status(text) is None


def test_unrecognized_status_is_reported_and_taken_as_planned() -> None:
    result = parse_roadmap("## US-001: A\n\n**Status**: Accepted\n")
    assert result.items[0].status is P
    (problem,) = result.problems
    assert (problem.line, problem.column, problem.kind) == (3, 13, "status")
    # with a status on the heading, that one is the fallback
    result = parse_roadmap("## US-001: A ✅\n\n**Status**: Accepted\n")
    assert result.items[0].status is C
    assert "taken as complete" in result.problems[0].message


def test_status_line_wins_over_heading_marker() -> None:
    result = parse_roadmap("### US-047: Spec rule 📝 Planned\n\n**Status**: ✅ Complete\n")
    assert result.items[0].status is C


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("2-3 days", 24 * H),
        ("4 hours", 4 * H),
        ("1 week", 40 * H),
        ("30 min", 0.5 * H),
        ("45 minutes", 0.75 * H),
        ("7-11 hours", 11 * H),
        ("0.5 day (4 hours)", 4 * H),
        ("1.5-2 days (12-16 hours)", 16 * H),
        ("8 story points (1-2 weeks)", 80 * H),
        ("2-3 weeks", 120 * H),
        ("1 month (20 working days)", 160 * H),
        ("3 to 5 days", 40 * H),
        ("2h", 2 * H),
        ("X-Y days", None),
        ("Varies", None),
    ],
)
def test_parse_estimate(text: str, seconds: float | None) -> None:
    assert parse_estimate(text) == seconds


@pytest.mark.parametrize(
    ("seconds", "text"), [(3 * H, "3h"), (1.5 * H, "1h30m"), (1800.0, "30m"), (10.0, "1m")]
)
def test_format_estimate_is_a_backlog_duration(seconds: float, text: str) -> None:
    assert format_estimate(seconds) == text
    assert parse_duration(text) == max(seconds, 60.0)


def test_dependency_forms() -> None:
    text = "\n".join(
        [
            "## PRIORITY 1: A",
            "## PRIORITY 2: B",
            "## PRIORITY 2.5: C",
            "## US-012: D",
            "## PRIORITY 3: E",
            "**Status**: 📝 Planned - CRITICAL (Depends on PRIORITY-1, 2)",
            "**Dependencies**: PRIORITY 2.5 (the API), US 12",
            "**Blocked By**:",
            "- ✅ PRIORITY 1 (already listed)",
            "- psutil (a library, not an item)",
            "",
            "**Prerequisites**: None (can start after US-012 though)",
            "## PRIORITY 4: F",
            "**Dependency**: None",
            "**Depends On**: N/A",
        ]
    )
    result = parse_roadmap(text)
    # the library is not an item: it is not a task dependency, and the user is told so
    ((line, kind),) = [(p.line, p.kind) for p in result.problems]
    assert (line, kind) == (10, "dependency")
    assert item(result, "priority-3").depends_on == (
        "priority-1",
        "priority-2",
        "priority-2.5",
        "us-012",
    )
    assert item(result, "priority-4").depends_on == ()


def test_us_dependencies_match_by_number_and_priority_aliases() -> None:
    text = "## US-007: A\n## PRIORITY 9: US-072 - B\n## US-100: C\n**Dependencies**: US-7, US-72\n"
    result = parse_roadmap(text)
    assert result.problems == ()
    assert item(result, "us-100").depends_on == ("us-007", "priority-9")


def test_files_to_modify_forms_and_problems() -> None:
    text = "\n".join(
        [
            "## US-001: A",  # 1
            "**Files to Modify**: `src/a.py` (new), src/b.py, `/etc/passwd`",  # 2
            "**Files to Create/Modify**:",  # 3
            "- `src/c.py`, `src/d.py` - both new",  # 4
            "- `../outside.py`",  # 5
            "- `src/**x/*.py`",  # 6
            "- All the test files (search for them)",  # 7
            "- **Group label**:",  # 8
            "   - `src/nested.py` is not an entry",  # 9
            "- [ ] `docs/guide.md`",  # 10
            "- `src/a.py` (again)",  # 11
            "",
            "Not a list entry.",  # 13
            "- `src/after.py`",  # 14
        ]
    )
    result = parse_roadmap(text)
    assert result.items[0].paths == (
        "src/a.py",
        "src/b.py",
        "src/c.py",
        "src/d.py",
        "docs/guide.md",
    )
    assert [(p.line, p.kind) for p in result.problems] == [
        (2, "path"),
        (5, "path"),
        (6, "path"),
        (7, "path"),
        (8, "path"),
    ]
    assert "relative to the repository root" in result.problems[0].message
    assert result.problems[0].column == text.split("\n")[1].index("`/etc") + 1
    assert "'..'" in result.problems[1].message
    assert "'**' must be a whole segment" in result.problems[2].message
    assert "is not a path" in result.problems[3].message


def test_fields_of_a_nested_item_do_not_leak_into_its_parent() -> None:
    text = (
        "## US-001: Parent\n### US-002: Child\n**Status**: ✅ Complete\n**Dependencies**: US-001\n"
    )
    result = parse_roadmap(text)
    assert item(result, "us-001").status is P
    assert item(result, "us-001").prompt == "## US-001: Parent"
    assert item(result, "us-002").depends_on == ("us-001",)


# --------------------------------------------------------------------------- problems


def test_duplicate_id_names_both_lines() -> None:
    text = "## US-001: First\n**Status**: ✅ Complete\n\n## US-001: Second\n"
    result = parse_roadmap(text)
    # the heading that may still run is used: its work is not lost
    assert [(i.id, i.title) for i in result.items] == [("us-001", "Second")]
    (problem,) = result.problems
    assert (problem.line, problem.column, problem.kind) == (1, 1, "duplicate")
    assert "lines 1 and 4" in problem.message
    assert "line 4 (planned) is used, line 1 (complete) ignored" in problem.message


def test_unknown_dependency_has_line_and_column() -> None:
    result = parse_roadmap("## US-001: A\n\n**Dependencies**: US-002, US-404\n## US-002: B\n")
    (problem,) = result.problems
    assert (problem.line, problem.column, problem.kind) == (3, 27, "unknown-dependency")
    assert "'us-404'" in problem.message
    assert result.items[0].depends_on == ("us-002", "us-404")  # kept: the task must not run early


def test_self_dependency() -> None:
    result = parse_roadmap("## US-001: A\n**Status**: 📝 Planned (Depends on US-1)\n")
    (problem,) = result.problems
    assert (problem.line, problem.kind) == (2, "self-dependency")
    assert result.items[0].depends_on == ()


def test_dependency_cycles() -> None:
    text = "\n".join(
        [
            "## PRIORITY 2: B",  # 1
            "**Dependencies**: PRIORITY 1",
            "## PRIORITY 1: A",  # 3
            "**Dependencies**: PRIORITY 2",
            "## US-003: C",  # 5
            "**Dependencies**: US-004",
            "## US-004: D",
            "**Dependencies**: US-005",
            "## US-005: E",
            "**Dependencies**: US-003, PRIORITY 1",
        ]
    )
    result = parse_roadmap(text)
    cycles = [(p.line, p.message) for p in result.problems if p.kind == "cycle"]
    assert cycles == [
        (1, "dependency cycle: priority-2 -> priority-1 -> priority-2"),
        (5, "dependency cycle: us-003 -> us-004 -> us-005 -> us-003"),
    ]
    assert len(result.problems) == 2


def test_problems_are_formatted_with_the_source() -> None:
    result = parse_roadmap("## US-: x\n", source="docs/ROADMAP.md")
    (line,) = result.format_problems()
    assert line.startswith("docs/ROADMAP.md:1:1: heading looks like a backlog item")


# --------------------------------------------------------------------------- backlog


def test_completed_ids(sample: RoadmapParse) -> None:
    assert completed_ids(sample.items) == {i for i, e in EXPECTED.items() if e[2] is C}


def test_backlog_entries(sample: RoadmapParse) -> None:
    entries = backlog_entries(sample.items, "claude")
    by_id = {e["id"]: e for e in entries}
    assert list(by_id) == [i for i, e in EXPECTED.items() if e[2] is not C]
    assert {i for i, e in by_id.items() if e.get("paused")} == {
        i for i, e in EXPECTED.items() if e[2] is B
    }
    assert all(e["agent"] == "claude" for e in entries)
    assert by_id["priority-4"] == {
        "id": "priority-4",
        "title": "Rate limiting",
        "agent": "claude",
        "paused": True,
        "dependsOn": ["priority-3", "us-012"],
        "estimate": "80h",
        "prompt": item(sample, "priority-4").prompt,
    }
    # dependencies on complete items are satisfied already and recorded nowhere
    assert "dependsOn" not in by_id["priority-2.5"]
    assert "dependsOn" not in by_id["us-016"]
    assert by_id["priority-2.6"]["dependsOn"] == ["priority-2.5"]
    assert by_id["us-023"]["paths"] == ["app/tags/**", "app/models/tag.py", "web/tags/"]
    assert "title" not in by_id["priority-9"]
    assert "estimate" not in by_id["us-037"]
    for entry in entries:  # every entry is a valid backlog task of the spec
        task = Task.model_validate(entry)
        assert task.id == entry["id"]
    assert Task.model_validate(by_id["priority-14.1"]).estimate == 12 * H


def test_backlog_yaml_round_trip(sample: RoadmapParse) -> None:
    text = to_backlog_yaml(sample.items, "claude")
    assert text.startswith("backlog:\n")
    assert "  prompt: |" in text
    loaded = YAML(typ="safe").load(StringIO(text))
    assert loaded == {"backlog": backlog_entries(sample.items, "claude")}


def test_backlog_yaml_awkward_prompts() -> None:
    odd = (
        "  ## US-001: indented heading: with colon # and hash",
        "\ttabbed line with trailing spaces   ",
        "---",
        "'quoted' \"text\" & *star* {brace} [list] | pipe > gt %percent @at `tick`",
        "ünïcødé ✅ 📝",
        "",
        "last",
    )
    item = RoadmapItem(
        id="us-001",
        title="Odd: title # with 'quotes'",
        status=P,
        depends_on=(),
        paths=("src/*.py",),
        estimate_s=None,
        estimate_text=None,
        prompt="\n".join(odd),
        line=1,
    )
    single = RoadmapItem(**{**item.__dict__, "id": "us-002", "prompt": "one line: yes"})
    text = to_backlog_yaml([item, single], "a")
    loaded = YAML(typ="safe").load(StringIO(text))
    assert loaded == {"backlog": backlog_entries([item, single], "a")}


def test_to_backlog_yaml_of_nothing() -> None:
    assert YAML(typ="safe").load(to_backlog_yaml([], "a")) == {"backlog": []}


# --------------------------------------------------------------------------- performance


def test_large_roadmap_parses_quickly() -> None:
    section = "\n".join(
        [
            "### PRIORITY {n}: Item {n} 📝 Planned",
            "",
            "**Status**: 📝 Planned (Depends on PRIORITY {m})",
            "**Estimated Effort**: 2-3 days",
            "**Files to Modify**:",
            "- `src/mod_{n}.py` (new)",
            "- `tests/test_mod_{n}.py`",
            "",
            "```python",
            "## US-{n}: not an item",
            "```",
            *[f"Line {{n}}.{k} of the description with `code` and **bold**." for k in range(20)],
            "#### Notes",
            *[f"- note {k}" for k in range(10)],
            "",
            "---",
            "",
        ]
    )
    text = "# Big\n\n" + "\n".join(section.format(n=n, m=max(1, n - 1)) for n in range(1, 800))
    assert text.count("\n") > 33_000
    start = time.perf_counter()
    result = parse_roadmap(text)
    elapsed = time.perf_counter() - start
    assert len(result.items) == 799
    assert [p.kind for p in result.problems] == ["self-dependency"]  # PRIORITY 1 -> itself
    assert elapsed < 2.0, elapsed
