"""Rows of the store as values: one attempt (`AttemptRow`), one event (`EventRow`), how an
attempt row is read from SQLite (by position: the hot path of `status`), and the orders in
force per task (`TaskOrders`, from the `interventions` table)."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any, NamedTuple

from controller.model.observed import Intervention, TaskOrders


class AttemptRow(NamedTuple):
    """One row of `attempts`; mirrors the columns (`conflicts` decoded from JSON).

    A NamedTuple rather than a frozen dataclass: `status` builds tens of thousands of these
    and a tuple is built about eight times faster.
    """

    task: str
    number: int
    created_at: float | None = None
    pid: int | None = None
    create_time: float | None = None
    started_at: float | None = None
    ended_at: float | None = None
    exit_code: int | None = None
    outcome: str | None = None
    reason: str = ""
    retry_at: float | None = None
    conflicts: tuple[str, ...] = ()
    agent: str | None = None
    base_sha: str | None = None
    handle: str | None = None  # a remote runner's id for the attempt (schema v2)
    # what the attempt cost as its agent reported it, and the port it was given (schema v3)
    input_tokens: int | None = None
    output_tokens: int | None = None
    cache_read_tokens: int | None = None
    cache_write_tokens: int | None = None
    cost_usd: float | None = None
    turns: int | None = None
    port: int | None = None
    start_id: str | None = None  # the process's start in ticks since boot (schema v5)


@dataclass(frozen=True)
class EventRow:
    id: int
    ts: float
    task: str | None
    kind: str
    message: str
    data: Any = None


ATTEMPT_COLUMNS = (
    "task, number, created_at, pid, create_time, started_at, ended_at, exit_code, "
    "outcome, reason, retry_at, conflicts, agent, base_sha, handle, input_tokens, "
    "output_tokens, cache_read_tokens, cache_write_tokens, cost_usd, turns, port, start_id"
)


def row_to_attempt(row: sqlite3.Row | tuple[Any, ...]) -> AttemptRow:
    """A row selected with `ATTEMPT_COLUMNS`, by position (the hot path of `status`)."""
    values = tuple(row)
    raw = values[11]
    try:
        conflicts = tuple(str(c) for c in json.loads(raw)) if raw and raw != "[]" else ()
    except (ValueError, TypeError):
        conflicts = ()
    return AttemptRow._make((*values[:9], values[9] or "", values[10], conflicts, *values[12:]))


# per task: its latest order, and the latest retry-or-reset and reset attempt numbers
ORDERS_QUERY = (
    "SELECT i.task, i.kind, i.after, i.at, i.fresh, "
    "(SELECT MAX(after) FROM interventions r WHERE r.task = i.task "
    "AND r.kind IN ('retry', 'reset')), "
    "(SELECT MAX(after) FROM interventions r WHERE r.task = i.task AND r.kind = 'reset') "
    "FROM interventions i WHERE i.id IN (SELECT MAX(id) FROM interventions GROUP BY task)"
)


def row_to_orders(row: sqlite3.Row | tuple[Any, ...]) -> tuple[str, TaskOrders]:
    task, kind, after, at, fresh, counted_after, forgotten = tuple(row)
    latest = Intervention(kind, after, at, bool(fresh))
    return task, TaskOrders(latest, counted_after or 0, forgotten or 0)
