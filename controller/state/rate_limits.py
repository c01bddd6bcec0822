"""The `rate_limits` table (schema v8): the fleet's rate limiter per provider
(`model.ratelimit.LimiterState`), so that a restarted controller keeps backing off where the
last one was. The store's methods `rate_limits` and `set_rate_limit` call these."""

from __future__ import annotations

import sqlite3

from controller.model.ratelimit import LimiterState


def load(conn: sqlite3.Connection) -> dict[str, LimiterState]:
    """provider -> the fleet's rate limiter as last stored."""
    rows = conn.execute(
        "SELECT provider, lowered_to, resume_at, changed_at, strikes FROM rate_limits"
    ).fetchall()
    return {r[0]: LimiterState(r[0], r[1], r[2], r[3], r[4]) for r in rows}


def save(conn: sqlite3.Connection, state: LimiterState) -> None:
    """Store one provider's rate limiter (replacing what was stored)."""
    conn.execute(
        "INSERT INTO rate_limits(provider, lowered_to, resume_at, changed_at, strikes) "
        "VALUES (?, ?, ?, ?, ?) ON CONFLICT(provider) DO UPDATE SET "
        "lowered_to = excluded.lowered_to, resume_at = excluded.resume_at, "
        "changed_at = excluded.changed_at, strikes = excluded.strikes",
        (state.provider, state.limit, state.resume_at, state.changed_at, state.strikes),
    )
