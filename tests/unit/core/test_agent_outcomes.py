"""No false "done": the verdicts on attempts whose agent exited 0 without doing the work."""

from __future__ import annotations

from controller.core.lifecycle import classify_attempt, failure_reason
from controller.core.outcomes import exit_verdict, merge_verdict
from controller.model.observed import AgentReport
from controller.model.outcomes import MergeOutcome
from tests.support.planning import NOW, exited, kinds, make_spec, observed, run, task

SPEC = make_spec([task("t1", paths=["src/t1/**"])], backoff={"initial": "10s", "max": "1m"})


def test_refused_tool_calls_fail_an_attempt_that_exited_0() -> None:
    denied = exited("t1", report=AgentReport(denials=("Write /etc/passwd", "Bash")))
    assert classify_attempt(denied, NOW) == "failed"
    verdict = exit_verdict(SPEC, SPEC.backlog[0], denied, NOW)
    assert verdict is not None and verdict.outcome == "failed"
    assert verdict.reason == "permission denied: Write /etc/passwd, Bash"
    assert verdict.ended_at is not None and verdict.retry_at is not None
    assert verdict.retry_at > verdict.ended_at  # after the usual backoff
    assert kinds(run(SPEC, observed([denied])))["t1"] == "retry"  # never "merge"


def test_an_error_the_agent_reports_fails_it_and_api_errors_are_named() -> None:
    errored = exited("t1", report=AgentReport(error="Auto mode can't check actions"))
    assert failure_reason(errored) == "the agent reported an error: Auto mode can't check actions"
    broken = exited("t1", code=1, report=AgentReport(api_error_status=500, error="API Error"))
    verdict = exit_verdict(SPEC, SPEC.backlog[0], broken, NOW)
    assert verdict is not None and verdict.reason == "exit 1: API error 500 (API Error)"
    # a 429 is a rate limit (tests/unit/core/test_ratelimit.py), unless the agent says `off`
    off = make_spec([task("t1")], agents={"dev": {"command": ["a"], "rateLimit": "off"}})
    limited = exited("t1", code=1, report=AgentReport(api_error_status=429, error="API Error"))
    verdict = exit_verdict(off, off.backlog[0], limited, NOW)
    assert verdict is not None and verdict.reason == "exit 1: API error 429 (API Error)"


def test_a_clean_report_still_succeeds() -> None:
    fine = exited("t1", report=AgentReport(turns=4, finished=True))
    verdict = exit_verdict(SPEC, SPEC.backlog[0], fine, NOW)
    assert verdict is not None and verdict.outcome == "succeeded"


def test_a_failed_setup_names_itself() -> None:
    broken = exited("t1", code=3, setup_failed=True, setup_error="`uv sync` exited with code 3")
    verdict = exit_verdict(SPEC, SPEC.backlog[0], broken, NOW)
    assert verdict is not None and verdict.outcome == "failed"
    assert verdict.reason == "setup failed: `uv sync` exited with code 3"


def test_an_attempt_that_changed_nothing_fails_with_no_changes() -> None:
    verdict = merge_verdict(SPEC, "t1", 1, MergeOutcome("empty", message="nothing"), NOW)
    assert verdict is not None
    assert (verdict.outcome, verdict.reason, verdict.event) == (
        "failed",
        "no changes",
        "no_changes",
    )
    assert verdict.retry_at is not None and NOW < verdict.retry_at <= NOW + 10


def test_allow_empty_comes_from_the_task_else_the_agent() -> None:
    agents = {"ro": {"command": ["r"], "allowEmpty": True}, "rw": {"command": ["w"]}}
    spec = make_spec(
        [task("a", agent="ro"), task("b", agent="ro", allowEmpty=False), task("c", agent="rw")],
        agents,
    )
    assert [spec.allow_empty(t) for t in spec.backlog] == [True, False, False]
