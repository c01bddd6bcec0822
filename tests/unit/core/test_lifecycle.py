"""The task state machine as plain functions: attempt classification, task stage, backoff."""

from __future__ import annotations

import pytest

from controller.core.lifecycle import (
    STARTUP_GRACE_S,
    backoff_delay,
    classify_attempt,
    failure_reason,
    retry_at,
    task_state,
)
from controller.model.observed import AttemptObs
from tests.support.planning import (
    NOW,
    attempt,
    exited,
    failed,
    lost,
    make_spec,
    running,
    starting,
    task,
)


@pytest.mark.parametrize(
    ("obs", "kind"),
    [
        (running("a"), "running"),
        (starting("a"), "starting"),
        (starting("a", created=NOW - STARTUP_GRACE_S - 1), "failed"),  # never got a pid
        (attempt("a"), "failed"),  # no pid, no intent time: nothing will come of it
        (lost("a"), "failed"),  # pid gone, no exit record
        (exited("a", code=0), "succeeded"),
        (exited("a", code=3), "failed"),
        (exited("a", code=-9), "failed"),
        (attempt("a", outcome="succeeded", exit_code=0), "succeeded"),
        (attempt("a", outcome="succeeded"), "succeeded"),
        (failed("a", outcome="merged", exit_code=0), "merged"),
        (failed("a", outcome="rejected", exit_code=0), "rejected"),
        (failed("a", outcome="conflict", exit_code=0), "failed"),
        (failed("a", outcome="verify_failed", exit_code=0), "failed"),
        (failed("a", outcome="timeout"), "failed"),
        (failed("a", outcome="lost"), "failed"),
        (failed("a", outcome="stopped"), "failed"),
        # the process is still there although a verdict was written (a stop that did not
        # take yet): the world wins, it still runs
        (running("a", outcome="timeout"), "running"),
        (running("a", outcome="stopped"), "running"),
        (running("a", outcome="lost"), "running"),
    ],
)
def test_classify_attempt(obs: AttemptObs, kind: str) -> None:
    assert classify_attempt(obs, NOW) == kind


@pytest.mark.parametrize(
    ("attempts", "merged", "stage", "count"),
    [
        ((), False, "new", 0),
        ((), True, "merged", 0),
        ((running("a"),), False, "running", 1),
        ((running("a"),), True, "merged", 1),
        ((starting("a"),), False, "starting", 1),
        ((exited("a"),), False, "pending_merge", 1),
        # our records say merged, the integration branch disagrees (reset by hand): land again
        ((failed("a", outcome="merged", exit_code=0),), False, "pending_merge", 1),
        ((failed("a"),), False, "failed", 1),
        ((failed("a"), failed("a", 2), failed("a", 3)), False, "failed", 3),
        ((failed("a"), failed("a", 2), failed("a", 3), failed("a", 4)), False, "exhausted", 4),
        # a user's stop is free: three counted failures + one stop leave one attempt
        (
            (failed("a"), failed("a", 2, outcome="stopped"), failed("a", 3), failed("a", 4)),
            False,
            "failed",
            4,
        ),
        ((failed("a", outcome="rejected", reason="wrote outside"),), False, "rejected", 1),
        # an earlier failure does not matter once a later attempt succeeded
        ((failed("a"), exited("a", 2)), False, "pending_merge", 2),
    ],
)
def test_task_state(attempts: tuple[AttemptObs, ...], merged: bool, stage: str, count: int) -> None:
    st = task_state(attempts, merged, NOW, max_attempts=4)
    assert (st.stage, st.attempts) == (stage, count)
    assert st.last == (attempts[-1] if attempts else None)


def test_exhausted_and_rejected_carry_the_reason() -> None:
    four = tuple(failed("a", n, reason=f"exit {n}") for n in range(1, 5))
    assert task_state(four, False, NOW, 4).reason == "exit 4"
    rejected = (failed("a", outcome="rejected", reason="wrote outside its scope: x"),)
    assert task_state(rejected, False, NOW, 4).reason == "wrote outside its scope: x"


@pytest.mark.parametrize(
    ("obs", "reason"),
    [
        (failed("a", reason="merge conflict in x"), "merge conflict in x"),
        (failed("a", outcome="timeout"), "timed out"),
        (exited("a", code=0, timed_out=True), "timed out"),
        (exited("a", code=2), "exit 2"),
        (lost("a"), "agent vanished without an exit record"),
    ],
)
def test_failure_reason(obs: AttemptObs, reason: str) -> None:
    assert failure_reason(obs) == reason


# -- backoff -------------------------------------------------------------------------------
def test_backoff_is_deterministic_and_within_equal_jitter_bounds() -> None:
    initial, maximum = 10.0, 300.0
    for n in range(1, 12):
        nominal = min(maximum, initial * 2 ** (n - 1))
        for tid in ("a", "us-043", "x.y_z"):
            d = backoff_delay(tid, n, initial, maximum)
            assert d == backoff_delay(tid, n, initial, maximum)
            assert nominal / 2 <= d <= nominal, (tid, n, d)
            assert d >= initial  # never earlier than the initial delay


def test_backoff_jitter_varies_between_tasks() -> None:
    delays = {backoff_delay(f"t{i}", 3, 10.0, 300.0) for i in range(50)}
    assert len(delays) > 40  # a hash, not a constant


def test_backoff_grows_exponentially_and_is_capped() -> None:
    # the nominal delay doubles per attempt: the jittered one stays in its band
    for n in range(2, 6):
        assert 10 * 2 ** (n - 2) <= backoff_delay("a", n, 10.0, 1000.0) <= 10 * 2 ** (n - 1)
    assert all(backoff_delay("a", n, 10.0, 60.0) <= 60.0 for n in range(1, 40))
    assert backoff_delay("a", 1000, 10.0, 60.0) >= 30.0  # huge attempt numbers do not overflow
    assert backoff_delay("a", 1, 50.0, 20.0) == 20.0  # initial above max: max wins


def test_retry_at_uses_the_stored_deadline() -> None:
    spec = make_spec(["a"])
    last = failed("a", ended=NOW - 5, retry_at=NOW + 123)
    assert retry_at(spec, spec.backlog[0], last) == NOW + 123


def test_retry_at_is_computed_from_the_end_when_not_stored() -> None:
    spec = make_spec(["a"], backoff={"initial": "20s", "max": "10m"})
    t = spec.backlog[0]
    last = failed("a", 3, ended=NOW - 5)
    assert retry_at(spec, t, last) == NOW - 5 + backoff_delay("a", 3, 20.0, 600.0)
    # no end recorded (lost): from its start, then from its intent row
    assert retry_at(spec, t, lost("a", 3, started=NOW - 50)) == NOW - 50 + backoff_delay(
        "a", 3, 20.0, 600.0
    )


@pytest.mark.parametrize("outcome", ["conflict", "stopped"])
def test_no_backoff_after_a_conflict_or_a_stop(outcome: str) -> None:
    spec = make_spec([task("a")])
    last = failed("a", 2, ended=NOW - 1, outcome=outcome)
    assert retry_at(spec, spec.backlog[0], last) == NOW - 1
