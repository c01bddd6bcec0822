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
   tasks spawn-parallel asked for are asked first;
6. tasks no longer in the spec: stop their agent, prune their worktree (never their branch).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from datetime import UTC, tzinfo
from typing import Any

from controller.core.budget import must_stop
from controller.core.conflicts import conflict_note, predicted_conflicts
from controller.core.gates import first_hold
from controller.core.lifecycle import (
    TaskState,
    budget_note,
    failure_reason,
    starts_fresh,
    task_state,
)
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
# the holdoff (`Observed.holdoffs`) an action is subject to, by its kind
HOLDOFF_KIND = {RETRY: SPAWN}


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
    # generated tasks (`specBacklog`): id -> the task each writes the specification of
    generated: dict[str, str] = field(default_factory=dict)
    # tasks spawn-parallel asked to start first: id -> when
    requested: dict[str, float] = field(default_factory=dict)
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
            "generated": self.generated,
            "requested": self.requested,
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
        held = self.obs.holdoffs.get((HOLDOFF_KIND.get(action.kind, action.kind), action.task))
        if held is not None and self.now < held.until:
            times = f"{held.failures} time{'s' if held.failures != 1 else ''}"
            wait = format_duration(max(0.0, held.until - self.now))
            reason = f"{action.kind} failed {times}, next try in {wait}: {held.reason}"
            self.wait(action.task, phase, reason, held.until)
            return
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
            self.obs.orders.get(task.id),
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
            generated=dict(self.spec.generated),
            requested=dict(self.obs.requested),
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
            why = f"not merged: {st.reason}; branch {branch_for(task.id)} kept for review"
            self.wait(task.id, "rejected", why + _next_steps(task.id, fresh=True))
        elif stage == "exhausted":
            tries = f"{st.used} attempt{'s' if st.used != 1 else ''}"
            why = f"retries exhausted after {tries}: {st.reason}"
            self.wait(task.id, "failed", why + _next_steps(task.id))
        elif stage == "stopped":
            at = self.ps.clock(st.order.at) if st.order else "?"
            why = f"stopped by hand at {at} (attempt {st.number}); `orchestrator retry {task.id}`"
            self.wait(task.id, "stopped", why + " starts it again")
        else:
            self.decide_start(task, st)

    def decide_merged(self, task: Task) -> None:
        if task.id in self.obs.merging:  # landed; its merge is still being recorded
            self.phases[task.id] = "merged"
        elif task.id in self.obs.worktrees and self.spec.prune:
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
        if last.alive and st.order is not None and st.order.kind == "stop":
            reason = f"stopped by hand at {self.ps.clock(st.order.at)} (attempt {n})"
            stop = Action(STOP, task.id, reason, task.agent, n, outcome="stopped", snapshot=True)
            self.act(stop, "stopping")
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
        self.wait(task.id, st.stage, reason + self.conflict_suffix(task.id), until=deadline)

    def conflict_suffix(self, task_id: str) -> str:
        files = predicted_conflicts(self.obs, task_id)
        return f"; {conflict_note(files, self.spec.integration_branch)}" if files else ""

    def decide_merge(self, task: Task, st: TaskState) -> None:
        if task.id in self.obs.merging:
            verify = " ".join(self.spec.verify) if self.spec.verify else "no verify gate"
            self.wait(task.id, "verifying", f"merge in progress (verify: {verify})")
            return
        if self.obs.merging:
            n = len(self.obs.merging)
            reason = f"queued for the merge train ({n} task{'s' if n != 1 else ''} verifying)"
            self.wait(task.id, "merging", reason + self.conflict_suffix(task.id))
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
        reason += self.conflict_suffix(task.id)
        self.act(Action(MERGE, task.id, reason, task.agent, n), "merging")

    def decide_start(self, task: Task, st: TaskState) -> None:
        retrying = st.stage == "failed"
        hold = first_hold(self.ps, task, st)
        asked = self.obs.requested.get(task.id)
        said = f"requested at {self.ps.clock(asked)} (spawn-parallel); " if asked else ""
        if hold is not None:
            phase = hold.phase or ("retrying" if retrying else "queued")
            self.wait(task.id, phase, said + hold.reason, hold.until)
            return
        self.ps.take_slot(task)
        self.ps.count_answers(task, None, admitted=True)
        ports = self.spec.agents[task.agent].ports
        port = free_port(ports, self.ps.ports) if ports else None  # a gate checked there is one
        if port is not None:
            self.ps.ports.add(port)
        on_port = f", port {port}" if port is not None else ""
        number = st.number + 1
        if retrying and st.last is not None:
            why, fresh = self.retry_reason(task, st, number)
            retry = Action(
                RETRY, task.id, said + why + on_port, task.agent, number, fresh=fresh, port=port
            )
            self.act(retry, "starting")
        else:
            branch = branch_for(task.id)
            where = f"{task.agent} in {self.worktree_label(task.id)} (branch {branch}){on_port}"
            # after a reset the old branch is archived and started over from the tip
            order = st.order
            fresh = order is not None and task.id in self.obs.branches
            if order is not None:
                where = f"reset at {self.ps.clock(order.at)}: starting over; {where}"
            spawn = Action(SPAWN, task.id, said + where, task.agent, number, fresh, port=port)
            self.act(spawn, "starting")

    def retry_reason(self, task: Task, st: TaskState, number: int) -> tuple[str, bool]:
        """Why attempt `number` starts (`attempt 2 of 4: exit 1, backoff over`), and whether
        it starts afresh from the integration tip."""
        assert st.last is not None
        attempts = self.obs.attempts.get(task.id, ())
        orders = self.obs.orders.get(task.id)
        total = self.ps.total_attempts(task)
        why = f"attempt {number} of {total}{budget_note(self.spec, task, attempts, orders)}: "
        if st.order is not None:  # `orchestrator retry`
            fresh = st.order.fresh
            how = "from the integration tip, old branch archived" if fresh else "on its branch"
            when = self.ps.clock(st.order.at)
            return why + f"retried by hand at {when} ({how}) after: {st.reason}", fresh
        why += failure_reason(st.last)
        if st.last.outcome == "rate_limited":
            return why + ", the provider resumed", False
        fresh = starts_fresh(attempts)  # attempts that never ran skipped
        return why + (", fresh start on the new tip" if fresh else ", backoff over"), fresh

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
                reason = "removed from the spec; worktree removed, branch kept"
                self.act(Action(PRUNE, task_id, reason), "orphan")


def _next_steps(task_id: str, *, fresh: bool = False) -> str:
    """What a person can do about a task that stopped trying."""
    again = f"`orchestrator retry {task_id}`" + (" (--fresh: from the tip)" if fresh else "")
    return f"; `orchestrator logs {task_id}` shows why, {again} tries again"


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
