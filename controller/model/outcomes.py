"""What carrying out an action produced: the outcome of landing a task, and the verdict the
controller records on an attempt (decided by `core.outcomes`, stored by `act.records`)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

# "error": git itself failed (not a race); the caller waits a little before trying again;
# "empty": the attempt changed nothing (and its task does not `allowEmpty`);
# "requeued": the merge train gave the task back unjudged (it rode behind a culprit); it
# rides the next train
OutcomeKind = Literal[
    "merged",
    "conflict",
    "verify_failed",
    "rejected",
    "raced",
    "blocked",
    "error",
    "empty",
    "requeued",
]


@dataclass(frozen=True)
class MergeOutcome:
    kind: OutcomeKind
    sha: str | None = None  # the merge commit (merged)
    conflicts: tuple[str, ...] = ()  # conflicting files (conflict)
    offending: tuple[str, ...] = ()  # files outside the write scope (rejected)
    message: str = ""
    # symlinks landed that point outside the repository (allowExternalSymlinks: true)
    external_links: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Verdict:
    """The controller's judgement of one attempt, and the event that reports it."""

    outcome: str
    reason: str
    event: str  # the event kind recorded with it
    message: str  # the event's message
    data: dict[str, Any] = field(default_factory=dict)  # the event's data
    ended_at: float | None = None
    retry_at: float | None = None
    exit_code: int | None = None
    conflicts: tuple[str, ...] = ()
