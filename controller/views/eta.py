"""ETAs of running attempts: from the agent's progress rate when it writes progress, else
from the median duration of earlier attempts of the same agent type that finished their work
(exit 0), and which of the two it is (pure functions)."""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from controller.model.durations import format_duration
from controller.model.observed import AttemptObs
from controller.views.measure import attempt_duration, finished_work


@dataclass(frozen=True)
class Eta:
    """Time left for a running attempt. `basis`: "progress", "history" or "none"."""

    seconds: float | None
    basis: str
    detail: str


NO_ETA = Eta(None, "none", "")


def durations_by_agent(
    attempts: Mapping[str, Sequence[AttemptObs]], fallback_agent: Mapping[str, str]
) -> dict[str, list[tuple[str, int, float]]]:
    """agent -> [(task, number, duration)] of attempts that finished their work."""
    out: dict[str, list[tuple[str, int, float]]] = {}
    for task_id, rows in attempts.items():
        for a in rows:
            d = attempt_duration(a)
            agent = a.agent or fallback_agent.get(task_id)
            if d is None or agent is None or not finished_work(a):
                continue
            out.setdefault(agent, []).append((task_id, a.number, d))
    return out


def estimate_eta(
    progress: float | None, elapsed: float | None, history: Sequence[float], agent: str | None
) -> Eta:
    """ETA of a running attempt: from its progress rate, else from the median of `history`."""
    if progress is not None and elapsed is not None and elapsed > 0 and progress > 0:
        if progress >= 100:
            return Eta(0.0, "progress", "100% reported")
        rate = progress / elapsed  # percent per second
        left = (100.0 - progress) / rate
        return Eta(
            left,
            "progress",
            f"{progress:.0f}% in {format_duration(elapsed)} ({rate * 60:.1f}%/min)",
        )
    if history:
        median = statistics.median(history)
        left = max(0.0, median - (elapsed or 0.0))
        n = len(history)
        return Eta(
            left,
            "history",
            f"median {format_duration(median)} of {n} earlier {agent or '?'} attempt"
            f"{'s' if n != 1 else ''}",
        )
    return Eta(None, "none", f"no progress reported and no earlier {agent or '?'} attempts")


def live_eta(
    task_id: str,
    last: AttemptObs | None,
    live: bool,
    pct: float | None,
    elapsed: float | None,
    history: Mapping[str, list[tuple[str, int, float]]],
    agent: str | None,
) -> Eta:
    """ETA of a live attempt, from earlier attempts of its agent other than itself."""
    if not live or last is None:
        return NO_ETA
    earlier = [
        d for t, n, d in history.get(agent or "", []) if not (t == task_id and n == last.number)
    ]
    return estimate_eta(pct, elapsed, earlier, agent)
