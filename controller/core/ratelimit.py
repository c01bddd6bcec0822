"""Rate limits across the fleet: which attempts ended on one, and how a provider backs off.

One limiter per provider (`model.ratelimit`), moved by AIMD. Pure functions of (spec,
observed, now) and the limiter as the store kept it:

- **signals**: the 429s a running agent reports (Claude Code's `api_retry` lines, with the
  delay it waits before its retry), and attempts that ended on a rate limit (at their end,
  with the wait the agent named if it named one).
- **advance**: a signal that comes once the provider may start again (after `resume_at`)
  halves its limit (at least 1): one halving per episode, since the 429s of agents that were
  already running when it began only push `resume_at` on. Every signal moves `resume_at` to
  its time plus the wait its agent named; the signal that opens an episode without one waits
  `rateLimit.backoff`, doubled per halving since the limit last climbed. Each `quiet`
  interval after the later of the last change and `resume_at`, the limit climbs one step,
  back to the provider's full concurrency.
- **hold**: the start gate: nothing of a provider starts before `resume_at`, nor beyond its
  limit. And a provider whose agents report their answers (a preset) starts slowly, like
  TCP: no more of its agents may wait for their first answer at once than have had one
  (at least `SLOW_START`), so a cold fleet of 12 doubles 2, 4, 8, 12 as answers come,
  instead of sending 12 first requests into a limit it does not know yet.

A pass may see the same signal again (a running agent's record is read on every pass, an
ended attempt until its task starts again): every rule is idempotent in the signals, so the
limiter moves once per fact, whether `diff`, `status` or the controller computes it. Only
the controller stores it (`Plan.rate_limits`), so a restarted one carries on.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace

from controller.model.agent import Agent
from controller.model.observed import AttemptObs, Observed
from controller.model.ratelimit import LimiterState, LogHint
from controller.model.spec import Spec

MAX_WAIT_S = 3600.0  # a wait an agent names is believed up to this
MAX_BACKOFF_S = 600.0  # an unnamed wait doubles up to this (or `backoff`, if longer)
CLOCK_SKEW_S = 5.0  # a signal stamped later than now + this is not believed
SLOW_START = 2  # agents of a provider that may wait for a first answer at once, at least
ANSWERED_S = 10.0  # an agent running this long without a 429 counts as answered
LOG_LINES = 50  # the last lines of a failed attempt's log matched against `patterns`
LINE_CHARS = 1000  # of each, at most


@dataclass(frozen=True)
class Signal:
    """One sign that a provider's rate limit was hit: at `at`, wait `wait` seconds (None:
    not said)."""

    at: float
    wait: float | None
    task: str
    attempt: int


@dataclass(frozen=True)
class Policy:
    """How one provider backs off: the most cautious settings of its agents."""

    capacity: int  # its full concurrency
    quiet: float
    backoff: float
    agents: tuple[str, ...]
    slow_start: bool = False  # its agents report their answers (presets): start slowly


# -- which attempts ended on a rate limit ---------------------------------------------------


def match_log(patterns: Sequence[re.Pattern[str]], text: str) -> LogHint | None:
    """The last of the final `LOG_LINES` lines of `text` that a pattern finds, as a hint."""
    lines = text.splitlines()[-LOG_LINES:]
    for line in reversed(lines):
        line = line[-LINE_CHARS:]
        for pattern in patterns:
            found = pattern.search(line)
            if found is None:
                continue
            seconds = found.groupdict().get("seconds")
            wait = _seconds(seconds)
            shown = "".join(ch for ch in " ".join(line.split()) if ch.isprintable())
            return LogHint(shown[:120], wait)
    return None


def _seconds(text: str | None) -> float | None:
    try:
        value = float(text) if text else None
    except ValueError:
        return None
    return value if value is not None and 0 <= value <= MAX_WAIT_S else None


def ended_on_rate_limit(agent: Agent | None, a: AttemptObs) -> str | None:
    """Why attempt `a`, whose process ended, stopped on a rate limit (its reason), or None.

    The signs: Claude Code's result `api_error_status: 429`; for a command agent, an exit
    code in `rateLimit.exitCodes` or a log line matching `rateLimit.patterns`. Never for an
    agent with `rateLimit: off`, a timeout, a failed setup or an exit 0.
    """
    if a.outcome is not None:
        return (a.reason or "rate limited") if a.outcome == "rate_limited" else None
    limits = agent.rate_limits if agent is not None else None
    if limits is None or a.alive or not a.exit_code or a.setup_failed or a.timed_out:
        return None
    report = a.report
    if report is not None and report.api_error_status == 429:
        tries = report.rate_limit_retries
        after = f" after {tries} retr{'y' if tries == 1 else 'ies'}" if tries else ""
        return f"rate limited: API error 429{after}"
    if a.exit_code in limits.exit_codes:
        return f"rate limited: exit {a.exit_code}"
    if a.log_hint is not None:
        return f"rate limited: {a.log_hint.text}"
    return None


def named_wait(a: AttemptObs) -> float | None:
    """The wait after attempt `a` ended on a rate limit, as far as its agent named one: a
    `seconds` group in its log, else the delay of Claude Code's last retry (or the
    `retry_delay_s` a command agent wrote to its usage file)."""
    if a.log_hint is not None and a.log_hint.wait_s is not None:
        return a.log_hint.wait_s
    report = a.report
    if report is not None and (report.rate_limited_at or report.api_error_status == 429):
        return report.retry_delay_s
    return None


# -- signals --------------------------------------------------------------------------------


def agent_of(spec: Spec, task_id: str, a: AttemptObs) -> tuple[str, Agent] | None:
    """The agent an attempt ran (its recorded one, else its task's, if the spec still has
    it), as (name, agent)."""
    if a.agent is not None and a.agent in spec.agents:
        return a.agent, spec.agents[a.agent]
    task = next((t for t in spec.backlog if t.id == task_id), None)
    if task is None or task.agent not in spec.agents:
        return None
    return task.agent, spec.agents[task.agent]


def _signals_of(task_id: str, a: AttemptObs, agent: Agent, now: float) -> list[Signal]:
    out = []
    report = a.report
    seen = report.rate_limited_at if report is not None else None
    if report is not None and seen is not None and seen <= now + CLOCK_SKEW_S:
        out.append(Signal(seen, report.retry_delay_s, task_id, a.number))
    if not a.alive and ended_on_rate_limit(agent, a):
        ended = min(a.ended_at or now, now)
        if a.outcome == "rate_limited":  # judged: the wait named is kept as its retry_at
            wait = a.retry_at - ended if a.retry_at is not None and a.retry_at >= ended else None
        else:
            wait = named_wait(a)
        out.append(Signal(ended, wait, task_id, a.number))
    return out


def signals(spec: Spec, observed: Observed, now: float) -> dict[str, list[Signal]]:
    """provider -> the signs of its rate limit in the tasks' latest attempts, oldest first."""
    out: dict[str, list[Signal]] = {}
    for task_id, attempts in observed.attempts.items():
        if not attempts:
            continue
        found = agent_of(spec, task_id, attempts[-1])
        if found is None:
            continue
        name, agent = found
        provider = agent.provider(name)
        if provider is not None:
            out.setdefault(provider, []).extend(_signals_of(task_id, attempts[-1], agent, now))
    return {p: sorted(found, key=lambda s: (s.at, s.task)) for p, found in out.items()}


# -- the limiter ----------------------------------------------------------------------------


def policies(spec: Spec) -> dict[str, Policy]:
    """provider -> how it backs off, for every provider of the spec's agents."""
    members: dict[str, list[str]] = {}
    for name, agent in spec.agents.items():
        provider = agent.provider(name)
        if provider is not None:
            members.setdefault(provider, []).append(name)
    out = {}
    for provider, names in members.items():
        agents = [spec.agents[n] for n in names]
        caps = [a.max_parallel for a in agents]
        capacity = spec.max_parallel
        if all(c is not None for c in caps):
            capacity = min(capacity, sum(c for c in caps if c is not None))
        limits = [a.rate_limits for a in agents]
        quiet = max(x.quiet for x in limits if x is not None)
        backoff = max(x.backoff for x in limits if x is not None)
        slow = all(a.preset is not None for a in agents)
        out[provider] = Policy(capacity, quiet, backoff, tuple(names), slow)
    return out


def unnamed_wait(backoff: float, strikes: int) -> float:
    """The wait after a rate limit whose agent named none: doubled per halving."""
    return min(backoff * 2 ** max(0, strikes - 1), max(backoff, MAX_BACKOFF_S))


def advance(
    state: LimiterState, found: list[Signal], policy: Policy, now: float, flight: int | None = None
) -> LimiterState:
    """The limiter after the signals `found` (oldest first) and the quiet time up to `now`.

    A halving halves what was in use: the limit, or `flight` (the provider's agents running
    or just ended on a rate limit) when fewer, as TCP halves its flight size."""
    limit, resume, changed, strikes = state.limit, state.resume_at, state.changed_at, state.strikes
    for s in found:
        wait = s.wait
        if s.at >= resume and s.at >= changed:  # a new episode: the limit was not enough
            current = min(limit if limit is not None else policy.capacity, policy.capacity)
            if flight is not None:
                current = min(current, max(flight, 1))
            limit, strikes, changed = max(1, current // 2), strikes + 1, s.at
            if wait is None:
                wait = unnamed_wait(policy.backoff, strikes)
        if wait is not None:
            resume = max(resume, s.at + min(max(wait, 0.0), MAX_WAIT_S))
    if limit is not None and now >= max(changed, resume) + policy.quiet:
        limit, changed, strikes = limit + 1, now, 0
    if limit is not None and limit >= policy.capacity:
        limit = None
    return replace(state, limit=limit, resume_at=resume, changed_at=changed, strikes=strikes)


def advance_all(spec: Spec, observed: Observed, now: float) -> dict[str, LimiterState]:
    """provider -> its limiter after this pass's signals (every provider of the spec that
    has a stored limiter or a signal)."""
    found = signals(spec, observed, now)
    flight = in_flight(spec, observed, found)
    out = {}
    for provider, policy in policies(spec).items():
        stored = observed.rate_limits.get(provider)
        if stored is None and not found.get(provider):
            continue
        state = stored or LimiterState(provider)
        out[provider] = advance(state, found.get(provider, []), policy, now, flight.get(provider))
    return out


def in_flight(spec: Spec, observed: Observed, found: Mapping[str, list[Signal]]) -> dict[str, int]:
    """provider -> its tasks whose latest attempt runs, or gave one of the signals `found`."""
    signalled = {(s.task, s.attempt) for batch in found.values() for s in batch}
    out: dict[str, int] = {}
    for task_id, attempts in observed.attempts.items():
        last = attempts[-1] if attempts else None
        if last is None or not (last.alive or (task_id, last.number) in signalled):
            continue
        agent = agent_of(spec, task_id, last)
        provider = agent[1].provider(agent[0]) if agent else None
        if provider is not None:
            out[provider] = out.get(provider, 0) + 1
    return out


def waiting_for_answer(a: AttemptObs, now: float) -> bool:
    """Whether a live attempt has not had its first answer yet (slow start): no turn in its
    report, and started less than `ANSWERED_S` ago (a 429 would have come by then)."""
    if a.report is not None and a.report.turns:
        return False
    started = a.started_at or a.created_at
    return started is None or now - started < ANSWERED_S


def next_step_at(state: LimiterState, policy: Policy) -> float | None:
    """When the limit climbs its next step if no 429 comes first (None: not lowered)."""
    if state.limit is None:
        return None
    return max(state.changed_at, state.resume_at) + policy.quiet


def shown_limit(state: LimiterState, policy: Policy) -> str:
    """`limit 2 of 4`."""
    limit = policy.capacity if state.limit is None else min(state.limit, policy.capacity)
    return f"limit {limit} of {policy.capacity}"


def throttled(state: LimiterState, now: float) -> bool:
    """Whether the limiter holds anything back now (a wait, or a lowered limit)."""
    return now < state.resume_at or state.limit is not None


def describe(state: LimiterState, policy: Policy, now: float, clock: Callable[[float], str]) -> str:
    """How a provider stands, for `status`: `rate limited: resuming at 12:00:03 (limit 2 of
    4)`, or `rate limited: limit 2 of 4, one more at 12:01:03 without a 429`; "" when
    nothing is held back. `clock` renders a moment as HH:MM:SS."""
    limit = shown_limit(state, policy)
    if now < state.resume_at:
        return f"rate limited: resuming at {clock(state.resume_at)} ({limit})"
    step = next_step_at(state, policy)
    if step is None:
        return ""
    return f"rate limited: {limit}, one more at {clock(max(step, now))} without a 429"
