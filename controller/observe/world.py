"""The imperative shell's view of one spec: its state directory, store and observed world.

Commands call `observe_spec` to get the same `Observed` the controller plans from, so
`diff`, `status` and `reconcile` agree. Read-only callers pass `readonly=True` and never
create or lock anything.
"""

from __future__ import annotations

import time

from controller.core.specbacklog import spec_paths
from controller.model.observed import Observed
from controller.model.spec import Spec
from controller.observe import observe
from controller.observe.ratelimits import with_log_hints
from controller.observe.resources import ResourceSampler
from controller.state.paths import StatePaths
from controller.state.store import Store


def state_paths(spec: Spec) -> StatePaths:
    return StatePaths(spec.state_path)


def open_store(spec: Spec, *, readonly: bool) -> Store | None:
    paths = state_paths(spec)
    if readonly:
        return Store.open_readonly(paths.db)
    paths.ensure()
    return Store.open(paths.db)


def observe_spec(
    spec: Spec,
    store: Store | None,
    sampler: ResourceSampler | None,
    *,
    draining: bool = False,
    now: float | None = None,
) -> Observed:
    observed = observe(
        repo=spec.repo_path,
        integration=spec.integration_branch,
        worktree_root=spec.worktree_root_path,
        state=state_paths(spec),
        store=store,
        sampler=sampler,
        draining=draining,
        now=time.time() if now is None else now,
        probe=spec_paths(spec),
    )
    return with_log_hints(spec, observed, state_paths(spec))
