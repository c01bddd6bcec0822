"""Landings applied to a pass's observation in memory (`with_verdicts`), so that the planner,
asked again, starts what they unblock in the same pass -- from the new tip."""

from __future__ import annotations

from controller.core.outcomes import merge_verdict, with_verdicts
from controller.model.outcomes import MergeOutcome
from tests.support.planning import NOW, SHA, exited, make_spec, observed, run, started, task

NEW_TIP = "a" * 40


def test_a_landing_unblocks_its_dependant_from_the_new_tip() -> None:
    spec = make_spec([task("a", paths=["src/a/**"]), task("b", deps=["a"], paths=["src/b/**"])])
    obs = observed([exited("a")])
    assert started(run(spec, obs)) == []  # b waits for a's merge
    outcome = MergeOutcome("merged", sha=NEW_TIP)
    verdict = merge_verdict(spec, "a", 1, outcome, NOW)
    assert verdict is not None
    after = with_verdicts(obs, {"a": (1, verdict, outcome)})
    assert after.integration_sha == NEW_TIP and "a" in after.merged_tasks
    assert after.attempts["a"][-1].outcome == "merged"
    assert started(run(spec, after)) == ["b"]
    assert obs.integration_sha == SHA  # the original observation is untouched


def test_a_conflict_verdict_restarts_the_task_fresh_in_the_same_pass() -> None:
    spec = make_spec(["a"])
    obs = observed([exited("a")])
    outcome = MergeOutcome("conflict", conflicts=("src/a/x.py",))
    verdict = merge_verdict(spec, "a", 1, outcome, NOW)
    assert verdict is not None
    after = with_verdicts(obs, {"a": (1, verdict, outcome)})
    assert after.integration_sha == SHA
    plan = run(spec, after)
    assert started(plan) == ["a"] and plan.actions[0].fresh
