"""Rate limits across the fleet: which attempts ended on one, the AIMD limiter of a provider,
and the start gate that holds its tasks back (pure; the planner's table-test builders)."""

from __future__ import annotations

import random
import re
from dataclasses import replace
from datetime import UTC, datetime

import pytest

from controller.core.lifecycle import FREE_RATE_LIMITED, task_state
from controller.core.outcomes import exit_verdict
from controller.core.ratelimit import (
    Policy,
    Signal,
    advance,
    advance_all,
    ended_on_rate_limit,
    match_log,
    policies,
    unnamed_wait,
)
from controller.model.observed import AgentReport
from controller.model.ratelimit import LimiterState, LogHint
from tests.support.planning import (
    NOW,
    action_of,
    exited,
    failed,
    kinds,
    make_spec,
    observed,
    run,
    running,
    task,
    wait_of,
)

CLAUDE = {"preset": "claude-code", "owns": ["**"]}
AGENTS = {
    "cc": CLAUDE,
    "cc2": {**CLAUDE, "rateLimit": {"quiet": "2m"}},
    "cmd": {
        "command": ["agent"],
        "owns": ["**"],
        "rateLimit": {"exitCodes": [75], "patterns": [r"slow down, retry in (?P<seconds>\d+)s"]},
    },
    "own": {**CLAUDE, "rateLimit": "off"},
}
SPEC = make_spec(
    [
        task(t, agent=a, paths=[f"{t}/**"])
        for t, a in [("a", "cc"), ("b", "cc"), ("c", "cc2"), ("f", "cc")]
    ]
    + [task("d", agent="cmd", paths=["d/**"]), task("e", agent="own", paths=["e/**"])],
    agents=AGENTS,
    maxParallel=6,
    resources={"cpu": [{"parallel": 8}], "memory": [{"parallel": 8}]},
    retries=1,
)
POLICY = Policy(capacity=4, quiet=60.0, backoff=30.0, agents=("cc",))


def hhmmss(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%H:%M:%S")


def limited(
    task_id: str, number: int = 1, *, ended: float = NOW - 2, live: bool = True, **kw: object
) -> object:
    """A Claude Code run that ended on a 429 after one retry that waited 3 s (`live`: the
    first 429 was seen while it ran)."""
    report = AgentReport(
        api_error_status=429,
        error="API Error: Request rejected (429)",
        api_retries=1,
        rate_limit_retries=1,
        retry_delay_s=3.0,
        rate_limited_at=ended - 3.5 if live else None,
    )
    return exited(task_id, number, 1, ended=ended, report=report, agent="cc", **kw)


# -- which attempts ended on a rate limit ---------------------------------------------------


def test_the_signs_of_a_rate_limit_per_kind_of_agent() -> None:
    cc, cmd, own = SPEC.agents["cc"], SPEC.agents["cmd"], SPEC.agents["own"]
    assert ended_on_rate_limit(cc, limited("a")) == "rate limited: API error 429 after 1 retry"
    succeeded = exited("a", report=AgentReport(rate_limit_retries=3, rate_limited_at=NOW))
    assert ended_on_rate_limit(cc, succeeded) is None  # retried and got through: done
    assert ended_on_rate_limit(own, limited("e")) is None  # `rateLimit: off`
    killed = exited("a", 1, -9, timed_out=True, report=limited("a").report)  # type: ignore[attr-defined]
    assert ended_on_rate_limit(cc, killed) is None  # the timeout killed it
    assert ended_on_rate_limit(cmd, exited("d", 1, 75)) == "rate limited: exit 75"
    assert ended_on_rate_limit(cmd, exited("d", 1, 1)) is None
    hint = LogHint("slow down, retry in 7s", 7.0)
    assert ended_on_rate_limit(cmd, exited("d", 1, 1, log_hint=hint)) == (
        "rate limited: slow down, retry in 7s"
    )
    assert ended_on_rate_limit(cmd, exited("d", 1, 0, log_hint=hint)) is None  # exit 0 is done
    setup = exited("d", 1, 75, setup_failed=True)
    assert ended_on_rate_limit(cmd, setup) is None  # its setup failed, not the agent


def test_log_patterns_match_the_last_lines_and_read_the_wait() -> None:
    (pattern,) = SPEC.agents["cmd"].rate_limits.patterns  # type: ignore[union-attr]
    log = "working\nslow down, retry in 5s\nmore\nslow down, retry in 12s\x1b[0m\nbye\n"
    assert match_log([pattern], log) == LogHint("slow down, retry in 12s[0m", 12.0)
    assert match_log([pattern], "slow down, retry in 5s\n" + "x\n" * 60) is None  # too far up
    assert match_log([re.compile("429")], "HTTP 429") == LogHint("HTTP 429", None)
    huge = match_log([pattern], "slow down, retry in 99999999s\n")
    assert huge is not None and huge.wait_s is None  # an absurd wait is not believed


def test_a_bad_pattern_or_empty_match_is_a_spec_error() -> None:
    from pydantic import ValidationError

    for bad, words in [("(unclosed", "missing ), unterminated"), ("x*", "matches empty text")]:
        agents = {"cmd": {"command": ["a"], "rateLimit": {"patterns": ["ok", bad]}}}
        with pytest.raises(ValidationError, match=re.escape(words)):
            make_spec([], agents=agents)


def test_an_attempt_ended_on_a_rate_limit_costs_no_retry() -> None:
    verdict = exit_verdict(SPEC, SPEC.backlog[0], limited("a"), NOW)
    assert verdict is not None
    assert (verdict.outcome, verdict.event) == ("rate_limited", "rate_limited")
    assert verdict.reason == "rate limited: API error 429 after 1 retry"
    assert verdict.retry_at == NOW - 2 + 3.0  # the wait Claude Code named, kept
    # retries: 1 -> two attempts allowed; five rate limits in a row use none of them
    attempts = tuple(
        failed("a", n, outcome="rate_limited", reason="rate limited", ended=NOW - 600 + n)
        for n in range(1, 6)
    )
    st = task_state(attempts, False, NOW, 2)
    assert st.stage == "failed"
    p = run(SPEC, observed(attempts))
    retry = action_of(p, "a")
    assert retry is not None and retry.kind == "retry"
    assert retry.reason.startswith("attempt 6 of 7 (5 rate limited, no retry used): rate limited")
    assert retry.reason.endswith("the provider resumed")


def test_rate_limits_stop_being_free_after_the_safety_valve() -> None:
    attempts = tuple(
        failed("a", n, outcome="rate_limited", ended=NOW - 9000 + n)
        for n in range(1, FREE_RATE_LIMITED + 3)
    )
    assert task_state(attempts, False, NOW, 2).stage == "exhausted"
    assert task_state(attempts[:-1], False, NOW, 2).stage == "failed"


# -- the limiter ----------------------------------------------------------------------------


def test_a_429_halves_the_limit_and_holds_starts_until_the_wait_is_over() -> None:
    state = advance(LimiterState("cc"), [Signal(100.0, 3.0, "a", 1)], POLICY, 101.0)
    assert state == LimiterState("cc", limit=2, resume_at=103.0, changed_at=100.0, strikes=1)
    # 429s of agents that were running already: the same episode, the wait grows
    more = [Signal(100.5, 3.0, "b", 1), Signal(101.0, 6.0, "c", 1)]
    state = advance(state, more, POLICY, 102.0)
    assert (state.limit, state.resume_at, state.strikes) == (2, 107.0, 1)
    # one after the provider resumed: the limit was still too high
    state = advance(state, [Signal(108.0, 2.0, "a", 2)], POLICY, 108.5)
    assert (state.limit, state.resume_at, state.strikes) == (1, 110.0, 2)
    state = advance(state, [Signal(111.0, 2.0, "a", 3)], POLICY, 111.5)
    assert (state.limit, state.strikes) == (1, 3)  # never below 1


def test_the_limit_climbs_one_step_per_quiet_interval_back_to_full() -> None:
    state = LimiterState("cc", limit=1, resume_at=110.0, changed_at=108.0, strikes=2)
    assert advance(state, [], POLICY, 169.0) == state  # not quiet long enough
    state = advance(state, [], POLICY, 500.0)  # long quiet: still one step per pass
    assert (state.limit, state.changed_at, state.strikes) == (2, 500.0, 0)
    assert advance(state, [], POLICY, 559.0).limit == 2
    state = advance(advance(state, [], POLICY, 560.0), [], POLICY, 620.0)
    assert state.limit is None  # 4 of 4: not lowered any more


def test_a_wait_nobody_named_doubles_with_each_halving() -> None:
    assert [unnamed_wait(30.0, k) for k in range(1, 7)] == [30, 60, 120, 240, 480, 600]
    assert unnamed_wait(900.0, 3) == 900.0  # a long `backoff` is taken as it is
    state = advance(LimiterState("cc"), [Signal(100.0, None, "d", 1)], POLICY, 100.0)
    assert (state.limit, state.resume_at) == (2, 130.0)
    state = advance(state, [Signal(131.0, None, "d", 2)], POLICY, 131.0)
    assert (state.limit, state.resume_at) == (1, 191.0)


def test_the_limiter_moves_once_per_fact_however_often_a_pass_sees_it() -> None:
    rng = random.Random(11)
    for _ in range(300):
        found = sorted(
            (
                Signal(rng.uniform(0, 200), rng.choice([None, rng.uniform(0, 20)]), "t", 1)
                for _ in range(rng.randint(1, 6))
            ),
            key=lambda s: s.at,
        )
        now = rng.uniform(200, 400)
        start = LimiterState("p", rng.choice([None, 1, 2, 3]), rng.uniform(0, 50), 0.0, 1)
        once = advance(start, found, POLICY, 200.0)
        assert advance(once, found, POLICY, 200.0) == once
        assert advance(once, rng.sample(found, len(found) // 2), POLICY, 200.0) == once
        later = advance(once, [], POLICY, now)
        assert advance(later, found, POLICY, now) == later


def test_providers_and_their_policies() -> None:
    found = policies(SPEC)
    assert sorted(found) == ["claude-code", "cmd"]  # `own` is off: no provider
    cautious = Policy(6, 120.0, 30.0, ("cc", "cc2"), slow_start=True)  # quiet: cc2's 2m
    assert found["claude-code"] == cautious
    assert not found["cmd"].slow_start  # a command agent reports no answers
    capped = make_spec(
        [], agents={"x": {**CLAUDE, "maxParallel": 1}, "y": {**CLAUDE, "maxParallel": 2}}
    )
    assert policies(capped)["claude-code"].capacity == 3  # sum of the agents' caps
    shared = {"command": ["a"], "rateLimit": {"provider": "openai"}}
    assert sorted(policies(make_spec([], agents={"p": shared, "q": shared}))) == ["openai"]


# -- the start gate -------------------------------------------------------------------------


def test_a_429_holds_the_whole_provider_and_nothing_else() -> None:
    # seen while it ran, then its retry after the wait failed too: two episodes
    assert run(SPEC, observed([limited("a")])).rate_limits["claude-code"].strikes == 2
    obs = observed([limited("a", live=False), running("b"), running("c"), running("f")])
    p = run(SPEC, obs)
    assert p.rate_limits["claude-code"].limit == 2  # 4 were in flight: halved to 2
    resume = NOW - 2 + 3.0
    assert resume > NOW
    w = wait_of(p, "a")  # its own retry waits for the provider
    assert w is not None and w.until == resume
    assert w.reason == f"rate limited: resuming at {hhmmss(resume)} (limit 2 of 6)"
    assert kinds(p)["d"] == "spawn"  # another provider
    assert kinds(p)["e"] == "spawn"  # `rateLimit: off`
    # once resumed, still 3 running of a limit of 2
    later = run(SPEC, obs, NOW + 2)
    assert [a.task for a in later.actions if a.kind in ("spawn", "retry")] == ["d", "e"]
    w = wait_of(later, "a")
    assert w is not None and w.reason.startswith("rate limited: 3 running (limit 2 of 6, one more")
    # an attempt that ended on a 429 is judged so before the controller records it: with
    # retries: 0, `diff` and `status` do not call the task failed meanwhile
    strict = make_spec([task("a", agent="cc")], agents=AGENTS, retries=0)
    assert kinds(run(strict, observed([limited("a", live=False)]), NOW + 5)) == {"a": "retry"}


def test_halving_halves_what_was_in_flight() -> None:
    one = advance(LimiterState("cc"), [Signal(100.0, 1.0, "a", 1)], POLICY, 100.0, flight=3)
    assert one.limit == 1  # 3 running of a limit of 4: 1
    none = advance(LimiterState("cc", limit=3), [Signal(100.0, 1.0, "a", 1)], POLICY, 100, 8)
    assert none.limit == 1  # the limit, when lower


def test_the_stored_limiter_holds_after_a_restart() -> None:
    stored = LimiterState("claude-code", limit=1, resume_at=NOW + 20, changed_at=NOW - 5, strikes=1)
    p = run(SPEC, observed([], rate_limits={"claude-code": stored}))
    assert p.rate_limits["claude-code"] == stored
    w = wait_of(p, "a")
    assert (
        w is not None and w.reason == f"rate limited: resuming at {hhmmss(NOW + 20)} (limit 1 of 6)"
    )
    after = run(SPEC, observed([], rate_limits={"claude-code": stored}), NOW + 21)
    assert [a.task for a in after.actions if a.kind == "spawn"] == ["a", "d", "e"]
    step = NOW + 20 + 120  # the quiet interval of the provider (cc2 says 2m)
    w = wait_of(after, "b")
    assert w is not None and w.until == step
    assert (
        w.reason
        == f"rate limited: 1 running (limit 1 of 6, one more at {hhmmss(step)} without a 429)"
    )


def test_a_running_agent_s_429_holds_new_starts_while_it_waits() -> None:
    report = AgentReport(
        api_retries=1, rate_limit_retries=1, retry_delay_s=4.0, rate_limited_at=NOW - 1
    )
    obs = observed([running("b", report=report)])
    state = advance_all(SPEC, obs, NOW)["claude-code"]
    assert (state.limit, state.resume_at) == (1, NOW + 3)  # one in flight: 1
    assert kinds(run(SPEC, obs))["a"] == "wait"
    forged = replace(report, rate_limited_at=NOW + 3600)  # a record from the future
    assert advance_all(SPEC, observed([running("b", report=forged)]), NOW) == {}


def test_a_cold_fleet_starts_slowly_and_doubles_as_answers_come() -> None:
    cold = make_spec(
        [task(f"t{i}", agent="cc", paths=[f"t{i}/**"]) for i in range(8)]
        + [task("d", "cmd", paths=["d/**"])],
        agents=AGENTS,
        maxParallel=8,
        resources={"cpu": [{"parallel": 8}], "memory": [{"parallel": 8}]},
    )
    p = run(cold)
    assert [a.task for a in p.actions] == ["t0", "t1", "d"]  # a command agent: no answers
    w = wait_of(p, "t2")
    assert w is not None and w.until == NOW + 1.0
    assert w.reason == "starting slowly: 2 claude-code agents wait for a first answer"
    answered = AgentReport(turns=1)
    fresh = NOW - 1
    two = [running(f"t{i}", started=fresh, report=answered) for i in range(2)]
    assert [a.task for a in run(cold, observed(two)).actions] == ["t2", "t3", "d"]
    four = two + [running(f"t{i}", started=fresh, report=answered) for i in (2, 3)]
    assert [a.task for a in run(cold, observed(four)).actions] == ["t4", "t5", "t6", "t7"]
    quiet = [running(f"t{i}", started=NOW - 11) for i in range(2)]  # no 429 in 10 s
    assert [a.task for a in run(cold, observed(quiet)).actions] == ["t2", "t3", "d"]
