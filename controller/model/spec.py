"""Desired state: the pydantic models of `specs/orchestrator.yaml`.

The models are the single definition of the spec format: field types, defaults and the
checks a single field can make on its own. Loading YAML with located errors lives in
`spec_load`, checks across fields (dependencies, scopes, cycles) in `spec_checks`, so each
of the three has one reason to change. The JSON Schema in `specs/schema.json` is exported
from these models (`python -m controller.specfile.schema`).
"""

from __future__ import annotations

import re
import string
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from controller.model.durations import DURATION_PATTERN, parse_duration
from controller.model.globs import pattern_problem
from controller.model.names import TASK_ID_PATTERN, task_id_problem


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

PLACEHOLDERS = ("task", "title", "prompt", "worktree", "branch", "attempt")
API_VERSION = "orchestrator/v1"


class _Model(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        alias_generator=to_camel,
        populate_by_name=False,  # the file format is camelCase only, as the JSON Schema says
        strict=True,  # no silent coercion: `maxParallel: true` or `id: 43` are mistakes
        frozen=True,
        defer_build=True,  # validators built on first use, only those used: ~40 ms of start-up
    )


# Element-level checks sit on the element types (not on the list or mapping), so that a
# problem is reported at the offending element, e.g. `agents.dev.owns[1]`, not at the list.


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


def _check_argv(argv: object, what: str, example: str) -> object:
    if isinstance(argv, str):
        raise ValueError(
            f"{what} must be a list of argv elements, e.g. {example}, "
            "not a shell string (nothing is ever run through a shell)"
        )
    return argv


class Threshold(_Model):
    """Above `below` percent (or always, for the last entry without `below`), allow `parallel`."""

    below: Annotated[float, Field(gt=0, le=100)] | None = None
    parallel: Annotated[int, Field(ge=1, le=1024)]


def _check_thresholds(rules: list[Threshold]) -> list[Threshold]:
    if not rules:
        raise ValueError("needs at least one rule")
    for i, rule in enumerate(rules):
        if rule.below is None and i != len(rules) - 1:
            raise ValueError(f"rule {i} has no 'below': only the last rule may omit it")
    belows = [r.below for r in rules if r.below is not None]
    if belows != sorted(belows) or len(set(belows)) != len(belows):
        raise ValueError(f"'below' values must increase strictly, got {belows}")
    parallels = [r.parallel for r in rules]
    if parallels != sorted(parallels, reverse=True):
        raise ValueError(f"'parallel' must not increase as load grows, got {parallels}")
    return rules


class Resources(_Model):
    cpu: list[Threshold] = Field(
        default_factory=lambda: [
            Threshold(below=50, parallel=4),
            Threshold(below=70, parallel=3),
            Threshold(below=80, parallel=2),
            Threshold(parallel=1),
        ]
    )
    memory: list[Threshold] = Field(
        default_factory=lambda: [
            Threshold(below=50, parallel=4),
            Threshold(below=80, parallel=3),
            Threshold(parallel=1),
        ]
    )

    @field_validator("cpu", "memory")
    @classmethod
    def _ordered(cls, rules: list[Threshold]) -> list[Threshold]:
        return _check_thresholds(rules)


class Backoff(_Model):
    initial: Duration = 10.0
    max: Duration = 300.0

    @model_validator(mode="after")
    def _ordered(self) -> Backoff:
        if self.initial > self.max:
            raise ValueError(f"initial ({self.initial:g}s) must not exceed max ({self.max:g}s)")
        return self


class AgentResources(_Model):
    """What one agent needs on a cluster node (the Ray runner's entrypoint resources)."""

    cpus: Annotated[float, Field(gt=0, le=1024)] | None = None
    memory_mb: Annotated[int | None, Field(gt=0, alias="memoryMB")] = None


class Agent(_Model):
    command: Annotated[list[CommandArg], Field(min_length=1)]
    owns: list[Glob] = Field(default_factory=list)
    env: dict[EnvName, str] = Field(default_factory=dict)
    timeout: PositiveDuration | None = None
    max_parallel: Annotated[int, Field(ge=1)] | None = None
    resources: AgentResources | None = None

    @field_validator("command", mode="before")
    @classmethod
    def _not_a_shell_string(cls, v: object) -> object:
        return _check_argv(v, "command", '[claude, -p, "{prompt}"]')

    @field_validator("command")
    @classmethod
    def _program_given(cls, argv: list[str]) -> list[str]:
        if not argv[0].strip():
            raise ValueError("the program (first argv element) must not be empty")
        return argv


class Task(_Model):
    id: TaskId
    agent: str
    title: str | None = None
    prompt: str = ""
    paths: list[Glob] | None = None
    depends_on: list[str] = Field(default_factory=list)
    paused: bool = False
    timeout: PositiveDuration | None = None
    retries: Annotated[int, Field(ge=0, le=100)] | None = None
    estimate: Duration | None = None

    @property
    def display_title(self) -> str:
        return self.title or self.id


class RoadmapSource(_Model):
    """`backlogFrom`: planned items of a markdown ROADMAP become backlog tasks."""

    roadmap: str
    agent: str


class LocalRunnerSpec(_Model):
    """Agents run as detached processes on this machine (the default)."""

    kind: Literal["local"] = "local"


class RayRunnerSpec(_Model):
    """Agents run as Ray jobs on a cluster; the controller stays the one authority.

    `address` is the Ray dashboard (Jobs API) URL; `remote` a git URL that both this
    machine and the cluster's workers can fetch from and push to.
    """

    kind: Literal["ray"]
    address: Annotated[str, Field(pattern=r"^https?://[^\s/]+(:\d+)?/?$")]
    remote: Annotated[str, Field(min_length=1)]
    # the interpreter on the workers that has this package installed
    python: Annotated[str, Field(min_length=1)] = "python3"


Runner = Annotated[LocalRunnerSpec | RayRunnerSpec, Field(discriminator="kind")]


_REF_BAD = re.compile(r"(^[./]|/\.|\.\.|[\x00-\x20\x7f~^:?*\[\\]|@\{|\.lock$|\.lock/|/$|//|\.$)")


def ref_name_problem(name: str) -> str | None:
    """Why `name` is not a valid branch name (git check-ref-format rules), or None."""
    if not name or name == "@" or _REF_BAD.search(name):
        return f"{name!r} is not a valid git branch name"
    return None


class Spec(_Model):
    """The whole desired state. Paths are resolved by the loader (see `spec_load`)."""

    api_version: Literal["orchestrator/v1"]
    repo: str = "."
    integration_branch: str = "main"
    state_dir: str | None = None
    worktree_root: str | None = None
    max_parallel: Annotated[int, Field(ge=1, le=1024)] = 4
    poll_interval: PositiveDuration = 30.0
    retries: Annotated[int, Field(ge=0, le=100)] = 3
    backoff: Backoff = Field(default_factory=Backoff)
    timeout: PositiveDuration = 7200.0
    resources: Resources = Field(default_factory=Resources)
    verify: Annotated[list[str], Field(min_length=1)] | None = None
    verify_timeout: PositiveDuration = 1800.0
    prune: bool = True
    prune_on_empty_backlog: bool = False
    paused: bool = False
    agents: Annotated[dict[AgentName, Agent], Field(min_length=1)]
    backlog: list[Task] = Field(default_factory=list)
    backlog_from: RoadmapSource | None = None
    runner: Runner = Field(default_factory=lambda: LocalRunnerSpec())

    # filled in by the loader: where things are on disk, and roadmap items already complete
    _source: Path = PrivateAttr(default=Path("specs/orchestrator.yaml"))
    _base_dir: Path = PrivateAttr(default=Path("."))
    _completed: frozenset[str] = PrivateAttr(default=frozenset())
    _origins: dict[int, tuple[str, int]] = PrivateAttr(default_factory=dict)
    _warnings: list[Any] = PrivateAttr(default_factory=list)  # spec_load.Problem

    @field_validator("integration_branch")
    @classmethod
    def _valid_branch(cls, v: str) -> str:
        problem = ref_name_problem(v)
        if problem:
            raise ValueError(problem)
        if v.startswith("orchestrator/"):
            raise ValueError(
                "the integration branch must not live under orchestrator/ (task branches)"
            )
        return v

    @field_validator("verify", mode="before")
    @classmethod
    def _verify_argv(cls, v: object) -> object:
        return _check_argv(v, "verify", "[python, -m, pytest, -q]")

    # --- resolved locations -------------------------------------------------------------
    @property
    def source(self) -> Path:
        return self._source

    @property
    def warnings(self) -> list[Any]:
        """Located problems that do not invalidate the spec (e.g. in a roadmap)."""
        return self._warnings

    @property
    def completed(self) -> frozenset[str]:
        """Task ids already done outside the controller (roadmap items marked complete)."""
        return self._completed

    @property
    def repo_path(self) -> Path:
        return (self._base_dir / self.repo).resolve()

    @property
    def state_path(self) -> Path:
        if self.state_dir:
            return (self._base_dir / self.state_dir).resolve()
        base = self._base_dir.resolve()
        return (base.parent if base.name == "specs" else base) / "state"

    @property
    def worktree_root_path(self) -> Path:
        if self.worktree_root:
            return (self._base_dir / self.worktree_root).resolve()
        return self.state_path / "worktrees"

    def scope_of(self, task: Task) -> tuple[str, ...]:
        """A task's write scope: its `paths`, else its agent's `owns`."""
        if task.paths is not None:
            return tuple(task.paths)
        agent = self.agents.get(task.agent)
        return tuple(agent.owns) if agent else ()

    def timeout_of(self, task: Task) -> float:
        agent = self.agents.get(task.agent)
        return task.timeout or (agent.timeout if agent and agent.timeout else self.timeout)

    def max_attempts(self, task: Task) -> int:
        return 1 + (task.retries if task.retries is not None else self.retries)
