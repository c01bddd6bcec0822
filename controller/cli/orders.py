"""`orchestrator retry` and `reset`, and `stop --task`: a person's orders about tasks.

Each order is a fact recorded in the store (like `kubectl rollout restart`), read by the
planner at the controller's next pass (`core.lifecycle`): a retry gives a failed, exhausted,
rejected or stopped task a fresh budget of attempts, due at once (`--fresh`: from the
integration tip, the old branch archived); a reset forgets its attempts and starts it over
from the tip, its branch and uncommitted work archived first, here, before anything is
recorded; a stop ends its running agent (work snapshotted) and holds it until a retry.

All tasks are checked before anything is done: an unknown task, or one in a stage where the
order makes no sense (`core.orders.refusal`), exits 1 and records nothing. A running
controller is woken at once; without one, the next `start` or `reconcile` acts on it.
The dashboard's `r` and `s` keys call `give_orders` too.
"""

# No `from __future__ import annotations` in the CLI modules (see cli.app).

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from controller.cli.common import DEFAULT_SPEC, SpecOpt, fail, load, out, running_here
from controller.model.safe_text import shown

if TYPE_CHECKING:
    from controller.core.lifecycle import TaskState
    from controller.model.spec import Spec
    from controller.views.snapshot import Snapshot


class OrderError(RuntimeError):
    """An order that cannot be given (nothing was recorded); the message says why."""


@dataclass
class Given:
    task: str
    after: int  # the task's last attempt number
    archived: list[str] = field(default_factory=list)


def _states(snap: "Snapshot", tasks: list[str]) -> dict[str, "TaskState"]:
    from controller.core.lifecycle import task_state

    backlog = {t.id: t for t in snap.spec.backlog}
    obs = snap.observed
    return {
        t: task_state(
            obs.attempts.get(t, ()),
            t in obs.merged_tasks,
            snap.now,
            snap.spec.max_attempts(backlog[t]),
            obs.orders.get(t),
        )
        for t in tasks
        if t in backlog
    }


def _check(spec: "Spec", snap: "Snapshot", kind: str, tasks: list[str]) -> list[Given]:
    """The orders to give, once every task is known and may take it (else OrderError)."""
    from controller.core.orders import refusal
    from controller.model.problems import did_you_mean

    known = [t.id for t in snap.spec.backlog]
    states = _states(snap, tasks)
    problems, given = [], []
    for task in dict.fromkeys(tasks):
        if task not in known:
            problems.append(f"unknown task '{task}'{did_you_mean(task, known)}")
            continue
        st = states[task]
        why = refusal(kind, task, st.stage, st.number)
        if why:
            problems.append(f"{task}: not {_past(kind)}: {why}")
        else:
            given.append(Given(task, st.number))
    if problems:
        raise OrderError("; ".join(problems) + "; nothing was recorded")
    return given


def _past(kind: str) -> str:
    return {"retry": "retried", "reset": "reset", "stop": "stopped"}[kind]


def give_orders(spec: "Spec", kind: str, tasks: list[str], *, fresh: bool = False) -> list[Given]:
    """Check, archive (a reset), record and wake: see the module docstring."""
    import sqlite3

    from controller import git
    from controller.act.orders import archive_task, record_order
    from controller.loop.stop import wake_for_requests
    from controller.observe.running import running_controller
    from controller.observe.world import open_store
    from controller.state.paths import StatePaths
    from controller.state.store import StoreError
    from controller.views.snapshot import take

    try:
        snap = take(spec)
    except (git.GitError, StoreError, sqlite3.Error) as exc:
        raise OrderError(str(exc)) from None
    given = _check(spec, snap, kind, tasks)
    holder = running_controller(spec.repo_path)
    if holder is not None and not holder.uses(spec.state_path):
        raise OrderError(
            f"a controller (pid {holder.pid or '?'}) runs on this repository with spec "
            f"{holder.spec_file}: give that spec (-f), it would not see this one's orders"
        )
    try:
        if kind == "reset":  # archived before anything is recorded
            for g in given:
                wt = snap.observed.worktrees.get(g.task)
                path = None if wt is None else Path(wt.path)
                g.archived = archive_task(spec, g.task, max(1, g.after), path)
        store = open_store(spec, readonly=False)
        assert store is not None
        with store:
            for g in given:
                record_order(store, g.task, kind, g.after, fresh=fresh)
    except (git.GitError, git.WorktreeError, StoreError, sqlite3.Error, OSError) as exc:
        raise OrderError(f"cannot record the {kind}: {exc}") from None
    if holder is not None:
        wake_for_requests(StatePaths(spec.state_path))
    return given


def _report(spec: "Spec", kind: str, given: list[Given], fresh: bool) -> None:
    tip = spec.integration_branch
    for g in given:
        if kind == "retry":
            how = f"from {tip}, old branch archived" if fresh else "on its branch"
            task = next((t for t in spec.backlog if t.id == g.task), None)
            budget = spec.max_attempts(task) if task else 1 + spec.retries  # a generated one
            line = f"{g.task}: retry requested after attempt {g.after} ({how}; {budget} "
            line += f"attempt{'s' if budget != 1 else ''} from now on)"
        elif kind == "reset":
            kept = ", ".join(g.archived) or "nothing to keep"
            line = f"{g.task}: reset: attempts 1-{g.after} forgotten; archived first: {kept}; "
            line += f"it starts over from {tip}"
        else:
            line = f"{g.task}: stop requested (attempt {g.after}); it is held until a retry"
        out.print(shown(line), markup=False)
    holder = running_here(spec)
    if holder is not None:
        out.print(f"the controller (pid {holder.pid or '?'}) acts on it now", markup=False)
    elif kind == "stop":
        out.print("no controller is running: stopped here", markup=False)
    else:
        out.print(
            "no controller is running: `orchestrator start` (or `reconcile`) acts on it",
            markup=False,
        )


TasksArg = Annotated[list[str], typer.Argument(help="The tasks.", show_default=False)]


def retry(
    tasks: TasksArg,
    fresh: Annotated[
        bool,
        typer.Option(
            "--fresh",
            help="Start again from the integration tip (the old branch is archived), instead "
            "of going on from the task's branch.",
        ),
    ] = False,
    file: SpecOpt = DEFAULT_SPEC,
) -> None:
    """Give failed, exhausted, rejected or stopped tasks a fresh budget of attempts.

    Recorded as a fact in the store; the next attempt is due at once (no backoff) and the
    spec's `retries` count again from it. The agent's prompt says why the last attempt
    failed. Exit 1, recording nothing, for an unknown task or one that is running, merging
    or merged.
    """
    _order("retry", tasks, file, fresh=fresh)


def reset(tasks: TasksArg, file: SpecOpt = DEFAULT_SPEC) -> None:
    """Forget tasks' attempts and start them over from the integration tip.

    Their branch tip and any uncommitted work in their worktree are archived first
    (refs/orchestrator/archive/<task>/<n>); the next attempt starts a fresh branch with a
    full budget of attempts. Exit 1, doing nothing, for an unknown task or one that is
    running, merging or merged.
    """
    _order("reset", tasks, file)


def _order(kind: str, tasks: list[str], file: "SpecOpt", *, fresh: bool = False) -> None:
    spec = load(file)
    try:
        given = give_orders(spec, kind, tasks, fresh=fresh)
    except OrderError as exc:
        raise fail(str(exc)) from None
    _report(spec, kind, given, fresh)


def stop_tasks(spec: "Spec", tasks: list[str]) -> None:
    """`orchestrator stop --task T`: stop these tasks' agents and hold them. Without a
    running controller, one pass here stops them (and does nothing else)."""
    from controller.loop.controller import Controller
    from controller.state.lock import LockHeld

    try:
        given = give_orders(spec, "stop", tasks)
    except OrderError as exc:
        raise fail(str(exc)) from None
    if running_here(spec) is None:
        try:
            with Controller(spec.source, spec) as controller:
                controller.run_pass(sync_merges=True, only=frozenset(g.task for g in given))
        except LockHeld:
            pass  # a controller started meanwhile: it reads the order itself
    _report(spec, "stop", given, False)


def register(app: typer.Typer) -> None:
    app.command()(retry)
    app.command()(reset)
