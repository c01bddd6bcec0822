"""What the ROADMAP parser reports: `RoadmapProblem`, its kinds, and the wording of each.

Every problem is located (1-based line and column of the markdown file) and has a kind; the
kinds in `FATAL_KINDS` reject a backlog, the others are warnings. The messages live here, in
one place, so their wording changes in one file.
"""

from __future__ import annotations

from dataclasses import dataclass

# kinds
HEADING = "heading"  # a heading that looks like an item but cannot be placed
DUPLICATE = "duplicate"  # one id on several headings: which one is used (a warning)
AMBIGUOUS_DEPENDENCY = "ambiguous-dependency"  # a reference to an id two planned items share
DEPENDENCY = "dependency"  # text that looks like a dependency but names no item
UNKNOWN_DEPENDENCY = "unknown-dependency"
SELF_DEPENDENCY = "self-dependency"
CYCLE = "cycle"
STATUS = "status"  # an unrecognised `**Status**:` text
PATH = "path"  # a `Files to Modify` entry that is not a path
FENCE = "fence"  # a code fence that is never closed
COMMENT = "comment"  # an HTML comment that is never closed

# problems that could change what runs reject the backlog (a task could start before what it
# waits for, or never); the rest are warnings: a heading the parser cannot place, a duplicate
# id (`duplicates` says which heading is used), an unrecognised status, a non-path scope
# entry, dependency text that names no item
FATAL_KINDS = frozenset({UNKNOWN_DEPENDENCY, AMBIGUOUS_DEPENDENCY, SELF_DEPENDENCY, CYCLE})


@dataclass(frozen=True)
class RoadmapProblem:
    line: int  # 1-based
    column: int  # 1-based
    message: str
    kind: str = ""  # heading, duplicate, unknown-dependency, self-dependency, cycle, ...

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: {self.message}"


def duplicate(
    item_id: str, used: tuple[int, str], others: list[tuple[int, str]], note: str
) -> RoadmapProblem:
    """`used` and `others`: (line, status) of the heading used and of those ignored;
    reported at the first heading ignored."""
    every = " and ".join(str(line) for line in sorted([used[0], *(n for n, _ in others)]))
    ignored = ", ".join(f"line {line} ({status})" for line, status in others)
    return RoadmapProblem(
        others[0][0],
        1,
        f"duplicate id {item_id!r}: headings on lines {every}; the one on line {used[0]} "
        f"({used[1]}) is used, {ignored} ignored{note}",
        DUPLICATE,
    )


def duplicate_kept(item_id: str, used: int, renamed: list[tuple[int, str]]) -> RoadmapProblem:
    """Different planned items under one id: each runs, the later ones under a new id."""
    names = ", ".join(f"line {line} as {new!r}" for line, new in renamed)
    return RoadmapProblem(
        renamed[0][0],
        1,
        f"duplicate id {item_id!r}: headings on lines {used} and "
        f"{', '.join(str(line) for line, _ in renamed)} are different planned items; both run: "
        f"line {used} as {item_id!r}, {names} (renumber a heading to choose its id)",
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


def ambiguous_dependency(
    line: int, col: int, item_id: str, dep: str, lines: tuple[int, ...]
) -> RoadmapProblem:
    where = " and ".join(str(n) for n in lines)
    return RoadmapProblem(
        line,
        col,
        f"{item_id!r} depends on {dep!r}, but the headings on lines {where} are different "
        "planned items with that id: renumber one so the dependency says which",
        AMBIGUOUS_DEPENDENCY,
    )


def unreadable_dependency(line: int, col: int, item_id: str, text: str) -> RoadmapProblem:
    return RoadmapProblem(
        line,
        col,
        f"dependency {text.strip()!r} of {item_id!r} names no roadmap item (US-NNN or "
        "PRIORITY N); not read as a task dependency",
        DEPENDENCY,
    )


def empty_dependencies(line: int, item_id: str) -> RoadmapProblem:
    return RoadmapProblem(
        line,
        1,
        f"dependency field of {item_id!r} lists nothing (write the items, or None)",
        DEPENDENCY,
    )


def loose_dependency(line: int, col: int, item_id: str, text: str) -> RoadmapProblem:
    return RoadmapProblem(
        line,
        col,
        f"{item_id!r}: {text!r} states a dependency outside a dependency field; not read "
        "(write it as `**Dependencies**: US-NNN` to make the task wait)",
        DEPENDENCY,
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
