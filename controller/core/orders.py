"""Which orders a person may give about a task, by the stage of its lifecycle.

`orchestrator retry`, `reset` and `stop --task` (and the dashboard's `r` and `s`) record a
fact the planner reads (`model.observed.Intervention`); before recording one, the command
asks `refusal` whether it makes sense now, given the task's stage (`lifecycle.task_state`).
A refused order records nothing: the command exits 1 with the reason and what would help.
"""

from __future__ import annotations

RETRY, RESET, STOP = "retry", "reset", "stop"
KINDS = (RETRY, RESET, STOP)

# stages in which a task stopped trying, or waits for its backoff
_DONE_TRYING = frozenset({"failed", "exhausted", "rejected", "stopped"})
ALLOWED = {
    RETRY: _DONE_TRYING,  # a fresh budget of attempts, due at once
    RESET: _DONE_TRYING,  # its attempts forgotten, a fresh start from the tip
    STOP: frozenset({"running", "starting", "failed"}),  # a failed one: held, not retried
}

_WHY_NOT = {
    "running": "it is running; stop it first (`orchestrator stop --task {t}`, or `s` in the "
    "dashboard)",
    "starting": "it is starting; stop it first (`orchestrator stop --task {t}`)",
    "pending_merge": "it finished; its work is being (or waiting to be) verified and merged",
    "merged": "it is merged already",
    "stopped": "it is stopped already (`orchestrator retry {t}` starts it again)",
    "exhausted": "it is not running: its retries are used up (`orchestrator retry {t}`)",
    "rejected": "it is not running: its work was rejected (`orchestrator retry {t}`)",
}


def refusal(kind: str, task: str, stage: str | None, attempts: int) -> str | None:
    """Why order `kind` cannot be given about `task` now (at lifecycle `stage`, after
    `attempts` attempts; stage None: not in the spec), or None when it can."""
    if stage is None:
        return "it is not in the spec"
    if stage in ALLOWED[kind] and (attempts > 0 or kind == STOP and stage != "new"):
        return None
    if stage == "new":
        if kind == STOP:
            return "it is not running (to keep it from starting, set `paused: true` on it)"
        return f"it has not run yet: nothing to {kind}"
    return _WHY_NOT.get(stage, f"it is {stage}").format(t=task)
