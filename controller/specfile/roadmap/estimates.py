"""Effort estimates of ROADMAP items, in working time: 1 day = 8 h, 1 week = 5 days,
1 month = 20 days (the convention the real ROADMAP writes out, e.g. "1 day (8 hours)").
"""

from __future__ import annotations

import re

_ESTIMATE_RE = re.compile(
    r"(?P<a>\d+(?:\.\d+)?)(?:\s*(?:-|–|—|to)\s*(?P<b>\d+(?:\.\d+)?))?\s*"
    r"(?P<u>minutes?|mins?|m|hours?|hrs?|h|days?|d|weeks?|wks?|w|months?)\b",
    re.IGNORECASE,
)
_HOUR = 3600.0
_UNIT_S = {"m": 60.0, "h": _HOUR, "d": 8 * _HOUR, "w": 40 * _HOUR, "mo": 160 * _HOUR}


def _unit_seconds(unit: str) -> float:
    u = unit.lower()
    if u.startswith("mo"):
        return _UNIT_S["mo"]
    return _UNIT_S[u[0]]


def parse_estimate(text: str) -> float | None:
    """Seconds of work in `2-3 days`, `4 hours`, `1 week`, `30 min` (upper bound of a range)."""
    m = _ESTIMATE_RE.search(text)
    if not m:
        return None
    amount = float(m.group("b") or m.group("a"))
    return amount * _unit_seconds(m.group("u"))


def format_estimate(seconds: float) -> str:
    """Backlog form of an estimate, readable by `durations.parse_duration`: `3h`, `1h30m`."""
    minutes = max(1, round(seconds / 60))
    hours, mins = divmod(minutes, 60)
    if not hours:
        return f"{mins}m"
    return f"{hours}h{mins}m" if mins else f"{hours}h"
