"""Which clock the figures use: the controller's recorded attempt times.

An attempt has two records of when it ran: the store row (`started_at` when the controller
launched it, `ended_at` from its exit record) and the shim's own start record (written once
the shim is up, a fraction of a second later). The planner reads the joined world view; the
measured figures (durations, speedup, ETA history) use the store's times, falling back to
the run records for what the store does not have yet (an exit not yet given its verdict).
So `status`, `activity-summary` and the demo's closing line agree, and each figure can be
recomputed from the `attempts` table alone.
"""

from __future__ import annotations

import copy
from collections.abc import Iterable, Mapping, Sequence

from controller.model.observed import AttemptObs
from controller.state.store import AttemptRow


def with_recorded_times(
    attempts: Mapping[str, Sequence[AttemptObs]], rows: Mapping[str, Sequence[AttemptRow]]
) -> dict[str, tuple[AttemptObs, ...]]:
    """The attempts with `started_at`/`ended_at` taken from their store rows when set."""
    out: dict[str, tuple[AttemptObs, ...]] = {}
    for task, task_attempts in attempts.items():
        by_number = {r.number: r for r in rows.get(task, ())}
        fixed = []
        for a in task_attempts:
            row = by_number.get(a.number)
            if row is not None:
                start = a.started_at if row.started_at is None else row.started_at
                end = a.ended_at if row.ended_at is None else row.ended_at
                if start != a.started_at or end != a.ended_at:
                    a = _retimed(a, start, end)
            fixed.append(a)
        out[task] = tuple(fixed)
    return out


def _retimed(a: AttemptObs, start: float | None, end: float | None) -> AttemptObs:
    """`replace(a, started_at=start, ended_at=end)`, without re-running `__init__` (this
    runs for every attempt in the store; `dataclasses.replace` is several times slower)."""
    new = copy.copy(a)
    object.__setattr__(new, "started_at", start)
    object.__setattr__(new, "ended_at", end)
    return new


def attempt_duration(a: AttemptObs) -> float | None:
    if a.started_at is None or a.ended_at is None:
        return None
    return max(0.0, a.ended_at - a.started_at)


def finished_work(a: AttemptObs) -> bool:
    """The agent finished its work (exit 0), whatever happened at merge time."""
    return a.exit_code == 0 or a.outcome in ("succeeded", "merged")


def run_intervals(
    attempts: Iterable[AttemptObs], now: float, since: float | None = None
) -> list[tuple[float, float]]:
    """(start, end) of attempts; a live one ends at `now`; clipped to [`since`, `now`]."""
    spans = []
    for a in attempts:
        if a.started_at is None:
            continue
        end = a.ended_at
        if end is None and a.alive:
            end = now
        if end is None:
            continue
        start = a.started_at if since is None else max(a.started_at, since)
        end = min(end, now)
        if end > start:
            spans.append((start, end))
    return spans
