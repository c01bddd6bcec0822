"""Recording what happened: attempt verdicts and events, in the store and the log.

The verdicts themselves are decided by `core.outcomes`; this module only writes them.
Credentials in URLs are cut out of every message and reason before it is stored or logged
(`model.safe_text.redact`); control characters are kept (`-o json` shows the exact file
names) and escaped where text is shown.
`record_exits` runs at the start of every pass, so an exit that happened while no
controller was running is recorded the same way as one seen live. After the plan,
`record_exhausted` and `record_converged` record the two states a person wants to hear about
(`notify`), each once.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import Any

from loguru import logger

from controller.core.outcomes import exit_verdict
from controller.core.passstate import clock_time
from controller.core.plan import Plan
from controller.core.ratelimit import Policy, shown_limit
from controller.model.observed import AttemptObs, Observed
from controller.model.outcomes import Verdict
from controller.model.ratelimit import LimiterState
from controller.model.safe_text import redact
from controller.model.spec import Spec
from controller.state.store import Store


def record_event(
    store: Store,
    kind: str,
    message: str,
    task: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    message = redact(message)
    if data:
        data = {k: redact(v) if isinstance(v, str) else v for k, v in data.items()}
    store.add_event(kind, message, task=task, data=data)
    logger.bind(task=task or "-", kind=kind).info(f"{kind} {task or ''} {message}".strip())


def apply_verdict(store: Store, task: str, number: int, verdict: Verdict) -> None:
    """Store the verdict on attempt `number` of `task` and record its event."""
    store.finish_attempt(
        task,
        number,
        outcome=verdict.outcome,
        reason=redact(verdict.reason),
        exit_code=verdict.exit_code,
        ended_at=verdict.ended_at,
        retry_at=verdict.retry_at,
        conflicts=verdict.conflicts,
    )
    record_event(store, verdict.event, verdict.message, task, verdict.data)


def record_exits(spec: Spec, observed: Observed, store: Store, now: float) -> dict[str, AttemptObs]:
    """Give every newly finished attempt its verdict, in the store and as returned values.

    Returns task id -> the task's last attempt with its verdict applied, so the caller can
    plan from the same facts the store now holds without observing the world again.
    """
    tasks = {t.id: t for t in spec.backlog}
    changed: dict[str, AttemptObs] = {}
    for task_id, attempts in observed.attempts.items():
        if not attempts:
            continue
        last = attempts[-1]
        verdict = exit_verdict(spec, tasks.get(task_id), last, now)
        if verdict is None:
            continue
        if last.started_at is not None:  # the store keeps what the runs dir said, for good
            store.set_launched(
                task_id,
                last.number,
                last.pid,
                last.create_time,
                last.started_at,
                last.handle,
                last.start_id,
            )
        report = last.report
        if report is not None and (report.usage is not None or report.turns is not None):
            store.set_usage(task_id, last.number, report.usage, report.turns)
        apply_verdict(store, task_id, last.number, verdict)
        changed[task_id] = replace(
            last,
            outcome=verdict.outcome,
            reason=verdict.reason,
            ended_at=verdict.ended_at or last.ended_at,
            retry_at=verdict.retry_at,
        )
    return changed


def record_exhausted(
    store: Store, result: Plan, observed: Observed, seen: set[tuple[str, int]]
) -> None:
    """An `exhausted` event, once per task and last attempt, when a task's retries are used
    up (the planner's `failed` phase). `seen` caches what is recorded already."""
    for wait in result.waits:
        if wait.phase != "failed":
            continue
        attempts = observed.attempts.get(wait.task, ())
        n = attempts[-1].number if attempts else 0
        if (wait.task, n) in seen:
            continue
        seen.add((wait.task, n))
        earlier = store.events(task=wait.task, kinds=["exhausted"], limit=50, newest=True)
        if any(isinstance(e.data, dict) and e.data.get("attempt") == n for e in earlier):
            continue
        data = {"attempt": n, "reason": wait.reason}
        record_event(store, "exhausted", wait.reason, wait.task, data)


def record_converged(store: Store, spec: Spec, result: Plan, generation: str) -> None:
    """A `converged` event when every task of `spec` (generated ones included) is merged and
    nothing is left to do, once per spec `generation` (the store remembers it across
    restarts)."""
    ids = [t.id for t in spec.backlog]
    done = bool(ids) and not result.actions and all(result.phases.get(t) == "merged" for t in ids)
    key = generation if done else ""
    if store.get_meta("converged") == key:
        return
    store.set_meta("converged", key)
    if done:
        message = f"all {len(ids)} task{'s' if len(ids) != 1 else ''} merged"
        record_event(store, "converged", message, data={"tasks": len(ids)})


def record_rate_limits(
    store: Store,
    before: Mapping[str, LimiterState],
    after: Mapping[str, LimiterState],
    policies: Mapping[str, Policy],
    now: float,
) -> None:
    """Store each provider's rate limiter that moved this pass (a restarted controller
    carries on from it), with an event when its limit was halved or climbed a step."""
    for provider, state in after.items():
        old = before.get(provider) or LimiterState(provider)
        if state == old:
            continue
        store.set_rate_limit(state)
        policy = policies.get(provider)
        if policy is None:
            continue
        limit = shown_limit(state, policy)
        if state.strikes > old.strikes or (old.limit is None and state.limit is not None):
            until = clock_time(state.resume_at, None)
            wait = f"nothing new starts until {until}, " if state.resume_at > now else ""
            message = f"{provider}: 429; {wait}{limit}"
            record_event(
                store, "rate_limited", message, data={"provider": provider, **_facts(state)}
            )
        elif state.limit != old.limit:
            message = f"{provider}: no 429 for {policy.quiet:g}s, {limit}"
            record_event(
                store, "rate_limit_raised", message, data={"provider": provider, **_facts(state)}
            )


def _facts(state: LimiterState) -> dict[str, Any]:
    return {"limit": state.limit, "resume_at": state.resume_at, "strikes": state.strikes}
