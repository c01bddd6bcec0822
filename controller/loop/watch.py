"""`reconcile --watch`: passes until stopped, woken by what matters rather than a timer.

Wake-ups: spec and roadmap edits (watchfiles on their folders, since editors save by
rename), agent exits (the shim's exit records appear in `state/runs/`), stop requests,
spawn-parallel requests, merge completions, the nearest backoff or timeout deadline, and
every `pollInterval` as a resync. An invalid spec edit is logged with its located problems
and the last valid spec stays in force (kept in the store for `status`); once the file is
fixed the loop says "spec valid again". SIGINT/SIGTERM and `orchestrator stop` drain:
nothing new starts, running agents finish and merge, then the loop exits. `stop --force`
stops agents now.
"""

from __future__ import annotations

import contextlib
import queue
import signal
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

from loguru import logger

from controller import git
from controller.act.records import record_event
from controller.core.plan import MERGE, Plan
from controller.loop.reconcile import Echo, Reconciler, running_agents
from controller.loop.session import Session
from controller.loop.stop import read_stop_request
from controller.model.overrides import Overrides
from controller.model.problems import SpecError
from controller.model.spec import spec_generation
from controller.model.spec_record import spec_record
from controller.observe.resources import CpuWindow
from controller.specfile.load import load_spec
from controller.specfile.sources import roadmap_path
from controller.state import files

MAX_BURST = 50  # passes in a row without waiting, while each pass still acts
# what a pass may hit in a hostile world without the controller being wrong: a full disk or a
# locked database (sqlite3/OSError), a repository briefly unreadable (git errors)
PASS_ERRORS = (sqlite3.Error, OSError, git.GitError, git.WorktreeError)
# watchfiles' polling step for exit records and stop requests: 50 ms keeps an idle
# controller well under 1% of a core while adding at most ~50 ms to noticing an exit
WATCH_STEP_MS = 50
BUSY_PHASES = frozenset({"running", "starting", "verifying", "merging", "stopping"})


class WatchLoop:
    def __init__(
        self,
        session: Session,
        reconciler: Reconciler,
        *,
        repo_override: Path | None = None,
        echo: Echo | None = None,
        overrides: Overrides | None = None,
    ) -> None:
        self.session = session
        self.rec = reconciler
        self.repo_override = repo_override
        self.echo: Echo = echo or (lambda line: None)
        self.wake: queue.Queue[tuple[str, Any]] = queue.Queue()
        self.overrides = overrides or Overrides()  # the command line's, kept across reloads
        self.generation = spec_generation(session.spec)  # of the file's spec
        self.invalid = False  # the file did not load at the last edit

    # -- spec ------------------------------------------------------------------------------
    def reload_spec(self) -> None:
        store = self.session.store
        try:
            spec = load_spec(self.session.spec_file, repo=self.repo_override)
        except SpecError as exc:
            for p in exc.problems:
                logger.warning(str(p))
            record_event(
                store,
                "spec_invalid",
                f"{len(exc.problems)} problem(s); keeping the last valid spec",
                data={"problems": [p.as_dict() for p in exc.problems]},
            )
            self.echo(f"! spec   invalid, last valid spec stays in force: {exc.problems[0]}")
            self.invalid = True
            return
        generation = spec_generation(spec)
        was_invalid, self.invalid = self.invalid, False
        if generation == self.generation:
            if was_invalid:  # fixed back to what the controller runs on
                message = f"spec valid again (generation {generation}, unchanged)"
                record_event(store, "spec_valid", message)
                self.echo(f"~ spec   {message}")
            return
        if spec.state_path != self.rec.spec.state_path:
            self.echo("! spec   stateDir changed: restart the controller to move state; ignored")
            return
        problem = self.overrides.problem(spec)
        if problem:  # e.g. specBacklog removed while --spec-backlog was given
            logger.warning(f"command-line setting not applied: {problem}")
        self.rec.spec = self.overrides.apply(spec)
        self.generation = generation
        store.set_meta("spec_generation", generation)
        store.set_meta("spec_record", spec_record(spec))
        if was_invalid:
            record_event(store, "spec_valid", f"spec valid again (generation {generation})")
        record_event(store, "spec_reloaded", f"spec generation {generation}")
        what = "valid again" if was_invalid else "reloaded"
        self.echo(f"~ spec   {what} ({len(spec.backlog)} tasks, generation {generation})")

    # -- wake-ups --------------------------------------------------------------------------
    def watch_paths(self) -> tuple[list[Path], list[Path]]:
        """(folders watched shallowly for edits, folders watched recursively for exits)."""
        shallow = {self.session.spec_file.resolve().parent}
        road = roadmap_path(self.rec.spec)
        if road is not None:
            shallow.add(road.parent)
        paths = self.session.paths
        files.ensure_dirs(paths.root, paths.runs)
        return sorted(shallow), [paths.runs, paths.root]

    def start_watchers(self, stop: threading.Event) -> None:
        from watchfiles import watch

        shallow, deep = self.watch_paths()
        interesting = {self.session.spec_file.resolve()}
        road = roadmap_path(self.rec.spec)
        if road is not None:
            interesting.add(road)
        stop_name = self.session.paths.stop_request.name
        request_name = self.session.paths.spawn_request.name

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
                names = {Path(p).name for _, p in changes}
                if stop_name in names:
                    self.wake.put(("stop", None))
                if request_name in names:  # spawn-parallel: the requests are in the store
                    self.wake.put(("request", None))

        for fn in (edits, runs, control):
            threading.Thread(target=fn, name=f"watch-{fn.__name__}", daemon=True).start()

    def next_wake(self, result: Plan, now: float) -> float:
        deadlines = [now + self.rec.spec.poll_interval]
        deadlines += [until + 0.01 for until in self.rec.merges.deadlines(now)]
        if self.rec.runner.poll_interval_s is not None and result.running:
            deadlines.append(now + self.rec.runner.poll_interval_s)
        deadlines += [w.until + 0.01 for w in result.waits if w.until]
        return max(0.05, min(deadlines) - now)

    def idle_wait(self, timeout: float) -> None:
        """Wait for the next wake-up, measuring the host's load meanwhile: no git call of
        ours runs between passes, so the reading is the load of everything else (a merge
        running in the background makes the window not count)."""
        window = None if self.rec.merges.running else CpuWindow()
        self.wait(timeout)
        if window is not None and not self.rec.merges.running:
            self.rec.sampler.add(window, time.time())

    def wait(self, timeout: float) -> None:
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
                self.handle_stop(force=False)

    # -- stopping --------------------------------------------------------------------------
    def handle_stop(self, force: bool) -> None:
        if not self.rec.draining:
            self.echo(
                "! stop   draining: no new agents; waiting for running ones to finish and merge "
                "(Ctrl-C again leaves now: running agents keep running)"
            )
            record_event(self.session.store, "stop_requested", "force" if force else "graceful")
        self.rec.draining = True
        self.rec.force = self.rec.force or force

    def idle(self, result: Plan) -> bool:
        return (
            not self.rec.merges.running
            and not any(p in BUSY_PHASES for p in result.phases.values())
            and result.running == 0
        )

    def install_signals(self) -> dict[int, Any]:
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

    def left_behind(self) -> str:
        """What keeps running after the controller leaves without draining."""
        observed = self.rec.last_observed
        alive = running_agents(observed) if observed is not None else []
        merging = sorted(self.rec.merges.running)
        finish = f"; the merge of {', '.join(merging)} finishes first" if merging else ""
        if not alive:
            return f"! stop   leaving now: no agent was running{finish}"
        n = len(alive)
        return (
            f"! stop   leaving now: {n} agent{'s keep' if n != 1 else ' keeps'} running: "
            f"{', '.join(alive)}{finish}; `orchestrator start` adopts "
            f"{'them' if n != 1 else 'it'}, `orchestrator stop --force` stops "
            f"{'them' if n != 1 else 'it'}"
        )

    # -- the loop --------------------------------------------------------------------------
    def step(self) -> Plan:
        """Handle a pending stop request and finished merges, then run one pass."""
        request = read_stop_request(self.session.paths)
        if request is not None:
            self.handle_stop(request.force)
        self.rec.record_merges(self.rec.merges.collect(block=False))
        return self.rec.run_pass(sync_merges=False)

    def run(self, *, max_seconds: float | None = None) -> int:
        stop_watchers = threading.Event()
        self.start_watchers(stop_watchers)
        signals = self.install_signals()
        self.rec.merges.on_done = lambda action: self.wake.put(("merged", action))
        self.rec.runner.notify_exits(lambda: self.wake.put(("exit", None)))
        started = time.monotonic()
        burst = failures = 0
        try:
            while True:
                try:
                    result = self.step()
                    failures = 0
                    if self.rec.draining and self.idle(result):
                        self.echo("stopped: nothing running, nothing left to merge")
                        return 0
                    if max_seconds is not None and time.monotonic() - started > max_seconds:
                        return 0
                    # merges landed in line count: what they unblocked is planned next
                    acted = self.rec.merged_inline > 0 or any(
                        a.kind != MERGE for a in result.actions
                    )
                    if acted and burst < MAX_BURST:
                        burst += 1
                        continue
                    burst = 0
                    self.idle_wait(self.next_wake(result, time.time()))
                except PASS_ERRORS as exc:  # e.g. the disk is full: keep trying, with backoff
                    failures += 1
                    delay = min(self.rec.spec.poll_interval, 0.5 * 2 ** min(failures, 8))
                    logger.error(f"pass failed ({exc}); trying again in {delay:.1f}s")
                    self.session.repair_registrations()
                    self.echo(f"! pass   failed: {exc}; trying again in {delay:.1f}s")
                    with contextlib.suppress(*PASS_ERRORS):
                        self.wait(delay)
        except KeyboardInterrupt:  # the second Ctrl-C: say what is left behind
            self.echo(self.left_behind())
            raise
        finally:
            stop_watchers.set()
            for sig, previous in signals.items():
                signal.signal(sig, previous)
