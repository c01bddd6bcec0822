"""What parallelism bought, measured from recorded attempt intervals (pure functions).

speedup (shown as "parallelism") = total agent time / wall-clock time during which at least
one agent ran -- the average number of agents running while any ran. Failed attempts count
as agent time, and no sequential run is measured: it is a speedup over running the same
attempts one by one only if each would take as long alone. efficiency = speedup / parallel
limit; parallelization rate = share of that busy time during which two or more agents ran;
time saved (shown as "overlap") = total agent time - busy time. All are measured from the
attempts' real start and end times, never estimated.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class Parallelism:
    work_s: float  # sum of attempt durations (sequential time)
    busy_s: float  # wall-clock time with >= 1 agent running
    overlap_s: float  # wall-clock time with >= 2 agents running
    attempts: int

    @property
    def speedup(self) -> float:
        return self.work_s / self.busy_s if self.busy_s > 0 else 0.0

    @property
    def parallelization_rate(self) -> float:
        return self.overlap_s / self.busy_s if self.busy_s > 0 else 0.0

    @property
    def time_saved_s(self) -> float:
        return max(0.0, self.work_s - self.busy_s)

    def efficiency(self, limit: int) -> float:
        return self.speedup / limit if limit > 0 else 0.0

    def as_dict(self, limit: int | None = None) -> dict[str, float | int]:
        out: dict[str, float | int] = {
            **asdict(self),
            "speedup": round(self.speedup, 3),
            "parallelization_rate": round(self.parallelization_rate, 3),
            "time_saved_s": round(self.time_saved_s, 3),
        }
        if limit:
            out["efficiency"] = round(self.efficiency(limit), 3)
        return out


def parallelism(intervals: Iterable[tuple[float, float]]) -> Parallelism:
    """Sweep over interval endpoints: how long 1+ and 2+ intervals were open."""
    spans = [(s, e) for s, e in intervals if e > s]
    points: list[tuple[float, int]] = []
    for start, end in spans:
        points.append((start, 1))
        points.append((end, -1))
    points.sort(key=lambda p: (p[0], p[1]))  # ends before starts at the same instant
    busy = overlap = 0.0
    depth = 0
    last = 0.0
    for t, delta in points:
        if depth >= 1:
            busy += t - last
        if depth >= 2:
            overlap += t - last
        depth += delta
        last = t
    work = sum(e - s for s, e in spans)
    return Parallelism(work_s=work, busy_s=busy, overlap_s=overlap, attempts=len(spans))
