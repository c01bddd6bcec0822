"""The rules that decide an attempt's outcome: after its process ended, and after a merge.

Pure functions of (spec, the attempt or merge outcome, now) returning a `Verdict`; the act
layer stores it and reports it. Kept here, beside the state machine (`lifecycle`), because
these rules are what the next pass's plan depends on: which outcomes retry, after which
backoff, and which are terminal.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

from controller.core.lifecycle import (
    STARTUP_GRACE_S,
    backoff_delay,
    classify_attempt,
    exit_failure,
    retry_at,
)
from controller.core.ratelimit import MAX_WAIT_S, agent_of, ended_on_rate_limit, named_wait
from controller.model.observed import AttemptObs, Observed
from controller.model.outcomes import MergeOutcome, Verdict
from controller.model.spec import Spec, Task


def _failure(last: AttemptObs, now: float) -> tuple[str, str]:
    """(outcome, reason) of an attempt whose process ended without success."""
    if last.timed_out and not last.setup_failed:
        return "timeout", "timed out (killed by the shim)"
    if last.exit_code is not None:
        return "failed", exit_failure(last)
    never_started = last.pid is None and last.handle is None
    if never_started and last.created_at and now - last.created_at >= STARTUP_GRACE_S:
        return "lost", "the controller stopped before the agent started"
    return "lost", "agent vanished without an exit record"


def exit_verdict(spec: Spec, task: Task | None, last: AttemptObs, now: float) -> Verdict | None:
    """The verdict on `last`, a task's latest attempt, once its process has ended and no
    verdict is recorded yet; None while it runs (or is starting) or already judged."""
    if last.outcome is not None or last.alive:
        return None
    kind = classify_attempt(last, now)
    if kind in ("running", "starting"):
        return None
    n = last.number
    if kind == "succeeded":
        return Verdict(
            "succeeded",
            "",
            "exit",
            f"attempt {n} exited 0",
            {"attempt": n, "exit_code": 0},
            ended_at=last.ended_at,
            exit_code=last.exit_code,
        )
    ended = last.ended_at or now
    limited = _rate_limited(spec, last, ended)
    if limited is not None:
        return limited
    outcome, reason = _failure(last, now)
    due = retry_at(spec, task, replace(last, ended_at=ended)) if task else None
    data = {"attempt": n, "exit_code": last.exit_code, "outcome": outcome}
    return Verdict(
        outcome,
        reason,
        "exit",
        f"attempt {n} {outcome}: {reason}",
        data,
        ended_at=ended,
        retry_at=due,
        exit_code=last.exit_code,
    )


def _rate_limited(spec: Spec, last: AttemptObs, ended: float) -> Verdict | None:
    """The verdict on an attempt that ended on a rate limit: no failure of its task and no
    retry used (`lifecycle.free_attempts`); the next starts when the provider's limiter lets
    it. `retry_at` keeps when the wait its agent named ends (`ratelimit.named_wait`)."""
    found = agent_of(spec, last.task, last)
    reason = ended_on_rate_limit(found[1] if found else None, last)
    if reason is None:
        return None
    wait = named_wait(last)
    n = last.number
    data = {"attempt": n, "exit_code": last.exit_code, "outcome": "rate_limited", "wait_s": wait}
    return Verdict(
        "rate_limited",
        reason,
        "rate_limited",
        f"attempt {n} {reason}; re-queued, no retry used",
        data,
        ended_at=ended,
        retry_at=None if wait is None else ended + min(wait, MAX_WAIT_S),
        exit_code=last.exit_code,
    )


def merge_verdict(
    spec: Spec, task: str, n: int, merged: MergeOutcome, now: float
) -> Verdict | None:
    """The verdict a merge outcome gives attempt `n`; None for a race, a block or an error,
    after which nothing is recorded on the attempt and the next pass decides again."""
    if merged.kind == "merged":
        data = {"attempt": n, "sha": merged.sha}
        return Verdict("merged", "", "merge", f"merged as {merged.sha}", data)
    if merged.kind == "conflict":
        files = ", ".join(merged.conflicts) or "unknown files"
        reason = f"merge conflict in {files}"
        data = {"attempt": n, "files": list(merged.conflicts)}
        return Verdict(
            "conflict", reason, "conflict", reason, data, retry_at=now, conflicts=merged.conflicts
        )
    if merged.kind == "verify_failed":
        due = now + backoff_delay(task, n, spec.backoff.initial, spec.backoff.max)
        reason = f"verify failed: {merged.message}"
        return Verdict(
            "verify_failed", reason, "verify_failed", reason, {"attempt": n}, retry_at=due
        )
    if merged.kind == "empty":
        due = now + backoff_delay(task, n, spec.backoff.initial, spec.backoff.max)
        message = f"attempt {n} failed: no changes ({merged.message})"
        return Verdict("failed", "no changes", "no_changes", message, {"attempt": n}, retry_at=due)
    if merged.kind == "rejected":
        paths = ", ".join(merged.offending)
        reason = f"wrote outside its scope: {paths}" if paths else merged.message
        data = {"attempt": n, "paths": list(merged.offending)}
        return Verdict("rejected", reason, "rejected", reason, data)
    return None


def stop_verdict(
    spec: Spec, task: str, n: int, outcome: str, reason: str, *, alive: bool, now: float
) -> Verdict:
    """The verdict on an attempt the controller stopped: a timeout retries after backoff;
    a user's stop (or a task removed from the spec) costs no retry (`lifecycle.is_free`)."""
    due = None
    if outcome == "timeout":
        due = now + backoff_delay(task, n, spec.backoff.initial, spec.backoff.max)
    data = {"attempt": n, "alive": alive, "outcome": outcome}
    return Verdict(outcome, reason, "stop", reason, data, ended_at=now, retry_at=due)


def spawn_failure_verdict(
    spec: Spec, task: str, n: int, error: str, now: float, *, what: str = "could not start"
) -> Verdict:
    """An attempt that could not be started (worktree, runner, its worktree's preparation):
    retried after backoff."""
    due = now + backoff_delay(task, n, spec.backoff.initial, spec.backoff.max)
    reason = f"{what}: {error}"
    return Verdict(
        "failed", reason, "spawn_failed", reason, {"attempt": n}, ended_at=now, retry_at=due
    )


# attempt number, its verdict, the merge outcome: a landing made in the current pass
Landed = tuple[int, Verdict, MergeOutcome]


def with_verdicts(observed: Observed, landed: Mapping[str, Landed]) -> Observed:
    """`observed` as it is after the merge verdicts `landed` (pure): the attempts carry
    them, merged tasks are merged, and the integration tip is the last landed commit."""
    attempts = dict(observed.attempts)
    merged = set(observed.merged_tasks)
    tip = observed.integration_sha
    for task, (number, verdict, outcome) in landed.items():
        rows = attempts.get(task, ())
        if rows and rows[-1].number == number:
            last = replace(
                rows[-1],
                outcome=verdict.outcome,
                reason=verdict.reason,
                retry_at=verdict.retry_at,
                conflicts=verdict.conflicts,
            )
            attempts[task] = (*rows[:-1], last)
        if verdict.outcome == "merged":
            merged.add(task)
            tip = outcome.sha or tip
    return replace(observed, attempts=attempts, merged_tasks=frozenset(merged), integration_sha=tip)


def judged_rate_limits(spec: Spec, observed: Observed, now: float) -> Observed:
    """`observed` with the verdict `rate_limited` already on each latest attempt that ended
    on a rate limit and has no verdict yet: the controller records it at the start of its
    pass, and `diff` and `status` must plan from the same facts (not count it as a failure
    in the meantime)."""
    changed = {}
    for task_id, attempts in observed.attempts.items():
        last = attempts[-1] if attempts else None
        if last is None or last.outcome is not None or last.alive or not last.exit_code:
            continue
        verdict = _rate_limited(spec, last, last.ended_at or now)
        if verdict is not None:
            judged = replace(
                last,
                outcome=verdict.outcome,
                reason=verdict.reason,
                ended_at=verdict.ended_at,
                retry_at=verdict.retry_at,
            )
            changed[task_id] = (*attempts[:-1], judged)
    return replace(observed, attempts={**observed.attempts, **changed}) if changed else observed
