"""Where one task stands, derived from its observed attempts: the task state machine.

Pure functions of (spec task, attempts, merged?, now). The planner uses them to decide;
`status` uses them to show the same phase the planner acted on. There is no stored "phase"
column anywhere: the phase is always recomputed from the world and the attempt records.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from controller.model.observed import AttemptObs
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

    new, starting, running, pending_merge, failed (may retry), exhausted, rejected, merged.
    """

    stage: str
    attempts: int
    last: AttemptObs | None = None
    reason: str = ""


def is_free(a: AttemptObs) -> bool:
    """An attempt that does not count against `retries`: one the user stopped, or one whose
    agent never started because the controller died between recording the intent and the
    launch (a controller crash must not use up a task's retries)."""
    never_started = (
        a.pid is None and a.handle is None and a.started_at is None and a.exit_code is None
    )
    return a.outcome == "stopped" or (a.outcome == "lost" and never_started)


def free_attempts(attempts: tuple[AttemptObs, ...]) -> int:
    """How many of `attempts` cost no retry: the `is_free` ones, and those that ended on a
    rate limit (the provider's limit, not the task, made them fail), up to
    `FREE_RATE_LIMITED`."""
    limited = sum(1 for a in attempts if a.outcome == "rate_limited")
    return sum(1 for a in attempts if is_free(a)) + min(limited, FREE_RATE_LIMITED)


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


def task_state(
    attempts: tuple[AttemptObs, ...], merged: bool, now: float, max_attempts: int
) -> TaskState:
    n = len(attempts)
    if merged:
        return TaskState("merged", n, attempts[-1] if attempts else None)
    if not attempts:
        return TaskState("new", 0)
    last = attempts[-1]
    kind = classify_attempt(last, now)
    if kind in ("running", "starting", "rejected"):
        return TaskState(kind, n, last, last.reason if kind == "rejected" else "")
    if kind in ("succeeded", "merged"):
        # "merged" by our records but not on the integration branch (reset by hand): land again
        return TaskState("pending_merge", n, last)
    reason = failure_reason(last)
    counted = n - free_attempts(attempts)
    if counted >= max_attempts:
        return TaskState("exhausted", n, last, reason)
    return TaskState("failed", n, last, reason)


def attempts_allowed(spec: Spec, task: Task, attempts: tuple[AttemptObs, ...]) -> int:
    """The last attempt number `task` may reach: a free attempt (`free_attempts`) adds one."""
    return spec.max_attempts(task) + free_attempts(attempts)


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
