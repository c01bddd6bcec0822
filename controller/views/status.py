"""The status model: a pure function of (spec, observed, plan, store rows, controller facts, now).

Every figure `orchestrator status` (and the dashboard) shows is computed here, without I/O:

- per task, the phase and reason the planner gives (`plan.phases`, its waits and actions),
  the attempt number out of the attempts allowed, agent, pid, worktree, branch, elapsed
  time, progress and an ETA;
- the ETA (`eta`) comes from the progress rate when the agent writes progress, else from the
  median duration of earlier attempts of the same agent type, and says which;
- the measured parallelism of the current backlog: the attempt intervals of the spec's tasks
  (a running attempt counts up to `now`) through `controller.core.metrics.parallelism`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from controller.core.conflicts import predicted_conflicts
from controller.core.lifecycle import attempts_allowed, classify_attempt, rate_limited_attempts
from controller.core.metrics import Parallelism, parallelism
from controller.core.plan import Plan
from controller.model.names import branch_for
from controller.model.observed import AgentReport, AttemptObs, Observed
from controller.model.overrides import Setting
from controller.model.spec import Spec
from controller.observe.clock import local_timezone
from controller.views.costs import Costs, costs_of
from controller.views.eta import NO_ETA, Eta, durations_by_agent, live_eta
from controller.views.foreign import ForeignCommits
from controller.views.measure import run_intervals
from controller.views.ratelimits import RateLimitView, rate_limit_views
from controller.views.snapshot import ControllerInfo, Snapshot

LIVE = frozenset({"running", "starting"})
# display order of phases (most pressing first) and their colours
PHASE_ORDER = (
    "running",
    "starting",
    "stopping",
    "verifying",
    "merging",
    "retrying",
    "queued",
    "blocked",
    "paused",
    "failed",
    "rejected",
    "stopped",
    "orphan",
    "merged",
)
PHASE_STYLE = {
    "merged": "green",
    "running": "cyan",
    "starting": "cyan",
    "stopping": "yellow",
    "verifying": "magenta",
    "merging": "magenta",
    "retrying": "yellow",
    "failed": "red",
    "rejected": "red",
    "stopped": "yellow",
    "orphan": "yellow",
    "blocked": "dim",
    "queued": "dim",
    "paused": "dim",
}


@dataclass(frozen=True)
class TaskView:
    task: str
    phase: str
    reason: str
    action: str | None  # the planner's next action for it (spawn, retry, merge, prune, stop)
    attempt: int  # number of the latest attempt (0: none yet)
    max_attempts: int
    agent: str | None
    pid: int | None  # of the live attempt
    worktree: str | None
    branch: str | None
    started_at: float | None
    elapsed_s: float | None  # of the latest attempt (up to now while it runs)
    progress: float | None
    eta: Eta = NO_ETA
    outcome: str | None = None  # the controller's verdict on the latest attempt
    in_spec: bool = True
    cost_usd: float = 0.0  # what all its attempts cost, as their agents reported it
    turns: int | None = None  # of the latest attempt, as its agent reported them
    last_action: str | None = None  # of the latest attempt while it runs
    generated_for: str | None = None  # a generated task (specBacklog): the task it serves
    requested_at: float | None = None  # when spawn-parallel asked for it to start first
    conflicts: tuple[str, ...] = ()  # files its branch will conflict on with the tip
    rate_limited: int = 0  # attempts that ended on a rate limit (no retry used)

    def as_dict(self) -> dict[str, Any]:
        return {
            "task": self.task,
            "phase": self.phase,
            "reason": self.reason,
            "action": self.action,
            "attempt": self.attempt,
            "max_attempts": self.max_attempts,
            "agent": self.agent,
            "pid": self.pid,
            "worktree": self.worktree,
            "branch": self.branch,
            "started_at": self.started_at,
            "elapsed_s": None if self.elapsed_s is None else round(self.elapsed_s, 3),
            "progress": self.progress,
            "eta_s": None if self.eta.seconds is None else round(self.eta.seconds, 3),
            "eta_basis": self.eta.basis,
            "eta_detail": self.eta.detail,
            "outcome": self.outcome,
            "in_spec": self.in_spec,
            "cost_usd": round(self.cost_usd, 6),
            "turns": self.turns,
            "last_action": self.last_action,
            "generated_for": self.generated_for,
            "requested_at": self.requested_at,
            "conflicts": list(self.conflicts),
            "rate_limited_attempts": self.rate_limited,
        }


@dataclass(frozen=True)
class StatusModel:
    now: float
    spec_file: str
    repo: str
    integration_branch: str
    generation: str
    controller: ControllerInfo
    tasks: tuple[TaskView, ...]
    counts: dict[str, int]
    cpu_percent: float
    memory_percent: float
    disk_free_bytes: int | None
    admission: dict[str, Any]
    running: int  # agents running now (the plan's count includes the spawns it admits)
    parallelism: Parallelism
    limit: int
    has_store: bool = True
    worktree_root: str = ""
    notes: tuple[str, ...] = field(default_factory=tuple)
    foreign: ForeignCommits = ForeignCommits()  # commits that bypassed the controller
    costs: Costs = field(default_factory=Costs)
    settings: tuple[Setting, ...] = ()  # maxParallel, pollInterval, retries, specBacklog
    disk_percent: float | None = None  # percent used of the repository's filesystem
    disk_rule: bool = False  # whether the spec has a disk rule (`resources.disk`)
    rate_limits: tuple[RateLimitView, ...] = ()

    @property
    def generation_current(self) -> bool | None:
        if self.controller.generation is None:
            return None
        return self.controller.generation == self.generation

    def as_dict(self) -> dict[str, Any]:
        c = self.controller
        p = self.parallelism
        return {
            "now": self.now,
            "spec": {
                "file": self.spec_file,
                "generation": self.generation,
                "repo": self.repo,
                "integration_branch": self.integration_branch,
                "worktree_root": self.worktree_root,
            },
            "controller": {
                "running": c.running,
                "pid": c.pid,
                "started_at": c.started_at,
                "last_pass": c.last_pass,
                "last_pass_age_s": None
                if c.last_pass is None
                else round(self.now - c.last_pass, 3),
                "spec_generation": c.generation,
                "spec_generation_current": self.generation_current,
                "spec_file": c.spec_file,
                "other": None
                if c.elsewhere is None
                else {
                    "pid": c.elsewhere.pid,
                    "spec_file": c.elsewhere.spec_file,
                    "state": c.elsewhere.state,
                },
            },
            "counts": self.counts,
            "tasks": [t.as_dict() for t in self.tasks],
            "resources": {
                "cpu_percent": round(self.cpu_percent, 1),
                "memory_percent": round(self.memory_percent, 1),
                "disk_free_bytes": self.disk_free_bytes,
                "disk_percent": None if self.disk_percent is None else round(self.disk_percent, 1),
                "admission": self.admission,
                "running": self.running,
            },
            "parallelism": {
                "work_s": round(p.work_s, 3),
                "busy_s": round(p.busy_s, 3),
                "overlap_s": round(p.overlap_s, 3),
                "attempts": p.attempts,
                "speedup": round(p.speedup, 3),
                "parallelization_rate": round(p.parallelization_rate, 3),
                "time_saved_s": round(p.time_saved_s, 3),
                "efficiency": round(p.efficiency(self.limit), 3),
                "limit": self.limit,
            },
            "has_store": self.has_store,
            "unattributed_commits": self.foreign.as_dict(),
            "cost": self.costs.as_dict(),
            "settings": {s.key: s.as_dict() for s in self.settings},
            "rate_limits": [v.as_dict() for v in self.rate_limits],
        }


# --- pure helpers -------------------------------------------------------------------------


def _reasons(result: Plan) -> tuple[dict[str, str], dict[str, str]]:
    reasons = {w.task: w.reason for w in result.waits}
    actions: dict[str, str] = {}
    for a in result.actions:
        reasons[a.task] = f"{a.kind}: {a.reason}"
        actions[a.task] = a.kind
    return reasons, actions


def task_views(
    spec: Spec,
    observed: Observed,
    timed: Mapping[str, Sequence[AttemptObs]],
    result: Plan,
    progress: Mapping[str, float],
    now: float,
) -> list[TaskView]:
    """One row per spec task (then tasks the planner still handles outside the spec).

    `timed` are the attempts with their recorded times (see `measure`): a finished
    attempt's elapsed time is its recorded duration, as in the activity summary. A running
    attempt's elapsed time (and so its ETA) counts from the agent's start as the shim saw
    it, the clock the planner's reason and timeout use. Phase, reason and action come from
    the plan, worktree and branch from `observed`.
    """
    reasons, actions = _reasons(result)
    starting = {a.task: a.attempt for a in result.actions if a.kind in ("spawn", "retry")}
    spec_tasks = {t.id: t for t in spec.backlog}
    history = durations_by_agent(timed, {t.id: t.agent for t in spec.backlog})
    ids = [t.id for t in spec.backlog] + sorted(set(result.phases) - set(spec_tasks))
    views = []
    for task_id in ids:
        attempts = timed.get(task_id, ())
        recorded = attempts[-1] if attempts else None
        task = spec_tasks.get(task_id)
        agent = (recorded.agent if recorded else None) or (task.agent if task else None)
        orders = observed.orders.get(task_id)
        allowed = attempts_allowed(spec, task, tuple(attempts), orders) if task else len(attempts)
        last, live = _current_attempt(task_id, recorded, observed, now)
        elapsed = _elapsed(last, live, now)
        pct = progress.get(task_id) if live else None
        eta = live_eta(task_id, last, live, pct, elapsed, history, agent)
        wt = observed.worktrees.get(task_id)
        has_branch = task_id in observed.branches or wt is not None
        report = last.report if last and last.report else AgentReport()
        views.append(
            TaskView(
                task=task_id,
                phase=result.phases.get(task_id, "unknown"),
                reason=reasons.get(task_id, ""),
                action=actions.get(task_id),
                # the attempt the plan starts now, else the latest
                attempt=starting.get(task_id) or (last.number if last else 0),
                max_attempts=allowed,
                agent=agent,
                pid=last.pid if live and last else None,
                worktree=wt.path if wt else None,
                branch=branch_for(task_id) if has_branch else None,
                started_at=last.started_at if last else None,
                elapsed_s=elapsed,
                progress=pct,
                eta=eta,
                outcome=last.outcome if last else None,
                in_spec=task is not None,
                **_extras(task_id, attempts, report, live, result),
                conflicts=predicted_conflicts(observed, task_id),
            )
        )
    return views


def _extras(
    task_id: str,
    attempts: Sequence[AttemptObs],
    report: AgentReport,
    live: bool,
    result: Plan,
) -> dict[str, Any]:
    """What a task's row shows besides its attempt: cost, the agent's own report, and the
    planner's marks (generated by specBacklog, requested by spawn-parallel)."""
    return {
        "cost_usd": sum(a.cost_usd for a in attempts),
        "turns": report.turns,
        "last_action": report.last_action if live else None,
        "generated_for": result.generated.get(task_id),
        "requested_at": result.requested.get(task_id),
        "rate_limited": rate_limited_attempts(tuple(attempts)),
    }


def _current_attempt(
    task_id: str, recorded: AttemptObs | None, observed: Observed, now: float
) -> tuple[AttemptObs | None, bool]:
    """The latest attempt and whether it is live; a live one as observed, on the agent's own
    clock (the one the planner's reason and timeout use)."""
    live = recorded is not None and classify_attempt(recorded, now) in LIVE
    if live and recorded is not None:
        seen = observed.attempts.get(task_id, ())
        if seen and seen[-1].number == recorded.number and seen[-1].started_at is not None:
            return seen[-1], live
    return recorded, live


def _elapsed(last: AttemptObs | None, live: bool, now: float) -> float | None:
    if last is None or last.started_at is None:
        return None
    end = now if live else last.ended_at
    return None if end is None else max(0.0, end - last.started_at)


def backlog_parallelism(
    spec: Spec, timed: Mapping[str, Sequence[AttemptObs]], now: float
) -> Parallelism:
    """Measured parallelism of the spec's tasks' attempts (live ones up to `now`)."""
    in_spec = {t.id for t in spec.backlog}
    attempts = [a for t, rows in timed.items() if t in in_spec for a in rows]
    return parallelism(run_intervals(attempts, now))


def build_status(snap: Snapshot) -> StatusModel:
    spec, observed, result, now = snap.spec, snap.observed, snap.plan, snap.now
    views = task_views(spec, observed, snap.attempts, result, snap.progress, now)
    counts: dict[str, int] = {}
    for v in views:
        counts[v.phase] = counts.get(v.phase, 0) + 1
    adm = result.admission
    res = observed.resources
    return StatusModel(
        now=now,
        spec_file=str(spec.source),
        repo=str(spec.repo_path),
        integration_branch=spec.integration_branch,
        generation=snap.generation,
        controller=snap.controller,
        tasks=tuple(views),
        counts={k: counts[k] for k in sorted(counts, key=_phase_rank)},
        cpu_percent=res.cpu_percent,
        memory_percent=res.memory_percent,
        disk_free_bytes=res.disk_free_bytes,
        disk_percent=res.disk_percent,
        disk_rule=spec.resources.disk is not None,
        admission={**asdict(adm), "bound_by": adm.bound_by},
        running=sum(1 for rows in observed.attempts.values() if rows and rows[-1].alive),
        parallelism=backlog_parallelism(spec, snap.attempts, now),
        limit=spec.max_parallel,
        has_store=snap.has_store,
        worktree_root=str(spec.worktree_root_path),
        foreign=snap.foreign,
        costs=costs_of(
            spec, snap.attempts, len(observed.merged_tasks & {t.id for t in spec.backlog})
        ),
        settings=snap.settings,
        rate_limits=rate_limit_views(spec, result, now, local_timezone()),
    )


def _phase_rank(phase: str) -> int:
    return PHASE_ORDER.index(phase) if phase in PHASE_ORDER else len(PHASE_ORDER)


def by_urgency(views: Sequence[TaskView]) -> list[TaskView]:
    """Tasks ordered most pressing first (running before queued before merged), stable."""
    return sorted(views, key=lambda v: _phase_rank(v.phase))
