"""The merge worker: merges run on one background thread, so that a long verify gate never
stalls spawning; they stay serial, as the compare-and-swap on one branch needs.

A merge that errors or is blocked (git failed, the integration checkout is dirty) is held
off with backoff, 1 s doubling to 60 s, instead of being retried in a tight loop that
would flood the log and the event table.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor

from controller.act.merge import MergeJob
from controller.core.plan import Action
from controller.model.outcomes import MergeOutcome

MERGE_HOLDOFF_S = (1.0, 60.0)  # after a merge that errored or was blocked: first, longest wait


class MergeWorker:
    def __init__(self, on_done: Callable[[Action], None]) -> None:
        self.on_done = on_done  # called from the worker thread when a merge finishes
        self.running: dict[str, tuple[Action, Future[MergeOutcome]]] = {}
        # task -> (consecutive merge errors, not before)
        self.holdoff: dict[str, tuple[int, float]] = {}
        self._pool: ThreadPoolExecutor | None = None

    def held_off(self, task: str, now: float) -> bool:
        return now < self.holdoff.get(task, (0, 0.0))[1]

    def submit(self, action: Action, job: MergeJob) -> None:
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="merge")
        future = self._pool.submit(job.run)
        self.running[action.task] = (action, future)
        future.add_done_callback(lambda _f: self.on_done(action))

    def collect(self, *, block: bool) -> list[tuple[Action, MergeOutcome]]:
        """Finished merges (all of them, waiting, when `block`), with their holdoffs updated."""
        done = []
        for task, (action, future) in list(self.running.items()):
            if not (block or future.done()):
                continue
            outcome = future.result()
            del self.running[task]
            if outcome.kind in ("error", "blocked"):
                errors = self.holdoff.get(task, (0, 0.0))[0] + 1
                first, longest = MERGE_HOLDOFF_S
                delay = min(longest, first * 2 ** (errors - 1))
                self.holdoff[task] = (errors, time.time() + delay)
            else:
                self.holdoff.pop(task, None)
            done.append((action, outcome))
        return done

    def deadlines(self, now: float) -> list[float]:
        """When held-off merges may be tried again (for the loop's next wake-up)."""
        return [until for _, until in self.holdoff.values() if until > now]

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
