"""Builders for the planner's table tests: a `Spec` and an `Observed` made by hand.

The planner is a pure function of (spec, observed, now), so its tests need no git, no
processes and no clock: they build the inputs here and read the `Plan`. The spec is built
through `Spec.model_validate` with the YAML's camelCase keys, so the tests exercise the same
defaults and validators a loaded file does. Attempt builders name the lifecycle states
(`running`, `exited`, `failed`, ...) so that a table row reads like the situation it tests.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from controller.core.lifecycle import STARTUP_GRACE_S
from controller.core.plan import Action, Plan, Wait, plan
from controller.model.observed import AttemptObs, Observed, ResourcesObs, WorktreeObs
from controller.model.spec import Spec, default_locations

NOW = 1_700_000_000.0
BASE_DIR = Path(tempfile.gettempdir()) / "orchestrator-plan-tests" / "specs"
DEFAULT_AGENTS: dict[str, dict[str, Any]] = {
    "dev": {"command": ["dev-agent", "{prompt}"], "owns": ["src/**", "tests/**"]},
    "docs": {"command": ["docs-agent", "{prompt}"], "owns": ["docs/**"]},
}
SHA = "0" * 39 + "1"


def task(
    task_id: str,
    agent: str = "dev",
    deps: Sequence[str] = (),
    paths: Sequence[str] | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One backlog entry as the YAML would have it (camelCase keys in `extra`)."""
    entry: dict[str, Any] = {"id": task_id, "agent": agent, **extra}
    if deps:
        entry["dependsOn"] = list(deps)
    if paths is not None:
        entry["paths"] = list(paths)
    return entry


def make_spec(
    tasks: Iterable[dict[str, Any] | str] = (),
    agents: dict[str, dict[str, Any]] | None = None,
    *,
    base_dir: Path | None = None,
    completed: Iterable[str] = (),
    **overrides: Any,
) -> Spec:
    """A validated spec; `tasks` may be plain ids (agent `dev`, disjoint `paths`).

    Plain-id tasks get a scope of their own (`src/<id>/**`) so that they never conflict
    unless a test says so. `overrides` are top-level keys in camelCase (`maxParallel=2`).
    """
    backlog = [task(t, paths=[f"src/{t}/**"]) if isinstance(t, str) else t for t in tasks]
    data: dict[str, Any] = {
        "apiVersion": "orchestrator/v1",
        "integrationBranch": "main",
        "agents": agents if agents is not None else DEFAULT_AGENTS,
        "backlog": backlog,
        **overrides,
    }
    spec = Spec.model_validate(data)
    base = base_dir if base_dir is not None else BASE_DIR
    spec.with_locations(default_locations(spec, base / "orchestrator.yaml"))
    spec._completed = frozenset(completed)
    return spec


# -- attempts ------------------------------------------------------------------------------
def attempt(task_id: str, number: int = 1, **fields: Any) -> AttemptObs:
    """A raw attempt; prefer the named builders below."""
    return AttemptObs(task=task_id, number=number, **fields)


def running(task_id: str, number: int = 1, *, started: float = NOW - 60, **kw: Any) -> AttemptObs:
    """A live agent process."""
    kw.setdefault("pid", 4000 + number)
    return attempt(
        task_id, number, started_at=started, created_at=started, alive=True, agent="dev", **kw
    )


def starting(task_id: str, number: int = 1, *, created: float | None = None) -> AttemptObs:
    """An intent row written, no process yet (by default halfway into the startup grace)."""
    when = NOW - STARTUP_GRACE_S / 2 if created is None else created
    return attempt(task_id, number, created_at=when)


def exited(
    task_id: str, number: int = 1, code: int = 0, *, ended: float = NOW - 30, **kw: Any
) -> AttemptObs:
    """A finished process the controller has not given a verdict yet."""
    kw.setdefault("pid", 4000 + number)
    return attempt(
        task_id,
        number,
        started_at=ended - 100,
        created_at=ended - 101,
        ended_at=ended,
        exit_code=code,
        **kw,
    )


def failed(
    task_id: str,
    number: int = 1,
    *,
    ended: float = NOW - 3600,
    outcome: str = "failed",
    **kw: Any,
) -> AttemptObs:
    """A finished attempt with a retryable (or other) verdict; long ago by default."""
    kw.setdefault("exit_code", 1 if outcome == "failed" else None)
    return attempt(
        task_id,
        number,
        started_at=ended - 100,
        created_at=ended - 101,
        ended_at=ended,
        outcome=outcome,
        pid=4000 + number,
        **kw,
    )


def lost(task_id: str, number: int = 1, *, started: float = NOW - 600) -> AttemptObs:
    """A pid that is gone without an exit record (and no verdict yet)."""
    return attempt(task_id, number, started_at=started, created_at=started, pid=4000 + number)


def worktree(task_id: str, base_dir: Path = BASE_DIR) -> WorktreeObs:
    root = (base_dir.parent / "state" / "worktrees").resolve()
    return WorktreeObs(path=str(root / task_id), head=SHA, branch=f"orchestrator/{task_id}")


def observed(
    attempts: Iterable[AttemptObs] = (),
    *,
    merged: Iterable[str] = (),
    worktrees: Iterable[str] = (),
    integration_sha: str | None = SHA,
    cpu: float = 0.0,
    memory: float = 0.0,
    **kw: Any,
) -> Observed:
    """An `Observed`; attempts are grouped by task in the order given (oldest first)."""
    by_task: dict[str, list[AttemptObs]] = {}
    for a in attempts:
        by_task.setdefault(a.task, []).append(a)
    return Observed(
        integration_sha=integration_sha,
        merged_tasks=frozenset(merged),
        worktrees={t: worktree(t) for t in worktrees},
        attempts={t: tuple(v) for t, v in by_task.items()},
        resources=ResourcesObs(cpu_percent=cpu, memory_percent=memory),
        **kw,
    )


# -- reading a plan ------------------------------------------------------------------------
def run(spec: Spec, obs: Observed | None = None, now: float = NOW) -> Plan:
    return plan(spec, obs if obs is not None else observed(), now)


def action_of(p: Plan, task_id: str) -> Action | None:
    found = [a for a in p.actions if a.task == task_id]
    assert len(found) <= 1, f"{task_id} has several actions: {found}"
    return found[0] if found else None


def wait_of(p: Plan, task_id: str) -> Wait | None:
    found = [w for w in p.waits if w.task == task_id]
    assert len(found) <= 1, f"{task_id} has several waits: {found}"
    return found[0] if found else None


def kinds(p: Plan) -> dict[str, str]:
    """task -> action kind, or "wait" for waiting tasks."""
    out = {a.task: a.kind for a in p.actions}
    out.update({w.task: "wait" for w in p.waits if w.task not in out})
    return out


def started(p: Plan) -> list[str]:
    """Tasks the plan starts (spawn or retry), in order."""
    return [a.task for a in p.actions if a.kind in ("spawn", "retry")]
