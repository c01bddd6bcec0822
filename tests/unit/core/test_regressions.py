"""Regressions the chaos harness (`bench/chaos.py`) found in the lifecycle: controller crashes
that used up a task's retries.

Each test names the fault that exposed the bug and pins the fix, so that the harness's
figures (docs/reliability.md) stay true without rerunning it. The other layers' regression
tests sit beside their own tests: `tests/unit/*/test_regressions.py`, `tests/e2e/`.
"""

from __future__ import annotations

from controller.core.lifecycle import is_free, task_state
from tests.support.planning import NOW, action_of, attempt, failed, make_spec, observed, run

# --- controller killed between the intent row and the launch (crash scenario) ----------------


def lost_before_start(task_id: str, number: int) -> object:
    return attempt(
        task_id,
        number,
        created_at=NOW - 100,
        outcome="lost",
        reason="the controller stopped before the agent started",
    )


def test_an_attempt_lost_before_its_agent_started_does_not_use_up_retries() -> None:
    crashed = lost_before_start("a", 1)
    assert is_free(crashed)  # type: ignore[arg-type]
    assert not is_free(failed("a", 1))
    # retries: 0 -> one attempt allowed; the crash-lost one must not count
    state = task_state((crashed,), merged=False, now=NOW, max_attempts=1)  # type: ignore[arg-type]
    assert state.stage == "failed"
    spec = make_spec(["a"], retries=0, backoff={"initial": "1s", "max": "1s"})
    step = action_of(run(spec, observed([crashed])), "a")  # type: ignore[list-item]
    assert step is not None and step.kind == "retry" and step.attempt == 2
    # a launch that failed for a reason of its own still counts
    spawn_failed = attempt("a", 1, created_at=NOW - 100, outcome="failed", reason="could not")
    assert not is_free(spawn_failed)


def test_a_fresh_start_cut_short_by_a_kill_is_made_again() -> None:
    """After a merge conflict the next attempt starts over from the new tip (its worktree
    reset). A kill during that reset leaves the worktree half reset and the attempt never
    started; the attempt after it must reset again, not continue from the half-reset tree."""
    conflict = attempt(
        "a", 1, created_at=NOW - 300, started_at=NOW - 290, exit_code=0, outcome="conflict"
    )
    killed = lost_before_start("a", 2)
    spec = make_spec(["a"], retries=3, backoff={"initial": "1s", "max": "1s"})
    step = action_of(run(spec, observed([conflict, killed])), "a")  # type: ignore[list-item]
    assert step is not None and step.kind == "retry" and step.attempt == 3 and step.fresh
