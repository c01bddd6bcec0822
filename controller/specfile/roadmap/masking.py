"""Which ROADMAP lines are code or comments, where no heading or field is read.

Fenced code blocks (``` or ~~~, any length, any indentation) and `<!-- -->` comments are
masked, delimiters included. A fence or comment that is never closed masks the rest of the
file and is reported, so that a forgotten fence does not silently hide items.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from controller.specfile.roadmap import problems as report
from controller.specfile.roadmap.problems import RoadmapProblem

_FENCE_RE = re.compile(r"^[ \t]*(`{3,}|~{3,})(.*)$")


def _closes(line: str, fence: tuple[str, int, int]) -> bool:
    if fence[0] not in line:
        return False
    m = _FENCE_RE.match(line)
    g = m.group(1) if m else ""
    return bool(m and g[0] == fence[0] and len(g) >= fence[1] and not m.group(2).strip())


def _opens(line: str, i: int) -> tuple[str, int, int] | None:
    if "`" not in line and "~" not in line:
        return None
    m = _FENCE_RE.match(line)
    if m and not (m.group(1)[0] == "`" and "`" in m.group(2)):
        return (m.group(1)[0], len(m.group(1)), i)
    return None


def code_mask(lines: Sequence[str], problems: list[RoadmapProblem]) -> list[bool]:
    """True for each line inside a fenced code block or an HTML comment (delimiters too)."""
    mask = [False] * len(lines)
    fence: tuple[str, int, int] | None = None  # (char, length, opening line index)
    comment_at = -1
    for i, line in enumerate(lines):
        if fence is not None:
            mask[i] = True
            if _closes(line, fence):
                fence = None
            continue
        if comment_at >= 0:
            mask[i] = True
            if "-->" in line:
                comment_at = -1
            continue
        fence = _opens(line, i)
        if fence is not None:
            mask[i] = True
            continue
        stripped = line.lstrip(" ")
        if stripped.startswith("<!--") and len(line) - len(stripped) <= 3:
            mask[i] = True
            if "-->" not in stripped[4:]:
                comment_at = i
    if fence is not None:
        problems.append(report.unclosed_fence(fence[2] + 1, fence[0] * fence[1]))
    if comment_at >= 0:
        problems.append(report.unclosed_comment(comment_at + 1))
    return mask
