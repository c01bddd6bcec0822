"""A person's orders about a task (`retry`, `reset`, `stop --task`) as the planner reads them.

The orders are facts in the store (`TaskOrders`, the latest per task); these tests build them
by hand, with the attempts, and read the stage (`task_state`) and the plan.
"""

from __future__ import annotations

from controller.core.lifecycle import attempts_allowed, budget_note, task_state
from controller.core.plan import RETRY, SPAWN, STOP
from controller.model.observed import BranchObs, Intervention, TaskOrders
from tests.support.planning import (
    NOW,
    action_of,
    failed,
    make_spec,
    observed,
    run,
    running,
    wait_of,
)

MAX = 3  # 1 + retries: 2 in the specs below


def orders(kind: str, after: int, *, fresh: bool = False, at: float = NOW - 5) -> TaskOrders:
    counted = after if kind in ("retry", "reset") else 0
    forgotten = after if kind == "reset" else 0
    return TaskOrders(Intervention(kind, after, at, fresh), counted, forgotten)


EXHAUSTED = tuple(failed("a", n) for n in (1, 2, 3))


def test_a_retry_revives_an_exhausted_task_at_once_with_a_fresh_budget() -> None:
    assert task_state(EXHAUSTED, False, NOW, MAX).stage == "exhausted"
    st = task_state(EXHAUSTED, False, NOW, MAX, orders("retry", 3))
    assert (st.stage, st.number, st.order is not None) == ("failed", 3, True)
    # attempt 4 fails: one of the three new attempts used, backoff as usual, no order pending
    four = (*EXHAUSTED, failed("a", 4, ended=NOW - 1))
    st = task_state(four, False, NOW, MAX, orders("retry", 3))
    assert (st.stage, st.used, st.order) == ("failed", 1, None)
    six = (*four, failed("a", 5), failed("a", 6))
    assert task_state(six, False, NOW, MAX, orders("retry", 3)).stage == "exhausted"


def test_a_retry_makes_a_rejected_task_start_again() -> None:
    rejected = (failed("a", 1, outcome="rejected", reason="wrote outside its scope: x"),)
    assert task_state(rejected, False, NOW, MAX).stage == "rejected"
    st = task_state(rejected, False, NOW, MAX, orders("retry", 1))
    assert (st.stage, st.reason) == ("failed", "wrote outside its scope: x")


def test_a_reset_forgets_the_attempts_and_numbering_goes_on() -> None:
    st = task_state(EXHAUSTED, False, NOW, MAX, orders("reset", 3))
    assert (st.stage, st.attempts, st.number, st.order is not None) == ("new", 0, 3, True)
    spec = make_spec(["a"], retries=2)
    obs = observed(EXHAUSTED, orders={"a": orders("reset", 3)})
    obs.branches["a"] = BranchObs("a", "1" * 40, merged=False)
    spawn = action_of(run(spec, obs), "a")
    assert spawn is not None and (spawn.kind, spawn.attempt, spawn.fresh) == (SPAWN, 4, True)
    assert "reset at" in spawn.reason and "starting over" in spawn.reason


def test_the_plan_retries_by_hand_and_says_why() -> None:
    spec = make_spec(["a"], retries=2)
    assert wait_of(run(spec, observed(EXHAUSTED)), "a").phase == "failed"  # type: ignore[union-attr]
    reason = wait_of(run(spec, observed(EXHAUSTED)), "a").reason  # type: ignore[union-attr]
    assert "`orchestrator retry a`" in reason and "`orchestrator logs a`" in reason
    obs = observed(EXHAUSTED, orders={"a": orders("retry", 3, fresh=True)})
    retry = action_of(run(spec, obs), "a")
    assert retry is not None and (retry.kind, retry.attempt, retry.fresh) == (RETRY, 4, True)
    assert retry.reason.startswith("attempt 4 of 6 (counted from attempt 4): retried by hand")
    assert "exit 1" in retry.reason


def test_a_retry_skips_the_backoff() -> None:
    spec = make_spec(["a"], retries=5, backoff={"initial": "1h", "max": "2h"})
    recent = (failed("a", 1, ended=NOW - 1, retry_at=NOW + 3600),)
    assert wait_of(run(spec, observed(recent)), "a").phase == "retrying"  # type: ignore[union-attr]
    retry = action_of(run(spec, observed(recent, orders={"a": orders("retry", 1)})), "a")
    assert retry is not None and retry.kind == RETRY


def test_a_stop_order_stops_the_running_agent_and_holds_the_task() -> None:
    spec = make_spec(["a"])
    obs = observed([running("a", 2)], orders={"a": orders("stop", 2)})
    stop = action_of(run(spec, obs), "a")
    assert stop is not None and (stop.kind, stop.outcome, stop.snapshot) == (STOP, "stopped", True)
    assert "stopped by hand" in stop.reason
    # stopped (a free attempt): held, not restarted, until a retry
    gone = failed("a", 2, outcome="stopped", ended=NOW - 1)
    obs = observed([failed("a", 1), gone], orders={"a": orders("stop", 2)})
    held = wait_of(run(spec, obs), "a")
    assert held is not None and held.phase == "stopped" and "orchestrator retry a" in held.reason
    obs = observed([failed("a", 1), gone], orders={"a": orders("retry", 2)})
    assert action_of(run(spec, obs), "a").kind == RETRY  # type: ignore[union-attr]


def test_the_budget_counts_from_the_latest_retry_and_explains_itself() -> None:
    spec = make_spec(["a"], retries=2)
    task = spec.backlog[0]
    stopped = (failed("a", 1), failed("a", 2, outcome="stopped"))
    assert attempts_allowed(spec, task, stopped) == 4
    assert budget_note(spec, task, stopped) == " (1 stopped or never started, not counted)"
    assert attempts_allowed(spec, task, EXHAUSTED, orders("retry", 3)) == 6
    assert budget_note(spec, task, ()) == ""


def test_which_orders_make_sense_in_which_stage() -> None:
    from controller.core.orders import refusal

    assert refusal("retry", "a", "exhausted", 3) is None
    assert refusal("retry", "a", "rejected", 1) is None
    assert refusal("retry", "a", "stopped", 2) is None
    assert refusal("reset", "a", "failed", 2) is None
    assert refusal("stop", "a", "running", 1) is None
    assert refusal("stop", "a", "failed", 1) is None  # in backoff: held instead of retried
    assert "stop it first" in str(refusal("retry", "a", "running", 1))
    assert "`orchestrator stop --task a`" in str(refusal("reset", "a", "running", 1))
    assert "merged already" in str(refusal("retry", "a", "merged", 1))
    assert "verified and merged" in str(refusal("reset", "a", "pending_merge", 1))
    assert "nothing to retry" in str(refusal("retry", "a", "new", 0))
    assert "paused: true" in str(refusal("stop", "a", "new", 0))
    assert "stopped already" in str(refusal("stop", "a", "stopped", 1))
    assert "not in the spec" in str(refusal("retry", "a", None, 2))
