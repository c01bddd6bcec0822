"""One reconcile pass: observe the world, record exits, plan (the pure planner), act.

No threads and no waiting here: a pass either merges in line (`sync_merges`, the one-shot
`reconcile`) or hands merges to the `MergeWorker` (the watch loop). `diff` calls the same
planner with the same observation, so what it shows is what a pass would do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from loguru import logger

from controller.act.executor import Executor
from controller.act.records import record_event, record_exits, record_rate_limits
from controller.act.runners.base import Runner
from controller.core.plan import MERGE, PRUNE, RETRY, SPAWN, STOP, Action, Plan, plan
from controller.core.ratelimit import policies
from controller.loop.merge_worker import MergeWorker
from controller.model.observed import Observed
from controller.model.outcomes import MergeOutcome
from controller.model.spec import Spec
from controller.observe.clock import local_timezone
from controller.observe.resources import ResourceSampler
from controller.observe.world import observe_spec
from controller.state.paths import StatePaths
from controller.state.store import Store

# stops free slots first, then spawns (the critical path), then merges and prunes
EXECUTION_ORDER = {STOP: 0, SPAWN: 1, RETRY: 1, MERGE: 2, PRUNE: 3}

Echo = Callable[[str], None]


class Reconciler:
    """The pass and the little it carries across passes (spec, flags, the sampler)."""

    def __init__(
        self,
        spec: Spec,
        store: Store,
        runner: Runner,
        merges: MergeWorker,
        *,
        echo: Echo | None = None,
        on_pass: Callable[[Plan, Observed], None] | None = None,
    ) -> None:
        self.spec = spec
        self.store = store
        self.runner = runner
        self.merges = merges
        self.echo: Echo = echo or (lambda line: None)
        self.on_pass = on_pass
        self.sampler = ResourceSampler(disk_path=spec.repo_path)
        self.runner_error: str | None = None
        self.draining = False  # nothing new starts
        self.force = False  # running agents are stopped now (stop --force)
        self.last_plan: Plan | None = None

    @property
    def paths(self) -> StatePaths:
        return StatePaths(self.spec.state_path)

    def executor(self) -> Executor:
        return Executor(self.spec, self.store, self.runner, self.paths)

    def observe(self, now: float) -> Observed:
        observed = observe_spec(
            self.spec, self.store, self.sampler, draining=self.draining, now=now
        )
        merging = frozenset(self.merges.running)
        return replace(observed, merging=merging, runner_error=self.runner_error)

    def run_pass(self, *, sync_merges: bool) -> Plan:
        now = time.time()
        self.runner_error = self.runner.poll(self.paths, self.store)
        observed = self.observe(now)
        verdicts = record_exits(self.spec, observed, self.store, now)
        if verdicts:  # the same verdicts the store now holds, without observing again
            attempts = dict(observed.attempts)
            for task, attempt in verdicts.items():
                attempts[task] = (*attempts[task][:-1], attempt)
            observed = replace(observed, attempts=attempts)
        if self.force:
            observed = replace(observed, draining=True)
        result = plan(self.spec, observed, now, tz=local_timezone())
        limits = policies(self.spec)
        record_rate_limits(self.store, observed.rate_limits, result.rate_limits, limits, now)
        for action in sorted(result.actions, key=lambda a: EXECUTION_ORDER[a.kind]):
            self.carry_out(action, observed, sync_merges)
        if self.force:
            self.force_stop(observed)
        self.store.set_meta("last_pass", str(time.time()))
        self.last_plan = result
        if self.on_pass:
            self.on_pass(result, observed)
        return result

    def carry_out(self, action: Action, observed: Observed, sync_merges: bool) -> None:
        executor = self.executor()
        try:
            if action.kind == MERGE and not sync_merges:
                if not self.merges.held_off(action.task, time.time()):
                    self.merges.submit(action, executor.merge_job(action, observed))
                    self.echo(f"> merge  {action.task}: verifying and merging")
            else:
                executor.apply(action, observed)
        except Exception as exc:  # one failed action must not stop the loop
            logger.exception(f"{action.kind} {action.task} failed")
            record_event(self.store, "action_error", f"{action.kind} failed: {exc}", action.task)
            self.echo(f"! {action.kind} {action.task}: {exc}")
        for line in executor.echo:
            self.echo(line)

    def record_merges(self, finished: list[tuple[Action, MergeOutcome]]) -> None:
        """Record the verdicts of merges the worker finished."""
        for action, outcome in finished:
            executor = self.executor()
            executor.record_merge(action, outcome)
            for line in executor.echo:
                self.echo(line)

    def force_stop(self, observed: Observed) -> None:
        """stop --force: stop every running agent now, keeping its uncommitted work."""
        executor = self.executor()
        for task, attempts in observed.attempts.items():
            if attempts and attempts[-1].alive:
                executor.stop(Action(STOP, task, "stop --force", outcome="stopped"), observed)
                wt = observed.worktrees.get(task)
                if wt is not None:
                    executor.snapshot(task, attempts[-1].number, Path(wt.path))
        for line in executor.echo:
            self.echo(line)
