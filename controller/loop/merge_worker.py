"""The merge worker: the merge train runs on one background thread, so that a long verify
gate never stalls spawning; one train at a time, as the compare-and-swap on one branch needs.

A train reports each task's outcome as soon as it is known (a conflict while the chain is
built, a prefix landed, the culprit found); every report wakes the loop (`on_done`), which
collects and records it, so a landing unblocks its dependants while the rest still verifies.
A task stays in `running` until its outcome is collected: the planner shows it verifying,
and no new train starts until the last one is fully collected.

A merge that errors or is blocked (git failed, the integration checkout is dirty) is held
off with backoff, 1 s doubling to 60 s, instead of being retried in a tight loop that
would flood the log and the event table.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor

from controller.act.train import TrainJob
from controller.core.plan import Action
from controller.model.outcomes import MergeOutcome

MERGE_HOLDOFF_S = (1.0, 60.0)  # after a merge that errored or was blocked: first, longest wait


class MergeWorker:
    def __init__(self, on_done: Callable[[Action], None]) -> None:
        self.on_done = on_done  # called from the worker thread when an outcome is known
        self.running: dict[str, Action] = {}  # tasks of the train whose outcome is uncollected
        # task -> (consecutive merge errors, not before)
        self.holdoff: dict[str, tuple[int, float]] = {}
        self._pool: ThreadPoolExecutor | None = None
        self._future: Future[None] | None = None
        self._lock = threading.Lock()
        self._done: list[tuple[Action, MergeOutcome]] = []

    @property
    def busy(self) -> bool:
        """A train is under way, or some of its outcomes are not collected yet."""
        return bool(self.running)

    def held_off(self, task: str, now: float) -> bool:
        return now < self.holdoff.get(task, (0, 0.0))[1]

    def submit(self, actions: Sequence[Action], job: TrainJob) -> None:
        """Run `job` (the train of `actions`) on the worker thread."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="merge")
        by_task = {a.task: a for a in actions if a.task in job.tasks}
        self.running.update(by_task)

        def report(task: str, outcome: MergeOutcome) -> None:
            action = by_task[task]
            with self._lock:
                self._done.append((action, outcome))
            self.on_done(action)

        self._future = self._pool.submit(job.run, report)

    def collect(self, *, block: bool) -> list[tuple[Action, MergeOutcome]]:
        """Outcomes reported so far (all of them, waiting for the train, when `block`), with
        their holdoffs updated."""
        if block and self._future is not None:
            self._future.result()
        with self._lock:
            done, self._done = self._done, []
        for action, outcome in done:
            self.running.pop(action.task, None)
            self.note(action.task, outcome)
        return done

    def note(self, task: str, outcome: MergeOutcome) -> None:
        """Hold a task off after an error or a block; clear its holdoff otherwise."""
        if outcome.kind in ("error", "blocked"):
            errors = self.holdoff.get(task, (0, 0.0))[0] + 1
            first, longest = MERGE_HOLDOFF_S
            delay = min(longest, first * 2 ** (errors - 1))
            self.holdoff[task] = (errors, time.time() + delay)
        elif outcome.kind != "requeued":
            self.holdoff.pop(task, None)

    def deadlines(self, now: float) -> list[float]:
        """When held-off merges may be tried again (for the loop's next wake-up)."""
        return [until for _, until in self.holdoff.values() if until > now]

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
