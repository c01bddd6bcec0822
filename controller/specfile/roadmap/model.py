"""The result of parsing a ROADMAP: items with their status, and the parse as a whole.

Plain frozen values, no parsing here: they change when what a backlog item carries changes.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

from controller.specfile.roadmap.problems import RoadmapProblem


class ItemStatus(StrEnum):
    PLANNED = "planned"
    IN_PROGRESS = "in_progress"
    COMPLETE = "complete"
    BLOCKED = "blocked"


@dataclass(frozen=True)
class RoadmapItem:
    id: str
    title: str
    status: ItemStatus
    depends_on: tuple[str, ...]
    paths: tuple[str, ...]
    estimate_s: float | None
    estimate_text: str | None
    prompt: str
    line: int  # 1-based line of the heading


@dataclass(frozen=True)
class RoadmapParse:
    items: tuple[RoadmapItem, ...]
    problems: tuple[RoadmapProblem, ...]
    source: str = "ROADMAP.md"

    def item(self, item_id: str) -> RoadmapItem | None:
        return next((i for i in self.items if i.id == item_id), None)

    def format_problems(self) -> list[str]:
        """`source:line:column: message` lines, in file order."""
        return [f"{self.source}:{p.line}:{p.column}: {p.message}" for p in self.problems]
