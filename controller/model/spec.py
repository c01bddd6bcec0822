"""Desired state: the pydantic models of `specs/orchestrator.yaml`.

The models are the single definition of the spec format: field types (`fields`), defaults
and the checks a single field can make on its own. Loading YAML with located errors lives in
`controller.specfile.load`, checks across fields (dependencies, scopes, cycles) in
`controller.specfile.checks`, so each has one reason to change. The JSON Schema in
`specs/schema.json` is exported from these models (`python -m controller.specfile.schema`).
Nothing here touches the disk: the loader resolves where things are (`Locations`).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, PrivateAttr, field_validator, model_validator

from controller.model.addons import Identity, Notify, SpecBacklog
from controller.model.agent import Agent, AgentResources, Budget
from controller.model.fields import (
    AgentName,
    Duration,
    EnvName,
    Glob,
    LogLimit,
    PositiveDuration,
    SpecModel,
    TaskId,
    check_argv,
    ref_name_problem,
    schema_without_null,
)

DEFAULT_LOG_LIMIT = 50 << 20  # 50MB per attempt
# Agent, AgentResources, Budget are defined in `agent`, Notify and SpecBacklog in `addons`:
# all part of the spec format
__all__ = ["Agent", "AgentResources", "Budget", "Notify", "Spec", "SpecBacklog", "Task"]


class Threshold(SpecModel):
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


class Resources(SpecModel):
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
    disk: list[Threshold] | None = Field(
        default=None,
        description="Agents allowed by how full the filesystem of the repository is (percent "
        "used, as `df` shows it), like `cpu` and `memory`: e.g. [{below: 90, parallel: 4}, "
        "{below: 95, parallel: 2}, {parallel: 1}]. Unset: disk use limits nothing (`status` "
        "still shows it).",
    )

    @field_validator("cpu", "memory", "disk")
    @classmethod
    def _ordered(cls, rules: list[Threshold] | None) -> list[Threshold] | None:
        return None if rules is None else _check_thresholds(rules)


class Backoff(SpecModel):
    initial: Duration = 10.0
    max: Duration = 300.0

    @model_validator(mode="after")
    def _ordered(self) -> Backoff:
        if self.initial > self.max:
            raise ValueError(f"initial ({self.initial:g}s) must not exceed max ({self.max:g}s)")
        return self


class Task(SpecModel):
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
    allow_empty: bool | None = Field(
        default=None,
        json_schema_extra=schema_without_null,
        description="an attempt that changes nothing may merge; overrides the agent's "
        "allowEmpty (default: it fails with reason 'no changes')",
    )
    budget: Budget | None = Field(
        default=None,
        json_schema_extra=schema_without_null,
        description="what all attempts of this task may spend",
    )

    @property
    def display_title(self) -> str:
        return self.title or self.id


class RoadmapSource(SpecModel):
    """`backlogFrom`: planned items of a markdown ROADMAP become backlog tasks."""

    roadmap: str
    agent: str


class LocalRunnerSpec(SpecModel):
    """Agents run as detached processes on this machine (the default)."""

    kind: Literal["local"] = "local"


class RayRunnerSpec(SpecModel):
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


class Spec(SpecModel):
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
    spec_backlog: SpecBacklog | None = Field(
        default=None,
        description="Specifications written ahead of the implementation: each backlog task "
        "whose spec file is not on the integration branch gets a generated task `<id>-spec` "
        "(run by `agent`, its scope the spec file) that it depends on.",
    )
    notify: Notify | None = Field(
        default=None,
        description="Run a command on the events that need a person (failures, rejections, "
        "exhausted retries, convergence...), in the background: it never slows the loop.",
    )
    merge_author: Identity | None = Field(
        default=None,
        json_schema_extra=schema_without_null,
        description="Who the controller's merge commits are authored by ({name, email}). "
        "Default: your git identity as git finds it for the repository (user.name, "
        "user.email). The committer stays `orchestrator <orchestrator@localhost>`, so the "
        "controller's merges stay recognisable.",
    )
    runner: Runner = Field(default_factory=lambda: LocalRunnerSpec())
    # --- security: what verify sees, what may land, who may commit (issue 16) -------------
    verify_env: dict[EnvName, str] = Field(
        default_factory=dict,
        description="Environment variables set for the verify command. Verify runs "
        "agent-written code, so it gets a scrubbed environment: PATH, HOME, LANG, LC_*, TERM, "
        "TMPDIR, TZ, USER, LOGNAME, SHELL, VIRTUAL_ENV, CONDA_PREFIX from the controller, then "
        "`verifyPassEnv`, then these.",
    )
    verify_pass_env: list[EnvName] = Field(
        default_factory=list,
        description="Names of further environment variables the verify command gets from the "
        "controller's environment (e.g. PYTHONPATH, a proxy); all others are withheld.",
    )
    allow_external_symlinks: bool = Field(
        default=False,
        description="Merge symlinks that point outside the repository (an absolute target, or "
        "one climbing above the root). Off by default: such a merge is rejected; when on, "
        "each one is reported as an `external_symlink` event.",
    )
    trusted_authors: list[Annotated[str, Field(min_length=3, pattern=r"^[^\s@]+@[^\s@]+$")]] = (
        Field(
            default_factory=list,
            description="Email addresses of people whose commits on the integration branch are "
            "expected, besides your own git identity. `status` lists commits on that branch's "
            "first-parent history, since the controller first ran, that are neither the "
            "controller's merges nor authored and committed by a known person.",
        )
    )
    # -- caps (docs/security.md) --
    log_limit: LogLimit = Field(
        default=DEFAULT_LOG_LIMIT,
        description="Largest size of one attempt's log (agent output, and the verify log); "
        "when a log grows past it, its oldest output is dropped and the end kept. A size "
        "such as 50MB or 512KB (1KB = 1024 bytes); an agent's own logLimit overrides it.",
    )
    budget: Budget | None = Field(
        default=None,
        json_schema_extra=schema_without_null,
        description="what the whole fleet may spend (every attempt recorded)",
    )

    # filled in by the loader: where things are on disk, and roadmap items already complete
    _locations: Locations | None = PrivateAttr(default=None)
    _completed: frozenset[str] = PrivateAttr(default=frozenset())
    _origins: dict[int, tuple[str, int]] = PrivateAttr(default_factory=dict)
    _warnings: list[Any] = PrivateAttr(default_factory=list)  # spec_load.Problem
    # tasks `core.specbacklog` added for this pass: generated id -> the task it writes a spec for
    _generated: dict[str, str] = PrivateAttr(default_factory=dict)

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
        return check_argv(v, "verify", "[python, -m, pytest, -q]")

    # --- resolved locations -------------------------------------------------------------
    @property
    def locations(self) -> Locations:
        """Where things are on disk, as the loader resolved them (unresolved defaults for a
        spec built in memory, relative to the current directory)."""
        return self._locations or default_locations(self, Path("specs/orchestrator.yaml"))

    def with_locations(self, locations: Locations) -> Spec:
        """This spec, placed at `locations` (used by the loader and by tests)."""
        self._locations = locations
        return self

    @property
    def source(self) -> Path:
        return self.locations.source

    @property
    def warnings(self) -> list[Any]:
        """Located problems that do not invalidate the spec (e.g. in a roadmap)."""
        return self._warnings

    @property
    def generated(self) -> dict[str, str]:
        """Tasks the controller generated (`specBacklog`): id -> the task they serve."""
        return self._generated

    @property
    def completed(self) -> frozenset[str]:
        """Task ids already done outside the controller (roadmap items marked complete)."""
        return self._completed

    @property
    def repo_path(self) -> Path:
        return self.locations.repo

    @property
    def state_path(self) -> Path:
        return self.locations.state

    @property
    def worktree_root_path(self) -> Path:
        return self.locations.worktree_root

    def scope_of(self, task: Task) -> tuple[str, ...]:
        """A task's write scope: its `paths`, else its agent's `owns`."""
        if task.paths is not None:
            return tuple(task.paths)
        agent = self.agents.get(task.agent)
        return tuple(agent.owns) if agent else ()

    def timeout_of(self, task: Task) -> float:
        agent = self.agents.get(task.agent)
        return task.timeout or (agent.timeout if agent and agent.timeout else self.timeout)

    def log_limit_of(self, task: Task) -> int:
        agent = self.agents.get(task.agent)
        return agent.log_limit if agent and agent.log_limit else self.log_limit

    def max_attempts(self, task: Task) -> int:
        return 1 + (task.retries if task.retries is not None else self.retries)

    def allow_empty(self, task: Task) -> bool:
        """Whether an attempt of `task` that changes nothing may merge."""
        if task.allow_empty is not None:
            return task.allow_empty
        agent = self.agents.get(task.agent)
        return bool(agent and agent.allow_empty)


@dataclass(frozen=True)
class Locations:
    """Where a spec's things are on disk: resolved by the loader, so that nothing that
    reads a `Spec` (the planner included) touches the disk to find them."""

    source: Path  # the spec file
    base_dir: Path  # its folder: relative paths in the spec start here
    repo: Path
    state: Path
    worktree_root: Path


def _join(base: Path, path: str) -> Path:
    return Path(os.path.normpath(base / os.path.expanduser(path)))


def default_locations(spec: Spec, source: Path, base: Path | None = None) -> Locations:
    """The locations `spec` names, relative to `base` (default: `source`'s folder), by
    string rules only (`~` expanded, `..` folded); the loader resolves them further."""
    base = source.parent if base is None else base
    state = (
        _join(base, spec.state_dir)
        if spec.state_dir
        else (base.parent if base.name == "specs" else base) / "state"
    )
    root = _join(base, spec.worktree_root) if spec.worktree_root else state / "worktrees"
    return Locations(source, base, _join(base, spec.repo), state, root)


def spec_generation(spec: Spec) -> str:
    """A short fingerprint of the desired state a controller acts on (stored as
    `spec_generation`, so `status` can tell whether the controller runs the file's spec)."""
    digest = hashlib.sha256(spec.model_dump_json(by_alias=True).encode()).hexdigest()
    return digest[:12]
