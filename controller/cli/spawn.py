"""`orchestrator spawn-parallel`: ask for tasks to start first (the guide's manual spawn).

`--priority N` names the roadmap item `PRIORITY N` (task `priority-N`); when the backlog has
no such task, the user story with that number (`--priority 43` is `us-043`), the numbering the
original project moved to. `--task ID` names any task, generated ones included.

The request is a fact in the store ("requested at T"); the planner asks requested tasks first,
within every start rule (dependencies, scopes, slots, ...), and the request is cleared once the
task has started. A running controller is woken at once (a file in the state folder) and the
command reports what its next pass did; without one, the command runs one pass itself that
starts the requested tasks and nothing else. A task that cannot start now keeps its request:
the command prints why it waits and exits 0. An unknown id exits 1 with a suggestion.
"""

# No `from __future__ import annotations` in the CLI modules (see cli.app).

import re
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from controller.cli.common import (
    DEFAULT_SPEC,
    Output,
    OutputOpt,
    RepoOpt,
    SpecOpt,
    fail,
    load,
    out,
)

if TYPE_CHECKING:
    from controller.model.spec import Spec
    from controller.views.snapshot import Snapshot

_NUMBER = re.compile(r"(?:priority[\s-]*)?(\d+(?:\.\d+)*)", re.IGNORECASE)
# phases in which a task needs no request: it started already, or is done
_NOTHING_TO_DO = {
    "running": "already running",
    "starting": "already starting",
    "stopping": "being stopped",
    "verifying": "finished; its merge is being verified",
    "merging": "finished; waiting to merge",
    "merged": "already merged",
}


@dataclass
class Asked:
    task: str
    asked_as: str
    note: str = ""  # how --priority N was mapped
    state: str = ""  # requested, started, queued, or why nothing was done
    reason: str = ""


def _key(number: str) -> tuple[int, ...]:
    return tuple(int(p) for p in number.split("."))


def priority_ids(number: str, ids: Iterable[str]) -> list[str]:
    """The task ids `--priority NUMBER` may name: `priority-NUMBER` (43 and 043 alike), else
    the `us-` ids with that number."""
    want = _key(number)
    known = list(ids)
    for prefix in ("priority-", "us-"):
        found = [
            i
            for i in known
            if i.startswith(prefix)
            and re.fullmatch(r"\d+(?:\.\d+)*", i[len(prefix) :])
            and _key(i[len(prefix) :]) == want
        ]
        if found:
            return found
    return []


def resolve(priorities: list[str], tasks: list[str], known: list[str]) -> list[Asked]:
    """What the options name, in the order given; an unknown id exits 1."""
    from controller.model.problems import did_you_mean

    asked: list[Asked] = []
    for raw in priorities:
        m = _NUMBER.fullmatch(raw.strip())
        if m is None:
            raise fail(f"--priority {raw!r}: give the item's number, e.g. --priority 43")
        number = m.group(1)
        found = priority_ids(number, known)
        if not found:
            guess = did_you_mean(f"priority-{number}", known) or did_you_mean(
                f"us-{int(number.split('.')[0]):03d}", known
            )
            raise fail(f"--priority {raw}: no task priority-{number} or us-{number}{guess}")
        note = "" if found[0].startswith("priority-") else f"(there is no priority-{number})"
        asked.append(Asked(found[0], f"--priority {raw}", note))
    for raw in tasks:
        if raw not in known:
            raise fail(f"--task {raw}: unknown task '{raw}'{did_you_mean(raw, known)}")
        asked.append(Asked(raw, f"--task {raw}"))
    unique: dict[str, Asked] = {}
    for a in asked:
        unique.setdefault(a.task, a)
    return list(unique.values())


def spawn_parallel(
    file: SpecOpt = DEFAULT_SPEC,
    priority: Annotated[
        list[str] | None,
        typer.Option(
            "--priority",
            "-p",
            metavar="N",
            help="The roadmap item PRIORITY N (task priority-N), else US-N (us-0N); repeatable.",
        ),
    ] = None,
    task: Annotated[
        list[str] | None,
        typer.Option("--task", "-t", metavar="ID", help="Any task by its id; repeatable."),
    ] = None,
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for a running controller's next pass.")
    ] = 10.0,
    repo: RepoOpt = None,
    output: OutputOpt = Output.text,
) -> None:
    """Ask for these tasks to start first: ahead of the backlog order, within every rule.

    The request is kept in the store until the task has started; `diff` and `status` show
    it. A running controller acts on it at once; without one, this command runs one pass
    that starts the requested tasks (and nothing else). A task that cannot start now prints
    why it waits and keeps its place (exit 0). An unknown id exits 1.
    """
    if not priority and not task:
        raise fail("name the tasks: --priority N or --task ID (each can be repeated)")
    if not wait >= 0:
        raise fail(f"--wait must be zero or more seconds, got {wait}")
    spec = load(file, output, repo)
    snap = _read(spec)
    known = [t.id for t in snap.spec.backlog] + sorted(snap.spec.completed)
    asked = resolve(priority or [], task or [], known)
    wanted = _record(spec, snap, asked)
    acted = "nothing"
    if wanted:
        acted = _act(spec.source, spec, wanted, wait)
    final = _read(spec)
    for a in asked:
        if a.state == "requested":
            a.state, a.reason = _outcome(final, a.task)
    _report(asked, final, acted, output)


def _read(spec: "Spec") -> "Snapshot":
    """The world as `status` reads it (the running controller's settings applied)."""
    import sqlite3

    from controller.git import GitError
    from controller.state.store import StoreError
    from controller.views.snapshot import take

    try:
        return take(spec)
    except (GitError, StoreError, sqlite3.Error) as exc:
        raise fail(str(exc)) from None


def _record(spec: "Spec", snap: "Snapshot", asked: list[Asked]) -> list[str]:
    """Store a request for each asked task that has not started; the ids requested."""
    import sqlite3

    from controller.act.records import record_event
    from controller.observe.world import open_store
    from controller.state.store import StoreError

    in_backlog = {t.id for t in snap.spec.backlog}
    startable = {x.task for x in snap.plan.actions if x.kind in ("spawn", "retry")}
    wanted = []
    for a in asked:
        phase = None if a.task in startable else snap.plan.phases.get(a.task)
        if a.task not in in_backlog:
            a.state = "complete in the roadmap; nothing to start"
        elif phase in _NOTHING_TO_DO:
            a.state = f"{_NOTHING_TO_DO[phase]}; nothing to start"
        else:
            a.state = "requested"
            wanted.append(a.task)
    if not wanted:
        return []
    try:
        store = open_store(spec, readonly=False)
        assert store is not None
        with store:
            now = time.time()
            for task_id in wanted:
                if store.add_request(task_id, now):
                    record_event(store, "spawn_requested", "spawn-parallel: start first", task_id)
    except (StoreError, sqlite3.Error, OSError) as exc:
        raise fail(f"cannot record the request in {spec.state_path}: {exc}") from None
    return wanted


def _act(file: Path, spec: "Spec", wanted: list[str], wait: float) -> str:
    """Wake the running controller and wait for its pass, or run a pass here that starts the
    requested tasks: "here", "controller" (it ran a pass since) or "late" (it did not yet)."""
    from controller.cli.common import running_here
    from controller.loop.controller import Controller
    from controller.loop.stop import wake_for_requests
    from controller.state.lock import LockHeld
    from controller.state.paths import StatePaths

    paths = StatePaths(spec.state_path)
    asked_at = time.time()
    if running_here(spec) is None:
        try:
            with Controller(file, spec) as controller:
                controller.run_pass(sync_merges=True, only=frozenset(wanted))
            return "here"
        except LockHeld:
            pass  # a controller started meanwhile: it reads the requests itself
    wake_for_requests(paths)
    return "controller" if _wait_for_pass(spec, asked_at, wait) else "late"


def _wait_for_pass(spec: "Spec", after: float, wait: float) -> bool:
    from controller.observe.world import open_store

    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        store = open_store(spec, readonly=True)
        if store is not None:
            try:
                last = float(store.get_meta("last_pass") or 0)
            finally:
                store.close()
            if last >= after:
                return True
        time.sleep(0.05)
    return False


def _outcome(snap: "Snapshot", task_id: str) -> tuple[str, str]:
    """(state, reason) of a requested task after the pass."""
    attempts = snap.observed.attempts.get(task_id, ())
    last = attempts[-1] if attempts else None
    if task_id not in snap.observed.requested and last is not None:
        pid = f", pid {last.pid}" if last.pid else ""
        return "started", f"attempt {last.number}{pid}"
    reason = next((w.reason for w in snap.plan.waits if w.task == task_id), "")
    if not reason:
        reason = next((f"{a.kind}: {a.reason}" for a in snap.plan.actions if a.task == task_id), "")
    return "queued", reason or "waiting for the controller's next pass"


def _report(asked: list[Asked], snap: "Snapshot", acted: str, output: Output) -> None:
    from controller.cli.render import to_json
    from controller.model.safe_text import shown

    running = snap.controller.running
    if output is Output.json:
        data = {
            "controller_running": running,
            "acted": acted,
            "requests": [a.__dict__ for a in asked],
            "queued": list(snap.observed.requested),
        }
        out.print(to_json(data), markup=False)
        return
    width = max(len(a.task) for a in asked)
    for a in asked:
        note = f" {a.note}" if a.note else ""
        detail = f": {a.reason}" if a.reason else ""
        out.print(shown(f"{a.task:<{width}}  {a.state}{detail}{note}"), markup=False)
    queued = [a.task for a in asked if a.state == "queued"]
    if queued:
        out.print("queued requests start first as soon as their wait ends", markup=False)
    if acted == "late":
        out.print(
            "the controller has not run a pass since the request (busy?); it acts on it at "
            "its next one",
            markup=False,
        )
    if acted == "here" or not running:
        out.print(
            "no controller is running: `orchestrator start` merges what finishes and starts "
            "the rest",
            markup=False,
        )


def register(app: typer.Typer) -> None:
    app.command("spawn-parallel")(spawn_parallel)
