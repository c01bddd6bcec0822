"""The planner: `plan(spec, observed, now) -> Plan`, a pure function.

`orchestrator diff` prints the plan; `orchestrator reconcile` executes it. Both call this one
function, so what `diff` shows is exactly what a pass would do. Every task in the spec gets
either an action or a visible wait reason; tasks that left the spec are stopped and pruned.

Decision order per pass, deterministic (backlog order is priority):
1. merged tasks: prune their worktree (if `prune`);
2. running attempts: stop them when over their timeout or a hard budget is spent, else they
   hold a slot, a scope and their port (the reason shows the agent's turn and last action);
3. finished attempts (exit 0): merge, holding their scope until merged;
4. failed attempts: retry once the backoff is over and attempts remain;
5. new tasks: spawn when dependencies are merged, no budget covering them is spent
   (`core.budget`), a slot is free, the scope is free and, for an agent with `ports`, a port
   is free (`core.ports`; the action carries it);
6. tasks no longer in the spec: stop their agent, prune their worktree (never their branch).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, tzinfo
from typing import Any

from controller.core.budget import must_stop, start_blocked
from controller.core.lifecycle import (
    TaskState,
    attempts_allowed,
    failure_reason,
    retry_at,
    task_state,
)
from controller.core.ports import free_port, ports_in_use
from controller.core.schedule import Admission, ScopeHolders, admission, unmet_dependencies
from controller.model.durations import format_duration
from controller.model.names import branch_for
from controller.model.observed import AttemptObs, Observed
from controller.model.spec import Spec, Task

SPAWN, RETRY, MERGE, PRUNE, STOP = "spawn", "retry", "merge", "prune", "stop"
SYMBOLS = {SPAWN: "+", RETRY: "~", MERGE: ">", PRUNE: "-", STOP: "!", "wait": "."}


@dataclass(frozen=True)
class Action:
    kind: str
    task: str
    reason: str
    agent: str | None = None
    attempt: int | None = None
    # spawn/retry: start from the integration tip again (after a conflict)
    fresh: bool = False
    # stop: the outcome recorded for the stopped attempt ("timeout", "stopped")
    outcome: str | None = None
    # stop: keep the attempt's uncommitted work in an archive ref (a hard budget)
    snapshot: bool = False
    # spawn/retry: the port handed to the attempt (its agent's `ports`)
    port: int | None = None


@dataclass(frozen=True)
class Wait:
    task: str
    phase: str
    reason: str
    until: float | None = None


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...]
    waits: tuple[Wait, ...]
    admission: Admission
    running: int
    now: float
    phases: dict[str, str] = field(default_factory=dict)

    @property
    def has_changes(self) -> bool:
        return bool(self.actions)

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for a in self.actions:
            out[a.kind] = out.get(a.kind, 0) + 1
        return out

    def as_dict(self) -> dict[str, Any]:
        return {
            "actions": [asdict(a) for a in self.actions],
            "waits": [asdict(w) for w in self.waits],
            "summary": self.counts(),
            "changes": self.has_changes,
            "admission": {**asdict(self.admission), "bound_by": self.admission.bound_by},
            "running": self.running,
            "phases": self.phases,
            "now": self.now,
        }


class _Planner:
    """One planning pass; a class only to share the pass's bookkeeping between steps."""

    def __init__(self, spec: Spec, observed: Observed, now: float, tz: tzinfo):
        self.spec, self.obs, self.now, self.tz = spec, observed, now, tz
        self.actions: list[Action] = []
        self.waits: list[Wait] = []
        self.phases: dict[str, str] = {}
        self.admission = admission(spec, observed.resources)
        self.holders = ScopeHolders()
        self.running = 0
        self.per_agent: dict[str, int] = {}
        self.done = set(observed.merged_tasks) | set(spec.completed)
        self.in_spec = {t.id for t in spec.backlog}
        self.guarded = not spec.backlog and not spec.prune_on_empty_backlog
        self.ports = ports_in_use(observed.attempts, now)

    # -- helpers ---------------------------------------------------------------------------
    def act(self, action: Action, phase: str) -> None:
        self.actions.append(action)
        self.phases[action.task] = phase

    def wait(self, task: str, phase: str, reason: str, until: float | None = None) -> None:
        self.waits.append(Wait(task, phase, reason, until))
        self.phases[task] = phase

    def state(self, task: Task) -> TaskState:
        return task_state(
            self.obs.attempts.get(task.id, ()),
            task.id in self.obs.merged_tasks,
            self.now,
            self.spec.max_attempts(task),
        )

    def total_attempts(self, task: Task) -> int:
        """The last attempt number allowed: a free attempt (see `is_free`) adds one."""
        return attempts_allowed(self.spec, task, self.obs.attempts.get(task.id, ()))

    def worktree_label(self, task_id: str) -> str:
        root = self.spec.worktree_root_path
        try:
            shown = root.relative_to(self.spec.repo_path)
        except ValueError:
            shown = root
        return f"{shown}/{task_id}"

    # -- passes ----------------------------------------------------------------------------
    def run(self) -> Plan:
        states = {t.id: self.state(t) for t in self.spec.backlog}
        # occupancy first, so that slots and scopes are known before anything new is admitted
        for task in self.spec.backlog:
            self.occupy(task, states[task.id])
        self.occupy_orphans()
        for task in self.spec.backlog:
            self.decide(task, states[task.id], states)
        self.orphans()
        return Plan(
            actions=tuple(self.actions),
            waits=tuple(self.waits),
            admission=self.admission,
            running=self.running,
            now=self.now,
            phases=self.phases,
        )

    def occupy(self, task: Task, st: TaskState) -> None:
        if st.stage in ("running", "starting"):
            self.running += 1
            self.per_agent[task.agent] = self.per_agent.get(task.agent, 0) + 1
            self.holders.add(task.id, self.spec.scope_of(task))
        elif st.stage == "pending_merge":
            self.holders.add(task.id, self.spec.scope_of(task))

    def occupy_orphans(self) -> None:
        for task_id, attempts in self.obs.attempts.items():
            if task_id not in self.in_spec and attempts and attempts[-1].alive:
                self.running += 1
                agent = attempts[-1].agent  # stopped after this pass's spawns: still counts
                if agent is not None:
                    self.per_agent[agent] = self.per_agent.get(agent, 0) + 1

    def decide(self, task: Task, st: TaskState, states: dict[str, TaskState]) -> None:
        stage = st.stage
        if stage == "merged":
            self.decide_merged(task)
        elif stage in ("running", "starting"):
            self.decide_running(task, st)
        elif stage == "pending_merge":
            self.decide_merge(task, st)
        elif stage == "rejected":
            self.wait(task.id, "rejected", f"not merged: {st.reason}; branch kept for review")
        elif stage == "exhausted":
            tries = f"{st.attempts} attempt{'s' if st.attempts != 1 else ''}"
            self.wait(task.id, "failed", f"retries exhausted after {tries}: {st.reason}")
        else:
            self.decide_start(task, st, states)

    def decide_merged(self, task: Task) -> None:
        if task.id in self.obs.worktrees and self.spec.prune:
            self.act(Action(PRUNE, task.id, "merged; worktree removed, branch kept"), "merged")
        else:
            self.phases[task.id] = "merged"

    def decide_running(self, task: Task, st: TaskState) -> None:
        last = st.last
        assert last is not None
        limit = self.spec.timeout_of(task)
        started = last.started_at or last.created_at
        n, m = last.number, self.total_attempts(task)
        if last.alive and started is not None and self.now - started > limit:
            reason = f"timed out after {format_duration(limit)} (attempt {n} of {m})"
            self.act(Action(STOP, task.id, reason, task.agent, n, outcome="timeout"), "running")
            return
        over = must_stop(self.spec, task, self.obs.spent) if last.alive else None
        if over is not None:
            stop = Action(STOP, task.id, over, task.agent, n, outcome="stopped", snapshot=True)
            self.act(stop, "running")
            return
        elapsed = f", {format_duration(self.now - started)}" if started else ""
        pid = f" pid {last.pid}" if last.pid else ""
        deadline = started + limit if started is not None else None
        doing = _activity(last)
        self.wait(
            task.id, st.stage, f"attempt {n} of {m} running{pid}{elapsed}{doing}", until=deadline
        )

    def decide_merge(self, task: Task, st: TaskState) -> None:
        if task.id in self.obs.merging:
            verify = " ".join(self.spec.verify) if self.spec.verify else "no verify gate"
            self.wait(task.id, "verifying", f"merge in progress (verify: {verify})")
            return
        checkout = self.obs.integration_checkout
        branch = self.spec.integration_branch
        if checkout is not None and checkout.dirty:
            self.wait(
                task.id,
                "merging",
                f"cannot merge: {branch} is checked out with uncommitted changes in "
                f"{checkout.path}; commit or stash them",
            )
            return
        if self.obs.integration_sha is None:
            self.wait(task.id, "merging", f"cannot merge: branch {branch} not found")
            return
        verify = " ".join(self.spec.verify) if self.spec.verify else "no verify gate"
        n = st.last.number if st.last else None
        reason = f"{branch_for(task.id)} into {branch} (verify: {verify})"
        self.act(Action(MERGE, task.id, reason, task.agent, n), "merging")

    def decide_start(self, task: Task, st: TaskState, states: dict[str, TaskState]) -> None:
        phase = "retrying" if st.stage == "failed" else "queued"
        held = self.held_back(task, st, states)
        if held is not None:
            self.waits.append(held)
            self.phases[task.id] = held.phase
            return
        agent = self.spec.agents[task.agent]
        why = self.no_room(task)
        port = free_port(agent.ports, self.ports) if agent.ports and why is None else None
        if why is None and agent.ports and port is None:
            r = agent.ports
            why = f"no free port in {r.first}-{r.last} (all {r.size} in use)"
        if why is not None:
            self.wait(task.id, phase, why)
            return
        if port is not None:
            self.ports.add(port)
        self.start(task, st, port)

    def held_back(self, task: Task, st: TaskState, states: dict[str, TaskState]) -> Wait | None:
        """Why `task` may not start yet for reasons of its own: backoff, pause, dependencies."""
        if st.stage == "failed" and st.last is not None:
            due = retry_at(self.spec, task, st.last)
            if self.now < due:
                reason = (
                    f"backoff until {clock_time(due, self.tz)} ({format_duration(due - self.now)})"
                    f" after attempt {st.last.number}: {st.reason}"
                )
                return Wait(task.id, "retrying", reason, due)
        if self.spec.paused or task.paused:
            return Wait(task.id, "paused", "paused in the spec")
        blockers = unmet_dependencies(task, self.done)
        if blockers:
            shown = ", ".join(f"{b} ({_dep_phase(states.get(b))})" for b in blockers)
            return Wait(task.id, "blocked", f"blocked by {shown}")
        return None

    def no_room(self, task: Task) -> str | None:
        """Why the fleet cannot take `task` now: stopping, budget, the branch, the runner,
        its scope, the slots, its agent's limit."""
        if self.obs.draining:
            return "stopping: no new agents are started"
        over_budget = start_blocked(self.spec, task, self.obs.spent)
        if over_budget:
            return over_budget
        if self.obs.integration_sha is None:
            return f"branch {self.spec.integration_branch} not found"
        if self.obs.runner_error:
            return f"runner unavailable: {self.obs.runner_error}"
        holder = self.holders.conflict(task.id, self.spec.scope_of(task))
        if holder:
            return f"scope held by {holder}"
        limit = self.admission.limit
        if self.running >= limit:
            return f"no slot: {self.running}/{limit} ({self.admission.bound_by})"
        cap = self.spec.agents[task.agent].max_parallel
        in_use = self.per_agent.get(task.agent, 0)
        if cap is not None and in_use >= cap:
            return f"agent {task.agent} at its limit: {in_use}/{cap}"
        return None

    def start(self, task: Task, st: TaskState, port: int | None) -> None:
        """Admit `task`: it takes a slot and its scope, and gets its spawn or retry action."""
        number, total = st.attempts + 1, self.total_attempts(task)
        on_port = f", port {port}" if port is not None else ""
        self.running += 1
        self.per_agent[task.agent] = self.per_agent.get(task.agent, 0) + 1
        self.holders.add(task.id, self.spec.scope_of(task))
        if st.stage == "failed" and st.last is not None:
            fresh = st.last.outcome == "conflict"
            why = f"attempt {number} of {total}: {failure_reason(st.last)}"
            why += ", fresh start on the new tip" if fresh else ", backoff over"
            why += on_port
            retry = Action(RETRY, task.id, why, task.agent, number, fresh=fresh, port=port)
            self.act(retry, "starting")
            return
        where = f"{task.agent} in {self.worktree_label(task.id)} (branch {branch_for(task.id)})"
        where += on_port
        self.act(Action(SPAWN, task.id, where, task.agent, number, port=port), "starting")

    def orphans(self) -> None:
        ids = sorted((set(self.obs.attempts) | set(self.obs.worktrees)) - self.in_spec)
        for task_id in ids:
            attempts = self.obs.attempts.get(task_id, ())
            alive = bool(attempts) and attempts[-1].alive
            if self.guarded and (alive or task_id in self.obs.worktrees):
                self.wait(
                    task_id,
                    "orphan",
                    "not in the spec, but the backlog is empty: left alone "
                    "(set pruneOnEmptyBacklog: true to clean up)",
                )
                continue
            if alive:
                n = attempts[-1].number
                self.act(
                    Action(STOP, task_id, "removed from the spec", None, n, outcome="stopped"),
                    "stopping",
                )
            elif task_id in self.obs.merging and task_id in self.obs.worktrees:
                # its merge job may still read the worktree (leftover commit): prune after
                self.wait(task_id, "orphan", "removed from the spec; merge in progress")
            elif task_id in self.obs.worktrees and self.spec.prune:
                reason = "removed from the spec; uncommitted work archived, branch kept"
                self.act(Action(PRUNE, task_id, reason), "orphan")


def _activity(last: AttemptObs) -> str:
    """`; turn 3: Edit src/x.py`: what a running agent reported doing, if anything."""
    report = last.report
    if report is None or (report.turns is None and report.last_action is None):
        return ""
    turn = f"turn {report.turns}" if report.turns is not None else ""
    action = report.last_action or ""
    return "; " + ": ".join(part for part in (turn, action) if part)


def clock_time(ts: float, tz: tzinfo) -> str:
    """`HH:MM:SS` of the moment `ts` in time zone `tz`."""
    return datetime.fromtimestamp(ts, tz).strftime("%H:%M:%S")


def _dep_phase(st: TaskState | None) -> str:
    if st is None:
        return "not merged"
    return {
        "exhausted": "failed",
        "rejected": "rejected",
        "running": "running",
        "starting": "running",
        "pending_merge": "merging",
        "failed": "retrying",
    }.get(st.stage, "not merged")


def plan(spec: Spec, observed: Observed, now: float, *, tz: tzinfo = UTC) -> Plan:
    """What one reconcile pass would do, given the desired and observed state at `now`.

    `tz` is the time zone the reasons show clock times in (the shell passes the local one).
    """
    return _Planner(spec, observed, now, tz).run()
