"""Loading a spec file: bytes -> YAML -> `Spec`, with every problem located at file:line:col.

ruamel.yaml's round-trip loader keeps the line and column of every key and value, so a
pydantic error location such as `("backlog", 2, "dependsOn", 0)` can be pointed back at the
exact spot in the user's file. Cross-field checks come from `spec_checks` and are located the
same way. Nothing here acts on the world: the only I/O is reading the file(s) and asking git
whether the repository exists.
"""

from __future__ import annotations

import difflib
import subprocess
import typing
from dataclasses import dataclass
from pathlib import Path
from types import UnionType
from typing import Any

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from controller.spec import Spec


@dataclass(frozen=True)
class Problem:
    """One located complaint about the user's input."""

    file: str
    line: int
    column: int
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}:{self.column}"
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"

    def as_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "line": self.line,
            "column": self.column,
            "path": self.path,
            "message": self.message,
        }


class SpecError(Exception):
    """The spec (or a file it names) is invalid; `problems` says where and why."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


Loc = tuple[str | int, ...]


def format_path(loc: Loc) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + str(part)
    return out


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


def _plain(node: Any, source: str = "spec") -> Any:
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


def _decode(data: bytes, source: str) -> str:
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


def _unwrap(tp: Any) -> Any:
    """The model/container type behind Optional[...] and Annotated[...]."""
    while True:
        origin = typing.get_origin(tp)
        if origin is typing.Annotated:
            tp = typing.get_args(tp)[0]
        elif origin in (typing.Union, UnionType):
            args = [a for a in typing.get_args(tp) if a is not type(None)]
            tp = args[0] if len(args) == 1 else tp
            if len(args) != 1:
                return tp
        else:
            return tp


def _model_at(loc: Loc) -> type[BaseModel] | None:
    """The model class that owns the mapping at `loc` (for 'did you mean')."""
    tp: Any = Spec
    for part in loc:
        tp = _unwrap(tp)
        if isinstance(tp, type) and issubclass(tp, BaseModel):
            field = next(
                (f for n, f in tp.model_fields.items() if part in (n, f.alias)),
                None,
            )
            if field is None:
                return None
            tp = field.annotation
        elif typing.get_origin(tp) is list and isinstance(part, int):
            tp = typing.get_args(tp)[0]
        elif typing.get_origin(tp) is dict and isinstance(part, str):
            tp = typing.get_args(tp)[1]
        else:
            return None
    tp = _unwrap(tp)
    return tp if isinstance(tp, type) and issubclass(tp, BaseModel) else None


def known_keys(model: type[BaseModel]) -> list[str]:
    return [f.alias or n for n, f in model.model_fields.items()]


def did_you_mean(word: str, options: list[str]) -> str:
    close = difflib.get_close_matches(word, options, n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def _message(err: dict[str, Any]) -> tuple[str, bool]:
    """Human message for one pydantic error, and whether it is about the key itself."""
    kind, loc, msg = err["type"], err["loc"], err["msg"]
    if kind == "extra_forbidden":
        model = _model_at(loc[:-1])
        options = known_keys(model) if model else []
        hint = did_you_mean(str(loc[-1]), options)
        allowed = f" (allowed: {', '.join(options)})" if options and not hint else ""
        return f"unknown field '{loc[-1]}'{hint}{allowed}", True
    if kind == "missing":
        return f"required field '{loc[-1]}' is missing", False
    if kind == "union_tag_invalid":
        ctx = err.get("ctx", {})
        return f"kind must be one of {ctx.get('expected_tags')}, got {ctx.get('tag')!r}", False
    if kind == "string_pattern_mismatch" and loc[-1:] == ("address",):
        return f"must be an http(s) URL such as http://HOST:8265, got {err.get('input')!r}", False
    if kind == "literal_error":
        expected = err.get("ctx", {}).get("expected", "")
        return f"must be {expected}, got {err.get('input')!r}", False
    expected_type = _TYPE_NAMES.get(kind)
    if expected_type:
        got = err.get("input")
        hint = " (quote it to make it text)" if kind == "string_type" and got is not None else ""
        return f"must be {expected_type}, got {_yaml_kind(got)} {got!r}{hint}", False
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, ") :]
    return msg[0].lower() + msg[1:] if msg else kind, False


_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "a whole number",
    "bool_type": "true or false",
    "float_type": "a number",
    "list_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
}


def _yaml_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return "null" if value is None else type(value).__name__


def validation_problems(exc: ValidationError, locator: Locator, source: str) -> list[Problem]:
    problems = []
    for err in exc.errors(include_url=False):
        loc: Loc = tuple(p for p in err["loc"] if isinstance(p, int | str))
        if loc[:1] == ("runner",) and len(loc) > 1 and loc[1] in ("local", "ray"):
            loc = loc[:1] + loc[2:]  # drop pydantic's union tag: it is not a key in the file
        message, about_key = _message(err)
        if loc and loc[-1] == "[key]":  # a mapping key failed its own check (agent names)
            loc, about_key = loc[:-1], True
        if err["type"] == "missing":
            line, col = locator.locate(loc[:-1])
        else:
            line, col = locator.locate(loc, key=about_key)
        problems.append(Problem(source, line, col, format_path(loc), message))
    return problems


# --- the loader --------------------------------------------------------------------------


def _repo_problems(spec: Spec, locator: Locator, source: str) -> list[Problem]:
    repo = spec.repo_path
    if not repo.is_dir():
        line, col = locator.locate(("repo",))
        return [Problem(source, line, col, "repo", f"repository {repo} does not exist")]
    top = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--show-toplevel"], capture_output=True, text=True
    )
    if top.returncode != 0:
        line, col = locator.locate(("repo",))
        return [Problem(source, line, col, "repo", f"{repo} is not a git repository")]
    branch = spec.integration_branch
    ok = subprocess.run(
        ["git", "-C", str(repo), "rev-parse", "--verify", "-q", f"refs/heads/{branch}^{{commit}}"],
        capture_output=True,
    )
    if ok.returncode != 0:
        line, col = locator.locate(("integrationBranch",))
        return [
            Problem(
                source,
                line,
                col,
                "integrationBranch",
                f"branch '{branch}' does not exist in {repo} "
                f"(create it: git -C {repo} branch {branch})",
            )
        ]
    return []


def _runner_problems(spec: Spec, locator: Locator, source: str) -> list[Problem]:
    import importlib.util

    if spec.runner.kind == "ray" and importlib.util.find_spec("ray") is None:
        line, col = locator.locate(("runner", "kind"))
        message = "the ray runner needs Ray on this machine: pip install 'orchestrator[ray]'"
        return [Problem(source, line, col, "runner.kind", message)]
    return []


def read_spec_text(
    text: str, source: str, base_dir: Path, repo: Path | None = None
) -> tuple[Spec, Locator]:
    """Parse and validate spec text (no repository checks); raises SpecError.

    A valid spec is read with the fast (C) safe loader; only when something is wrong is the
    text parsed again with the round-trip loader, which knows where every value stands.
    """
    try:
        fast = _read_fast(text, source, base_dir, repo)
        if fast is not None:
            return fast
        return _read_located(text, source, base_dir, repo)
    except RecursionError:
        message = "the document is nested too deeply to be a spec"
        raise SpecError([Problem(source, 1, 1, "", message)]) from None


def _validated(spec: Spec, source: str, base_dir: Path, locator: Locator) -> tuple[Spec, Locator]:
    from controller.spec_checks import semantic_problems  # local: spec_checks imports us

    spec._source = Path(source)
    spec._base_dir = base_dir
    if spec.backlog_from is not None:
        from controller.backlog_sources import with_roadmap

        spec = with_roadmap(spec)
    problems = semantic_problems(spec, locator, source)
    if problems:
        raise SpecError(problems)
    return spec, locator


def _read_fast(
    text: str, source: str, base_dir: Path, repo: Path | None
) -> tuple[Spec, Locator] | None:
    """The spec when the safe loader and the models accept it as is, else None."""
    try:
        data = YAML(typ="safe").load(text)
    except Exception:
        return None
    if not isinstance(data, dict):
        return None
    data = _plain(data, source)
    if repo is not None:
        data["repo"] = str(repo.resolve())
    try:
        spec = Spec.model_validate(data)
    except ValidationError:
        return None
    return _validated(spec, source, base_dir, Locator(text=text, source=source))


def _read_located(
    text: str, source: str, base_dir: Path, repo: Path | None
) -> tuple[Spec, Locator]:
    if not text.strip():
        raise SpecError([Problem(source, 1, 1, "", "spec file is empty")])
    tree = parse_yaml(text, source)
    if tree is None:
        raise SpecError([Problem(source, 1, 1, "", "spec file has only comments, no content")])
    locator = Locator(tree)
    if not isinstance(tree, CommentedMap):
        line, col = locator.locate(())
        kind = "a list" if isinstance(tree, CommentedSeq) else f"a {type(tree).__name__}"
        message = f"the spec must be a YAML mapping (apiVersion:, agents:, ...), not {kind}"
        raise SpecError([Problem(source, line, col, "", message)])
    try:
        data = _plain(tree, source)
        if repo is not None:
            data["repo"] = str(repo.resolve())
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(validation_problems(exc, locator, source)) from None
    return _validated(spec, source, base_dir, locator)


def load_spec(path: Path, *, check_repo: bool = True, repo: Path | None = None) -> Spec:
    """Read, validate and resolve the spec at `path`; raises SpecError with located problems.

    `repo` overrides the spec's own `repo` (the `--repo` option of the commands).
    """
    source = str(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise SpecError([Problem(source, 1, 1, "", "spec file not found")]) from None
    except IsADirectoryError:
        raise SpecError([Problem(source, 1, 1, "", "is a directory, not a spec file")]) from None
    except OSError as exc:
        raise SpecError([Problem(source, 1, 1, "", f"cannot read: {exc.strerror}")]) from None
    text = _decode(data, source)
    spec, locator = read_spec_text(text, source, path.parent.resolve(), repo)
    if check_repo:
        problems = _repo_problems(spec, locator, source) + _runner_problems(spec, locator, source)
        if problems:
            raise SpecError(problems)
    return spec
