"""Dependencies between ROADMAP items: references in the text, what they resolve to, and the
problems they make (an item depending on itself, on an id that is no item, on an id two
different planned headings share, or a cycle).

References are `US-NNN` / `us-nnn` (`US-11.2` too) and `PRIORITY N[.M]` (also `PRIORITY 2, 3
and 4`), found in a dependency field (`depfields`) or after "depends on" / "blocked by" in a
status line. Problems are reported only for items that may still run: a complete item's
dependencies can change nothing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controller.core.graph import find_cycles
from controller.specfile.roadmap import problems as report
from controller.specfile.roadmap.headings import DECO, Heading
from controller.specfile.roadmap.model import ItemStatus, RoadmapItem
from controller.specfile.roadmap.problems import RoadmapProblem

Ref = tuple[str, int, int]  # (raw id, 1-based line, 1-based column)

NONE_ENTRY = re.compile(
    r"(?:none|n/?a|nothing|no\s+(?:dependencies|deps|blockers)|-|—)(?![\w/])", re.IGNORECASE
)
_DEP_IN_STATUS = re.compile(
    r"\b(?:depends\s+on|blocked\s+by|requires|waiting\s+(?:on|for))\b:?", re.IGNORECASE
)
_NUM = r"\d+(?:\.\d+)*"
_REF_RE = re.compile(
    rf"\b(?:(?P<p>[Pp][Rr][Ii][Oo][Rr][Ii][Tt][Yy])[\s-]*(?P<pn>{_NUM})(?!\w|\.\d)"
    rf"(?P<more>(?:\s*(?:,|&|\band\b)\s*{_NUM}(?!\w|\.\d))*)"
    r"|(?:US[\s-]?|us-)(?P<un>\d+(?:\.\d+)*)(?!\w|\.\d))"
)
_MORE_NUM = re.compile(_NUM)
_US_ID = re.compile(rf"us-{_NUM}")


def refs(text: str, line: int, col0: int) -> list[Ref]:
    """Item references in a dependency text: (raw id, line, column)."""
    out: list[Ref] = []
    for m in _REF_RE.finditer(text):
        col = col0 + m.start()
        if m.group("un") is not None:
            out.append((f"us-{m.group('un')}", line, col))
            continue
        out.append((f"priority-{m.group('pn')}", line, col))
        more = m.group("more")
        if more:
            for n in _MORE_NUM.finditer(more):
                out.append((f"priority-{n.group(0)}", line, col + m.start("more") - m.start()))
    return out


def entry_refs(text: str, line: int, col: int) -> list[Ref]:
    """References of one dependency entry; none for `None`, `N/A`, `-` and the like."""
    deco = DECO.match(text)
    body = text[deco.end() :] if deco else text
    if not body or NONE_ENTRY.match(body):
        return []
    return refs(text, line, col)


def status_refs(text: str, line: int, col: int) -> list[Ref]:
    """References after "depends on", "blocked by", ... in a `**Status**:` text."""
    d = _DEP_IN_STATUS.search(text)
    return refs(text[d.end() :], line, col + d.end()) if d else []


def number_key(number: str) -> tuple[int, ...]:
    """`043` and `43` name the same item, `11.2` is 11 then 2 (no float rounding)."""
    return tuple(int(part) for part in number.split("."))


@dataclass(frozen=True)
class Resolver:
    """Raw ids -> item ids. `US-1` names `us-001` when exactly one US item has number 1, else
    the PRIORITY item whose title starts with `US-1` (its alias). `ambiguous`: ids that two
    different planned headings share (line numbers of the headings), see `duplicates`."""

    ids: Mapping[str, object]
    us_by_number: dict[tuple[int, ...], list[str]]
    aliases: dict[tuple[int, ...], str]
    ambiguous: Mapping[str, tuple[int, ...]]

    @classmethod
    def of(
        cls, first: Mapping[str, Heading], ambiguous: Mapping[str, tuple[int, ...]] | None = None
    ) -> Resolver:
        us_by_number: dict[tuple[int, ...], list[str]] = {}
        for item_id in first:
            if _US_ID.fullmatch(item_id):
                us_by_number.setdefault(number_key(item_id[3:]), []).append(item_id)
        aliases = {
            number_key(h.alias[3:]): item_id
            for item_id, h in first.items()
            if h.alias and h.alias not in first
        }
        return cls(first, us_by_number, aliases, ambiguous or {})

    def resolve(self, raw_id: str) -> str:
        if raw_id in self.ids:
            return raw_id
        if raw_id.startswith("us-"):
            key = number_key(raw_id[3:])
            same = self.us_by_number.get(key, [])
            if len(same) == 1:
                return same[0]
            if key in self.aliases:
                return self.aliases[key]
        return raw_id


def item_dependencies(
    item_id: str,
    raw: Sequence[Ref],
    resolver: Resolver,
    problems: list[RoadmapProblem],
    *,
    report_problems: bool = True,
) -> tuple[str, ...]:
    """The distinct items `item_id` depends on; self, unknown and ambiguous references are
    reported (when `report_problems`: not for a complete item, which never runs)."""
    deps: list[str] = []
    for raw_id, line, col in raw:
        dep = resolver.resolve(raw_id)
        if dep == item_id:
            if report_problems:
                problems.append(report.self_dependency(line, col, item_id))
            continue
        if report_problems and dep not in resolver.ids:
            problems.append(report.unknown_dependency(line, col, item_id, dep))
        if report_problems and dep in resolver.ambiguous:
            lines = resolver.ambiguous[dep]
            problems.append(report.ambiguous_dependency(line, col, item_id, dep, lines))
        if dep not in deps:
            deps.append(dep)
    return tuple(deps)


def cycle_problems(items: Sequence[RoadmapItem]) -> list[RoadmapProblem]:
    """One problem per tangle of items that may still run and depend on each other, at its
    first item's line (a complete item's dependencies hold nothing back)."""
    line = {it.id: it.line for it in items if it.status is not ItemStatus.COMPLETE}
    # items are in file order, so "first in the graph" is the first heading of a cycle
    graph = {it.id: [d for d in it.depends_on if d in line] for it in items if it.id in line}
    return [report.cycle(line[c[0]], c) for c in find_cycles(graph, one_per_component=True)]
