"""What the ROADMAP parser reports: `RoadmapProblem`, its kinds, and the wording of each.

Every problem is located (1-based line and column of the markdown file) and has a kind, so a
caller can decide which ones reject a backlog (`specfile.sources.FATAL_KINDS`) and which are
only warnings. The messages live here, in one place, so their wording changes in one file.
"""

from __future__ import annotations

from dataclasses import dataclass

# kinds
HEADING = "heading"  # a heading that looks like an item but cannot be placed
DUPLICATE = "duplicate"
UNKNOWN_DEPENDENCY = "unknown-dependency"
SELF_DEPENDENCY = "self-dependency"
CYCLE = "cycle"
STATUS = "status"  # an unrecognised `**Status**:` text
PATH = "path"  # a `Files to Modify` entry that is not a path
FENCE = "fence"  # a code fence that is never closed
COMMENT = "comment"  # an HTML comment that is never closed


@dataclass(frozen=True)
class RoadmapProblem:
    line: int  # 1-based
    column: int  # 1-based
    message: str
    kind: str = ""  # heading, duplicate, unknown-dependency, self-dependency, cycle, ...

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: {self.message}"


def duplicate(item_id: str, line: int, first_line: int) -> RoadmapProblem:
    return RoadmapProblem(
        line,
        1,
        f"duplicate id {item_id!r}: headings on lines {first_line} and "
        f"{line}; the one on line {first_line} is used",
        DUPLICATE,
    )


def unrecognized_status(
    at: tuple[int, int], text: str, item_id: str, fallback: str
) -> RoadmapProblem:
    return RoadmapProblem(
        *at,
        f"status {text!r} of {item_id!r} is not recognized "
        "(use planned, in progress, complete or blocked); "
        f"taken as {fallback}",
        STATUS,
    )


def self_dependency(line: int, col: int, item_id: str) -> RoadmapProblem:
    return RoadmapProblem(line, col, f"{item_id!r} depends on itself", SELF_DEPENDENCY)


def unknown_dependency(line: int, col: int, item_id: str, dep: str) -> RoadmapProblem:
    return RoadmapProblem(
        line,
        col,
        f"{item_id!r} depends on {dep!r}, which is not an item of this file",
        UNKNOWN_DEPENDENCY,
    )


def cycle(line: int, ids: list[str]) -> RoadmapProblem:
    return RoadmapProblem(line, 1, "dependency cycle: " + " -> ".join(ids), CYCLE)


def not_a_path(text: str, line: int, col: int) -> RoadmapProblem:
    return RoadmapProblem(
        line,
        col,
        f"'Files to Modify' entry {text.strip()!r} is not a path "
        "(write one path or glob per entry, e.g. `src/app/*.py`)",
        PATH,
    )


def unclosed_fence(line: int, fence: str) -> RoadmapProblem:
    return RoadmapProblem(
        line,
        1,
        f"code fence {fence} is never closed: everything after it is treated as code",
        FENCE,
    )


def unclosed_comment(line: int) -> RoadmapProblem:
    return RoadmapProblem(
        line, 1, "HTML comment is never closed: everything after it is ignored", COMMENT
    )


def bad_heading(line: int, message: str) -> RoadmapProblem:
    return RoadmapProblem(line, 1, message, HEADING)
