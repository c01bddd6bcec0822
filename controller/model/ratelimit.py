"""Rate limits: how an agent tells that it was rate limited (`rateLimit` on an agent in the
spec), and the fleet's limiter for one provider (`LimiterState`, kept in the store).

A provider is whatever shares one rate limit: by default a preset's name (every Claude Code
agent of the fleet uses one API), else the agent's own name; `rateLimit.provider` names it
explicitly (two agents with different API keys, or command agents that share one). The rules
that move a limiter are in `controller.core.ratelimit`; nothing here does I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from typing import Annotated, Any

from pydantic import Field, PlainSerializer, PlainValidator, WithJsonSchema

from controller.model.fields import (
    AGENT_NAME_PATTERN,
    PositiveDuration,
    SpecModel,
    schema_without_null,
)

OFF = "off"
DEFAULT_QUIET_S = 60.0
DEFAULT_BACKOFF_S = 30.0


def _compile(value: Any) -> re.Pattern[str]:
    if not isinstance(value, str):
        raise ValueError("a regular expression must be a string")
    try:
        pattern = re.compile(value)
    except re.error as exc:
        raise ValueError(f"invalid regular expression `{value}`: {exc}") from None
    if pattern.search("") is not None:
        raise ValueError(f"regular expression `{value}` matches empty text: it would match any log")
    return pattern


Regex = Annotated[
    re.Pattern[str],
    PlainValidator(_compile),
    PlainSerializer(lambda p: p.pattern, return_type=str),
    WithJsonSchema({"type": "string", "format": "regex"}),
]
ProviderName = Annotated[str, Field(pattern=AGENT_NAME_PATTERN)]


class RateLimit(SpecModel):
    """How the fleet learns that an agent hit its provider's rate limit, and how it backs off.

    A preset agent says so itself (Claude Code's `api_retry` lines with status 429, or a
    result with `api_error_status: 429`); a `command` agent by an exit code or a line of its
    output. Agents of one provider back off together.
    """

    provider: ProviderName | None = Field(
        default=None,
        json_schema_extra=schema_without_null,
        description="what shares one rate limit; agents naming the same provider back off "
        "together (default: the preset's name, e.g. claude-code; else the agent's name)",
    )
    exit_codes: list[Annotated[int, Field(ge=1, le=255)]] = Field(
        default_factory=list,
        description="exit codes that mean the agent stopped on a rate limit (command agents)",
    )
    patterns: list[Regex] = Field(
        default_factory=list,
        description="regular expressions matched against the last lines of a failed "
        "attempt's log: a match means it stopped on a rate limit; a group named `seconds` "
        r"says how long to wait (e.g. 'retry after (?P<seconds>\d+)')",
    )
    quiet: PositiveDuration = Field(
        default=DEFAULT_QUIET_S,
        description="after a rate limit the provider's concurrency is halved; it climbs back "
        "one step each time this long passes without one (default 60s)",
    )
    backoff: PositiveDuration = Field(
        default=DEFAULT_BACKOFF_S,
        description="how long nothing new starts after a rate limit whose wait the agent did "
        "not say (doubles with each further halving; default 30s)",
    )


@cache
def default_rate_limit() -> RateLimit:
    """The settings of an agent without `rateLimit` (built once)."""
    return RateLimit()


@dataclass(frozen=True)
class LogHint:
    """A line of a failed attempt's log that matched its agent's `rateLimit.patterns`."""

    text: str  # the matching line, shortened and printable
    wait_s: float | None = None  # from a `seconds` group, if the pattern has one


@dataclass(frozen=True)
class LimiterState:
    """The fleet's rate limiter for one provider (AIMD: halve on a 429, climb back slowly).

    `limit` None means not lowered: the provider's full concurrency. Nothing new of the
    provider starts before `resume_at`. `changed_at` is when the limit last moved (the quiet
    interval counts from the later of it and `resume_at`); `strikes` counts the halvings
    since it last climbed (a wait nobody said doubles with each).
    """

    provider: str
    limit: int | None = None
    resume_at: float = 0.0
    changed_at: float = 0.0
    strikes: int = 0
