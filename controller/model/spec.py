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

from pydantic import Field, PrivateAttr, field_validator

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
from controller.model.sections import (
    Backoff,
    LocalRunnerSpec,
    MergeQueue,
    RayRunnerSpec,
    Resources,
    RoadmapSource,
    Runner,
    Threshold,
)

DEFAULT_LOG_LIMIT = 50 << 20  # 50MB per attempt
# Agent, AgentResources, Budget are defined in `agent`, Notify and SpecBacklog in `addons`,
# the smaller sections in `sections`: all part of the spec format
__all__ = [
    "Agent",
    "AgentResources",
    "Backoff",
    "Budget",
    "LocalRunnerSpec",
    "MergeQueue",
    "Notify",
    "RayRunnerSpec",
    "Resources",
    "RoadmapSource",
    "Runner",
    "Spec",
    "SpecBacklog",
    "Task",
    "Threshold",
]


class Task(SpecModel):
    id: TaskId = Field(
        description="The task's name: lower-case letters, digits, '.', '_', '-'; it names "
        "the branch orchestrator/<id> and the worktree."
    )
    agent: str = Field(description="The agent (a key of `agents`) that works on it.")
    title: str | None = Field(None, description="A short title, for merge commits and views.")
    prompt: str = Field("", description="What the agent is asked to do.")
    paths: list[Glob] | None = Field(
        None,
        description="Its write scope: globs of the files it may change, inside its agent's "
        "`owns` (default: the agent's `owns`). Two tasks whose scopes may overlap never run "
        "at once; a merge that changes a file outside is rejected.",
    )
    depends_on: list[str] = Field(
        default_factory=list,
        description="Tasks that must be merged before this one starts.",
    )
    paused: bool = Field(False, description="Start no attempt of it (running ones go on).")
    timeout: PositiveDuration | None = Field(
        None,
        description="Per attempt; a hung agent is stopped (default: its agent's, else "
        "the top-level `timeout`).",
    )
    retries: Annotated[int, Field(ge=0, le=100)] | None = Field(
        None,
        description="Attempts after its first failed one (default: the top-level "
        "`retries`). `orchestrator retry` gives it this many again.",
    )
    estimate: Duration | None = Field(
        None, description="How long it should take, for ETAs before any attempt has run."
    )
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


class Spec(SpecModel):
    """The whole desired state. Paths are resolved by the loader (see `spec_load`)."""

    api_version: Literal["orchestrator/v1"] = Field(
        description="The spec format's version: orchestrator/v1."
    )
    repo: str = Field(".", description="The git repository, relative to this file.")
    integration_branch: str = Field(
        "main", description="The branch finished work is merged into (verified first)."
    )
    state_dir: str | None = Field(
        None,
        description="Where the controller keeps its database, logs and run records "
        "(default: state/ beside the specs/ folder, else beside this file). Git is told to "
        "ignore it.",
    )
    worktree_root: str | None = Field(
        None, description="Where task worktrees are made (default: <stateDir>/worktrees)."
    )
    max_parallel: Annotated[int, Field(ge=1, le=1024)] = Field(
        4,
        description="At most this many agents at once (the CPU, memory and disk rules "
        "may allow fewer).",
    )
    poll_interval: PositiveDuration = Field(
        30.0,
        description="How often the watch loop looks again even when nothing woke it "
        "(it also wakes on spec edits, agent exits and requests).",
    )
    retries: Annotated[int, Field(ge=0, le=100)] = Field(
        3,
        description="Attempts after a task's first failed one (a task's own `retries` "
        "wins). A stopped attempt does not count; `orchestrator retry` gives a fresh budget.",
    )
    backoff: Backoff = Field(
        default_factory=Backoff, description="The wait between attempts of a failed task."
    )
    timeout: PositiveDuration = Field(
        7200.0, description="Per attempt; a hung agent is stopped and the attempt retried."
    )
    resources: Resources = Field(
        default_factory=Resources,
        description="How many agents the machine's load allows (CPU, memory, disk rules).",
    )
    verify: Annotated[list[str], Field(min_length=1)] | None = Field(
        None,
        description="argv run on every merge result, in a scratch checkout of it, before it "
        "lands: it must exit 0 (docs/verify.md). E.g. [python, -m, pytest, -q].",
    )
    verify_timeout: PositiveDuration = Field(
        1800.0, description="A verify run still going after this long fails the merge."
    )
    prune: bool = Field(
        True, description="Remove a task's worktree once it is merged (never its branch)."
    )
    prune_on_empty_backlog: bool = Field(
        False,
        description="With an empty backlog, stop and prune what is left as well (off: "
        "an emptied backlog is taken for a mistake, and nothing is touched).",
    )
    paused: bool = Field(False, description="Start no new attempt (running ones go on).")
    agents: Annotated[dict[AgentName, Agent], Field(min_length=1)] = Field(
        description="The agents, by name: how each starts and what it may write."
    )
    backlog: list[Task] = Field(default_factory=list, description="The tasks, in priority order.")
    backlog_from: RoadmapSource | None = Field(
        None, description="More tasks, from the planned items of a markdown ROADMAP."
    )
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
    merge_queue: MergeQueue = Field(
        default_factory=lambda: MergeQueue(),
        description="The merge train: `{batch: 8, parallelVerify: 1}` verifies up to 8 "
        "finished branches in one run. The default (`batch: 1`) verifies each on its own.",
    )
    order: Literal["backlog", "critical-path"] = Field(
        default="backlog",
        description="Which waiting task gets a free slot first. `backlog`: the backlog's "
        "order (a ROADMAP's order is its priority). `critical-path`: the task with the longest "
        "chain of dependants still to run (durations from `estimate`, else the agent's median "
        "measured duration, else 1 s), backlog order breaking ties.",
    )
    merge_author: Identity | None = Field(
        default=None,
        json_schema_extra=schema_without_null,
        description="Who the controller's merge commits are authored by ({name, email}). "
        "Default: your git identity as git finds it for the repository (user.name, "
        "user.email). The committer stays `orchestrator <orchestrator@localhost>`, so the "
        "controller's merges stay recognisable.",
    )
    runner: Runner = Field(
        default_factory=lambda: LocalRunnerSpec(),
        description="Where agents run: on this machine (kind: local, the default) or as Ray "
        "jobs on a cluster (kind: ray).",
    )
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
