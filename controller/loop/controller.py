"""The reconcile loop: one pass (`reconcile`) or forever (`reconcile --watch`).

A pass is: observe the world, record exits, plan (the pure planner), carry out the actions.
In watch mode the loop wakes on what matters, not on a timer alone: spec and roadmap edits
(watchfiles on their folders, since editors save by rename), agent exits (the shim's exit
records appear in `state/runs/`), stop requests, merge completions, the nearest backoff or
timeout deadline, and every `pollInterval` as a resync. Merges run on one worker thread so a
long verify gate never stalls spawning; merges stay serial, as the integration branch needs.

An invalid spec edit is logged with its located problems and the last valid spec stays in
force. SIGINT/SIGTERM and `orchestrator stop` drain: nothing new starts, running agents
finish and merge, then the loop exits. `stop --force` stops agents now (work snapshotted).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import queue
import signal
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from loguru import logger

from controller.act.executor import Executor, MergeJob
from controller.act.records import record_event, record_exits
from controller.act.runners.base import Runner
from controller.act.runners.local import LocalRunner
from controller.core.plan import MERGE, PRUNE, RETRY, SPAWN, STOP, Action, Plan, plan
from controller.git import ops as gitops
from controller.git.queries import GitError as ObservedGitError
from controller.model.observed import Observed
from controller.model.problems import SpecError
from controller.model.spec import Spec
from controller.observe.resources import ResourceSampler
from controller.specfile.load import load_spec
from controller.specfile.sources import roadmap_path
from controller.state.lock import ControllerLock
from controller.state.paths import StatePaths
from controller.state.store import Store

MAX_BURST = 50  # passes in a row without waiting, while each pass still acts
# what a pass may hit in a hostile world without the controller being wrong: a full disk or a
# locked database (sqlite3/OSError), a repository briefly unreadable (git errors)
PASS_ERRORS = (sqlite3.Error, OSError, gitops.GitError, ObservedGitError)
MERGE_HOLDOFF_S = (1.0, 60.0)  # after a merge that errored or was blocked: first, longest wait
# watchfiles' polling step for exit records and stop requests: 50 ms keeps an idle
# controller well under 1% of a core while adding at most ~50 ms to noticing an exit
WATCH_STEP_MS = 50
EXECUTION_ORDER = {STOP: 0, SPAWN: 1, RETRY: 1, MERGE: 2, PRUNE: 3}


@dataclass(frozen=True)
class StopRequest:
    force: bool


def write_stop_request(paths: StatePaths, force: bool) -> None:
    paths.root.mkdir(parents=True, exist_ok=True)
    tmp = paths.stop_request.with_suffix(".tmp")
    tmp.write_text("force" if force else "graceful")
    os.replace(tmp, paths.stop_request)


def read_stop_request(paths: StatePaths) -> StopRequest | None:
    try:
        text = paths.stop_request.read_text().strip()
    except OSError:
        return None
    return StopRequest(force=text == "force")


def make_runner(spec: Spec) -> Runner:
    """The runner the spec asks for (the local one unless `runner.kind` says otherwise)."""
    if spec.runner.kind == "ray":
        from controller.act.runners.ray import RayRunner

        return RayRunner(
            spec.runner.address, spec.runner.remote, spec.repo_path, python=spec.runner.python
        )
    return LocalRunner()


def spec_generation(spec: Spec) -> str:
    """A short fingerprint of the desired state the controller acts on."""
    digest = hashlib.sha256(spec.model_dump_json(by_alias=True).encode()).hexdigest()
    return digest[:12]


def setup_logging(paths: StatePaths) -> int:
    paths.logs.mkdir(parents=True, exist_ok=True)
    return logger.add(
        paths.controller_log,
        rotation="20 MB",
        retention=5,
        enqueue=False,
        format="{time:YYYY-MM-DD HH:mm:ss.SSS} {level:<7} {message}",
    )


class Controller:
    """Holds the current valid spec and the few things a pass needs across passes."""

    def __init__(
        self,
        spec_file: Path,
        spec: Spec,
        *,
        repo_override: Path | None = None,
        runner: Runner | None = None,
        echo: Callable[[str], None] | None = None,
        on_pass: Callable[[Plan, Observed], None] | None = None,
    ):
        self.spec_file = spec_file
        self.repo_override = repo_override
        self.spec = spec
        self.paths = StatePaths(spec.state_path)
        self.paths.ensure()
        self.runner: Runner = runner or make_runner(spec)
        self.runner_error: str | None = None
        self.echo = echo or (lambda line: None)
        self.on_pass = on_pass
        self.sampler = ResourceSampler(disk_path=spec.repo_path)
        self.store = Store.open(self.paths.db)
        self.lock = ControllerLock(self.paths.lock)
        self.draining = False
        self.force = False
        self.wake: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.merging: dict[str, tuple[Action, Future[Any]]] = {}
        # task -> (consecutive merge errors, not before): a merge that keeps failing is
        # retried with backoff, not in a tight loop that floods the log and the event table
        self.merge_holdoff: dict[str, tuple[int, float]] = {}
        self.pool: ThreadPoolExecutor | None = None
        self.log_sink: int | None = None
        self.last_plan: Plan | None = None

    # -- lifecycle -------------------------------------------------------------------------
    def __enter__(self) -> Controller:
        self.lock.acquire()
        self.log_sink = setup_logging(self.paths)
        self._exclude_state_from_repo()
        self._clear_scratch()
        self.store.set_meta("pid", str(os.getpid()))
        self.store.set_meta("started_at", str(time.time()))
        self.store.set_meta("spec_file", str(self.spec_file.resolve()))
        self.store.set_meta("spec_generation", spec_generation(self.spec))
        record_event(self.store, "controller_start", f"controller started (pid {os.getpid()})")
        self.paths.stop_request.unlink(missing_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True)
        self._collect_merges(block=False)
        record_event(self.store, "controller_stop", "controller stopped")
        self.store.set_meta("pid", "")
        self.paths.stop_request.unlink(missing_ok=True)
        if self.log_sink is not None:
            logger.remove(self.log_sink)
        self.store.close()
        self.lock.release()

    def _repair_registrations(self) -> None:
        """Worktree registrations a controller killed inside `git worktree add` left broken."""
        try:
            names_ = gitops.repair_worktree_registrations(self.spec.repo_path)
        except (gitops.GitError, OSError) as exc:
            logger.warning(f"could not check worktree registrations: {exc}")
            return
        if names_:
            record_event(self.store, "worktrees_repaired", f"half-written: {', '.join(names_)}")

    def _clear_scratch(self) -> None:
        """Verify worktrees of a controller killed mid-merge: no merge of ours runs yet."""
        self._repair_registrations()
        try:
            n = gitops.clear_scratch(self.spec.repo_path, self.paths.scratch)
        except (gitops.GitError, OSError) as exc:
            logger.warning(f"could not clear {self.paths.scratch}: {exc}")
            return
        if n:
            record_event(self.store, "scratch_cleared", f"{n} leftover verify worktree(s) removed")

    def _exclude_state_from_repo(self) -> None:
        """Keep state/ (and worktrees under it) out of the repo's `git status`."""
        repo = self.spec.repo_path
        for path in {self.paths.root, self.spec.worktree_root_path}:
            try:
                rel = path.resolve().relative_to(repo)
            except ValueError:
                continue
            try:
                exclude = Path(gitops.git(repo, "rev-parse", "--git-path", "info/exclude").strip())
                exclude = exclude if exclude.is_absolute() else repo / exclude
                line = f"/{rel.as_posix()}/"
                text = exclude.read_text() if exclude.exists() else ""
                if line not in text.splitlines():
                    exclude.parent.mkdir(parents=True, exist_ok=True)
                    exclude.write_text(
                        text + ("" if text.endswith("\n") or not text else "\n") + line + "\n"
                    )
            except (gitops.GitError, OSError):
                continue

    # -- one pass --------------------------------------------------------------------------
    def observe(self, now: float) -> Observed:
        from controller.observe.world import observe_spec

        observed = observe_spec(
            self.spec, self.store, self.sampler, draining=self.draining, now=now
        )
        return replace(observed, merging=frozenset(self.merging), runner_error=self.runner_error)

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
        result = plan(self.spec, observed, now)
        # stops free slots first, then spawns (the critical path), then merges and prunes
        for action in sorted(result.actions, key=lambda a: EXECUTION_ORDER[a.kind]):
            self._carry_out(action, observed, sync_merges)
        if self.force:
            self._force_stop(observed)
        self.store.set_meta("last_pass", str(time.time()))
        self.last_plan = result
        if self.on_pass:
            self.on_pass(result, observed)
        return result

    def _carry_out(self, action: Action, observed: Observed, sync_merges: bool) -> None:
        executor = Executor(self.spec, self.store, self.runner, self.paths)
        try:
            if action.kind == MERGE and not sync_merges:
                if time.time() < self.merge_holdoff.get(action.task, (0, 0.0))[1]:
                    return
                self._submit_merge(executor.merge_job(action, observed))
            else:
                executor.apply(action, observed)
        except Exception as exc:  # one failed action must not stop the loop
            logger.exception(f"{action.kind} {action.task} failed")
            record_event(self.store, "action_error", f"{action.kind} failed: {exc}", action.task)
            self.echo(f"! {action.kind} {action.task}: {exc}")
        for line in executor.echo:
            self.echo(line)

    def _submit_merge(self, job: MergeJob) -> None:
        if self.pool is None:
            self.pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="merge")
        future = self.pool.submit(job.run)
        self.merging[job.action.task] = (job.action, future)
        future.add_done_callback(lambda _f, a=job.action: self.wake.put(("merged", a)))
        self.echo(f"> merge  {job.action.task}: verifying and merging")

    def _collect_merges(self, *, block: bool) -> bool:
        done = False
        for task, (action, future) in list(self.merging.items()):
            if not (block or future.done()):
                continue
            outcome = future.result()
            del self.merging[task]
            if outcome.kind in ("error", "blocked"):
                errors = self.merge_holdoff.get(task, (0, 0.0))[0] + 1
                first, longest = MERGE_HOLDOFF_S
                delay = min(longest, first * 2 ** (errors - 1))
                self.merge_holdoff[task] = (errors, time.time() + delay)
            else:
                self.merge_holdoff.pop(task, None)
            executor = Executor(self.spec, self.store, self.runner, self.paths)
            executor.record_merge(action, outcome)
            for line in executor.echo:
                self.echo(line)
            done = True
        return done

    def _force_stop(self, observed: Observed) -> None:
        executor = Executor(self.spec, self.store, self.runner, self.paths)
        for task, attempts in observed.attempts.items():
            if attempts and attempts[-1].alive:
                executor.stop(Action(STOP, task, "stop --force", outcome="stopped"), observed)
                wt = observed.worktrees.get(task)
                if wt is not None:
                    ref = gitops.snapshot(
                        self.spec.repo_path, Path(wt.path), task, attempts[-1].number
                    )
                    if ref:
                        record_event(self.store, "snapshot", f"work kept in {ref}", task)
        for line in executor.echo:
            self.echo(line)

    # -- once ------------------------------------------------------------------------------
    def reconcile_once(self) -> Plan:
        return self.run_pass(sync_merges=True)

    # -- watch -----------------------------------------------------------------------------
    def reload_spec(self) -> None:
        try:
            spec = load_spec(self.spec_file, repo=self.repo_override)
        except SpecError as exc:
            for p in exc.problems:
                logger.warning(str(p))
            record_event(
                self.store,
                "spec_invalid",
                f"{len(exc.problems)} problem(s); keeping the last valid spec",
                data={"problems": [p.as_dict() for p in exc.problems]},
            )
            self.echo(f"! spec   invalid, last valid spec stays in force: {exc.problems[0]}")
            return
        if spec_generation(spec) == spec_generation(self.spec):
            return
        if spec.state_path != self.spec.state_path:
            self.echo("! spec   stateDir changed: restart the controller to move state; ignored")
            return
        self.spec = spec
        generation = spec_generation(spec)
        self.store.set_meta("spec_generation", generation)
        record_event(self.store, "spec_reloaded", f"spec generation {generation}")
        self.echo(f"~ spec   reloaded ({len(spec.backlog)} tasks, generation {generation})")

    def watch_paths(self) -> tuple[list[Path], list[Path]]:
        """(folders watched shallowly for edits, folders watched recursively for exits)."""
        shallow = {self.spec_file.resolve().parent}
        road = roadmap_path(self.spec)
        if road is not None:
            shallow.add(road.parent)
        self.paths.runs.mkdir(parents=True, exist_ok=True)
        return sorted(shallow), [self.paths.runs, self.paths.root]

    def _start_watchers(self, stop: threading.Event) -> None:
        from watchfiles import watch

        shallow, deep = self.watch_paths()
        interesting = {self.spec_file.resolve()}
        road = roadmap_path(self.spec)
        if road is not None:
            interesting.add(road)

        def edits() -> None:
            for changes in watch(*shallow, recursive=False, stop_event=stop, debounce=150, step=30):
                if any(Path(p).resolve() in interesting for _, p in changes):
                    self.wake.put(("spec", None))

        def runs() -> None:
            for changes in watch(deep[0], stop_event=stop, debounce=30, step=WATCH_STEP_MS):
                if any(p.endswith(".exit.json") for _, p in changes):
                    self.wake.put(("exit", None))

        def control() -> None:
            for changes in watch(
                deep[1], recursive=False, stop_event=stop, debounce=30, step=WATCH_STEP_MS
            ):
                if any(Path(p).name == self.paths.stop_request.name for _, p in changes):
                    self.wake.put(("stop", None))

        for fn in (edits, runs, control):
            threading.Thread(target=fn, name=f"watch-{fn.__name__}", daemon=True).start()

    def _next_wake(self, result: Plan, now: float) -> float:
        deadlines = [now + self.spec.poll_interval]
        deadlines += [until + 0.01 for _, until in self.merge_holdoff.values() if until > now]
        if self.runner.poll_interval_s is not None and result.running:
            deadlines.append(now + self.runner.poll_interval_s)
        deadlines += [w.until + 0.01 for w in result.waits if w.until]
        return max(0.05, min(deadlines) - now)

    def _handle_stop(self, force: bool) -> None:
        if not self.draining:
            self.echo(
                "! stop   draining: no new agents; waiting for running ones to finish and merge"
            )
            record_event(self.store, "stop_requested", "force" if force else "graceful")
        self.draining = True
        self.force = self.force or force

    def watch(self, *, max_seconds: float | None = None) -> int:
        stop_watchers = threading.Event()
        self._start_watchers(stop_watchers)
        signals = self._install_signals()
        started = time.monotonic()
        burst = failures = 0
        try:
            while True:
                try:
                    request = read_stop_request(self.paths)
                    if request is not None:
                        self._handle_stop(request.force)
                    self._collect_merges(block=False)
                    result = self.run_pass(sync_merges=False)
                    failures = 0
                    if self.draining and self._idle(result):
                        self.echo("stopped: nothing running, nothing left to merge")
                        return 0
                    if max_seconds is not None and time.monotonic() - started > max_seconds:
                        return 0
                    acted = bool(result.actions) and any(a.kind != MERGE for a in result.actions)
                    if acted and burst < MAX_BURST:
                        burst += 1
                        continue
                    burst = 0
                    self._wait(self._next_wake(result, time.time()))
                except PASS_ERRORS as exc:  # e.g. the disk is full: keep trying, with backoff
                    failures += 1
                    delay = min(self.spec.poll_interval, 0.5 * 2 ** min(failures, 8))
                    logger.error(f"pass failed ({exc}); trying again in {delay:.1f}s")
                    self._repair_registrations()
                    self.echo(f"! pass   failed: {exc}; trying again in {delay:.1f}s")
                    with contextlib.suppress(*PASS_ERRORS):
                        self._wait(delay)
        finally:
            stop_watchers.set()
            for sig, previous in signals.items():
                signal.signal(sig, previous)

    def _idle(self, result: Plan) -> bool:
        busy = {"running", "starting", "verifying", "merging", "stopping"}
        return (
            not self.merging
            and not any(p in busy for p in result.phases.values())
            and result.running == 0
        )

    def _wait(self, timeout: float) -> None:
        try:
            kind, payload = self.wake.get(timeout=timeout)
        except queue.Empty:
            return
        items = [(kind, payload)]
        while True:  # drain what piled up: one pass serves them all
            try:
                items.append(self.wake.get_nowait())
            except queue.Empty:
                break
        for kind, _ in items:
            if kind == "spec":
                self.reload_spec()
            elif kind == "signal":
                self._handle_stop(force=False)

    def _install_signals(self) -> dict[int, Any]:
        previous: dict[int, Any] = {}
        if threading.current_thread() is not threading.main_thread():
            return previous
        interrupted = {"count": 0}

        def handler(signum: int, _frame: object) -> None:
            interrupted["count"] += 1
            if interrupted["count"] > 1:
                raise KeyboardInterrupt  # second Ctrl-C: leave now; agents keep running
            self.wake.put(("signal", signum))

        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, handler)
        return previous
