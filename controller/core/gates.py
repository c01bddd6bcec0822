"""The rules a task must pass before it may start, in the order they are asked.

Each gate is a pure function of (pass state, task, task state) that returns a `Hold` (why the
task waits, and until when if that is known) or None. The first gate that holds a task back
gives its wait reason, so the order matters: reasons a user can act on (backoff, pause,
dependencies) come before the machine's (slots). A new admission rule is a new gate, added to
`START_GATES` where its reason belongs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from controller.core.budget import start_blocked
from controller.core.lifecycle import TaskState, retry_at
from controller.core.passstate import PassState
from controller.core.ports import free_port
from controller.core.ratelimit import SLOW_START, next_step_at, shown_limit
from controller.core.schedule import unmet_dependencies
from controller.core.specbacklog import specs_ahead
from controller.model.durations import format_duration
from controller.model.spec import Task


@dataclass(frozen=True)
class Hold:
    reason: str
    phase: str | None = None  # None: the task's own waiting phase (queued or retrying)
    until: float | None = None  # when the hold ends by itself, if known


Gate = Callable[[PassState, Task, TaskState], Hold | None]
SLOW_START_POLL_S = 1.0  # a slow start looks again this often for answers


def backoff(ps: PassState, task: Task, st: TaskState) -> Hold | None:
    if st.stage != "failed" or st.last is None or st.order is not None:
        return None  # an `orchestrator retry` is due at once
    due = retry_at(ps.spec, task, st.last)
    if ps.now >= due:
        return None
    reason = (
        f"backoff until {ps.clock(due)} ({format_duration(due - ps.now)}) "
        f"after attempt {st.last.number}: {st.reason}"
    )
    return Hold(reason, "retrying", due)


def paused(ps: PassState, task: Task, st: TaskState) -> Hold | None:
    return Hold("paused in the spec", "paused") if ps.spec.paused or task.paused else None


def dependencies(ps: PassState, task: Task, st: TaskState) -> Hold | None:
    blockers = unmet_dependencies(task, ps.done)
    if not blockers:
        return None
    shown = ", ".join(f"{b} ({dependency_phase(ps.states.get(b))})" for b in blockers)
    return Hold(f"blocked by {shown}", "blocked")


# a specification being written, or waiting to be written again, is ahead already
_WRITING = frozenset({"running", "starting", "pending_merge", "failed"})


def spec_ahead(ps: PassState, task: Task, st: TaskState) -> Hold | None:
    """A generated specification task waits while `specBacklog.ahead` others are ahead."""
    sb = ps.spec.spec_backlog
    if sb is None or task.id not in ps.spec.generated:
        return None
    started = {t for t, s in ps.states.items() if s.stage in _WRITING} | ps.slotted
    ahead = [s for s in specs_ahead(ps.spec, ps.done, started) if s != task.id]
    if len(ahead) < sb.ahead:
        return None
    shown = ", ".join(ahead)
    return Hold(f"spec backlog full: {len(ahead)}/{sb.ahead} specifications ahead ({shown})")


def draining(ps: PassState, task: Task, st: TaskState) -> Hold | None:
    return Hold("stopping: no new agents are started") if ps.obs.draining else None


def budget(ps: PassState, task: Task, st: TaskState) -> Hold | None:
    over = start_blocked(ps.spec, task, ps.obs.spent)
    return Hold(over) if over else None


def integration(ps: PassState, task: Task, st: TaskState) -> Hold | None:
    if ps.obs.integration_sha is not None:
        return None
    return Hold(f"branch {ps.spec.integration_branch} not found")


def runner(ps: PassState, task: Task, st: TaskState) -> Hold | None:
    error = ps.obs.runner_error
    return Hold(f"runner unavailable: {error}") if error else None


def merge_train(ps: PassState, task: Task, st: TaskState) -> Hold | None:
    """A fresh start after a conflict waits for the merge train under way: the branches it
    may have conflicted with are about to land, and the new attempt should start on them."""
    if st.stage != "failed" or st.last is None or st.last.outcome != "conflict":
        return None
    if not ps.obs.merging:
        return None
    n = len(ps.obs.merging)
    return Hold(f"fresh start waits for the merge train ({n} task{'s' if n != 1 else ''})")


def rate_limit(ps: PassState, task: Task, st: TaskState) -> Hold | None:
    """The provider's rate limiter: nothing starts before it resumes, nor beyond its limit."""
    provider = ps.spec.agents[task.agent].provider(task.agent)
    state = ps.limiters.get(provider) if provider else None
    if provider is None or state is None:
        return None
    policy = ps.policies[provider]
    limit = shown_limit(state, policy)
    if ps.now < state.resume_at:
        until = state.resume_at
        return Hold(f"rate limited: resuming at {ps.clock(until)} ({limit})", until=until)
    step = next_step_at(state, policy)
    in_use = sum(ps.per_agent.get(agent, 0) for agent in policy.agents)
    if state.limit is None or step is None or in_use < state.limit:
        return None
    return Hold(
        f"rate limited: {in_use} running ({limit}, one more at {ps.clock(step)} without a 429)",
        until=step,
    )


def slow_start(ps: PassState, task: Task, st: TaskState) -> Hold | None:
    """A provider whose agents report answers starts slowly (`ratelimit.SLOW_START`)."""
    provider = ps.spec.agents[task.agent].provider(task.agent)
    policy = ps.policies.get(provider) if provider else None
    if provider is None or policy is None or not policy.slow_start:
        return None
    waiting = ps.waiting.get(provider, 0)
    if waiting < max(SLOW_START, ps.answered.get(provider, 0)):
        return None
    agents = "agent waits" if waiting == 1 else "agents wait"
    reason = f"starting slowly: {waiting} {provider} {agents} for a first answer"
    return Hold(reason, until=ps.now + SLOW_START_POLL_S)


def scope(ps: PassState, task: Task, st: TaskState) -> Hold | None:
    holder = ps.holders.conflict(task.id, ps.spec.scope_of(task))
    return Hold(f"scope held by {holder}") if holder else None


def slots(ps: PassState, task: Task, st: TaskState) -> Hold | None:
    limit = ps.admission.limit
    if ps.running < limit:
        return None
    return Hold(f"no slot: {ps.running}/{limit} ({ps.admission.bound_by})")


def agent_limit(ps: PassState, task: Task, st: TaskState) -> Hold | None:
    cap = ps.spec.agents[task.agent].max_parallel
    in_use = ps.per_agent.get(task.agent, 0)
    if cap is None or in_use < cap:
        return None
    return Hold(f"agent {task.agent} at its limit: {in_use}/{cap}")


def port(ps: PassState, task: Task, st: TaskState) -> Hold | None:
    ports = ps.spec.agents[task.agent].ports
    if ports is None or free_port(ports, ps.ports) is not None:
        return None
    return Hold(f"no free port in {ports.first}-{ports.last} (all {ports.size} in use)")


START_GATES: tuple[Gate, ...] = (
    backoff,
    paused,
    dependencies,
    spec_ahead,
    draining,
    budget,
    integration,
    runner,
    merge_train,
    rate_limit,
    scope,
    slots,
    agent_limit,
    port,
    slow_start,
)


def first_hold(ps: PassState, task: Task, st: TaskState) -> Hold | None:
    for gate in START_GATES:
        hold = gate(ps, task, st)
        if hold is not None:
            return hold
    return None


def dependency_phase(st: TaskState | None) -> str:
    """How a dependency that is not merged yet stands, in a blocked task's reason."""
    if st is None:
        return "not merged"
    return {
        "exhausted": "failed",
        "rejected": "rejected",
        "stopped": "stopped",
        "running": "running",
        "starting": "running",
        "pending_merge": "merging",
        "failed": "retrying",
    }.get(st.stage, "not merged")
