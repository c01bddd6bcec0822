"""The controller: a session (lock, log, store), the reconcile pass, the merge worker, and
the watch loop around them, put together for the commands that run it.

    with Controller(spec_file, spec) as controller:
        controller.reconcile_once()      # `orchestrator reconcile`
        controller.watch()               # `orchestrator reconcile --watch` / `start`
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from controller.act.runners.base import Runner
from controller.act.runners.factory import make_runner
from controller.core.plan import Plan
from controller.loop.merge_worker import MergeWorker
from controller.loop.reconcile import Echo, Reconciler
from controller.loop.session import Session
from controller.loop.watch import WatchLoop
from controller.model.observed import Observed
from controller.model.overrides import Overrides
from controller.model.spec import Spec
from controller.state.store import Store


class Controller:
    def __init__(
        self,
        spec_file: Path,
        spec: Spec,
        *,
        repo_override: Path | None = None,
        runner: Runner | None = None,
        echo: Echo | None = None,
        on_pass: Callable[[Plan, Observed], None] | None = None,
        overrides: Overrides | None = None,
    ):
        self.overrides = overrides or Overrides()
        self.session = Session(spec_file, spec, self.overrides)
        self.merges = MergeWorker(on_done=lambda action: None)
        self.reconciler = Reconciler(
            self.overrides.apply(spec),
            self.session.store,
            runner or make_runner(spec),
            self.merges,
            echo=echo,
            on_pass=on_pass,
        )
        self.loop = WatchLoop(
            self.session,
            self.reconciler,
            repo_override=repo_override,
            echo=echo,
            overrides=self.overrides,
        )

    @property
    def spec(self) -> Spec:
        """The spec the controller acts on: the file's, with the command-line overrides."""
        return self.reconciler.spec

    @property
    def store(self) -> Store:
        return self.session.store

    @property
    def last_plan(self) -> Plan | None:
        return self.reconciler.last_plan

    @property
    def on_pass(self) -> Callable[[Plan, Observed], None] | None:
        return self.reconciler.on_pass

    @on_pass.setter
    def on_pass(self, value: Callable[[Plan, Observed], None] | None) -> None:
        self.reconciler.on_pass = value

    @property
    def draining(self) -> bool:
        return self.reconciler.draining

    @draining.setter
    def draining(self, value: bool) -> None:
        self.reconciler.draining = value

    @property
    def force(self) -> bool:
        return self.reconciler.force

    @force.setter
    def force(self, value: bool) -> None:
        self.reconciler.force = value

    def __enter__(self) -> Controller:
        self.session.__enter__()
        return self

    def __exit__(self, *exc: object) -> None:
        try:
            self.merges.shutdown()
            self.reconciler.record_merges(self.merges.collect(block=False))
            self.reconciler.notify()
            notify = self.reconciler.spec.notify
            # what is queued may still go out (a one-shot `reconcile` exits at once)
            self.reconciler.notifier.close(wait=notify.timeout if notify else 0.0)
        finally:
            self.session.__exit__(*exc)

    def run_pass(self, *, sync_merges: bool, only: frozenset[str] | None = None) -> Plan:
        return self.reconciler.run_pass(sync_merges=sync_merges, only=only)

    def reconcile_once(self) -> Plan:
        return self.run_pass(sync_merges=True)

    def watch(self, *, max_seconds: float | None = None) -> int:
        return self.loop.run(max_seconds=max_seconds)
