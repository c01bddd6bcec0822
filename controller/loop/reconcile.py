"""One reconcile pass: observe the world, expand the backlog (specBacklog), record exits,
plan (the pure planner), act, then the bookkeeping after acting: spawn-parallel requests of
tasks that started are cleared, `exhausted` and `converged` recorded, notifications queued,
the early conflict checks that are due run.

No waiting here: a pass either lands merges in line (no verify gate: a few git calls; or the
one-shot `reconcile`) or hands the next merge train to the `MergeWorker` (the watch loop
with a verify gate), and notifications run in the `Notifier`'s thread. Landings made in line
are applied to the pass's observation in memory and the planner is asked again, so that what
they unblock starts in the same pass. `diff` calls the same planner with the same
observation, so what it shows is what a pass would do -- except that in watch mode prunes
wait for a pass that starts and lands nothing.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from loguru import logger

from controller import git
from controller.act import leftovers
from controller.act.executor import ActionFailed, Executor, brief
from controller.act.notify import Notifier
from controller.act.records import (
    record_converged,
    record_event,
    record_exhausted,
    record_exits,
    record_rate_limits,
)
from controller.act.runners.base import Runner
from controller.act.train import outcomes_of
from controller.core.conflicts import checks_due
from controller.core.outcomes import Landed, with_verdicts
from controller.core.plan import (
    HOLDOFF_KIND,
    MERGE,
    PRUNE,
    RETRY,
    SPAWN,
    STOP,
    Action,
    Plan,
    plan,
)
from controller.core.ratelimit import policies
from controller.core.specbacklog import expand
from controller.loop.merge_worker import MergeWorker
from controller.model.observed import Observed
from controller.model.outcomes import MergeOutcome
from controller.model.spec import Spec, spec_generation
from controller.observe.clock import local_timezone
from controller.observe.conflicts import check_conflicts
from controller.observe.resources import IdleLoad, publish
from controller.observe.world import observe_spec
from controller.state import holdoffs
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
        self.sampler = IdleLoad(disk_path=spec.repo_path)  # fed by the watch loop's waits
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
        self.merged_inline = 0  # merge outcomes the last pass produced in line

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
        publish(self.store, observed.resources, now)  # what `diff` and `status` plan with
        verdicts = record_exits(spec, observed, self.store, now)
        if verdicts:  # the same verdicts the store now holds, without observing again
            attempts = dict(observed.attempts)
            for task, attempt in verdicts.items():
                attempts[task] = (*attempts[task][:-1], attempt)
            observed = replace(observed, attempts=attempts)
        if self.force:
            observed = replace(observed, draining=True)
        tz = local_timezone()
        result = plan(spec, observed, now, tz=tz)
        self.launched, self.failures = [], []
        self.merged_inline = 0

        def wanted(action: Action) -> bool:
            return only is None or action.task in only

        merges = [a for a in result.actions if a.kind == MERGE and wanted(a)]
        if merges and not spec.verify:
            # no verify gate: landing takes a few git calls, so land now and start what the
            # landings unblock in this same pass, from the new tip
            landed = self.merge_now(merges, observed)
            if landed:
                observed = with_verdicts(observed, landed)
                result = plan(spec, observed, now, tz=tz)
        limits = policies(spec)
        record_rate_limits(self.store, observed.rate_limits, result.rate_limits, limits, now)
        rest = [a for a in result.actions if a.kind != MERGE and wanted(a)]
        if not sync_merges and (self.merged_inline or any(a.kind in (SPAWN, RETRY) for a in rest)):
            # pruning takes ~10 git calls a worktree: it waits for a pass that starts and
            # lands nothing, so that this one ends (and notices the next exit) sooner
            rest = [a for a in rest if a.kind != PRUNE]
        self.carry_out_all(rest, observed)
        if merges and spec.verify:
            if sync_merges:
                self.merge_now(merges, observed)
            else:
                self.start_train(merges, observed)
        if self.force:
            self.force_stop(observed)
        self.check_conflicts(result, observed, now)
        self.after_pass(spec, result, observed)
        self.store.set_meta("last_pass", str(time.time()))
        self.last_plan, self.last_observed = result, observed
        if self.on_pass:
            self.on_pass(result, observed)
        return result

    # -- actions ---------------------------------------------------------------------------
    def carry_out_all(self, actions: list[Action], observed: Observed) -> None:
        """Stops, then spawns and retries (together, so that their worktrees are made side
        by side), then prunes."""
        ordered = sorted(actions, key=lambda a: EXECUTION_ORDER[a.kind])
        starts = [a for a in ordered if a.kind in (SPAWN, RETRY)]
        for action in ordered:
            if action.kind not in (SPAWN, RETRY):
                self.guarded([action], lambda ex, a=action: ex.apply(a, observed), observed)
            elif action is starts[0]:
                self.guarded(starts, lambda ex: ex.spawn_many(starts, observed), observed)

    def guarded(
        self, actions: list[Action], work: Callable[[Executor], None], observed: Observed
    ) -> None:
        """Run `work` on a fresh executor; an error is recorded and the actions held off,
        never raised: one failed action must not stop the loop."""
        executor = self.executor()
        try:
            work(executor)
        except ActionFailed as exc:  # recorded by the executor already
            for action in actions:
                self.action_failed(
                    HOLDOFF_KIND.get(action.kind, action.kind), action.task, str(exc)
                )
        except Exception as exc:  # one failed action must not stop the loop
            for action in actions:
                logger.exception(f"{action.kind} {action.task} failed")
                record_event(
                    self.store, "action_error", f"{action.kind} failed: {exc}", action.task
                )
                self.echo(f"! {action.kind} {action.task}: {exc}")
                self.failures.append(f"{action.kind} {action.task}: {exc}")
                self.action_failed(
                    HOLDOFF_KIND.get(action.kind, action.kind), action.task, brief(exc)
                )
        else:
            for action in actions:
                kind = HOLDOFF_KIND.get(action.kind, action.kind)
                if (kind, action.task) in observed.holdoffs and kind != MERGE:
                    holdoffs.succeeded(self.store, kind, action.task)
        self.launched += executor.launched
        self.failures += executor.failed
        for line in executor.echo:
            self.echo(line)

    def action_failed(self, kind: str, task: str, reason: str) -> None:
        """Hold the failed action off (1 s doubling to 60 s, published for `status`), after
        clearing the git locks a killed controller may have left; name the ones still held."""
        report = leftovers.clear_stale_locks(self.spec, self.paths, self.store)
        if report.removed:
            self.echo(f"~ locks  removed {len(report.removed)} stale git lock file(s)")
        if report.held:
            reason = f"{reason} ({report.describe_held()})"
        held = holdoffs.failed(self.store, kind, task, reason, time.time())
        if held.failures > 1:
            logger.info(f"{kind} {task} held off after {held.failures} failures")

    # -- merges ----------------------------------------------------------------------------
    def merge_now(self, merges: list[Action], observed: Observed) -> dict[str, Landed]:
        """Run merge trains in this thread until every merge has an outcome; the verdicts
        recorded, by task."""
        pending = [a for a in merges if not self.merges.held_off(a.task, time.time())]
        recorded: dict[str, Landed] = {}
        predictions = True
        while pending:
            executor = self.executor()
            try:
                outcomes = outcomes_of(
                    executor.train_job(pending, observed, predictions=predictions)
                )
            except Exception as exc:  # one failed merge must not stop the loop
                logger.exception("merge train failed")
                record_event(self.store, "action_error", f"merge failed: {exc}")
                self.echo(f"! merge  {', '.join(a.task for a in pending)}: {exc}")
                break
            by_task = {a.task: a for a in pending}
            for task, outcome in outcomes.items():
                self.merges.note(task, outcome)
                verdict = executor.record_merge(by_task[task], outcome)
                self.hold_off_merge(task, outcome)
                if verdict is not None:
                    recorded[task] = (by_task[task].attempt or 0, verdict, outcome)
            for line in executor.echo:
                self.echo(line)
            self.failures += executor.failed
            self.merged_inline += len(outcomes)
            requeued = {t for t, o in outcomes.items() if o.kind == "requeued"}
            if not outcomes or requeued == set(outcomes):
                break
            pending = [a for a in pending if a.task not in outcomes or a.task in requeued]
            predictions = False  # they were made against the tip before these landings
        return recorded

    def start_train(self, merges: list[Action], observed: Observed) -> None:
        """Hand the next train to the merge worker, unless one is under way."""
        if self.merges.busy:
            return
        pending = [a for a in merges if not self.merges.held_off(a.task, time.time())]
        if not pending:
            return
        job = self.executor().train_job(pending, observed)
        self.merges.submit(pending, job)
        verify = " ".join(self.spec.verify or [])
        self.echo(f"> merge  {', '.join(job.tasks)}: verifying and merging (verify: {verify})")

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
        """Record the verdicts of merges the worker finished (an error or a block also
        holds the next try off, published like any failing action's)."""
        for action, outcome in finished:
            executor = self.executor()
            executor.record_merge(action, outcome)
            for line in executor.echo:
                self.echo(line)
            self.hold_off_merge(action.task, outcome)

    def hold_off_merge(self, task: str, outcome: MergeOutcome) -> None:
        """An error or a block holds the next try off, published like any failing action's."""
        if outcome.kind in ("error", "blocked"):
            self.action_failed(MERGE, task, outcome.message)
        else:
            holdoffs.succeeded(self.store, MERGE, task)

    def check_conflicts(self, result: Plan, observed: Observed, now: float) -> None:
        """The early conflict checks due this pass (`core.conflicts`), stored for every
        reader; a failure costs only the prediction."""
        tip = observed.integration_sha
        due = checks_due(observed, result.phases, now, self.spec.poll_interval)
        if not due or tip is None:
            return
        try:
            self.store.set_conflict_checks(check_conflicts(self.spec.repo_path, tip, due, now))
        except (git.GitError, OSError, sqlite3.Error) as exc:
            logger.warning(f"early conflict check failed: {exc}")

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
