"""What the observation adds for the fleet's rate limiter: the limiter the store kept per
provider, and, for a `command` agent with `rateLimit.patterns`, the log line of a failed
attempt that says it stopped on a rate limit.

Only a task's latest attempt, ended with a non-zero exit and not judged yet, has its log
read: the last `LOG_TAIL_BYTES` of it, opened through `state.files` (the agent may have put a
symlink or a pipe there). The matching itself is `core.ratelimit.match_log`.
"""

from __future__ import annotations

from dataclasses import replace

from controller.core.ratelimit import agent_of, match_log
from controller.model.observed import AttemptObs, Observed
from controller.model.spec import Spec
from controller.state import files
from controller.state.paths import StatePaths

LOG_TAIL_BYTES = 16 * 1024


def _hinted(spec: Spec, paths: StatePaths, task: str, a: AttemptObs) -> AttemptObs | None:
    if a.outcome is not None or a.alive or not a.exit_code or a.setup_failed or a.timed_out:
        return None
    found = agent_of(spec, task, a)
    limits = found[1].rate_limits if found else None
    if limits is None or not limits.patterns:
        return None
    try:
        data = files.read_bytes(
            paths.root, paths.task_log(task, a.number), LOG_TAIL_BYTES, tail=True
        )
    except (OSError, ValueError):
        return None
    hint = match_log(limits.patterns, data.decode("utf-8", "replace"))
    return replace(a, log_hint=hint) if hint is not None else None


def with_log_hints(spec: Spec, observed: Observed, paths: StatePaths) -> Observed:
    """`observed` with the log hint on each failed latest attempt whose log matches."""
    changed = {}
    for task, attempts in observed.attempts.items():
        hinted = _hinted(spec, paths, task, attempts[-1]) if attempts else None
        if hinted is not None:
            changed[task] = (*attempts[:-1], hinted)
    if not changed:
        return observed
    return replace(observed, attempts={**observed.attempts, **changed})
