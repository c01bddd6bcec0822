"""The planner: `plan(spec, observed, now) -> Plan`, a pure function.

`orchestrator diff` prints the plan; `orchestrator reconcile` executes it. Both call this one
function, so what `diff` shows is exactly what a pass would do. Every task in the spec gets
either an action or a visible wait reason; tasks that left the spec are stopped and pruned.

Decision order per pass, deterministic (`order.start_order` says which task goes first):
1. merged tasks: prune their worktree (if `prune`);
2. running attempts: stop them when over their timeout, else they hold a slot and a scope;
3. finished attempts (exit 0): merge, holding their scope until merged;
4. failed attempts: retry once the backoff is over and attempts remain;
5. new tasks: spawn when every start gate lets them through (`gates`: dependencies merged,
   no budget covering them spent, their provider not rate limited (`ratelimit`), a slot
   free, the scope free, a port free for an agent with `ports` -- the action carries it);
6. tasks no longer in the spec: stop their agent, prune their worktree (never their branch).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, tzinfo
from typing import Any

from controller.core.budget import must_stop
from controller.core.gates import first_hold
from controller.core.lifecycle import TaskState, failure_reason, rate_limited_attempts, task_state
from controller.core.order import start_order
from controller.core.outcomes import judged_rate_limits
from controller.core.passstate import PassState
from controller.core.ports import free_port, ports_in_use
from controller.core.ratelimit import advance_all, policies
from controller.core.schedule import Admission, admission
from controller.model.durations import format_duration
from controller.model.names import branch_for
from controller.model.observed import AttemptObs, Observed
from controller.model.ratelimit import LimiterState
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
    # provider -> its rate limiter after this pass (the controller stores what changed)
    rate_limits: dict[str, LimiterState] = field(default_factory=dict)

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
            "rate_limits": {p: asdict(s) for p, s in self.rate_limits.items()},
            "now": self.now,
        }


class _Planner:
    """One planning pass; a class only to share the pass's bookkeeping between steps."""

    def __init__(self, spec: Spec, observed: Observed, now: float, tz: tzinfo):
        observed = judged_rate_limits(spec, observed, now)
        self.spec, self.obs, self.now = spec, observed, now
        self.ps = PassState(spec, observed, now, tz, admission(spec, observed.resources))
        self.ps.done = set(observed.merged_tasks) | set(spec.completed)
        self.ps.ports = ports_in_use(observed.attempts, now)
        self.ps.policies = policies(spec)
        self.ps.limiters = advance_all(spec, observed, now)
        self.actions: list[Action] = []
        self.waits: list[Wait] = []
        self.phases: dict[str, str] = {}
        self.in_spec = {t.id for t in spec.backlog}
        self.guarded = not spec.backlog and not spec.prune_on_empty_backlog

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
        self.ps.states = states
        # occupancy first, so that slots and scopes are known before anything new is admitted
        for task in self.spec.backlog:
            if states[task.id].stage in ("running", "starting"):
                self.ps.take_slot(task)
                self.ps.count_answers(task, states[task.id].last, admitted=False)
            elif states[task.id].stage == "pending_merge":
                self.ps.holders.add(task.id, self.spec.scope_of(task))
        self.occupy_orphans()
        for task in start_order(self.spec, self.obs, states):
            self.decide(task, states[task.id])
        self.orphans()
        return Plan(
            actions=tuple(self.actions),
            waits=tuple(self.waits),
            admission=self.ps.admission,
            running=self.ps.running,
            now=self.now,
            phases=self.phases,
            rate_limits=self.ps.limiters,
        )

    def occupy_orphans(self) -> None:
        for task_id, attempts in self.obs.attempts.items():
            if task_id not in self.in_spec and attempts and attempts[-1].alive:
                self.ps.running += 1
                agent = attempts[-1].agent  # stopped after this pass's spawns: still counts
                if agent is not None:
                    self.ps.per_agent[agent] = self.ps.per_agent.get(agent, 0) + 1

    def decide(self, task: Task, st: TaskState) -> None:
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
            self.decide_start(task, st)

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
        n, m = last.number, self.ps.total_attempts(task)
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
        reason = f"attempt {n} of {m} running{pid}{elapsed}{_activity(last)}"
        self.wait(task.id, st.stage, reason, until=deadline)

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

    def decide_start(self, task: Task, st: TaskState) -> None:
        retrying = st.stage == "failed"
        hold = first_hold(self.ps, task, st)
        if hold is not None:
            phase = hold.phase or ("retrying" if retrying else "queued")
            self.wait(task.id, phase, hold.reason, hold.until)
            return
        self.ps.take_slot(task)
        self.ps.count_answers(task, None, admitted=True)
        ports = self.spec.agents[task.agent].ports
        port = free_port(ports, self.ps.ports) if ports else None  # a gate checked there is one
        if port is not None:
            self.ps.ports.add(port)
        on_port = f", port {port}" if port is not None else ""
        number = st.attempts + 1
        if retrying and st.last is not None:
            fresh = st.last.outcome == "conflict"
            why = f"attempt {number} of {self.ps.total_attempts(task)}"
            limited = rate_limited_attempts(self.obs.attempts.get(task.id, ()))
            why += f" ({limited} rate limited, no retry used): " if limited else ": "
            why += failure_reason(st.last)
            if st.last.outcome == "rate_limited":
                why += ", the provider resumed"
            else:
                why += ", fresh start on the new tip" if fresh else ", backoff over"
            retry = Action(
                RETRY, task.id, why + on_port, task.agent, number, fresh=fresh, port=port
            )
            self.act(retry, "starting")
        else:
            branch = branch_for(task.id)
            where = f"{task.agent} in {self.worktree_label(task.id)} (branch {branch}){on_port}"
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


def plan(spec: Spec, observed: Observed, now: float, *, tz: tzinfo = UTC) -> Plan:
    """What one reconcile pass would do, given the desired and observed state at `now`.

    `tz` is the time zone the reasons show clock times in (the shell passes the local one).
    """
    return _Planner(spec, observed, now, tz).run()
