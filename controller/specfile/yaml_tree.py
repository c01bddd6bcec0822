"""YAML text to values, keeping where every value stands (for located problems).

ruamel.yaml's round-trip loader keeps the line and column of every key and value; the
`Locator` maps a field path such as `("backlog", 2, "dependsOn", 0)` back to that spot.
Aliases are expanded with a budget, so a small file cannot stand for an enormous document.
"""

from __future__ import annotations

from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from controller.model.problems import Loc, Problem, SpecError


class Locator:
    """Maps a field path to the (line, column) where it stands in the YAML document."""

    def __init__(self, root: Any = None, *, text: str | None = None, source: str = ""):
        self._root, self._text, self._source = root, text, source

    @property
    def root(self) -> Any:
        """The round-trip tree; parsed on first use when built from text (the fast path)."""
        if self._root is None and self._text is not None:
            self._root = parse_yaml(self._text, self._source)
        return self._root

    def locate(self, loc: Loc, *, key: bool = False) -> tuple[int, int]:
        node = self.root
        line, col = 0, 0
        if isinstance(node, CommentedMap | CommentedSeq):
            line, col = node.lc.line, node.lc.col
        for i, part in enumerate(loc):
            last = i == len(loc) - 1
            if isinstance(node, CommentedMap) and part in node:
                pos = node.lc.key(part) if (last and key) else node.lc.value(part)
                line, col = pos
                node = node[part]
            elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
                line, col = node.lc.item(part)
                node = node[part]
            elif isinstance(node, CommentedMap | CommentedSeq):
                continue  # a tag pydantic adds to its locations; stay on the current node
            else:
                break
        return line + 1, col + 1


MAX_VALUES = 1_000_000  # after YAML aliases are expanded; far above any real backlog


class _TooLarge(Exception):
    pass


def plain_values(node: Any, source: str = "spec") -> Any:
    """ruamel's commented containers and scalar subclasses -> plain Python values.

    YAML aliases are expanded here, so a small file can stand for an enormous document
    (the "billion laughs" attack); past `MAX_VALUES` values the file is refused.
    """
    budget = [MAX_VALUES]

    def plain(n: Any) -> Any:
        budget[0] -= 1
        if budget[0] < 0:
            raise _TooLarge
        if isinstance(n, dict):
            return {str(k) if not isinstance(k, str) else k: plain(v) for k, v in n.items()}
        if isinstance(n, list):
            return [plain(v) for v in n]
        if isinstance(n, bool) or n is None:
            return n
        if isinstance(n, int):
            return int(n)
        if isinstance(n, float):
            return float(n)
        if isinstance(n, str):
            return str(n)
        return n

    try:
        return plain(node)
    except _TooLarge:
        message = (
            f"the document holds more than {MAX_VALUES:,} values once its YAML aliases "
            "(*name) are expanded; refusing to load it"
        )
        raise SpecError([Problem(source, 1, 1, "", message)]) from None


def decode_text(data: bytes, source: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        before = data[: exc.start]
        line = before.count(b"\n") + 1
        col = exc.start - (before.rfind(b"\n") + 1) + 1
        raise SpecError(
            [
                Problem(
                    source, line, col, "", f"file is not valid UTF-8 (byte 0x{data[exc.start]:02x})"
                )
            ]
        ) from None


def parse_yaml(text: str, source: str) -> Any:
    """YAML text -> ruamel round-trip tree; syntax errors become a located SpecError."""
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        return yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (1, 1)
        context = exc.context
        start = exc.context_mark
        if context and start and exc.problem_mark and start.line != exc.problem_mark.line:
            # e.g. an unclosed `[`: the problem shows late, so say where the construct began
            context += f" (started at line {start.line + 1}, column {start.column + 1})"
        what = " ".join(p for p in (context, exc.problem) if p) or "invalid YAML"
        raise SpecError([Problem(source, line, col, "", f"YAML syntax error: {what}")]) from None
    except Exception as exc:  # ruamel raises a few unmarked errors (e.g. bad tags)
        raise SpecError([Problem(source, 1, 1, "", f"YAML error: {exc}")]) from None


# --- pydantic errors -> problems ---------------------------------------------------------
