"""Markdown ROADMAP -> backlog items: the parser behind `backlogFrom` and `import-roadmap`.

Users of the original workflow keep their backlog in a hand-written ROADMAP.md. This module
owns reading that file's planned items (`## US-NNN: Title`, `## PRIORITY N: Title`,
`### PRIORITY N.M: Title`, with emoji and bold decorations) and turning them into backlog
entries; nothing else in the controller knows the markdown format. It is a pure function of
the text (only `parse_roadmap_file` touches the disk) so it can be tested and benchmarked
alone, and it never guesses silently: whatever it cannot place is returned as a problem with
its markdown line.

Rules, in short:
- Headings inside fenced code blocks (``` or ~~~, any length, any indentation) and inside
  `<!-- -->` comments are ignored. Setext (underlined) headings are ignored.
- An item's section runs from its heading to the next heading of the same or a higher level,
  or to the next item heading of any level (so a nested item never leaks into its parent).
- Ids come from the heading number only (`priority-2.5`, `us-043`), so reordering the file
  never changes them. Of two headings with the same id the first one is kept.
- Status: the first `**Status**:` line of the section, else a status marker on the heading,
  else planned. Effort estimates count working time: 1 day = 8 h, 1 week = 5 days,
  1 month = 20 days (the convention the real ROADMAP writes out, e.g. "1 day (8 hours)").
"""

from __future__ import annotations

import re
from collections import deque
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from io import StringIO
from pathlib import Path

from controller.model.globs import pattern_problem
from controller.model.names import task_id_problem


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
class RoadmapProblem:
    line: int  # 1-based
    column: int  # 1-based
    message: str
    kind: str = ""  # heading, duplicate, unknown-dependency, self-dependency, cycle, ...

    def __str__(self) -> str:
        return f"{self.line}:{self.column}: {self.message}"


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


# --------------------------------------------------------------------------- status words

_STATUS_EMOJI = {
    "📝": ItemStatus.PLANNED,
    "🔄": ItemStatus.IN_PROGRESS,
    "🚧": ItemStatus.IN_PROGRESS,
    "🧪": ItemStatus.IN_PROGRESS,
    "⏳": ItemStatus.IN_PROGRESS,
    "✅": ItemStatus.COMPLETE,
    "✔": ItemStatus.COMPLETE,
    "☑": ItemStatus.COMPLETE,
    "⏸": ItemStatus.BLOCKED,
    "⛔": ItemStatus.BLOCKED,
    "🚫": ItemStatus.BLOCKED,
    "❌": ItemStatus.BLOCKED,
    "🛑": ItemStatus.BLOCKED,
}
# Longer phrases first: at one position the regex takes the first alternative that matches.
_STATUS_WORDS: tuple[tuple[str, ItemStatus], ...] = (
    (r"ready\s+for\s+(?:user\s+)?(?:testing|review|qa)", ItemStatus.IN_PROGRESS),
    (r"(?:partially|mostly|partly)\s+(?:complete|completed|done)", ItemStatus.IN_PROGRESS),
    (r"not\s+(?:yet\s+)?started", ItemStatus.PLANNED),
    (
        r"in[\s-]+progress|wip|ongoing|underway|started|on\s+track|in\s+review",
        ItemStatus.IN_PROGRESS,
    ),
    (
        r"in\s+planning|planned|planning|to[\s-]?do|backlog|ready(?:\s+to\s+\w+)?",
        ItemStatus.PLANNED,
    ),
    (r"proposed|pending|not\s+done", ItemStatus.PLANNED),
    (r"production[\s-]+ready", ItemStatus.COMPLETE),
    (
        r"on[\s-]hold|blocked|deferred|paused|postponed|waiting|failed|cancell?ed",
        ItemStatus.BLOCKED,
    ),
    (r"abandoned|won'?t\s+(?:do|fix)|wontfix|parked|suspended", ItemStatus.BLOCKED),
    (r"complete|completed|done|finished|implemented|shipped|merged|delivered", ItemStatus.COMPLETE),
)
_STATUS_RE = re.compile(
    "|".join(
        [f"(?P<e{i}>{re.escape(e)})" for i, e in enumerate(_STATUS_EMOJI)]
        + [rf"(?P<w{i}>\b(?:{w})\b)" for i, (w, _) in enumerate(_STATUS_WORDS)]
    ),
    re.IGNORECASE,
)
_STATUS_BY_GROUP = {f"e{i}": s for i, s in enumerate(_STATUS_EMOJI.values())} | {
    f"w{i}": s for i, (_, s) in enumerate(_STATUS_WORDS)
}


def classify_status(text: str) -> ItemStatus | None:
    """The status named first in `text` (emoji or word), or None when it names none."""
    m = _STATUS_RE.search(text)
    return _STATUS_BY_GROUP[m.lastgroup] if m and m.lastgroup else None


# --------------------------------------------------------------------------- headings

_HEADING_RE = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
_CLOSING_HASHES = re.compile(r"(?:^|[ \t]+)#+$")
_FENCE_RE = re.compile(r"^[ \t]*(`{3,}|~{3,})(.*)$")
_EMOJI_RANGES = "\u2300-\u23ff\u2460-\u27bf\u2b00-\u2bff\U0001f000-\U0001faff\ufe0f"
_DECO = re.compile(rf"^(?:[^\w\s]|[{_EMOJI_RANGES}]|_|\s)*")
_STATUS_PREFIX = re.compile(r"([A-Za-z][A-Za-z' ]{0,40}?)\s*:\s*")
_KEYWORD = re.compile(r"(PRIORITY|US)(?![A-Za-z])", re.IGNORECASE)
_NUMBER = re.compile(r"[ \t\-#]*(\d+(?:\.\d+)*)(?![\w.])")
_RANGE = re.compile(
    r"\s*(?:(?:through|thru|to)\s+(?:(?:PRIORITY|US)[\s-]*)?\d|[-–—.]+\s*(?:PRIORITY|US)[\s-]*\d)",
    re.IGNORECASE,
)
_SEPARATOR = re.compile(r"\s*(?:\*\*|__)?\s*(?::|\]|[-–—](?=\s|$)|$)\s*")
_BAD_TOKEN = re.compile(r"[ \t\-#]*([^\s:\]]*)\s*(?::|\]|\s[-–—]\s|$)")
_PLACEHOLDER = re.compile(r"|.*\d.*|X+|N+|TBD|\?+|#+", re.IGNORECASE)  # number-ish tokens
_EMOJI_CHAR = re.compile(rf"[{_EMOJI_RANGES}]")
_TITLE_LEAD = re.compile(rf"(?:[\s*_]|[{_EMOJI_RANGES}])*")
_US_ALIAS = re.compile(r"US[\s-]?(\d+)(?!\w)")


@dataclass(frozen=True)
class _Heading:
    index: int  # 0-based line
    level: int
    kind: str  # "item", "bad" (looks like an item, cannot be placed) or "prose"
    item_id: str = ""
    title: str = ""
    status: ItemStatus | None = None
    alias: str = ""
    message: str = ""


def _written(word: str, number: str) -> str:
    return f"US-{number}" if word.upper() == "US" else f"PRIORITY {number}"


def _parse_heading(index: int, level: int, text: str) -> _Heading:
    prose = _Heading(index, level, "prose")
    deco = _DECO.match(text)
    start = deco.end() if deco else 0
    prefix = text[:start]
    phrase = ""
    m = _STATUS_PREFIX.match(text, start)
    if m and classify_status(m.group(1)) is not None:
        after = _DECO.match(text, m.end())
        kw_at = after.end() if after else m.end()
        if _KEYWORD.match(text, kw_at):
            phrase, prefix, start = m.group(1), prefix + text[m.end() : kw_at], kw_at
    kw = _KEYWORD.match(text, start)
    if not kw:
        return prose
    word = kw.group(1)
    num = _NUMBER.match(text, kw.end())
    if num is None:
        bad = _BAD_TOKEN.match(text, kw.end())
        immediate = text[kw.end() : kw.end() + 1] in ("-", ":", "#", "")
        if bad and (word in ("PRIORITY", "US") or immediate):
            token = bad.group(1)
            if _PLACEHOLDER.fullmatch(token.strip("*")):
                what = f"number {token!r}" if token else "no number"
                return _Heading(
                    index,
                    level,
                    "bad",
                    message=f"heading looks like a backlog item but has {what} after "
                    f"{word!r}: write e.g. '{_written(word, '3')}: Title'",
                )
        return prose
    if _RANGE.match(text, num.end()):
        return _Heading(
            index,
            level,
            "bad",
            message="heading names a range of items; give each item its own heading "
            f"(e.g. '{_written(word, num.group(1))}: Title')",
        )
    sep = _SEPARATOR.match(text, num.end())
    if sep is None:
        return prose  # e.g. "US-016 COMPLETION SUMMARY": a heading about an item, not one
    kind = "priority" if word.lower() == "priority" else "us"
    item_id = f"{kind}-{num.group(1)}"
    problem = task_id_problem(item_id)
    if problem:
        return _Heading(index, level, "bad", message=f"heading gives an unusable id: {problem}")
    rest = text[sep.end() :]
    lead = _TITLE_LEAD.match(rest)
    lead_deco = ""
    if lead and lead.end():
        lead_deco, rest = rest[: lead.end()], rest[lead.end() :]
    if "**" in prefix and "**" in rest:
        cut = rest.index("**")
        title, tail = rest[:cut], rest[cut:]
    else:
        e = _EMOJI_CHAR.search(rest)
        title, tail = (rest[: e.start()], rest[e.start() :]) if e else (rest, "")
    title = re.sub(r"\s+", " ", title.replace("**", "").replace("__", "")).strip(" \t-–—:|*")
    status = classify_status(phrase) or classify_status(f"{prefix} {lead_deco} {tail}")
    alias = ""
    if kind == "priority":
        a = _US_ALIAS.match(title)
        alias = f"us-{a.group(1)}" if a else ""
    return _Heading(index, level, "item", item_id, title, status, alias)


# --------------------------------------------------------------------------- code masking


def _code_mask(lines: Sequence[str], problems: list[RoadmapProblem]) -> list[bool]:
    """True for each line inside a fenced code block or an HTML comment (delimiters too)."""
    mask = [False] * len(lines)
    fence: tuple[str, int, int] | None = None  # (char, length, opening line index)
    comment_at = -1
    for i, line in enumerate(lines):
        if fence is not None:
            mask[i] = True
            if fence[0] in line:
                m = _FENCE_RE.match(line)
                g = m.group(1) if m else ""
                if m and g[0] == fence[0] and len(g) >= fence[1] and not m.group(2).strip():
                    fence = None
            continue
        if comment_at >= 0:
            mask[i] = True
            if "-->" in line:
                comment_at = -1
            continue
        if "`" in line or "~" in line:
            m = _FENCE_RE.match(line)
            if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
                fence = (m.group(1)[0], len(m.group(1)), i)
                mask[i] = True
                continue
        stripped = line.lstrip(" ")
        if stripped.startswith("<!--") and len(line) - len(stripped) <= 3:
            mask[i] = True
            if "-->" not in stripped[4:]:
                comment_at = i
    if fence is not None:
        problems.append(
            RoadmapProblem(
                fence[2] + 1,
                1,
                f"code fence {fence[0] * fence[1]} is never closed: "
                "everything after it is treated as code",
                "fence",
            )
        )
    if comment_at >= 0:
        problems.append(
            RoadmapProblem(
                comment_at + 1,
                1,
                "HTML comment is never closed: everything after it is ignored",
                "comment",
            )
        )
    return mask


# --------------------------------------------------------------------------- section fields

_KEY_LINE = re.compile(
    r"^ ?(?:[-*+] +)?(?:\*\*|__)(?P<key>[A-Za-z][A-Za-z /]*?)"
    r"(?::(?:\*\*|__)|(?:\*\*|__)\s*:)\s*(?P<val>.*)$"
)
_STATUS_KEYS = {"status"}
_DEP_KEYS = {
    "dependencies",
    "dependency",
    "depends on",
    "blocked by",
    "prerequisites",
    "prerequisite",
    "requires",
}
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
_NONE_ENTRY = re.compile(
    r"(?:none|n/?a|nothing|no\s+(?:dependencies|deps|blockers)|-|—)(?![\w/])", re.IGNORECASE
)
_DEP_IN_STATUS = re.compile(
    r"\b(?:depends\s+on|blocked\s+by|requires|waiting\s+(?:on|for))\b:?", re.IGNORECASE
)
_NUM = r"\d+(?:\.\d+)*"
_REF_RE = re.compile(
    rf"\b(?:(?P<p>[Pp][Rr][Ii][Oo][Rr][Ii][Tt][Yy])[\s-]*(?P<pn>{_NUM})(?![\w.])"
    rf"(?P<more>(?:\s*(?:,|&|\band\b)\s*{_NUM}(?![\w.]))*)"
    r"|(?:US[\s-]?|us-)(?P<un>\d+)(?![\w.]))"
)
_MORE_NUM = re.compile(_NUM)
_ESTIMATE_RE = re.compile(
    r"(?P<a>\d+(?:\.\d+)?)(?:\s*(?:-|–|—|to)\s*(?P<b>\d+(?:\.\d+)?))?\s*"
    r"(?P<u>minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|wks?|w|months?)\b",
    re.IGNORECASE,
)
_HOUR = 3600.0
_UNIT_S = {"m": 60.0, "h": _HOUR, "d": 8 * _HOUR, "w": 40 * _HOUR, "mo": 160 * _HOUR}


def _unit_seconds(unit: str) -> float:
    u = unit.lower()
    if u.startswith("mo"):
        return _UNIT_S["mo"]
    return _UNIT_S[u[0]]


def parse_estimate(text: str) -> float | None:
    """Seconds of work in `2-3 days`, `4 hours`, `1 week`, `30 min` (upper bound of a range)."""
    m = _ESTIMATE_RE.search(text)
    if not m:
        return None
    amount = float(m.group("b") or m.group("a"))
    return amount * _unit_seconds(m.group("u"))


def format_estimate(seconds: float) -> str:
    """Backlog form of an estimate, readable by `durations.parse_duration`: `3h`, `1h30m`."""
    minutes = max(1, round(seconds / 60))
    hours, mins = divmod(minutes, 60)
    if not hours:
        return f"{mins}m"
    return f"{hours}h{mins}m" if mins else f"{hours}h"


@dataclass
class _Fields:
    status_text: str | None = None
    status_at: tuple[int, int] = (0, 0)
    deps: list[tuple[str, int, int]] = field(default_factory=list)  # (raw id, line, col)
    paths: list[str] = field(default_factory=list)
    estimate_text: str | None = None
    problems: list[RoadmapProblem] = field(default_factory=list)


def _following_bullets(
    lines: Sequence[str], mask: Sequence[bool], start: int, end: int
) -> list[tuple[int, int, str]]:
    """Top-level bullet entries just below a `**Key**:` line: (line index, column, text)."""
    out: list[tuple[int, int, str]] = []
    indent: int | None = None
    i = start
    while i < end:
        line = lines[i]
        if mask[i] or _HEADING_RE.match(line):
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


def _refs(text: str, line: int, col0: int) -> list[tuple[str, int, int]]:
    """Item references in a dependency text: (raw id, line, column)."""
    out: list[tuple[str, int, int]] = []
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


def _dep_entry(text: str, line: int, col: int) -> list[tuple[str, int, int]]:
    deco = _DECO.match(text)
    body = text[deco.end() :] if deco else text
    if not body or _NONE_ENTRY.match(body):
        return []
    return _refs(text, line, col)


_COMMENT_CUT = re.compile(r"\s+(?:\(|[-–—]\s|#\s|//)|:\s")


def _not_a_path(text: str, line: int, col: int) -> RoadmapProblem:
    return RoadmapProblem(
        line,
        col,
        f"'Files to Modify' entry {text.strip()!r} is not a path "
        "(write one path or glob per entry, e.g. `src/app/*.py`)",
        "path",
    )


def _path_entry(text: str, line: int, col: int) -> tuple[list[str], list[RoadmapProblem]]:
    entry = text.strip()
    if not entry:
        return [], []
    label = entry.startswith(("**", "__")) or entry.endswith(":")
    if label:  # `**Group name**:` introduces prose, not a path
        return [], [_not_a_path(text, line, col)]
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
            return [], [_not_a_path(text, line, col)]
        candidates = [head]
    paths: list[str] = []
    problems: list[RoadmapProblem] = []
    for cand in candidates:
        cand = re.sub(r":\d+(?:-\d+)?$", "", cand)  # `file.py:120-140` -> file.py
        if cand.startswith("./"):
            cand = cand[2:]
        problem = pattern_problem(cand)
        if problem:
            problems.append(RoadmapProblem(line, col, problem, "path"))
        else:
            paths.append(cand)
    return paths, problems


def _section_fields(lines: Sequence[str], mask: Sequence[bool], start: int, end: int) -> _Fields:
    f = _Fields()
    for i in range(start + 1, end):
        if mask[i]:
            continue
        line = lines[i]
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
                d = _DEP_IN_STATUS.search(val)
                if d:
                    f.deps.extend(_refs(val[d.end() :], i + 1, col + d.end()))
        elif key in _DEP_KEYS:
            entries: Iterable[tuple[int, int, str]]
            if not val or val.endswith(":"):
                entries = _following_bullets(lines, mask, i + 1, end)
            else:  # one entry, so `PRIORITY-28, 27` keeps its keyword for 27
                entries = [(i, col, val)]
            for li, c, t in entries:
                f.deps.extend(_dep_entry(t, li + 1, c))
        elif key in _PATH_KEYS:
            if not val or val.endswith(":"):
                entries = _following_bullets(lines, mask, i + 1, end)
            else:
                entries = [(i, col + c, t) for c, t in _split_inline(val)]
            for li, c, t in entries:
                paths, problems = _path_entry(t, li + 1, c)
                f.paths.extend(p for p in paths if p not in f.paths)
                f.problems.extend(problems)
        elif key in _ESTIMATE_KEYS and f.estimate_text is None and val:
            f.estimate_text = val.split("|")[0].replace("**", "").strip()
    return f


_RULE = re.compile(r"^ {0,3}(?:(?:-\s*){3,}|(?:\*\s*){3,}|(?:_\s*){3,})$")


def _prompt(lines: Sequence[str], start: int, end: int) -> str:
    body = [line.rstrip() for line in lines[start:end]]
    while len(body) > 1 and (not body[-1] or _RULE.match(body[-1])):
        body.pop()
    return "\n".join(body)


# --------------------------------------------------------------------------- checks


def _find_cycles(graph: dict[str, list[str]], order: dict[str, int]) -> list[list[str]]:
    """One cycle per strongly connected component of more than one item (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    components: list[list[str]] = []
    counter = 0
    for root in sorted(graph, key=order.__getitem__):
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            node, pos = work.pop()
            if pos == 0:
                index[node] = low[node] = counter
                counter += 1
                stack.append(node)
                on_stack.add(node)
            succ = graph[node]
            if pos < len(succ):
                work.append((node, pos + 1))
                nxt = succ[pos]
                if nxt not in index:
                    work.append((nxt, 0))
                elif nxt in on_stack:
                    low[node] = min(low[node], index[nxt])
                continue
            if low[node] == index[node]:
                comp: list[str] = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == node:
                        break
                if len(comp) > 1:
                    components.append(comp)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
    cycles = []
    for comp in components:
        members = set(comp)
        start = min(comp, key=order.__getitem__)
        # breadth-first search for the shortest way back to `start` inside the component
        prev: dict[str, str | None] = {start: None}
        queue = deque([start])
        last: str | None = None
        while queue and last is None:
            node = queue.popleft()
            for succ in graph[node]:
                if succ == start:
                    last = node
                    break
                if succ in members and succ not in prev:
                    prev[succ] = node
                    queue.append(succ)
        path: list[str] = []
        step = last
        while step is not None:
            path.append(step)
            step = prev[step]
        path.reverse()
        cycles.append([*path, start])
    return cycles


# --------------------------------------------------------------------------- entry points


def parse_roadmap(text: str, source: str = "ROADMAP.md") -> RoadmapParse:
    """Backlog items and located problems of a markdown ROADMAP."""
    lines = [line[:-1] if line.endswith("\r") else line for line in text.split("\n")]
    problems: list[RoadmapProblem] = []
    mask = _code_mask(lines, problems)

    headings: list[_Heading] = []
    for i, line in enumerate(lines):
        if mask[i] or "#" not in line[:4]:
            continue
        m = _HEADING_RE.match(line)
        if m is None:
            continue
        content = _CLOSING_HASHES.sub("", m.group(2) or "").strip()
        headings.append(_parse_heading(i, len(m.group(1)), content))

    raw: list[tuple[_Heading, _Fields, str, int]] = []
    for k, h in enumerate(headings):
        if h.kind == "bad":
            problems.append(RoadmapProblem(h.index + 1, 1, h.message, "heading"))
            continue
        if h.kind != "item":
            continue
        end = len(lines)
        for j in range(k + 1, len(headings)):
            later = headings[j]
            if later.level <= h.level or later.kind != "prose":
                end = later.index
                break
        f = _section_fields(lines, mask, h.index, end)
        raw.append((h, f, _prompt(lines, h.index, end), end))

    # duplicates: the first heading of an id wins
    first: dict[str, _Heading] = {}
    kept: list[tuple[_Heading, _Fields, str, int]] = []
    for h, f, prompt, end in raw:
        seen = first.get(h.item_id)
        if seen is not None:
            problems.append(
                RoadmapProblem(
                    h.index + 1,
                    1,
                    f"duplicate id {h.item_id!r}: headings on lines {seen.index + 1} and "
                    f"{h.index + 1}; the one on line {seen.index + 1} is used",
                    "duplicate",
                )
            )
            continue
        first[h.item_id] = h
        kept.append((h, f, prompt, end))

    us_by_number: dict[int, list[str]] = {}
    for item_id in first:
        if item_id.startswith("us-"):
            us_by_number.setdefault(int(item_id[3:]), []).append(item_id)
    aliases = {h.alias: h.item_id for h in first.values() if h.alias and h.alias not in first}

    def resolve(raw_id: str) -> str:
        if raw_id in first:
            return raw_id
        if raw_id.startswith("us-"):
            same = us_by_number.get(int(raw_id[3:]), [])
            if len(same) == 1:
                return same[0]
            for alias, target in aliases.items():
                if int(alias[3:]) == int(raw_id[3:]):
                    return target
        return raw_id

    items: list[RoadmapItem] = []
    for h, f, prompt, _end in kept:
        problems.extend(f.problems)
        status = classify_status(f.status_text) if f.status_text else None
        if status is None and f.status_text:
            fallback = h.status or ItemStatus.PLANNED
            problems.append(
                RoadmapProblem(
                    *f.status_at,
                    f"status {f.status_text!r} of {h.item_id!r} is not recognized "
                    "(use planned, in progress, complete or blocked); "
                    f"taken as {fallback.value}",
                    "status",
                )
            )
        status = status or h.status or ItemStatus.PLANNED
        deps: list[str] = []
        for raw_id, line, col in f.deps:
            dep = resolve(raw_id)
            if dep == h.item_id:
                problems.append(
                    RoadmapProblem(line, col, f"{h.item_id!r} depends on itself", "self-dependency")
                )
                continue
            if dep not in first:
                problems.append(
                    RoadmapProblem(
                        line,
                        col,
                        f"{h.item_id!r} depends on {dep!r}, which is not an item of this file",
                        "unknown-dependency",
                    )
                )
            if dep not in deps:
                deps.append(dep)
        estimate_s = parse_estimate(f.estimate_text) if f.estimate_text else None
        items.append(
            RoadmapItem(
                id=h.item_id,
                title=h.title,
                status=status,
                depends_on=tuple(deps),
                paths=tuple(f.paths),
                estimate_s=estimate_s,
                estimate_text=f.estimate_text,
                prompt=prompt,
                line=h.index + 1,
            )
        )

    order = {it.id: it.line for it in items}
    graph = {it.id: [d for d in it.depends_on if d in order] for it in items}
    for cycle in _find_cycles(graph, order):
        problems.append(
            RoadmapProblem(order[cycle[0]], 1, "dependency cycle: " + " -> ".join(cycle), "cycle")
        )

    problems.sort(key=lambda p: (p.line, p.column))
    return RoadmapParse(tuple(items), tuple(problems), source)


def parse_roadmap_file(path: str | Path) -> RoadmapParse:
    """`parse_roadmap` of a file (UTF-8, a byte-order mark is ignored)."""
    p = Path(path)
    return parse_roadmap(p.read_text(encoding="utf-8-sig"), source=str(p))


def completed_ids(items: Iterable[RoadmapItem]) -> frozenset[str]:
    """Ids of complete items: dependencies on them are already satisfied."""
    return frozenset(i.id for i in items if i.status is ItemStatus.COMPLETE)


def backlog_entries(items: Sequence[RoadmapItem], agent: str) -> list[dict[str, object]]:
    """Planned, in-progress and blocked items (blocked ones `paused`) as backlog task dicts.

    Dependencies on complete items are dropped (already satisfied); dependencies on ids that
    are not in `items` are kept, so that a spec check reports them instead of the task
    running too early.
    """
    done = completed_ids(items)
    entries: list[dict[str, object]] = []
    for it in items:
        if it.status is ItemStatus.COMPLETE:
            continue
        entry: dict[str, object] = {"id": it.id}
        if it.title:
            entry["title"] = it.title
        entry["agent"] = agent
        if it.status is ItemStatus.BLOCKED:
            entry["paused"] = True
        deps = [d for d in it.depends_on if d not in done]
        if deps:
            entry["dependsOn"] = deps
        if it.paths:
            entry["paths"] = list(it.paths)
        if it.estimate_s is not None:
            entry["estimate"] = format_estimate(it.estimate_s)
        entry["prompt"] = it.prompt
        entries.append(entry)
    return entries


def to_backlog_yaml(items: Sequence[RoadmapItem], agent: str) -> str:
    """`backlog:` YAML of `backlog_entries` (block style, multi-line prompts as `|` blocks)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.scalarstring import LiteralScalarString

    seq = CommentedSeq()
    for entry in backlog_entries(items, agent):
        cm = CommentedMap()
        for key, value in entry.items():
            if isinstance(value, list):
                value = CommentedSeq(value)
            elif isinstance(value, str) and "\n" in value:
                value = LiteralScalarString(value)
            cm[key] = value
        seq.append(cm)
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    out = StringIO()
    yaml.dump({"backlog": seq}, out)
    return out.getvalue()
