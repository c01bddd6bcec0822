"""Observed state: what the world looks like at the start of a pass.

These are plain frozen values, built by the readers in this package (git, processes,
resources, the store) and consumed by the pure planner. Nothing here does I/O, so the
planner's table tests can build an `Observed` by hand.
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CommitInfo:
    """One commit as `git log` shows it: who authored and committed it, which task merges
    its `Orchestrator-Task` trailers name, its subject line."""

    sha: str
    author_email: str
    committer_email: str
    author_name: str = ""
    committer_name: str = ""
    tasks: tuple[str, ...] = ()
    subject: str = ""


@dataclass(frozen=True)
class AttemptObs:
    """One attempt of one task, as the store, the runs directory and the OS see it.

    `outcome` is the controller's verdict once it has processed the attempt (None while
    the attempt runs or before the controller noticed its exit). Values: "failed",
    "timeout", "lost", "conflict", "verify_failed", "rejected", "stopped", "merged",
    "succeeded" (exited 0, merge pending).
    """

    task: str
    number: int
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    pid: int | None = None
    create_time: float | None = None
    alive: bool = False
    outcome: str | None = None
    reason: str = ""
    retry_at: float | None = None
    conflicts: tuple[str, ...] = ()
    created_at: float | None = None  # when the intent row was written (before the spawn)
    # a remote runner's id for the attempt ("ray:<submission id>"); such an attempt runs
    # until its runner writes the exit record (it has no local pid to check)
    handle: str | None = None
    agent: str | None = None  # from the store's intent row
    base_sha: str | None = None  # integration sha the attempt's branch started from (store)
    timed_out: bool = False  # the shim killed it at the timeout (exit record)
    signal: int | None = None  # signal that ended it, if any (exit record)

    @property
    def exited(self) -> bool:
        return self.exit_code is not None


@dataclass(frozen=True)
class WorktreeObs:
    """A git worktree of the repository (from `git worktree list --porcelain`)."""

    path: str
    head: str | None
    branch: str | None  # short name, e.g. "orchestrator/us-043"; None when detached
    dirty: bool | None = None  # only measured where it matters (the integration checkout)
    bare: bool = False  # the bare repository itself (no checkout)
    locked: bool = False  # `git worktree lock`ed: `worktree remove` needs --force twice
    prunable: bool = False  # its directory is gone; `git worktree prune` would drop it
    lock_reason: str | None = None  # "initializing": `git worktree add` was killed mid-way

    @property
    def half_added(self) -> bool:
        """`git worktree add` was killed before it finished: git's own lock is still on."""
        return self.locked and self.lock_reason == "initializing"


@dataclass(frozen=True)
class BranchObs:
    """A task branch `orchestrator/<task>`."""

    task: str
    sha: str
    merged: bool  # tip is an ancestor of the integration branch


@dataclass(frozen=True)
class ConflictCheck:
    """A task branch merged in memory onto the integration tip (`git merge-tree`) before it
    finished or landed, to see conflicts early. Valid only while both shas are current."""

    task: str
    branch_sha: str
    base_sha: str
    checked_at: float
    conflicts: tuple[str, ...] = ()  # conflicting files; empty: it merges cleanly


@dataclass(frozen=True)
class ResourcesObs:
    cpu_percent: float = 0.0
    memory_percent: float = 0.0
    disk_free_bytes: int | None = None


@dataclass(frozen=True)
class Observed:
    """Everything the planner may look at, besides the spec and the clock."""

    integration_sha: str | None = None
    # the worktree that has the integration branch checked out, if any (dirty measured)
    integration_checkout: WorktreeObs | None = None
    # tasks whose merge commit (trailer `Orchestrator-Task: <id>`) is on the integration branch
    merged_tasks: frozenset[str] = frozenset()
    # task id -> its worktree under the worktree root
    worktrees: dict[str, WorktreeObs] = field(default_factory=dict)
    # task id -> its branch
    branches: dict[str, BranchObs] = field(default_factory=dict)
    # task id -> attempts, oldest first
    attempts: dict[str, tuple[AttemptObs, ...]] = field(default_factory=dict)
    resources: ResourcesObs = field(default_factory=ResourcesObs)
    # graceful stop requested: start nothing new
    draining: bool = False
    # tasks whose merge (verify gate included) is being carried out right now
    merging: frozenset[str] = frozenset()
    # why the runner cannot start agents right now (e.g. the cluster is unreachable)
    runner_error: str | None = None
    # task id -> the last early conflict check of its branch (the controller's, from the store)
    conflict_checks: dict[str, ConflictCheck] = field(default_factory=dict)
    # agent -> median duration of its attempts that finished their work (exit 0), seconds
    agent_durations: dict[str, float] = field(default_factory=dict)
