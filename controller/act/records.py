"""Recording what happened: attempt verdicts and events, in the store and the log.

`record_exits` turns exits observed in the world (exit records written by the agent shim,
or processes that vanished) into verdicts in the store, once each. It runs at the start of
every pass, so an exit that happened while no controller was running is recorded the same
way as one seen live.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from loguru import logger

from controller.core.lifecycle import STARTUP_GRACE_S, classify_attempt, retry_at
from controller.model.observed import AttemptObs, Observed
from controller.model.spec import Spec
from controller.state.store import Store


def record_event(
    store: Store,
    kind: str,
    message: str,
    task: str | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    store.add_event(kind, message, task=task, data=data)
    logger.bind(task=task or "-", kind=kind).info(f"{kind} {task or ''} {message}".strip())


def finish(
    store: Store,
    task: str,
    number: int,
    outcome: str,
    reason: str,
    *,
    ended_at: float | None = None,
    retry_at: float | None = None,
    exit_code: int | None = None,
    conflicts: Sequence[str] = (),
) -> None:
    store.finish_attempt(
        task,
        number,
        outcome=outcome,
        reason=reason,
        exit_code=exit_code,
        ended_at=ended_at,
        retry_at=retry_at,
        conflicts=conflicts,
    )


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
        if last.outcome is not None or last.alive:
            continue
        kind = classify_attempt(last, now)
        if kind in ("running", "starting"):
            continue
        n = last.number
        if last.started_at is not None:  # the store keeps what the runs dir said, for good
            store.set_launched(task_id, n, last.pid, last.create_time, last.started_at, last.handle)
        if kind == "succeeded":
            finish(
                store, task_id, n, "succeeded", "", ended_at=last.ended_at, exit_code=last.exit_code
            )
            record_event(
                store, "exit", f"attempt {n} exited 0", task_id, {"attempt": n, "exit_code": 0}
            )
            changed[task_id] = replace(last, outcome="succeeded")
        else:
            if last.timed_out:
                outcome, reason = "timeout", "timed out (killed by the shim)"
            elif last.exit_code is not None:
                outcome, reason = "failed", f"exit {last.exit_code}"
            elif (
                last.pid is None
                and last.handle is None
                and last.created_at
                and now - last.created_at >= STARTUP_GRACE_S
            ):
                outcome, reason = "lost", "the controller stopped before the agent started"
            else:
                outcome, reason = "lost", "agent vanished without an exit record"
            ended = last.ended_at or now
            task = tasks.get(task_id)
            due = retry_at(spec, task, replace(last, ended_at=ended)) if task else None
            finish(
                store,
                task_id,
                n,
                outcome,
                reason,
                ended_at=ended,
                retry_at=due,
                exit_code=last.exit_code,
            )
            record_event(
                store,
                "exit",
                f"attempt {n} {outcome}: {reason}",
                task_id,
                {"attempt": n, "exit_code": last.exit_code, "outcome": outcome},
            )
            changed[task_id] = replace(
                last, outcome=outcome, reason=reason, ended_at=ended, retry_at=due
            )
    return changed
