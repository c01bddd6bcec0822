"""Reading what an agent said about its own run: the shim's stream record of a preset agent
(`<n>.stream.json`) or the usage file a `command` agent may write (`<n>.usage.json`, the
path in `$ORCHESTRATOR_USAGE_FILE`).

Both are written by or from the agent, so both are hostile input: the runs reader opens them
through `state.files` (a regular file only, at most `files.RECORD_LIMIT`), and here every
value is type- and range-checked, and strings are shortened. A usage
file may hold any of these keys (all optional):

    {"input_tokens": 1200, "output_tokens": 300, "cache_read_tokens": 0,
     "cache_write_tokens": 0, "cost_usd": 0.0081, "turns": 4}
"""

from __future__ import annotations

import math
from typing import Any

from controller.model.observed import AgentReport, Usage

MAX_COUNT = 10**9
MAX_COST_USD = 1e6
MAX_TEXT = 200
MAX_DENIALS = 20
_TOKEN_KEYS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens")


def _count(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_COUNT:
        return None
    return value


def _cost(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and 0 <= value < MAX_COST_USD else None


def _moment(value: Any) -> float | None:
    """A Unix time (a finite positive number below year 5000), or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and 0 < value < 1e11 else None


def _text(value: Any) -> str | None:
    if not isinstance(value, str) or not value:
        return None
    flat = "".join(ch for ch in " ".join(value.split()) if ch.isprintable())
    return flat[:MAX_TEXT] or None


def parse_usage(data: Any) -> Usage | None:
    """Tokens and cost from a mapping with the keys above; None when it has none of them."""
    if not isinstance(data, dict):
        return None
    counts = {key: _count(data.get(key)) for key in _TOKEN_KEYS}
    cost = _cost(data.get("cost_usd"))
    if cost is None and all(v is None for v in counts.values()):
        return None
    return Usage(**{k: v or 0 for k, v in counts.items()}, cost_usd=cost)


def parse_report(data: Any) -> AgentReport | None:
    """An `AgentReport` from a stream record (nested `usage`) or a usage file (flat keys)."""
    if not isinstance(data, dict):
        return None
    usage = parse_usage(data["usage"]) if "usage" in data else parse_usage(data)
    denials = data.get("denials")
    delay = _cost(data.get("retry_delay_s"))
    return AgentReport(
        usage=usage,
        turns=_count(data.get("turns")),
        last_action=_text(data.get("last_action")),
        denials=tuple(
            t for t in (_text(d) for d in (denials if isinstance(denials, list) else ())) if t
        )[:MAX_DENIALS],
        error=_text(data.get("error")),
        api_error_status=_count(data.get("api_error_status")),
        api_retries=_count(data.get("api_retries")) or 0,
        rate_limit_retries=_count(data.get("rate_limit_retries")) or 0,
        retry_delay_s=delay,
        rate_limited_at=_moment(data.get("rate_limited_at")),
        finished=data.get("finished") is True,
    )


def report_from_row(
    tokens: tuple[int | None, ...], cost_usd: float | None, turns: int | None
) -> AgentReport | None:
    """The report the store keeps of a judged attempt (usage and turns only)."""
    if cost_usd is None and turns is None and all(t is None for t in tokens):
        return None
    usage = None
    if cost_usd is not None or any(t is not None for t in tokens):
        i, o, r, w = (t or 0 for t in tokens)
        usage = Usage(i, o, r, w, cost_usd)
    return AgentReport(usage=usage, turns=turns, finished=True)
