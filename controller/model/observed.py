"""Observed state: what the world looks like at the start of a pass.

These are plain frozen values, built by the readers in this package (git, processes,
resources, the store) and consumed by the pure planner. Nothing here does I/O, so the
planner's table tests can build an `Observed` by hand.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property

from controller.model.ratelimit import LimiterState, LogHint


@dataclass(frozen=True)
class Usage:
    """Tokens and cost of one attempt, as its agent reported them."""

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float | None = None  # None: the agent reported tokens but no cost

    @property
    def tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_tokens
            + (self.cache_write_tokens)
        )


@dataclass(frozen=True)
class AgentReport:
    """What an agent said about its own run: Claude Code's stream-json (read by the shim as
    it runs) or the JSON a `command` agent wrote to `$ORCHESTRATOR_USAGE_FILE`."""

    usage: Usage | None = None  # at the end of the run (a result line, or the usage file)
    turns: int | None = None  # model turns so far (the result's num_turns at the end)
    last_action: str | None = None  # e.g. "Edit src/x.py", shortened, printable
    denials: tuple[str, ...] = ()  # tool calls the agent's own permissions refused
    error: str | None = None  # the run ended on an error the agent reported (is_error)
    api_error_status: int | None = None  # HTTP status of the API error it ended on
    api_retries: int = 0  # API requests the agent retried (its `api_retry` lines)
    rate_limit_retries: int = 0  # of those, after a 429
    retry_delay_s: float | None = None  # the delay of its latest API retry
    rate_limited_at: float | None = None  # when the shim read its latest 429 retry line
    finished: bool = False  # the final result was seen


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
    report: AgentReport | None = None  # what the agent said (runs dir, else the store)
    port: int | None = None  # handed out by the planner for `ports` (store)
    setup_failed: bool = False  # the agent never ran: its `setup` command failed (exit record)
    setup_error: str = ""  # what the shim said about that failure (exit record)
    # the process's start in clock ticks since boot, with the boot id (`state.identity`):
    # its identity where the platform has one, whatever the wall clock does
    start_id: str | None = None
    # a line of its log matching its agent's `rateLimit.patterns` (a failed command agent)
    log_hint: LogHint | None = None

    @property
    def exited(self) -> bool:
        return self.exit_code is not None

    @property
    def cost_usd(self) -> float:
        """What the attempt cost as far as known (0 when its agent reported nothing)."""
        usage = self.report.usage if self.report else None
        if usage is None or usage.cost_usd is None:
            return 0.0
        return usage.cost_usd


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
    # percent used of the repository's filesystem (None: it could not be read)
    disk_percent: float | None = None


@dataclass(frozen=True)
class Spent:
    """What the recorded attempts cost, in USD: in all, per agent and per task."""

    total: float = 0.0
    by_agent: Mapping[str, float] = field(default_factory=dict)
    by_task: Mapping[str, float] = field(default_factory=dict)

    @classmethod
    def of(
        cls,
        attempts: Mapping[str, tuple[AttemptObs, ...]],
        agent_of: Mapping[str, str] | None = None,
    ) -> Spent:
        """The tally of `attempts`; an attempt's agent is its recorded one, else `agent_of`."""
        total = 0.0
        by_agent: dict[str, float] = {}
        by_task: dict[str, float] = {}
        for task, rows in attempts.items():
            for a in rows:
                cost = a.cost_usd
                if not cost:
                    continue
                total += cost
                by_task[task] = by_task.get(task, 0.0) + cost
                agent = a.agent or (agent_of or {}).get(task)
                if agent is not None:
                    by_agent[agent] = by_agent.get(agent, 0.0) + cost
        return cls(total, by_agent, by_task)


@dataclass(frozen=True)
class Holdoff:
    """An action that failed `failures` times in a row (e.g. git could not take a lock):
    not tried again before `until` (1 s doubling to 60 s), and `reason` says why."""

    task: str
    kind: str  # the action's kind: prune, stop, merge, spawn (spawn and retry)
    failures: int
    until: float
    reason: str


@dataclass(frozen=True)
class Intervention:
    """A person's order about one task, a fact in the store: `orchestrator retry` (a fresh
    budget of attempts, due at once), `reset` (its attempts forgotten, a fresh start from the
    integration tip) or `stop --task` (its running agent stopped, and held until a retry)."""

    kind: str  # "retry" | "reset" | "stop"
    after: int  # the task's last attempt number when it was given (0: none yet)
    at: float
    fresh: bool = False  # retry --fresh: start again from the integration tip


@dataclass(frozen=True)
class TaskOrders:
    """The orders in force for one task: the latest, and what the retries and resets given
    so far mean for its attempts (the store computes both)."""

    latest: Intervention
    # attempts up to this number do not count against `retries` (the latest retry or reset)
    counted_after: int = 0
    # attempts up to this number are forgotten (the latest reset)
    forgotten: int = 0

    def pending(self, number: int) -> Intervention | None:
        """The latest order when no attempt has started since it (not acted on yet)."""
        return self.latest if self.latest.after >= number else None


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
    # provider -> the fleet's rate limiter as the store keeps it (before this pass)
    rate_limits: Mapping[str, LimiterState] = field(default_factory=dict)

    @cached_property
    def spent(self) -> Spent:
        """What every recorded attempt cost (attempts without a recorded agent count in
        the fleet's and their task's figures only)."""
        return Spent.of(self.attempts)

    # tasks `orchestrator spawn-parallel` asked to start first: id -> when (oldest first)
    requested: dict[str, float] = field(default_factory=dict)
    # of the paths looked up on the integration branch (specBacklog files), those present
    present_paths: frozenset[str] = frozenset()
    # (action kind, task id) -> a failing action held off (published in the store)
    holdoffs: dict[tuple[str, str], Holdoff] = field(default_factory=dict)
    # task id -> the last early conflict check of its branch (the controller's, from the store)
    conflict_checks: dict[str, ConflictCheck] = field(default_factory=dict)
    # agent -> median duration of its attempts that finished their work (exit 0), seconds
    agent_durations: dict[str, float] = field(default_factory=dict)
    # task id -> the orders a person gave about it (retry, reset, stop --task)
    orders: dict[str, TaskOrders] = field(default_factory=dict)
