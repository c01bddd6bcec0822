"""The merge train's decisions: which finished branches ride together, which prefixes of
the chain to verify next, and what the verify results mean. Pure; `act.train` carries them
out (building the chain of merge commits, running verify, landing by compare-and-swap).

The chain: M1 merges the first branch onto the integration tip, M2 the second onto M1, and
so on; verifying Mp verifies the prefix of length p. A passing prefix lands at once (one
compare-and-swap to Mp); when a prefix fails, the culprit is the first link whose prefix
fails, found by bisection over prefix lengths. What a careful bisection keeps, and a plain
one ("verify the first half, land it, start over with the rest") throws away: the shortest
prefix known to fail. After the first half passes and lands, the rest is known to fail
already, so it is split again at once instead of being verified whole a second time.
After a culprit is found the train ends: the links behind it go back to the queue and ride
the next train on the new tip, with whatever finished meanwhile.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Candidate:
    """A finished branch waiting to land."""

    task: str
    ended_at: float | None  # when its attempt exited: the queue's order
    position: int  # its place in the backlog: breaks ties
    # files it is predicted to conflict on with the current integration tip (empty: none)
    predicted_conflicts: tuple[str, ...] = ()


def queue_order(candidates: Sequence[Candidate]) -> list[Candidate]:
    """First finished, first in the queue; backlog order between equal exit times."""
    return sorted(
        candidates,
        key=lambda c: (c.ended_at if c.ended_at is not None else math.inf, c.position),
    )


@dataclass(frozen=True)
class Batch:
    links: tuple[str, ...]  # tasks to chain, in order
    # predicted to conflict with the tip: checked on their own (a conflict needs no verify
    # run), so they take no place in the chain
    conflict_checks: tuple[str, ...] = ()


def select_batch(candidates: Sequence[Candidate], batch: int, parallel: int = 1) -> Batch:
    """The next train: the first `batch` x `parallel` branches of the queue that are not
    predicted to conflict (with `parallel` > 1 the later batches are verified speculatively,
    each on top of the one before), and every branch predicted to conflict."""
    ordered = queue_order(candidates)
    links = tuple(c.task for c in ordered if not c.predicted_conflicts)
    checks = tuple(c.task for c in ordered if c.predicted_conflicts)
    return Batch(links[: batch * max(1, parallel)], checks)


@dataclass(frozen=True)
class Bisection:
    """What the train knows about its chain of `links` links (prefix lengths 0..links)."""

    links: int
    good: int = 0  # the longest prefix known to pass (and landed)
    bad: int | None = None  # the shortest prefix known to fail

    @property
    def culprit(self) -> int | None:
        """Index of the link that breaks verify on top of the good prefix, once known."""
        return self.good if self.bad is not None and self.bad == self.good + 1 else None

    @property
    def done(self) -> bool:
        return self.good >= self.links or self.culprit is not None


def next_probes(state: Bisection, batch: int, parallel: int = 1) -> tuple[int, ...]:
    """The prefix lengths to verify next (at most `parallel`, run side by side).

    While no failure is known: the batch boundaries after the good prefix (the whole chain
    when it fits one batch). Once a prefix is known to fail: points splitting the unknown
    stretch between the good prefix and it into equal parts (halves for one probe, thirds
    for two).
    """
    if state.done:
        return ()
    width = max(1, parallel)
    if state.bad is None:
        ends = [min(state.links, state.good + batch * i) for i in range(1, width + 1)]
        return tuple(dict.fromkeys(ends))
    span = state.bad - state.good
    points = [state.good + (span * i + width) // (width + 1) for i in range(1, width + 1)]
    inside = [p for p in points if state.good < p < state.bad]
    return tuple(sorted(dict.fromkeys(inside)))


def after_probes(state: Bisection, passed: Mapping[int, bool]) -> Bisection:
    """What the results of verifying some prefixes (length -> passed) teach.

    A failure is taken to hold for every longer prefix (the culprit stays in it), so a pass
    of a prefix longer than the shortest failing one is ignored: that prefix holds the
    culprit, and something after it hid the failure.
    """
    failing = [p for p, ok in passed.items() if not ok]
    bad = min([*failing, *([state.bad] if state.bad is not None else [])], default=None)
    good = max(
        [state.good, *(p for p, ok in passed.items() if ok and (bad is None or p < bad))],
    )
    return Bisection(state.links, good, bad)


def group_testing_bound(candidates: int, culprits: int) -> int:
    """Verify runs that any strategy needs, at least, to tell which `culprits` of
    `candidates` branches fail: ceil(log2 C(n, k)) (each run answers yes or no)."""
    ways = math.comb(candidates, culprits)
    return math.ceil(math.log2(ways)) if ways > 1 else 0
