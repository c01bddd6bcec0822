"""Spec sections that add behaviour around the backlog: `specBacklog` (specifications
written ahead of the implementation), `notify` (a command told about what needs a person)
and `mergeAuthor` (who the controller's merge commits are authored by).

Part of the spec format like `spec` (which uses them); kept apart only to keep each model
module readable. The behaviour lives in `core.specbacklog` and `act.notify`.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator

from controller.model.fields import PositiveDuration, SpecModel, check_argv, placeholders_in
from controller.model.globs import pattern_problem

DEFAULT_SPEC_PROMPT = (
    "Write the technical specification for {id}: {title}. Save it as {path}; write nothing "
    "else. The implementation starts once the specification is merged.\n\nThe task:\n{prompt}"
)
SPEC_PROMPT_PLACEHOLDERS = ("id", "title", "prompt", "path")


class SpecBacklog(SpecModel):
    """`specBacklog`: before a backlog task starts, its spec agent writes its specification."""

    agent: str = Field(description="The agent that writes the specifications (e.g. architect).")
    ahead: Annotated[int, Field(ge=1, le=1024)] = Field(
        default=3,
        description="At most this many specifications written (or being written) whose task "
        "is not merged yet: the spec agent stays this far ahead of the implementation, never "
        "further (the original guide's `--spec-backlog`, default 3).",
    )
    path: str = Field(
        description="Where a task's specification lives in the repository; `{id}` is the "
        "task id, e.g. docs/architecture/specs/SPEC-{id}.md. A task whose file is already on "
        "the integration branch gets no spec task.",
    )
    prompt: str = Field(
        default=DEFAULT_SPEC_PROMPT,
        description="The spec task's prompt; placeholders {id}, {title}, {prompt} (the "
        "task's own) and {path}.",
    )
    for_agents: list[str] | None = Field(
        default=None,
        description="The agents whose tasks get a specification first (default: every agent "
        "but `agent`).",
    )

    @field_validator("path")
    @classmethod
    def _path_template(cls, v: str) -> str:
        names = placeholders_in(v)
        if names != ["id"]:
            raise ValueError("must contain the placeholder {id} once, and no other placeholder")
        sample = v.replace("{id}", "x")
        if any(c in sample for c in "*?[]") or pattern_problem(sample):
            problem = pattern_problem(sample) or "wildcards name no single file"
            raise ValueError(f"must be one file path relative to the repository: {problem}")
        return v

    @field_validator("prompt")
    @classmethod
    def _prompt_template(cls, v: str) -> str:
        for name in placeholders_in(v):
            if name not in SPEC_PROMPT_PLACEHOLDERS:
                known = ", ".join("{" + p + "}" for p in SPEC_PROMPT_PLACEHOLDERS)
                raise ValueError(f"unknown placeholder {{{name}}} (known: {known})")
        return v

    def spec_path(self, task_id: str) -> str:
        return self.path.replace("{id}", task_id)


NotifyOn = Literal[
    "failed", "rejected", "exhausted", "budget", "rate_limited", "merged", "converged"
]


class Notify(SpecModel):
    """`notify`: a command told about what needs a person (the event as JSON on stdin)."""

    command: Annotated[list[str], Field(min_length=1)] = Field(
        description="argv of the command (never a shell string); it gets one event as JSON on "
        "stdin, e.g. [notify-send, orchestrator] or [curl, -sS, --data-binary, '@-', URL].",
    )
    on: list[NotifyOn] = Field(
        default_factory=lambda: ["rejected", "exhausted", "budget", "rate_limited", "converged"],
        description="Which events: failed (an attempt failed; it may be retried), rejected (a "
        "merge refused: outside the write scope), exhausted (a task's retries are used up), "
        "budget and rate_limited (the controller's budget and rate-limit events), merged (a "
        "task landed), converged (everything in the backlog is merged).",
    )
    timeout: PositiveDuration = Field(
        default=10.0,
        description="A notification still running after this long is killed (and logged).",
    )

    @field_validator("command", mode="before")
    @classmethod
    def _not_a_shell_string(cls, v: object) -> object:
        return check_argv(v, "notify.command", "[notify-send, orchestrator]")

    @field_validator("command")
    @classmethod
    def _program_given(cls, argv: list[str]) -> list[str]:
        if not argv[0].strip():
            raise ValueError("the program (first argv element) must not be empty")
        return argv


class Identity(SpecModel):
    """`mergeAuthor`: a git identity, the author of the controller's merge commits."""

    name: Annotated[str, Field(min_length=1, pattern=r"^[^<>\n]+$")] = Field(
        description="The author's name, as in `git config user.name`."
    )
    email: Annotated[str, Field(min_length=3, pattern=r"^[^\s<>@]+@[^\s<>@]+$")] = Field(
        description="The author's email address, as in `git config user.email`."
    )
