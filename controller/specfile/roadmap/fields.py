"""Fields of an item's section: `**Status**:`, `**Files to Modify**:`, `**Estimated Effort**:`
lines (inline or as the bullet list below them), dependencies in every form `depfields`
reads, and the prompt.

Only the first status and estimate of a section count; dependencies and paths accumulate.
Paths are checked as globs here, so a prose entry is reported at its line instead of
becoming a scope that matches nothing.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

from controller.model.globs import pattern_problem
from controller.specfile.roadmap import depfields
from controller.specfile.roadmap import problems as report
from controller.specfile.roadmap.dependencies import Ref, status_refs
from controller.specfile.roadmap.headings import HEADING_RE
from controller.specfile.roadmap.problems import RoadmapProblem

_KEY_LINE = re.compile(
    r"^ ?(?:[-*+] +)?(?:\*\*|__)(?P<key>[A-Za-z][A-Za-z /]*?)"
    r"(?::(?:\*\*|__)|(?:\*\*|__)\s*:)\s*(?P<val>.*)$"
)
_STATUS_KEYS = {"status"}
_PATH_KEYS = {
    "files to modify",
    "files to create",
    "files to create/modify",
    "files to create or modify",
    "files to change",
    "files to touch",
}
_ESTIMATE_KEYS = {
    "estimated effort",
    "estimated time",
    "estimated duration",
    "estimated timeline",
    "estimated",
    "estimate",
    "effort",
}
_BULLET = re.compile(r"^(\s*)(?:[-*+]|\d+[.)])\s+(?:\[[ xX]\]\s+)?(.*)$")


@dataclass
class Fields:
    status_text: str | None = None
    status_at: tuple[int, int] = (0, 0)
    deps: list[Ref] = field(default_factory=list)
    paths: list[str] = field(default_factory=list)
    estimate_text: str | None = None
    problems: list[RoadmapProblem] = field(default_factory=list)
    # dependency text that cannot be read: reported only for items that may still run
    dep_notes: list[RoadmapProblem] = field(default_factory=list)


def _following_bullets(
    lines: Sequence[str], mask: Sequence[bool], start: int, end: int
) -> list[tuple[int, int, str]]:
    """Top-level bullet entries just below a `**Key**:` line: (line index, column, text)."""
    out: list[tuple[int, int, str]] = []
    indent: int | None = None
    i = start
    while i < end:
        line = lines[i]
        if mask[i] or HEADING_RE.match(line):
            break
        if not line.strip():
            i += 1
            continue
        b = _BULLET.match(line)
        if b is None:
            if indent is not None and line[: len(line) - len(line.lstrip())]:
                i += 1  # an indented continuation line of the previous entry
                continue
            break
        width = len(b.group(1))
        if indent is None:
            indent = width
        if width == indent:
            out.append((i, b.start(2) + 1, b.group(2)))
        elif width < indent:
            break
        i += 1
    return out


def _split_inline(value: str) -> list[tuple[int, str]]:
    """Split an inline list on commas and semicolons outside brackets and backticks."""
    parts: list[tuple[int, str]] = []
    depth, tick, begin = 0, False, 0
    for j, ch in enumerate(value):
        if ch == "`":
            tick = not tick
        elif not tick and ch in "([{":
            depth += 1
        elif not tick and ch in ")]}":
            depth = max(0, depth - 1)
        elif not tick and depth == 0 and ch in ",;":
            parts.append((begin, value[begin:j]))
            begin = j + 1
    parts.append((begin, value[begin:]))
    return [(b + len(p) - len(p.lstrip()), p.strip()) for b, p in parts if p.strip()]


_COMMENT_CUT = re.compile(r"\s+(?:\(|[-–—]\s|#\s|//)|:\s")


def _path_entry(text: str, line: int, col: int) -> tuple[list[str], list[RoadmapProblem]]:
    entry = text.strip()
    if not entry:
        return [], []
    label = entry.startswith(("**", "__")) or entry.endswith(":")
    if label:  # `**Group name**:` introduces prose, not a path
        return [], [report.not_a_path(text, line, col)]
    if entry.startswith("`"):
        blanked = re.sub(r"`[^`]*`", lambda m: "x" * len(m.group(0)), entry)
        cut = _COMMENT_CUT.search(blanked)
        head = entry[: cut.start()] if cut else entry
        found = re.findall(r"`([^`]+)`", head)
        candidates = [c.strip() for c in found]
    else:
        cut = _COMMENT_CUT.search(entry)
        head = (entry[: cut.start()] if cut else entry).strip()
        if not head or any(c.isspace() for c in head):
            return [], [report.not_a_path(text, line, col)]
        candidates = [head]
    paths: list[str] = []
    problems: list[RoadmapProblem] = []
    for cand in candidates:
        cand = re.sub(r":\d+(?:-\d+)?$", "", cand)  # `file.py:120-140` -> file.py
        if cand.startswith("./"):
            cand = cand[2:]
        problem = pattern_problem(cand)
        if problem:
            problems.append(RoadmapProblem(line, col, problem, report.PATH))
        else:
            paths.append(cand)
    return paths, problems


def section_fields(
    lines: Sequence[str], mask: Sequence[bool], start: int, end: int, item_id: str = ""
) -> Fields:
    """The fields of the section from heading line `start` to `end` (0-based, exclusive)."""
    f = Fields()
    for i in range(start + 1, end):
        if mask[i]:
            continue
        line = lines[i]
        dependency = depfields.looks_like_dependency(line)
        if dependency and _dependency_line(f, lines, mask, i, end, item_id):
            continue
        if "**" not in line and "__" not in line:
            continue
        m = _KEY_LINE.match(line)
        if m is None:
            continue
        key = re.sub(r"\s+", " ", m.group("key").strip().lower())
        val = m.group("val").strip()
        col = m.start("val") + 1
        if key in _STATUS_KEYS:
            if f.status_text is None:
                f.status_text, f.status_at = val, (i + 1, col)
                f.deps.extend(status_refs(val, i + 1, col))
        elif key in _PATH_KEYS:
            _path_field(f, lines, mask, i, end, val, col)
        elif key in _ESTIMATE_KEYS and f.estimate_text is None and val:
            f.estimate_text = val.split("|")[0].replace("**", "").strip()
    return f


def _dependency_line(
    f: Fields, lines: Sequence[str], mask: Sequence[bool], i: int, end: int, item_id: str
) -> bool:
    """Read line `i` when it is a dependency field or heading (True), else note prose that
    states a dependency; False unless the line was consumed."""
    entries = depfields.field_entries(lines, mask, i, end)
    if entries is not None:
        refs, notes = depfields.read_entries(item_id, entries, i + 1)
        f.deps.extend(refs)
        f.dep_notes.extend(notes)
        return True
    key = _KEY_LINE.match(lines[i])
    if key is not None and key.group("key").strip().lower() in _STATUS_KEYS:
        return False  # a status line's "(Depends on US-029)" is read with the status
    note = depfields.loose_mention(item_id, lines[i], i)
    if note is not None:
        f.dep_notes.append(note)
    return False


def _path_field(
    f: Fields, lines: Sequence[str], mask: Sequence[bool], i: int, end: int, val: str, col: int
) -> None:
    entries: Iterable[tuple[int, int, str]]
    if not val or val.endswith(":"):
        entries = _following_bullets(lines, mask, i + 1, end)
    else:
        entries = [(i, col + c, t) for c, t in _split_inline(val)]
    for li, c, t in entries:
        paths, problems = _path_entry(t, li + 1, c)
        f.paths.extend(p for p in paths if p not in f.paths)
        f.problems.extend(problems)


_RULE = re.compile(r"^ {0,3}(?:(?:-\s*){3,}|(?:\*\s*){3,}|(?:_\s*){3,})$")


def prompt(lines: Sequence[str], start: int, end: int) -> str:
    """The prompt of an item: its section, without trailing blank lines and rules."""
    body = [line.rstrip() for line in lines[start:end]]
    while len(body) > 1 and (not body[-1] or _RULE.match(body[-1])):
        body.pop()
    return "\n".join(body)
