"""Carrying out a person's order about a task: archiving first (a reset), then recording it.

An order is a fact in the store (`Store.add_intervention`) with an event; the running
controller acts on it at its next pass (the command wakes it). Before a reset forgets a
task's attempts, its branch tip and the uncommitted work in its worktree are kept in archive
refs (`refs/orchestrator/archive/<task>/<n>`), so starting over loses nothing.
"""

from __future__ import annotations

import time
from pathlib import Path

from controller import git
from controller.act.records import record_event
from controller.model.spec import Spec
from controller.state.store import Store

EVENTS = {"retry": "retry_requested", "reset": "reset_requested", "stop": "task_stop_requested"}


def archive_task(spec: Spec, task: str, number: int, worktree: Path | None) -> list[str]:
    """Keep `task`'s branch tip and its worktree's uncommitted work in archive refs (the
    refs made; none when there was nothing to keep)."""
    repo = git.open_repo(spec.repo_path)
    refs = []
    if worktree is not None and worktree.is_dir():
        ref = git.snapshot(repo, git.registered_place(repo, worktree), task, number)
        if ref:
            refs.append(ref)
    tip = git.archive_branch_tip(repo, task, number)
    if tip:
        refs.append(tip)
    return refs


def record_order(
    store: Store, task: str, kind: str, after: int, *, fresh: bool = False, why: str = ""
) -> None:
    """Record order `kind` about `task`, given when its last attempt was number `after`."""
    store.add_intervention(task, kind, after, time.time(), fresh=fresh)
    data = {"after": after, "fresh": fresh}
    message = f"{kind} requested after attempt {after}" + (f": {why}" if why else "")
    record_event(store, EVENTS[kind], message, task, data)
