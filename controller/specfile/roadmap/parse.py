"""Markdown ROADMAP -> backlog items: the parser behind `backlogFrom` and `import-roadmap`.

Users of the original workflow keep their backlog in a hand-written ROADMAP.md. This package
owns reading that file's planned items (`## US-NNN: Title`, `## PRIORITY N: Title`,
`### PRIORITY N.M: Title`, with emoji and bold decorations) and turning them into backlog
entries; nothing else in the controller knows the markdown format. It is a pure function of
the text (only `parse_roadmap_file` touches the disk) so it can be tested and benchmarked
alone, and it never guesses silently: whatever it cannot place is returned as a problem with
its markdown line. This module stitches the steps together; each lives in its own module.

Rules, in short:
- Headings inside fenced code blocks (``` or ~~~, any length, any indentation) and inside
  `<!-- -->` comments are ignored (`masking`). Setext (underlined) headings are ignored.
- An item's section runs from its heading to the next heading of the same or a higher level,
  or to the next item heading of any level (so a nested item never leaks into its parent).
- Ids come from the heading number only (`priority-2.5`, `us-043`), so reordering the file
  never changes them (`headings`). Of several headings with the same id, `duplicates` says
  which one is used (the one that may still run; different planned items all run).
- Status: the first `**Status**:` line of the section, else a status marker on the heading,
  else planned (`status`, `fields`). Effort estimates count working time (`estimates`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from controller.specfile.roadmap import problems as report
from controller.specfile.roadmap.dependencies import Resolver, cycle_problems, item_dependencies
from controller.specfile.roadmap.duplicates import Candidate, choose
from controller.specfile.roadmap.estimates import parse_estimate
from controller.specfile.roadmap.fields import Fields, prompt, section_fields
from controller.specfile.roadmap.headings import Heading, find_headings, section_end
from controller.specfile.roadmap.masking import code_mask
from controller.specfile.roadmap.model import ItemStatus, RoadmapItem, RoadmapParse
from controller.specfile.roadmap.problems import RoadmapProblem
from controller.specfile.roadmap.status import classify_status


@dataclass(frozen=True)
class _Section:
    heading: Heading
    fields: Fields
    prompt: str
    status: ItemStatus
    status_problems: tuple[RoadmapProblem, ...]


def parse_roadmap(text: str, source: str = "ROADMAP.md") -> RoadmapParse:
    """Backlog items and located problems of a markdown ROADMAP."""
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    problems: list[RoadmapProblem] = []
    mask = code_mask(lines, problems)
    sections = _sections(lines, mask, problems)
    choice = choose([_candidate(s) for s in sections], problems)
    chosen = [(item_id, sections[k]) for k, item_id in choice.chosen]
    resolver = Resolver.of({item_id: s.heading for item_id, s in chosen}, choice.ambiguous)
    items = [_item(item_id, s, resolver, problems) for item_id, s in chosen]
    problems.extend(cycle_problems(items))
    problems.sort(key=lambda p: (p.line, p.column))
    return RoadmapParse(tuple(items), tuple(problems), source)


def parse_roadmap_file(path: str | Path) -> RoadmapParse:
    """`parse_roadmap` of a file (UTF-8, a byte-order mark is ignored)."""
    p = Path(path)
    return parse_roadmap(p.read_text(encoding="utf-8-sig"), source=str(p))


def _sections(
    lines: Sequence[str], mask: Sequence[bool], problems: list[RoadmapProblem]
) -> list[_Section]:
    """The section of every item heading, in file order; bad headings are reported."""
    headings = find_headings(lines, mask)
    sections: list[_Section] = []
    for k, h in enumerate(headings):
        if h.kind == "bad":
            problems.append(report.bad_heading(h.index + 1, h.message))
            continue
        if h.kind != "item":
            continue
        end = section_end(headings, k, len(lines))
        fields = section_fields(lines, mask, h.index, end, h.item_id)
        found: list[RoadmapProblem] = []
        status = _status(h, fields, found)
        sections.append(_Section(h, fields, prompt(lines, h.index, end), status, tuple(found)))
    return sections


def _candidate(s: _Section) -> Candidate:
    h = s.heading
    return Candidate(h.item_id, h.index + 1, s.status, h.title, tuple(r[0] for r in s.fields.deps))


def _status(h: Heading, f: Fields, problems: list[RoadmapProblem]) -> ItemStatus:
    """The status line's status, else the heading's marker, else planned."""
    status = classify_status(f.status_text) if f.status_text else None
    if status is None and f.status_text:
        fallback = h.status or ItemStatus.PLANNED
        problems.append(
            report.unrecognized_status(f.status_at, f.status_text, h.item_id, fallback.value)
        )
    return status or h.status or ItemStatus.PLANNED


def _item(
    item_id: str, s: _Section, resolver: Resolver, problems: list[RoadmapProblem]
) -> RoadmapItem:
    h, f = s.heading, s.fields
    runs = s.status is not ItemStatus.COMPLETE
    problems.extend(f.problems)
    problems.extend(s.status_problems)
    if runs:  # what a complete item says about dependencies can change nothing
        problems.extend(f.dep_notes)
    deps = item_dependencies(item_id, f.deps, resolver, problems, report_problems=runs)
    return RoadmapItem(
        id=item_id,
        title=h.title,
        status=s.status,
        depends_on=deps,
        paths=tuple(f.paths),
        estimate_s=parse_estimate(f.estimate_text) if f.estimate_text else None,
        estimate_text=f.estimate_text,
        prompt=s.prompt,
        line=h.index + 1,
    )
