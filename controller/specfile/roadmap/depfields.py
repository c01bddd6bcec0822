"""Where an item's section states its dependencies, in every form a hand-written ROADMAP uses.

Read (the key is any of `DEP_KEYS`, case-insensitive):
- a field, bold or plain, bulleted or not, indented or not: `**Dependencies**: US-1`,
  `**Depends On**:` with a bullet list below, `Depends on: US-001`, `- Dependencies: US-002`,
  `   - **Blocked By**: US-062`, `**Dependency**: Requires PRIORITY 2.6 completion`;
- a heading such as `### Dependencies`, its bullet list (or first paragraph) as the entries;
- a status line's "(Depends on US-029)", "Blocked by PRIORITY 3" (see `dependencies`).

Every entry that names no item (`US-NNN`, `PRIORITY N`) and is not an explicit "none" is a
located warning, and so is a line outside these forms that says "depends on US-7" or
"blocked by PRIORITY 3": such text looks like a dependency but is not read as one. Nothing
in a dependency field is dropped silently.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from controller.specfile.roadmap import problems as report
from controller.specfile.roadmap.dependencies import NONE_ENTRY, Ref, entry_refs
from controller.specfile.roadmap.headings import DECO, HEADING_RE
from controller.specfile.roadmap.problems import RoadmapProblem

DEP_KEYS = frozenset(
    {
        "dependencies",
        "dependency",
        "depends on",
        "depend on",
        "blocked by",
        "prerequisites",
        "prerequisite",
        "requires",
    }
)
# a `Key: value` line: optional indent, bullet and bold/underline around the key or the colon
_FIELD = re.compile(
    r"^(?P<indent>[ \t]*)(?:(?:[-*+•]|\d+[.)])[ \t]+)?(?:\*\*|__)?"
    r"(?P<key>[A-Za-z][A-Za-z /]{0,30}?)[ \t]*(?:\*\*|__)?[ \t]*:(?:\*\*|__)?[ \t]*(?P<val>.*)$"
)
_BULLET = re.compile(r"^([ \t]*)(?:[-*+•]|\d+[.)])[ \t]+(?:\[[ xX]\][ \t]+)?(.*)$")
# prose that states a dependency on an item outside the forms above
_LOOSE = re.compile(
    r"\b(?:depends?\s+on|blocked\s+by)\s*:?\s*(?:\*\*)?(?=(?:US[\s-]?\d|PRIORITY[\s-]*\d))",
    re.IGNORECASE,
)
_HINT = ("depend", "blocked", "prereq", "requires")


def _key(text: str) -> str:
    return re.sub(r"\s+", " ", text.strip().lower())


def _heading_key(line: str) -> str | None:
    m = HEADING_RE.match(line)
    if m is None or not m.group(2):
        return None
    text = m.group(2)
    deco = DECO.match(text)
    text = text[deco.end() :] if deco else text
    return _key(text.replace("**", "").replace("__", "").rstrip(": "))


def block_entries(
    lines: Sequence[str], mask: Sequence[bool], start: int, end: int
) -> list[tuple[int, int, str]]:
    """The entries below a dependency key or heading: the top-level bullets of the list that
    follows (indented continuation lines belong to their entry), else the first paragraph's
    lines. (line index, 1-based column, text)."""
    out: list[tuple[int, int, str]] = []
    indent: int | None = None
    paragraph = False
    for i in range(start, end):
        line = lines[i]
        if mask[i] or HEADING_RE.match(line):
            break
        if not line.strip():
            if paragraph:
                break
            continue
        b = _BULLET.match(line)
        if b is None:
            if indent is not None:
                if line[: len(line) - len(line.lstrip())]:
                    continue  # an indented continuation line of the previous entry
                break
            paragraph = True
            out.append((i, len(line) - len(line.lstrip()) + 1, line.strip()))
            continue
        if paragraph:
            break
        width = len(b.group(1).expandtabs())
        if indent is None:
            indent = width
        if width == indent:
            out.append((i, b.start(2) + 1, b.group(2)))
        elif width < indent:
            break
    return out


def field_entries(
    lines: Sequence[str], mask: Sequence[bool], i: int, end: int
) -> list[tuple[int, int, str]] | None:
    """The entries of the dependency field or heading on line `i`, or None when the line is
    neither. An inline value is one entry (so `PRIORITY-28, 27` keeps its keyword for 27)."""
    line = lines[i]
    heading = _heading_key(line) if "#" in line[:8] else None
    if heading is not None:
        return block_entries(lines, mask, i + 1, end) if heading in DEP_KEYS else None
    m = _FIELD.match(line)
    if m is None or _key(m.group("key")) not in DEP_KEYS:
        return None
    val = m.group("val").strip()
    if val and not val.endswith(":"):
        return [(i, m.start("val") + 1, m.group("val").rstrip())]
    return block_entries(lines, mask, i + 1, end)


def looks_like_dependency(line: str) -> bool:
    """Cheap test before the regexes: could `line` be about dependencies at all?"""
    low = line.lower()
    return any(h in low for h in _HINT)


def read_entries(
    item_id: str, entries: Sequence[tuple[int, int, str]], key_line: int
) -> tuple[list[Ref], list[RoadmapProblem]]:
    """References of a field's entries; an entry naming no item is a located warning, an empty
    field too."""
    refs: list[Ref] = []
    notes: list[RoadmapProblem] = []
    if not entries:
        notes.append(report.empty_dependencies(key_line, item_id))
    for li, col, text in entries:
        found = entry_refs(text, li + 1, col)
        if found:
            refs.extend(found)
        elif not is_none(text):
            notes.append(report.unreadable_dependency(li + 1, col, item_id, text))
    return refs, notes


def is_none(text: str) -> bool:
    deco = DECO.match(text)
    body = text[deco.end() :] if deco else text
    return not body.strip() or bool(NONE_ENTRY.match(body.replace("**", "")))


def loose_mention(item_id: str, line: str, li: int) -> RoadmapProblem | None:
    """A warning for prose that states a dependency outside a dependency field."""
    m = _LOOSE.search(line)
    if m is None:
        return None
    return report.loose_dependency(li + 1, m.start() + 1, item_id, line.strip())
