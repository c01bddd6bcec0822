"""pydantic validation errors to located, human problems ("did you mean", YAML kinds)."""

from __future__ import annotations

import typing
from types import UnionType
from typing import Any

from pydantic import BaseModel, ValidationError

from controller.model.problems import Loc, Problem, did_you_mean, format_path
from controller.model.spec import Spec
from controller.specfile.yaml_tree import Locator


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
        if len(loc) > 3 and loc[2] == "rateLimit" and loc[3] in ("settings", "off"):
            loc = loc[:3] + loc[4:]  # agents.<name>.rateLimit's tag, likewise
        message, about_key = _message(err)
        if loc and loc[-1] == "[key]":  # a mapping key failed its own check (agent names)
            loc, about_key = loc[:-1], True
        if err["type"] == "missing":
            line, col = locator.locate(loc[:-1])
        else:
            line, col = locator.locate(loc, key=about_key)
        problems.append(Problem(source, line, col, format_path(loc), message))
    return problems
