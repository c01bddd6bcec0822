"""Actions that keep failing, held off with backoff -- and published, so people see why.

An action that fails (a prune whose git call finds a lock held, a stop that errors, a merge
that errors) is not tried again at once: the next try waits 1 s, doubling with every failure
in a row up to 60 s. Without that, a failure that lasts (a stale lock, a full disk) repeats
on every pass, several times a second, and floods the log and the event table.

The holdoffs live in the store (one JSON value in the `controller` table, key `holdoffs`),
not in the controller's memory: the planner reads them through `Observed.holdoffs` and turns
a held-off action into a wait with its reason and the time of the next try, so `diff`,
`status` and the watch loop all show the same thing, and a restarted controller keeps the
pace. A success clears the entry.
"""

from __future__ import annotations

import json
from typing import Any

from controller.model.observed import Holdoff
from controller.model.safe_text import redact
from controller.state.store import Store

META_KEY = "holdoffs"
HOLDOFF_S = (1.0, 60.0)  # first wait, longest wait
MAX_REASON = 500  # characters of the failure kept for people


def delay(failures: int) -> float:
    """The wait after `failures` failures in a row: 1 s, 2 s, 4 s, ... at most 60 s."""
    first, longest = HOLDOFF_S
    return min(longest, first * 2 ** max(0, failures - 1))


def _parse(value: Any) -> Holdoff | None:
    if not isinstance(value, dict):
        return None
    try:
        return Holdoff(
            task=str(value["task"]),
            kind=str(value["kind"]),
            failures=int(value["failures"]),
            until=float(value["until"]),
            reason=str(value.get("reason", "")),
        )
    except (KeyError, TypeError, ValueError):
        return None


def read(store: Store | None) -> dict[tuple[str, str], Holdoff]:
    """The published holdoffs, by (kind, task); empty without a store or when unreadable."""
    if store is None:
        return {}
    try:
        data = json.loads(store.get_meta(META_KEY) or "[]")
    except ValueError:
        return {}
    found = [h for h in map(_parse, data if isinstance(data, list) else []) if h is not None]
    return {(h.kind, h.task): h for h in found}


def _write(store: Store, holdoffs: dict[tuple[str, str], Holdoff]) -> None:
    rows = [h.__dict__ for h in holdoffs.values()]
    store.set_meta(META_KEY, json.dumps(rows))


def failed(store: Store, kind: str, task: str, reason: str, now: float) -> Holdoff:
    """Record one more failure of (`kind`, `task`); the new holdoff."""
    current = read(store)
    before = current.get((kind, task))
    failures = (before.failures if before else 0) + 1
    text = redact(reason.strip())[:MAX_REASON]
    held = Holdoff(task, kind, failures, now + delay(failures), text)
    current[(kind, task)] = held
    _write(store, current)
    return held


def succeeded(store: Store, kind: str, task: str) -> None:
    """(`kind`, `task`) worked: forget its failures (no write when there were none)."""
    current = read(store)
    if current.pop((kind, task), None) is not None:
        _write(store, current)


def forget_task(store: Store, task: str) -> None:
    """Drop every holdoff of `task` (it left the spec, or was merged and pruned)."""
    current = read(store)
    kept = {key: h for key, h in current.items() if h.task != task}
    if len(kept) != len(current):
        _write(store, kept)
