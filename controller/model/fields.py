"""The building blocks of the spec models: field types with their own checks, and the
base model every spec model shares (strict types, camelCase keys, frozen).

Element-level checks sit on the element types (not on the list or mapping), so that a
problem is reported at the offending element, e.g. `agents.dev.owns[1]`, not at the list.
"""

from __future__ import annotations

import re
import string
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    WithJsonSchema,
)
from pydantic.alias_generators import to_camel

from controller.model.durations import DURATION_PATTERN, parse_duration
from controller.model.globs import pattern_problem
from controller.model.names import TASK_ID_PATTERN, task_id_problem
from controller.model.sizes import SIZE_PATTERN, format_size, parse_size


def _duration_json(*, positive: bool) -> dict[str, object]:
    bound = {"exclusiveMinimum": 0} if positive else {"minimum": 0}
    return {
        "anyOf": [
            {"type": "string", "pattern": DURATION_PATTERN},
            {"type": "number", **bound},
        ],
        "description": "a duration: seconds, or a string like 30s, 5m, 2h"
        + (" (more than zero)" if positive else ""),
    }


Duration = Annotated[
    float, BeforeValidator(parse_duration), WithJsonSchema(_duration_json(positive=False))
]
# timeouts and intervals: zero would mean "kill at once" or "spin", so it is refused
PositiveDuration = Annotated[
    float,
    BeforeValidator(parse_duration),
    Field(gt=0),
    WithJsonSchema(_duration_json(positive=True)),
]

PLACEHOLDERS = ("task", "title", "prompt", "worktree", "branch", "attempt", "port")
API_VERSION = "orchestrator/v1"


class SpecModel(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=False,  # the file format is camelCase only, as the JSON Schema says
        strict=True,  # no silent coercion: `maxParallel: true` or `id: 43` are mistakes
        frozen=True,
        defer_build=True,  # validators built on first use, only those used: ~40 ms of start-up
    )


def _glob(pattern: str) -> str:
    problem = pattern_problem(pattern)
    if problem:
        raise ValueError(problem)
    return pattern


Glob = Annotated[str, AfterValidator(_glob)]


def placeholders_in(arg: str) -> list[str]:
    """Placeholder names in one argv element; raises ValueError for malformed braces."""
    names = []
    try:
        parsed = list(string.Formatter().parse(arg))
    except ValueError as exc:
        raise ValueError(
            f"malformed placeholder in {arg!r}: {exc} (write {{{{ and }}}} for literal braces)"
        ) from None
    for _, field_name, format_spec, conversion in parsed:
        if field_name is None:
            continue
        if format_spec or conversion:
            raise ValueError(f"placeholder {{{field_name}}} must not have a format or conversion")
        names.append(field_name)
    return names


def _command_arg(arg: str) -> str:
    for name in placeholders_in(arg):
        if name not in PLACEHOLDERS:
            known = ", ".join("{" + p + "}" for p in PLACEHOLDERS)
            raise ValueError(f"unknown placeholder {{{name}}} (known: {known})")
    return arg


CommandArg = Annotated[str, AfterValidator(_command_arg)]


def _env_name(name: str) -> str:
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"invalid environment variable name {name!r}")
    return name


EnvName = Annotated[
    str,
    AfterValidator(_env_name),
    WithJsonSchema({"type": "string", "pattern": r"^[A-Za-z_][A-Za-z0-9_]*$"}),
]
AGENT_NAME_PATTERN = r"^[A-Za-z][A-Za-z0-9_-]{0,62}$"


def _agent_name(name: str) -> str:
    if not re.fullmatch(AGENT_NAME_PATTERN, name):
        raise ValueError(f"invalid agent name {name!r}: letters, digits, '_' and '-'")
    return name


AgentName = Annotated[
    str,
    AfterValidator(_agent_name),
    WithJsonSchema({"type": "string", "pattern": AGENT_NAME_PATTERN}),
]


def _task_id(value: str) -> str:
    problem = task_id_problem(value)
    if problem:
        raise ValueError(problem)
    return value


TaskId = Annotated[
    str,
    AfterValidator(_task_id),
    WithJsonSchema(
        {
            "type": "string",
            "pattern": TASK_ID_PATTERN,
            "description": "lower-case letters, digits, '.', '_', '-'; names the branch "
            "orchestrator/<id> and the worktree",
        }
    ),
]


def schema_without_null(schema: dict[str, Any]) -> None:
    """For `Field(json_schema_extra=...)` of an optional field: the schema offers only the
    value's own type. The loader still takes the default (None) when the key is left out,
    and pydantic's errors stay those of the value (a nullable field, not a union)."""
    branches = schema.get("anyOf")
    if not isinstance(branches, list):
        return
    rest = [b for b in branches if b != {"type": "null"}]
    if len(rest) == 1:
        del schema["anyOf"]
        schema.update(rest[0])
    else:
        schema["anyOf"] = rest
    schema.pop("default", None)


def check_argv(argv: object, what: str, example: str) -> object:
    if isinstance(argv, str):
        raise ValueError(
            f"{what} must be a list of argv elements, e.g. {example}, "
            "not a shell string (nothing is ever run through a shell)"
        )
    return argv


_REF_BAD = re.compile(r"(^[./]|/\.|\.\.|[\x00-\x20\x7f~^:?*\[\\]|@\{|\.lock$|\.lock/|/$|//|\.$)")


def ref_name_problem(name: str) -> str | None:
    """Why `name` is not a valid branch name (git check-ref-format rules), or None."""
    if not name or name == "@" or _REF_BAD.search(name):
        return f"{name!r} is not a valid git branch name"
    return None


# --- sizes (caps: docs/security.md) ------------------------------------------------------

MIN_LOG_LIMIT = 64 << 10  # room for a useful tail after the trim note


def _log_limit(n: int) -> int:
    if n < MIN_LOG_LIMIT:
        raise ValueError(f"a log limit below {format_size(MIN_LOG_LIMIT)} keeps too little output")
    return n


LogLimit = Annotated[
    int,
    BeforeValidator(parse_size),
    AfterValidator(_log_limit),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": SIZE_PATTERN},
                {"type": "integer", "minimum": MIN_LOG_LIMIT},
            ],
            "description": "a size: bytes, or a string like 50MB, 512KB (1KB = 1024 bytes); "
            f"at least {format_size(MIN_LOG_LIMIT)}",
        }
    ),
]
