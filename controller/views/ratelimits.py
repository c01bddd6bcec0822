"""How each provider's rate limiter stands, for `status` and the dashboard (pure).

The limiter is the one the planner computed for this moment (`Plan.rate_limits`), so the
views show what the next pass acts on: `claude-code: rate limited: resuming at 12:00:03
(limit 2 of 4)`.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import tzinfo
from typing import Any

from controller.core.passstate import clock_time
from controller.core.plan import Plan
from controller.core.ratelimit import describe, next_step_at, policies
from controller.model.spec import Spec


@dataclass(frozen=True)
class RateLimitView:
    provider: str
    limit: int  # the concurrency it may use now
    capacity: int  # its full concurrency
    resume_at: float | None  # nothing of it starts before (None: nothing held)
    next_step_at: float | None  # when the limit climbs a step without a 429
    text: str  # "" when nothing is held back

    def as_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "limit": self.limit,
            "capacity": self.capacity,
            "resume_at": self.resume_at,
            "next_step_at": self.next_step_at,
            "throttled": bool(self.text),
            "text": self.text,
        }


def rate_limit_views(
    spec: Spec, result: Plan, now: float, tz: tzinfo | None = None
) -> tuple[RateLimitView, ...]:
    """One view per provider the planner has a limiter for, by name."""
    known = policies(spec)
    out = []
    for provider, state in sorted(result.rate_limits.items()):
        policy = known.get(provider)
        if policy is None:
            continue
        limit = policy.capacity if state.limit is None else min(state.limit, policy.capacity)
        out.append(
            RateLimitView(
                provider=provider,
                limit=limit,
                capacity=policy.capacity,
                resume_at=state.resume_at if state.resume_at > now else None,
                next_step_at=next_step_at(state, policy),
                text=describe(state, policy, now, lambda ts: clock_time(ts, tz)),
            )
        )
    return tuple(out)


def rate_limit_line(views: tuple[RateLimitView, ...]) -> str:
    """`claude-code: rate limited: resuming at 12:00:03 (limit 2 of 4)`; "" when none."""
    return "; ".join(f"{v.provider}: {v.text}" for v in views if v.text)
