"""Reading the world for the views: one `Snapshot` per status call or dashboard frame.

Read-only by construction: the store is opened with `mode=ro` (and not at all when there is
no database yet), the controller lock of the repository is only probed (`is_locked`, a
non-blocking shared lock the controller's acquire tolerates: `observe.running`), and no
directory or file is created. The observed
state is built by the same `observe_spec` the controller plans from, and the phase of every
task comes from calling the pure planner on it, so `status` shows what the next pass acts on.

Two things the controller knows only in memory are inferred from the world instead:
- a merge under way: the controller writes the attempt's verify log when it verifies a
  merge; a finished attempt with no verdict yet whose verify log is newer than the attempt's
  end, while a controller runs, is being verified now (the planner's `verifying` phase);
- host load: the controller smooths CPU and memory over ~20 s and publishes the average in
  the store; while it runs, a one-shot `status` shows that value (the one admission acts
  on). Without a controller, `status` measures CPU, unsmoothed and without its own CPU,
  from when it starts a `views.cpu.OneShotCpu` (before loading the spec) to the end of the
  read (at least `MIN_CPU_WINDOW_S`); the dashboard keeps a `ResourceSampler` for its
  whole life and so shows its own smoothed value.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, replace
from typing import Any, cast

from controller.core.lifecycle import classify_attempt
from controller.core.plan import Plan, plan
from controller.core.specbacklog import expand
from controller.model.observed import AttemptObs, Observed
from controller.model.overrides import Overrides, Setting, settings
from controller.model.spec import Spec, spec_generation
from controller.observe.clock import local_timezone
from controller.observe.resources import ResourceSampler, published
from controller.observe.running import RunningController, running_controller
from controller.observe.runs import read_progress
from controller.observe.world import observe_spec, open_store
from controller.state.paths import StatePaths
from controller.state.store import AttemptRow, EventRow, Store
from controller.views.cpu import OneShotCpu
from controller.views.foreign import ForeignCommits, foreign_commits
from controller.views.measure import with_recorded_times


@dataclass(frozen=True)
class ControllerInfo:
    """The controller as the lock file and the store's meta table describe it."""

    running: bool
    pid: int | None = None  # the running controller's pid, else the last one recorded
    started_at: float | None = None
    last_pass: float | None = None
    generation: str | None = None  # spec generation the controller acted on
    spec_file: str | None = None
    # the running controller's command-line settings (none when no controller runs)
    overrides: Overrides = Overrides()
    # a controller runs on this repository with another spec and state folder: its spec
    elsewhere: RunningController | None = None


@dataclass(frozen=True)
class Snapshot:
    """Everything a view needs, read at one instant."""

    spec: Spec
    observed: Observed
    plan: Plan
    controller: ControllerInfo
    generation: str  # of the spec file as it reads now
    progress: dict[str, float]  # task -> percent its live attempt last wrote
    now: float
    has_store: bool
    # the observed attempts with the store's recorded times (what the figures measure)
    attempts: dict[str, tuple[AttemptObs, ...]]
    # commits on the integration branch neither the controller nor a known person made
    foreign: ForeignCommits = ForeignCommits()
    # maxParallel, pollInterval, retries, specBacklog: values and where they come from
    settings: tuple[Setting, ...] = ()


class _RowsTap:
    """A store stand-in for `observe` that keeps the attempt rows it hands out, so the
    figures can use the recorded times without a second query of the attempts table."""

    def __init__(self, store: Store) -> None:
        self._store = store
        self.rows: dict[str, list[AttemptRow]] = {}

    def attempts_by_task(self) -> dict[str, list[AttemptRow]]:
        self.rows = self._store.attempts_by_task()
        return self.rows

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


def _float(value: str | None) -> float | None:
    try:
        return float(value) if value else None
    except ValueError:
        return None


def controller_info(spec: Spec, store: Store | None) -> ControllerInfo:
    """The controller of `spec`'s repository: running on this spec's state folder, on
    another one (`elsewhere`), or not at all."""
    paths = StatePaths(spec.state_path)
    holder = running_controller(spec.repo_path)
    running = holder is not None and holder.uses(paths.root)
    elsewhere = holder if holder is not None and not running else None
    meta: dict[str, str | None] = {}
    if store is not None:
        for key in ("pid", "started_at", "last_pass", "spec_generation", "spec_file", "overrides"):
            meta[key] = store.get_meta(key)
    pid = holder.pid if running and holder is not None else None
    if pid is None and (meta.get("pid") or "").isdigit():
        pid = int(meta["pid"] or 0)
    return ControllerInfo(
        running=running,
        pid=pid,
        started_at=_float(meta.get("started_at")),
        last_pass=_float(meta.get("last_pass")),
        generation=meta.get("spec_generation") or None,
        spec_file=meta.get("spec_file") or None,
        overrides=Overrides.from_json(meta.get("overrides")) if running else Overrides(),
        elsewhere=elsewhere,
    )


def runs_here(spec: Spec) -> bool:
    """Whether a controller runs on `spec`'s repository and state folder."""
    holder = running_controller(spec.repo_path)
    return holder is not None and holder.uses(spec.state_path)


def running_overrides(spec: Spec) -> Overrides:
    """The command-line settings of the controller running on `spec`'s state folder."""
    if not runs_here(spec):
        return Overrides()
    store = open_store(spec, readonly=True)
    try:
        return controller_info(spec, store).overrides
    finally:
        if store is not None:
            store.close()


def merges_in_progress(spec: Spec, observed: Observed, now: float) -> frozenset[str]:
    """Tasks whose finished attempt is being verified/merged by the running controller."""
    paths = StatePaths(spec.state_path)
    busy = set()
    for task_id, attempts in observed.attempts.items():
        if not attempts:
            continue
        last = attempts[-1]
        if last.outcome not in (None, "succeeded") or classify_attempt(last, now) != "succeeded":
            continue
        try:
            log = paths.verify_log(task_id, last.number)
            mtime = os.stat(log).st_mtime
        except (OSError, ValueError):
            continue
        if last.ended_at is None or mtime >= last.ended_at - 1.0:
            busy.add(task_id)
    return frozenset(busy)


def live_progress(spec: Spec, observed: Observed, now: float) -> dict[str, float]:
    """Progress percentages of running attempts that wrote a progress file."""
    paths = StatePaths(spec.state_path)
    out: dict[str, float] = {}
    for task_id, attempts in observed.attempts.items():
        if not attempts or classify_attempt(attempts[-1], now) not in ("running", "starting"):
            continue
        try:
            value = read_progress(paths.root, paths.progress_file(task_id, attempts[-1].number))
        except ValueError:
            continue
        if value is not None:
            out[task_id] = value
    return out


def take(
    spec: Spec,
    *,
    sampler: ResourceSampler | None = None,
    now: float | None = None,
    cpu: OneShotCpu | None = None,
) -> Snapshot:
    """Read the world once. Without a `sampler`, CPU is measured over the read itself, or
    from when the caller started `cpu`. The plan uses the running controller's command-line
    settings, and the backlog as the controller expands it (specBacklog)."""
    one_shot = (cpu or OneShotCpu()) if sampler is None else None
    store = open_store(spec, readonly=True)
    tap = _RowsTap(store) if store is not None else None
    file_spec = spec
    try:
        info = controller_info(spec, store)
        spec = info.overrides.apply(spec)
        base = store.get_meta("integration_base") if store is not None else None
        moment = time.time() if now is None else now
        observed = observe_spec(spec, cast(Store, tap), sampler, now=moment)
        load_now = published(store, moment, spec.repo_path) if info.running else None
    finally:
        if store is not None:
            store.close()
    if load_now is not None and sampler is None:  # the average the controller acts on
        observed = replace(observed, resources=load_now)
    elif one_shot is not None:
        observed = replace(observed, resources=one_shot.sample(spec.repo_path))
    spec = expand(spec, observed)
    if info.running:
        observed = replace(observed, merging=merges_in_progress(spec, observed, moment))
    result = plan(spec, observed, moment, tz=local_timezone())
    return Snapshot(
        spec=spec,
        observed=observed,
        plan=result,
        controller=info,
        generation=spec_generation(file_spec),
        progress=live_progress(spec, observed, moment),
        now=moment,
        has_store=store is not None,
        attempts=with_recorded_times(observed.attempts, tap.rows if tap else {}),
        foreign=foreign_commits(spec, base),
        settings=tuple(settings(file_spec, info.overrides)),
    )


def recent_events(spec: Spec, limit: int) -> list[EventRow]:
    """The newest `limit` events (oldest first); empty when there is no database."""
    store = open_store(spec, readonly=True)
    if store is None:
        return []
    try:
        return store.events(limit=limit, newest=True)
    finally:
        store.close()
