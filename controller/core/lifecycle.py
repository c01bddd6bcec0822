"""Where one task stands, derived from its observed attempts: the task state machine.

Pure functions of (spec task, attempts, merged?, now). The planner uses them to decide;
`status` uses them to show the same phase the planner acted on. There is no stored "phase"
column anywhere: the phase is always recomputed from the world and the attempt records.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, replace

from controller.model.observed import AttemptObs, Intervention, TaskOrders
from controller.model.spec import Spec, Task

# outcomes after which another attempt may follow
RETRYABLE = frozenset(
    {"failed", "timeout", "lost", "conflict", "verify_failed", "stopped", "rate_limited"}
)
STARTUP_GRACE_S = 10.0  # an intent row without a process, younger than this, is "starting"
# attempts of one task that ended on a rate limit and cost no retry; beyond this they count
# (a safety valve: an agent that always says "429" must not loop for ever)
FREE_RATE_LIMITED = 20


@dataclass(frozen=True)
class TaskState:
    """The lifecycle stage of a task. `stage` is one of:

    new, starting, running, pending_merge, failed (may retry), exhausted, rejected, stopped
    (held after a `stop --task`), merged.
    """

    stage: str
    attempts: int  # attempts the stage is judged on (those a reset forgot left out)
    last: AttemptObs | None = None
    reason: str = ""
    number: int = 0  # the task's last attempt number, forgotten ones included (0: none)
    used: int = 0  # attempts counted against `retries` (since the latest retry or reset)
    order: Intervention | None = None  # a person's order not acted on yet (retry, reset, stop)


def is_free(a: AttemptObs) -> bool:
    """An attempt that does not count against `retries`: one the user stopped, or one whose
    agent never started because the controller died between recording the intent and the
    launch (a controller crash must not use up a task's retries)."""
    never_started = (
        a.pid is None and a.handle is None and a.started_at is None and a.exit_code is None
    )
    return a.outcome == "stopped" or (a.outcome == "lost" and never_started)


def free_attempts(attempts: tuple[AttemptObs, ...], after: int = 0) -> int:
    """How many of `attempts` numbered above `after` cost no retry: the `is_free` ones, and
    those that ended on a rate limit (the provider's limit, not the task, made them fail),
    up to `FREE_RATE_LIMITED`."""
    recent = [a for a in attempts if a.number > after]
    limited = sum(1 for a in recent if a.outcome == "rate_limited")
    return sum(1 for a in recent if is_free(a)) + min(limited, FREE_RATE_LIMITED)


def rate_limited_attempts(attempts: tuple[AttemptObs, ...]) -> int:
    return sum(1 for a in attempts if a.outcome == "rate_limited")


def refusal(a: AttemptObs) -> str | None:
    """Why an attempt whose agent exited 0 failed all the same, by the agent's own account:
    tool calls its permissions refused (it "finished" without doing them), or an error."""
    report = a.report
    if report is None:
        return None
    if report.denials:
        return "permission denied: " + ", ".join(report.denials)
    if report.error:
        return f"the agent reported an error: {report.error}"
    return None


def exit_failure(a: AttemptObs) -> str:
    """Why an attempt whose process ended failed: its setup, exit code, the agent's report."""
    if a.setup_failed:
        return f"setup failed: {a.setup_error or f'exit {a.exit_code}'}"
    if a.exit_code == 0:
        return refusal(a) or "exit 0"
    reason = f"exit {a.exit_code}"
    report = a.report
    if report is not None and report.api_error_status is not None:
        reason += f": API error {report.api_error_status}"
    if report is not None and report.error:
        reason += f" ({report.error})"
    return reason


def never_started(a: AttemptObs) -> bool:
    """An attempt whose agent never ran: the controller died between recording the intent
    and the launch (or a start-up step, such as resetting the worktree, was cut short)."""
    return (
        a.outcome == "lost"
        and a.pid is None
        and a.handle is None
        and a.started_at is None
        and a.exit_code is None
    )


def starts_fresh(attempts: tuple[AttemptObs, ...]) -> bool:
    """Whether the next attempt starts over from the integration tip: the last attempt that
    ran ended in a merge conflict. Attempts that never ran are skipped, so a fresh start a
    kill interrupted (its worktree half reset) is made again, not continued from."""
    ran = [a for a in attempts if not never_started(a)]
    return bool(ran) and ran[-1].outcome == "conflict"


def failure_reason(a: AttemptObs) -> str:
    if a.reason:
        return a.reason
    if a.outcome == "timeout" or a.timed_out:
        return "timed out"
    if a.exit_code is not None:
        return exit_failure(a)
    return "agent vanished without an exit record"


def classify_attempt(a: AttemptObs, now: float) -> str:
    """running | starting | succeeded | failed | rejected | merged for one attempt."""
    if a.outcome in ("merged", "rejected"):
        return a.outcome
    if a.alive:
        # still alive whatever its verdict (a stop that has not taken yet): it holds its
        # worktree, slot and scope, and no retry may start beside it
        return "running"
    if a.outcome in RETRYABLE:
        return "failed"
    if a.exit_code is not None:
        return "succeeded" if a.exit_code == 0 and refusal(a) is None else "failed"
    if a.outcome == "succeeded":
        return "succeeded"
    if a.pid is None and a.created_at is not None and now - a.created_at < STARTUP_GRACE_S:
        return "starting"
    return "failed"  # the process is gone and left no exit record: lost


def visible_attempts(
    attempts: tuple[AttemptObs, ...], orders: TaskOrders | None
) -> tuple[AttemptObs, ...]:
    """The attempts a `reset` has not forgotten (all of them without one)."""
    if orders is None or not orders.forgotten:
        return attempts
    return tuple(a for a in attempts if a.number > orders.forgotten)


def counted(attempts: tuple[AttemptObs, ...], orders: TaskOrders | None) -> int:
    """Attempts that count against `retries`: not free, and after the latest retry/reset."""
    after = orders.counted_after if orders is not None else 0
    return sum(1 for a in attempts if a.number > after) - free_attempts(attempts, after)


def task_state(
    attempts: tuple[AttemptObs, ...],
    merged: bool,
    now: float,
    max_attempts: int,
    orders: TaskOrders | None = None,
) -> TaskState:
    """Where a task stands. `orders` are a person's (see `Intervention`): a pending retry
    makes a failed, exhausted or rejected task due for a new attempt at once, with a fresh
    budget; a reset forgets the attempts before it; a pending stop holds a stopped task."""
    number = attempts[-1].number if attempts else 0
    attempts = visible_attempts(attempts, orders)
    order = orders.pending(number) if orders is not None else None
    n = len(attempts)
    if merged:
        return TaskState("merged", n, attempts[-1] if attempts else None, number=number)
    if not attempts:
        if order is not None and order.kind == "stop":
            return TaskState("stopped", 0, number=number, order=order)
        return TaskState(
            "new", 0, number=number, order=order if order and order.kind == "reset" else None
        )
    last = attempts[-1]
    kind = classify_attempt(last, now)
    state = TaskState(kind, n, last, number=number, order=order)
    if kind in ("running", "starting"):
        return state
    if kind in ("succeeded", "merged"):
        # "merged" by our records but not on the integration branch (reset by hand): land again
        return replace(state, stage="pending_merge", order=None)
    reason = last.reason if kind == "rejected" else failure_reason(last)
    if order is not None and order.kind == "stop":
        return replace(state, stage="stopped", reason=reason)
    if order is not None and order.kind == "retry":
        return replace(state, stage="failed", reason=reason)
    if kind == "rejected":
        return replace(state, reason=reason, order=None)
    used = counted(attempts, orders)
    stage = "exhausted" if used >= max_attempts else "failed"
    return replace(state, stage=stage, reason=reason, used=used, order=None)


def attempts_allowed(
    spec: Spec, task: Task, attempts: tuple[AttemptObs, ...], orders: TaskOrders | None = None
) -> int:
    """The last attempt number `task` may reach: its budget counted from the latest retry or
    reset, plus one for each free attempt (`free_attempts`) since then."""
    after = orders.counted_after if orders is not None else 0
    return after + spec.max_attempts(task) + free_attempts(attempts, after)


def budget_note(
    spec: Spec, task: Task, attempts: tuple[AttemptObs, ...], orders: TaskOrders | None = None
) -> str:
    """Why `attempts_allowed` is not simply 1 + retries: ` (counted from attempt 5; 1 stopped
    or never started, not counted)`, or "" when it is."""
    after = orders.counted_after if orders is not None else 0
    free = sum(1 for a in attempts if a.number > after and is_free(a))
    limited = sum(1 for a in attempts if a.number > after and a.outcome == "rate_limited")
    notes = []
    if after:  # a retry or reset by hand: a fresh budget from the attempt after it
        notes.append(f"counted from attempt {after + 1}")
    if free:
        notes.append(f"{free} stopped or never started, not counted")
    if limited:
        notes.append(f"{limited} rate limited, no retry used")
    return f" ({'; '.join(notes)})" if notes else ""


def backoff_delay(task_id: str, number: int, initial: float, maximum: float) -> float:
    """Exponential backoff with deterministic 'equal jitter' in [delay/2, delay].

    The jitter comes from a hash of (task, attempt) rather than a random source, so the
    deadline is a pure function of recorded facts and survives a controller restart.
    """
    delay = min(maximum, initial * (2 ** max(0, number - 1)))
    digest = hashlib.sha256(f"{task_id}/{number}".encode()).digest()
    unit = int.from_bytes(digest[:8], "big") / 2**64
    return max(min(initial, maximum), delay * (0.5 + 0.5 * unit))


def retry_at(spec: Spec, task: Task, last: AttemptObs) -> float:
    """When the next attempt may start after the failed attempt `last`."""
    ended = last.ended_at or last.started_at or last.created_at or 0.0
    if last.outcome == "rate_limited":
        # the provider's limiter (`core.ratelimit`) says when; the stored retry_at is when
        # the wait its agent named ends, one of the limiter's inputs
        return ended
    if last.retry_at is not None:
        return last.retry_at
    if last.outcome in ("conflict", "stopped"):
        return ended  # a fresh attempt on the new tip is due at once
    return ended + backoff_delay(task.id, last.number, spec.backoff.initial, spec.backoff.max)
