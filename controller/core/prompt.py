"""The prompt an agent gets: composed, not just passed on.

It is the task's own prompt, then a section of notes from the orchestrator after a line
`---`: the task's write scope, and on a retry why the last attempt did not land (the tail
of the verify output, the conflicting files, the out-of-scope paths, "no changes", the tool
calls its permissions refused), so that a retry can fix what failed instead of repeating it
blind. A pure function of (spec, task, attempt, the previous attempt's verdict and the few
facts the act layer read for it, such as the verify log's tail).
"""

from __future__ import annotations

from dataclasses import dataclass

from controller.core.lifecycle import failure_reason
from controller.model.names import branch_for
from controller.model.observed import AttemptObs
from controller.model.spec import Spec, Task

SEPARATOR = "---"  # the line between the task's prompt and the orchestrator's notes
TAIL_LINES = 40
TAIL_CHARS = 4000


@dataclass(frozen=True)
class PromptFacts:
    """What the act layer read about the previous attempt (empty when nothing applies)."""

    verify_tail: str = ""  # the end of its verify log (a verify failure)
    setup_tail: str = ""  # the end of its setup log (a setup failure)


def tail(text: str, lines: int = TAIL_LINES, chars: int = TAIL_CHARS) -> str:
    """The last `lines` lines of `text`, at most `chars` characters, trailing blanks gone."""
    kept = "\n".join(text.rstrip().splitlines()[-lines:])
    return kept[-chars:]


def _fenced(text: str) -> list[str]:
    fence = "```"
    while fence in text:
        fence += "`"
    return [f"  {fence}", *(f"  {line}" for line in text.splitlines()), f"  {fence}"]


def scope_note(spec: Spec, task: Task) -> str:
    scope = spec.scope_of(task)
    if not scope:
        return "- Do not change any file: this task's write scope is empty (read-only)."
    if "**" in scope:
        return "- You may change any file in the repository."
    shown = ", ".join(scope)
    return (
        f"- Change only files matching: {shown}. A change to any other file is rejected "
        "at merge time."
    )


def _previous_notes(spec: Spec, prev: AttemptObs, facts: PromptFacts) -> list[str]:
    reason = failure_reason(prev)
    lines = [f"- The previous attempt ({prev.number}) did not land: {reason}."]
    if prev.outcome == "conflict" and prev.conflicts:
        lines.append(
            f"  It conflicted with work merged meanwhile in: {', '.join(prev.conflicts)}. This "
            f"attempt starts afresh from the current {spec.integration_branch}: redo the "
            "change on top of it."
        )
    elif prev.outcome == "rate_limited":
        lines.append(
            "  It stopped on the API's rate limit, not on a fault of its own; what it changed "
            "in this worktree is still here: check it and carry on from there."
        )
    elif prev.outcome == "verify_failed":
        verify = " ".join(spec.verify or ())
        lines.append(f"  The verify command `{verify}` failed on the merge result.")
        if facts.verify_tail:
            lines += ["  The end of its output:", *_fenced(facts.verify_tail)]
    elif reason.startswith("setup failed") and facts.setup_tail:
        lines += ["  The end of the setup command's output:", *_fenced(facts.setup_tail)]
    elif reason == "no changes":
        lines.append("  It changed no file: this task needs changes within its write scope.")
    elif reason.startswith("permission denied"):
        lines.append(
            "  Those tool calls were refused by your permissions: edit files only inside the "
            "current directory."
        )
    return lines


def compose_prompt(
    spec: Spec,
    task: Task,
    number: int,
    total: int,
    previous: AttemptObs | None = None,
    facts: PromptFacts | None = None,
) -> str:
    """The prompt for attempt `number` of `total` of `task`, after `previous` (if any)."""
    verify = " ".join(spec.verify) if spec.verify else ""
    gate = f" after the verify command `{verify}` passes" if verify else ""
    notes = [
        f"Notes from the orchestrator (task {task.id}, attempt {number} of {total}):",
        f"- You work in a git worktree of your own, on branch {branch_for(task.id)}. When you "
        f"exit, the orchestrator commits what you left and merges it into "
        f"{spec.integration_branch}{gate}.",
        scope_note(spec, task),
    ]
    if previous is not None and previous.outcome not in (None, "stopped"):
        notes += _previous_notes(spec, previous, facts or PromptFacts())
    head = task.prompt.rstrip()
    return "\n".join([head, "", SEPARATOR, *notes, ""] if head else [SEPARATOR, *notes, ""])
