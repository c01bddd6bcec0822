"""One id on several headings: which heading is used, and when that is a problem.

A long hand-written ROADMAP reuses numbers: a finished `PRIORITY 3` and a later, different
`PRIORITY 3`, or the same story written out twice. The rule is to never lose planned work and
never guess where a guess could change what runs:

- at most one of the headings may still run (the others are complete): that one is used, so
  its work runs and whatever depends on the id waits for it (the conservative reading); when
  all are complete, the first is used. A warning names the heading used and those ignored;
- several may still run and they agree (same title, same dependencies): the first is used;
- several may still run and they differ: they are different planned items, and all of them
  run, the first under the id and the later ones under `<id>-2`, `<id>-3`, ... A warning says
  so. Which of them a reference to the id means cannot be known, so an item that may still run
  and depends on that id is an error (`dependencies.item_dependencies`).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from controller.specfile.roadmap import problems as report
from controller.specfile.roadmap.dependencies import number_key
from controller.specfile.roadmap.model import ItemStatus
from controller.specfile.roadmap.problems import RoadmapProblem


@dataclass(frozen=True)
class Candidate:
    """One item heading, as far as choosing between duplicates needs it."""

    item_id: str
    line: int  # 1-based line of the heading
    status: ItemStatus
    title: str
    deps: tuple[str, ...]  # raw dependency ids, as written


@dataclass(frozen=True)
class Choice:
    """The headings used, in file order, with the id each runs under (`chosen[k]` is
    (index into the candidates, id)), and the ids different planned headings share."""

    chosen: tuple[tuple[int, str], ...]
    ambiguous: dict[str, tuple[int, ...]]


def _same(a: Candidate, b: Candidate) -> bool:
    """Two headings that say the same: title (words) and dependencies (`US-1` is `US-001`)."""

    def words(title: str) -> str:
        return re.sub(r"\W+", " ", title).strip().lower()

    def deps(raw: tuple[str, ...]) -> set[tuple[str, tuple[int, ...]]]:
        out = set()
        for dep in raw:
            kind, _, number = dep.partition("-")
            out.add((kind, number_key(number)))
        return out

    return words(a.title) == words(b.title) and deps(a.deps) == deps(b.deps)


def choose(candidates: Sequence[Candidate], problems: list[RoadmapProblem]) -> Choice:
    """Apply the rule above to every id; warnings go to `problems`."""
    groups: dict[str, list[int]] = {}
    for k, c in enumerate(candidates):
        groups.setdefault(c.item_id, []).append(k)
    taken = set(groups)
    used: dict[int, str] = {}
    ambiguous: dict[str, tuple[int, ...]] = {}
    for item_id, ks in groups.items():
        if len(ks) == 1:
            used[ks[0]] = item_id
            continue
        live = [k for k in ks if candidates[k].status is not ItemStatus.COMPLETE]
        distinct = [
            k
            for i, k in enumerate(live)
            if not any(_same(candidates[k], candidates[j]) for j in live[:i])
        ]
        if len(distinct) <= 1:
            first = live[0] if live else ks[0]
            used[first] = item_id
            _report_ignored(candidates, item_id, first, [k for k in ks if k != first], problems)
            continue
        used[distinct[0]] = item_id
        renamed = []
        for k in distinct[1:]:
            new = _new_id(item_id, taken)
            taken.add(new)
            used[k] = new
            renamed.append((candidates[k].line, new))
        problems.append(report.duplicate_kept(item_id, candidates[distinct[0]].line, renamed))
        ambiguous[item_id] = tuple(candidates[k].line for k in distinct)
        rest = [k for k in ks if k not in distinct]
        if rest:
            _report_ignored(candidates, item_id, distinct[0], rest, problems)
    return Choice(tuple((k, used[k]) for k in sorted(used)), ambiguous)


def _report_ignored(
    candidates: Sequence[Candidate],
    item_id: str,
    first: int,
    others: list[int],
    problems: list[RoadmapProblem],
) -> None:
    c = candidates[first]
    note = ""
    if c.status is not ItemStatus.COMPLETE and any(
        candidates[k].status is ItemStatus.COMPLETE for k in others
    ):
        note = f"; the work of line {c.line} runs, and items depending on {item_id!r} wait for it"
    ignored = [(candidates[k].line, candidates[k].status.value) for k in others]
    problems.append(report.duplicate(item_id, (c.line, c.status.value), ignored, note))


def _new_id(item_id: str, taken: set[str]) -> str:
    """`<id>-2`, or the next free number (heading ids are short: this is a valid task id)."""
    n = 2
    while f"{item_id}-{n}" in taken and n < 10_000:
        n += 1
    return f"{item_id}-{n}"
