"""The event log for people and scripts, and `--follow` (tail it by polling the store).

Following never holds the database open between polls and never creates it: it reopens
the store read-only each poll (waiting for it to appear if the controller has not run yet)
and asks for events with an id above the last one printed, so nothing is skipped or shown
twice however fast the controller writes.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from controller.model.safe_text import shown
from controller.model.spec import Spec
from controller.observe.world import open_store
from controller.state.store import EventRow, Store

KNOWN_KINDS = (
    "controller_start",
    "controller_stop",
    "spawn",
    "retry",
    "spawn_failed",
    "exit",
    "stop",
    "stop_requested",
    "merge",
    "conflict",
    "verify_failed",
    "rejected",
    "no_changes",
    "merge_raced",
    "merge_blocked",
    "prune",
    "prune_failed",
    "snapshot",
    "snapshot_failed",
    "copy",
    "spec_reloaded",
    "spec_invalid",
    "spec_valid",
    "action_error",
    "external_symlink",
    "exhausted",
    "converged",
    "settings",
    "spawn_requested",
    "request_done",
    "notify_failed",
    "adopted",
    "retry_requested",
    "reset_requested",
    "task_stop_requested",
    "clean",
)
PAGE = 500


def split_kinds(values: Iterable[str] | None) -> list[str] | None:
    """`--kind a --kind b,c` -> [a, b, c]; None when not given."""
    if not values:
        return None
    kinds = [k.strip() for v in values for k in v.split(",") if k.strip()]
    return kinds or None


def event_dict(e: EventRow) -> dict[str, Any]:
    return {
        "id": e.id,
        "ts": e.ts,
        "time": dt.datetime.fromtimestamp(e.ts).astimezone().isoformat(timespec="milliseconds"),
        "task": e.task,
        "kind": e.kind,
        "message": e.message,
        "data": e.data,
    }


def event_line(e: EventRow, task_width: int = 12) -> str:
    stamp = dt.datetime.fromtimestamp(e.ts).strftime("%Y-%m-%d %H:%M:%S")
    task = shown(e.task or "-")
    return f"{stamp}  {shown(e.kind):<15} {task:<{task_width}}  {shown(e.message)}"


def read_events(
    spec: Spec,
    *,
    task: str | None,
    kinds: list[str] | None,
    since_id: int = 0,
    tail: int | None = None,
) -> list[EventRow]:
    store = open_store(spec, readonly=True)
    if store is None:
        return []
    try:
        if tail is not None:
            return store.events(task=task, kinds=kinds, since_id=since_id, limit=tail, newest=True)
        return store.events(task=task, kinds=kinds, since_id=since_id)
    finally:
        store.close()


def follow(
    spec: Spec,
    *,
    task: str | None,
    kinds: list[str] | None,
    since_id: int,
    interval: float = 0.5,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[EventRow]:
    """Yield events with id > `since_id` as they are written, forever (until interrupted)."""
    last = since_id
    while True:
        store: Store | None = open_store(spec, readonly=True)
        batch: list[EventRow] = []
        if store is not None:
            try:
                batch = store.events(task=task, kinds=kinds, since_id=last, limit=PAGE)
            finally:
                store.close()
        for event in batch:
            last = max(last, event.id)
            yield event
        if len(batch) < PAGE:
            sleep(interval)


def max_event_id(spec: Spec) -> int:
    store = open_store(spec, readonly=True)
    if store is None:
        return 0
    try:
        rows = store.events(limit=1, newest=True)
        return rows[-1].id if rows else 0
    finally:
        store.close()
