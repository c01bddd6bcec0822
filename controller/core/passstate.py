"""What one planning pass knows and has decided so far: the inputs, and the slots, scopes and
per-agent counts taken by running work and by the tasks admitted earlier in the pass.

Shared by the planner (`plan`) and the rules a task must pass to start (`gates`), so that each
rule can be a small function of (pass state, task, its state).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, tzinfo

from controller.core.lifecycle import TaskState, attempts_allowed
from controller.core.ratelimit import Policy, waiting_for_answer
from controller.core.schedule import Admission, ScopeHolders
from controller.model.observed import AttemptObs, Observed
from controller.model.ratelimit import LimiterState
from controller.model.spec import Spec, Task


@dataclass
class PassState:
    spec: Spec
    obs: Observed
    now: float
    tz: tzinfo
    admission: Admission
    states: dict[str, TaskState] = field(default_factory=dict)
    holders: ScopeHolders = field(default_factory=ScopeHolders)
    running: int = 0
    per_agent: dict[str, int] = field(default_factory=dict)
    done: set[str] = field(default_factory=set)
    ports: set[int] = field(default_factory=set)  # held by live attempts and those admitted
    slotted: set[str] = field(default_factory=set)  # running or admitted in this pass
    # provider -> its rate limiter after this pass's signals, and how it backs off
    limiters: dict[str, LimiterState] = field(default_factory=dict)
    policies: dict[str, Policy] = field(default_factory=dict)
    # provider -> its live agents waiting for a first answer (those admitted included), and
    # those that had one (slow start, `ratelimit.waiting_for_answer`)
    waiting: dict[str, int] = field(default_factory=dict)
    answered: dict[str, int] = field(default_factory=dict)

    def take_slot(self, task: Task) -> None:
        """`task` runs (or is admitted): it holds a slot, an agent instance and its scope."""
        self.slotted.add(task.id)
        self.running += 1
        self.per_agent[task.agent] = self.per_agent.get(task.agent, 0) + 1
        self.holders.add(task.id, self.spec.scope_of(task))

    def count_answers(self, task: Task, attempt: AttemptObs | None, admitted: bool) -> None:
        """Slow start's bookkeeping for a live (or just admitted) attempt of `task`."""
        provider = self.spec.agents[task.agent].provider(task.agent)
        policy = self.policies.get(provider) if provider else None
        if provider is None or policy is None or not policy.slow_start:
            return
        if admitted or attempt is None or waiting_for_answer(attempt, self.now):
            self.waiting[provider] = self.waiting.get(provider, 0) + 1
        else:
            self.answered[provider] = self.answered.get(provider, 0) + 1

    def total_attempts(self, task: Task) -> int:
        """The last attempt number allowed: a free attempt (see `is_free`) adds one."""
        attempts = self.obs.attempts.get(task.id, ())
        return attempts_allowed(self.spec, task, attempts, self.obs.orders.get(task.id))

    def clock(self, ts: float) -> str:
        """`HH:MM:SS` of the moment `ts` in the pass's time zone."""
        return clock_time(ts, self.tz)


def clock_time(ts: float, tz: tzinfo) -> str:
    """`HH:MM:SS` of the moment `ts` in time zone `tz`."""
    return datetime.fromtimestamp(ts, tz).strftime("%H:%M:%S")
