"""A real ROADMAP as it is: every dependency phrasing it uses, duplicate ids, odd numbers.

The phrasings are excerpts of the coffee-maker ROADMAP (tests/support/data/
roadmap_dependency_phrasings.md cites the line of each); each must be read as a dependency, be
an explicit "none", or be a located warning. Nothing is dropped silently.
"""

from __future__ import annotations

import pytest

from controller.specfile.roadmap import RoadmapParse, backlog_entries, parse_roadmap
from controller.specfile.roadmap.problems import FATAL_KINDS
from tests.support import DATA

CORPUS = DATA / "roadmap_dependency_phrasings.md"

# item -> what it depends on
DEPENDS: dict[str, tuple[str, ...]] = {
    "us-001": ("us-047",),
    "us-002": ("priority-1", "priority-2"),
    "us-003": ("priority-28",),
    "us-004": ("priority-28", "priority-27"),
    "us-005": ("us-006",),
    "us-007": ("us-035",),
    "us-008": ("us-062", "us-063"),
    "us-009": ("us-062", "us-063", "us-064"),
    "us-010": (),
    "us-011": ("priority-2.6", "priority-2"),
    "us-012": (),
    "us-013": ("us-015", "priority-1"),
    "us-014": ("priority-4.1", "priority-4.2"),
    "us-016": ("us-056",),
    "us-017": (),
    "us-018": (),
    "us-019": (),
    "us-020": ("us-047", "us-006", "priority-1"),
    "us-021": (),
}
# the text of every line that must be a located warning, and the item it is about
WARNED: dict[str, str] = {
    "**Strategic Value**: Continuous quality improvement, depends on US-047": "us-001",
    "- Section 3.1 (User role) - User responsibilities during user story creation": "us-005",
    "**Dependencies**: Phase 1-3 complete (agents have startup skills)": "us-009",
    "**Dependency**: To be done **AFTER** all other priorities": "us-012",
    "**Dependency**: Recommended after Streamlit apps (Priorities 3 & 4)": "us-012",
    "- Phase 2: Langfuse Integration (planned)": "us-014",
    "- Multi-AI Provider Support (planned)": "us-014",
    "- RoadmapDatabase ✅ Available": "us-017",
    "- NotificationDB ✅ Available": "us-017",
    "     - Anthropic Python SDK (`anthropic>=0.8.0`)": "us-017",
    "     - Rich library (`rich>=13.0.0`)": "us-017",
    "**Dependencies**:": "us-018",  # only a code block below it
}


@pytest.fixture(scope="module")
def corpus() -> tuple[list[str], RoadmapParse]:
    text = CORPUS.read_text(encoding="utf-8")
    return text.split("\n"), parse_roadmap(text, str(CORPUS))


@pytest.mark.parametrize("item_id", sorted(DEPENDS))
def test_every_phrasing_is_read(corpus: tuple[list[str], RoadmapParse], item_id: str) -> None:
    _, parsed = corpus
    found = parsed.item(item_id)
    assert found is not None
    assert found.depends_on == DEPENDS[item_id]


def test_what_cannot_be_read_is_a_located_warning(
    corpus: tuple[list[str], RoadmapParse],
) -> None:
    lines, parsed = corpus
    assert all(p.kind not in FATAL_KINDS for p in parsed.problems)
    warned = {lines[p.line - 1]: p for p in parsed.problems}
    assert set(warned) == set(WARNED)
    for text, item_id in WARNED.items():
        problem = warned[text]
        assert problem.kind == "dependency"
        assert repr(item_id) in problem.message
        # the column points into the line, at the text that was not read
        assert 1 <= problem.column <= len(text)
    assert "lists nothing" in warned["**Dependencies**:"].message
    assert "outside a dependency field" in warned[next(iter(WARNED))].message


def test_an_explicit_none_mentioning_an_item_is_no_dependency(
    corpus: tuple[list[str], RoadmapParse],
) -> None:
    _, parsed = corpus
    item = parsed.item("us-010")
    assert item is not None and item.depends_on == ()  # "... after US-021 Phase 2.5"


def test_sentence_end_and_dotted_us_numbers() -> None:
    text = "## US-11.2: Sub story\n## US-047: A\n## US-003: B\n**Dependencies**: US-047.\n"
    text += "**Blocked By**: US-11.2\n"
    parsed = parse_roadmap(text)
    assert parsed.problems == ()
    item = parsed.item("us-003")
    assert item is not None and item.depends_on == ("us-047", "us-11.2")


def test_a_dotted_us_heading_does_not_crash_dependency_resolution() -> None:
    # int("11.2") used to raise ValueError while resolving `US-7` by number
    parsed = parse_roadmap("## US-11.2: x\n## US-007: y\n## US-008: z\n**Dependencies**: US-7\n")
    item = parsed.item("us-008")
    assert item is not None and item.depends_on == ("us-007",)


# --------------------------------------------------------------------------- duplicate ids


def test_duplicate_complete_and_planned_uses_the_planned_heading() -> None:
    text = "\n".join(
        [
            "## PRIORITY 7: Documentation",  # 1
            "**Status**: ✅ Complete",
            "## PRIORITY 7: Final refactoring",  # 3
            "**Status**: 📝 Planned",
            "## PRIORITY 8: Release",  # 5
            "**Dependencies**: PRIORITY 7",
        ]
    )
    parsed = parse_roadmap(text)
    assert [(i.id, i.title) for i in parsed.items] == [
        ("priority-7", "Final refactoring"),
        ("priority-8", "Release"),
    ]
    (problem,) = parsed.problems
    assert (problem.line, problem.kind) == (1, "duplicate")
    assert "line 3 (planned) is used, line 1 (complete) ignored" in problem.message
    assert "items depending on 'priority-7' wait for it" in problem.message
    # the dependent waits for the planned work: never earlier than any reading allows
    entries = {e["id"]: e for e in backlog_entries(parsed.items, "dev")}
    assert entries["priority-8"]["dependsOn"] == ["priority-7"]


def test_duplicate_complete_headings_keep_the_first() -> None:
    text = "## US-056: A\n**Status**: ✅ Complete\n## US-056: B\n**Status**: ✅ COMPLETE\n"
    parsed = parse_roadmap(text)
    assert [(i.id, i.title) for i in parsed.items] == [("us-056", "A")]
    (problem,) = parsed.problems
    assert (problem.line, problem.kind) == (3, "duplicate")
    assert "line 1 (complete) is used, line 3 (complete) ignored" in problem.message


def test_the_same_planned_item_written_twice_is_one_task() -> None:
    text = "## US-005: Summary\n**Dependencies**: US-1\n## US-001: A\n## US-005: Summary\n"
    text += "**Blocked By**: US-001\n"
    parsed = parse_roadmap(text)
    assert [i.id for i in parsed.items] == ["us-005", "us-001"]
    (problem,) = parsed.problems
    assert problem.kind == "duplicate" and problem.line == 4


def test_different_planned_items_under_one_id_all_run() -> None:
    text = "\n".join(
        [
            "## US-113 - API usage tracking",  # 1
            "**Status**: 📝 PLANNED",
            "## US-113: Skill-enum synchronization",  # 3
            "**Status**: 📝 PLANNED",
            "**Dependencies**:",
            "- None (uses existing pytest)",
        ]
    )
    parsed = parse_roadmap(text)
    assert [(i.id, i.title) for i in parsed.items] == [
        ("us-113", "API usage tracking"),
        ("us-113-2", "Skill-enum synchronization"),
    ]
    (problem,) = parsed.problems
    assert (problem.line, problem.kind) == (3, "duplicate")
    assert "both run: line 1 as 'us-113', line 3 as 'us-113-2'" in problem.message
    assert problem.kind not in FATAL_KINDS


def test_depending_on_an_id_two_planned_items_share_is_an_error() -> None:
    text = "## US-113: A\n## US-113: B\n## US-114: C\n**Dependencies**: US-113\n"
    text += "## US-115: D\n**Status**: ✅ Complete\n**Dependencies**: US-113\n"
    parsed = parse_roadmap(text)
    errors = [p for p in parsed.problems if p.kind in FATAL_KINDS]
    # only the item that may still run: which US-113 it waits for would change what runs
    ((line, kind),) = [(p.line, p.kind) for p in errors]
    assert (line, kind) == (4, "ambiguous-dependency")
    assert "lines 1 and 2" in errors[0].message


def test_a_complete_item_reports_no_dependency_problem() -> None:
    text = "## US-001: A\n**Status**: ✅ Complete\n**Dependencies**: US-404, US-1\n"
    text += "Blocked by US-9 in prose.\n## US-002: B\n**Status**: ✅ Complete\n"
    text += "**Dependencies**: US-003\n## US-003: C\n**Status**: ✅ Complete\n"
    text += "**Dependencies**: US-2\n"
    assert parse_roadmap(text).problems == ()
