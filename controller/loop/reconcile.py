"""One reconcile pass: observe the world, expand the backlog (specBacklog), record exits,
plan (the pure planner), act, then the bookkeeping after acting: spawn-parallel requests of
tasks that started are cleared, `exhausted` and `converged` recorded, notifications queued.

No waiting here: a pass either merges in line (`sync_merges`, the one-shot `reconcile`) or
hands merges to the `MergeWorker` (the watch loop), and notifications run in the
`Notifier`'s thread. `diff` calls the same planner with the same observation, so what it
shows is what a pass would do.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from loguru import logger

from controller.act.executor import Executor
from controller.act.notify import Notifier
from controller.act.records import (
    record_converged,
    record_event,
    record_exhausted,
    record_exits,
)
from controller.act.runners.base import Runner
from controller.core.plan import MERGE, PRUNE, RETRY, SPAWN, STOP, Action, Plan, plan
from controller.core.specbacklog import expand
from controller.loop.merge_worker import MergeWorker
from controller.model.observed import Observed
from controller.model.outcomes import MergeOutcome
from controller.model.spec import Spec, spec_generation
from controller.observe.clock import local_timezone
from controller.observe.resources import ResourceSampler
from controller.observe.world import observe_spec
from controller.state.paths import StatePaths
from controller.state.store import Store

# stops free slots first, then spawns (the critical path), then merges and prunes
EXECUTION_ORDER = {STOP: 0, SPAWN: 1, RETRY: 1, MERGE: 2, PRUNE: 3}
# phases of a task whose agent has started (or finished): a request for it is done
STARTED_PHASES = frozenset({"running", "starting", "stopping", "verifying", "merging", "merged"})

Echo = Callable[[str], None]


def running_agents(observed: Observed) -> list[str]:
    """`t1 (attempt 2, pid 123)` for each task whose latest attempt is alive."""
    found = []
    for task, attempts in sorted(observed.attempts.items()):
        last = attempts[-1] if attempts else None
        if last is not None and last.alive:
            ident = f"pid {last.pid}" if last.pid else (last.handle or "no pid")
            found.append(f"{task} (attempt {last.number}, {ident})")
    return found


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
        self.pass_spec = spec  # the spec of the last pass, with its generated tasks
        self.notifier = Notifier()
        newest = store.events(limit=1, newest=True)
        self.notifier.start_after(newest[-1].id if newest else 0)
        self.exhausted_seen: set[tuple[str, int]] = set()
        self.launched: list[str] = []  # tasks whose agent started in the current pass
        self.failures: list[str] = []  # actions of the current pass that could not be done
        self.last_observed: Observed | None = None
        self.first_pass = True
        self._generation: tuple[Spec | None, str] = (None, "")

    @property
    def paths(self) -> StatePaths:
        return StatePaths(self.spec.state_path)

    def executor(self) -> Executor:
        return Executor(self.pass_spec, self.store, self.runner, self.paths)

    def observe(self, now: float) -> Observed:
        observed = observe_spec(
            self.spec, self.store, self.sampler, draining=self.draining, now=now
        )
        merging = frozenset(self.merges.running)
        return replace(observed, merging=merging, runner_error=self.runner_error)

    def run_pass(self, *, sync_merges: bool, only: frozenset[str] | None = None) -> Plan:
        """One pass. `only`: carry out only the actions on these tasks (spawn-parallel
        without a running controller starts what it was asked for, and nothing else)."""
        now = time.time()
        self.runner_error = self.runner.poll(self.paths, self.store)
        observed = self.observe(now)
        if self.first_pass:
            self.first_pass = False
            self.adopt(observed)
        spec = self.pass_spec = expand(self.spec, observed)
        verdicts = record_exits(spec, observed, self.store, now)
        if verdicts:  # the same verdicts the store now holds, without observing again
            attempts = dict(observed.attempts)
            for task, attempt in verdicts.items():
                attempts[task] = (*attempts[task][:-1], attempt)
            observed = replace(observed, attempts=attempts)
        if self.force:
            observed = replace(observed, draining=True)
        result = plan(spec, observed, now, tz=local_timezone())
        self.launched, self.failures = [], []
        for action in sorted(result.actions, key=lambda a: EXECUTION_ORDER[a.kind]):
            if only is None or action.task in only:
                self.carry_out(action, observed, sync_merges)
        if self.force:
            self.force_stop(observed)
        self.after_pass(spec, result, observed)
        self.store.set_meta("last_pass", str(time.time()))
        self.last_plan, self.last_observed = result, observed
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
            self.failures.append(f"{action.kind} {action.task}: {exc}")
        self.launched += executor.launched
        self.failures += executor.failed
        for line in executor.echo:
            self.echo(line)

    def adopt(self, observed: Observed) -> None:
        """At the first pass: say which agents a previous controller left running (this one
        watches them from now on, as if it had started them)."""
        alive = running_agents(observed)
        if not alive:
            return
        n = len(alive)
        message = f"adopted {n} running agent{'s' if n != 1 else ''}: {', '.join(alive)}"
        record_event(self.store, "adopted", message, data={"agents": alive})
        self.echo(f"~ adopt  {message}")

    # -- after acting ------------------------------------------------------------------------
    def after_pass(self, spec: Spec, result: Plan, observed: Observed) -> None:
        self.clear_requests(spec, result, observed)
        record_exhausted(self.store, result, observed, self.exhausted_seen)
        record_converged(self.store, spec, result, self.generation())
        self.notify()

    def generation(self) -> str:
        """The spec's generation, computed once per spec (a hash of the whole spec)."""
        if self._generation[0] is not self.spec:
            self._generation = (self.spec, spec_generation(self.spec))
        return self._generation[1]

    def clear_requests(self, spec: Spec, result: Plan, observed: Observed) -> None:
        """A spawn-parallel request is done once its task started (in this pass, or by
        itself: it was running, merging or merged already), or when it left the spec."""
        if not observed.requested:
            return
        ids = {t.id for t in spec.backlog}
        acted = {a.task for a in result.actions if a.kind in (SPAWN, RETRY)}
        for task in observed.requested:
            phase = result.phases.get(task)
            started = task in self.launched or (task not in acted and phase in STARTED_PHASES)
            if (started or task not in ids) and self.store.clear_request(task):
                why = "started" if started else "no longer in the spec"
                record_event(self.store, "request_done", f"spawn-parallel request {why}", task)

    def notify(self) -> None:
        """Queue notifications for the events recorded since the last call (never waits)."""
        for job, error in self.notifier.drain_failures():
            message = f"notification {job.name!r} of event {job.event_id} not sent: {error}"
            record_event(self.store, "notify_failed", message, data={"event": job.event_id})
        since = self.notifier.last_id or 0
        events = self.store.events(since_id=since, limit=500)
        self.notifier.poll(self.spec.notify, events, str(self.spec.source), self.spec.repo_path)

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
