"""ROADMAP headings: which headings are backlog items, their ids, titles and status markers.

An item heading is `US-NNN: Title`, `PRIORITY N: Title` or `PRIORITY N.M: Title` at any
level, with emoji, bold and status decorations around it (`## ✅ Complete: US-001: **A**`).
Ids come from the heading number only (`priority-2.5`, `us-043`), so reordering the file
never changes them. A heading that looks like an item but cannot be placed (no number, a
range, an unusable id) is a "bad" heading with a message; every other heading is prose.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

from controller.model.names import task_id_problem
from controller.specfile.roadmap.model import ItemStatus
from controller.specfile.roadmap.status import classify_status

HEADING_RE = re.compile(r"^ {0,3}(#{1,6})(?:[ \t]+(.*?))?[ \t]*$")
_CLOSING_HASHES = re.compile(r"(?:^|[ \t]+)#+$")
_EMOJI_RANGES = "\u2300-\u23ff\u2460-\u27bf\u2b00-\u2bff\U0001f000-\U0001faff\ufe0f"
DECO = re.compile(rf"^(?:[^\w\s]|[{_EMOJI_RANGES}]|_|\s)*")  # leading decoration
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
class Heading:
    index: int  # 0-based line
    level: int
    kind: str  # "item", "bad" (looks like an item, cannot be placed) or "prose"
    item_id: str = ""
    title: str = ""
    status: ItemStatus | None = None
    alias: str = ""
    message: str = ""


def find_headings(lines: Sequence[str], mask: Sequence[bool]) -> list[Heading]:
    """Every ATX heading outside code and comments (`mask`), in file order."""
    headings: list[Heading] = []
    for i, line in enumerate(lines):
        if mask[i] or "#" not in line[:4]:
            continue
        m = HEADING_RE.match(line)
        if m is None:
            continue
        content = _CLOSING_HASHES.sub("", m.group(2) or "").strip()
        headings.append(parse_heading(i, len(m.group(1)), content))
    return headings


def section_end(headings: Sequence[Heading], k: int, default: int) -> int:
    """Where the section of `headings[k]` ends: the next heading of the same or a higher level,
    or the next item heading of any level (so a nested item never leaks into its parent)."""
    h = headings[k]
    for later in headings[k + 1 :]:
        if later.level <= h.level or later.kind != "prose":
            return later.index
    return default


def _written(word: str, number: str) -> str:
    return f"US-{number}" if word.upper() == "US" else f"PRIORITY {number}"


def _lead(text: str) -> tuple[str, str, int]:
    """(decoration before the keyword, status phrase such as 'Complete:', keyword offset)."""
    deco = DECO.match(text)
    start = deco.end() if deco else 0
    prefix = text[:start]
    m = _STATUS_PREFIX.match(text, start)
    if m and classify_status(m.group(1)) is not None:
        after = DECO.match(text, m.end())
        kw_at = after.end() if after else m.end()
        if _KEYWORD.match(text, kw_at):
            return prefix + text[m.end() : kw_at], m.group(1), kw_at
    return prefix, "", start


def _without_number(index: int, level: int, text: str, word: str, at: int) -> Heading:
    """A keyword heading without a number: a bad heading if it was meant as an item."""
    bad = _BAD_TOKEN.match(text, at)
    immediate = text[at : at + 1] in ("-", ":", "#", "")
    if bad and (word in ("PRIORITY", "US") or immediate):
        token = bad.group(1)
        if _PLACEHOLDER.fullmatch(token.strip("*")):
            what = f"number {token!r}" if token else "no number"
            return Heading(
                index,
                level,
                "bad",
                message=f"heading looks like a backlog item but has {what} after "
                f"{word!r}: write e.g. '{_written(word, '3')}: Title'",
            )
    return Heading(index, level, "prose")


def _title(prefix: str, rest: str) -> tuple[str, str, str]:
    """(title, decoration before it, text after it) of what follows `US-1:`."""
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
    return title, lead_deco, tail


def parse_heading(index: int, level: int, text: str) -> Heading:
    """What the heading text `text` (without its `#`s) on line `index` is."""
    prefix, phrase, start = _lead(text)
    kw = _KEYWORD.match(text, start)
    if not kw:
        return Heading(index, level, "prose")
    word = kw.group(1)
    num = _NUMBER.match(text, kw.end())
    if num is None:
        return _without_number(index, level, text, word, kw.end())
    if _RANGE.match(text, num.end()):
        return Heading(
            index,
            level,
            "bad",
            message="heading names a range of items; give each item its own heading "
            f"(e.g. '{_written(word, num.group(1))}: Title')",
        )
    sep = _SEPARATOR.match(text, num.end())
    if sep is None:
        # e.g. "US-016 COMPLETION SUMMARY": a heading about an item, not one
        return Heading(index, level, "prose")
    kind = "priority" if word.lower() == "priority" else "us"
    item_id = f"{kind}-{num.group(1)}"
    problem = task_id_problem(item_id)
    if problem:
        return Heading(index, level, "bad", message=f"heading gives an unusable id: {problem}")
    title, lead_deco, tail = _title(prefix, text[sep.end() :])
    status = classify_status(phrase) or classify_status(f"{prefix} {lead_deco} {tail}")
    alias = ""
    if kind == "priority":
        a = _US_ALIAS.match(title)
        alias = f"us-{a.group(1)}" if a else ""
    return Heading(index, level, "item", item_id, title, status, alias)
