"""Agents in the spec: how one starts (a `command`, or a `preset` the orchestrator knows),
what it may spend (`budget`), and how its worktree is prepared (`copy`, `setup`, `ports`).

A preset is a real agent CLI whose argv, prompt channel and output format the orchestrator
knows and tests against the real binary (`docs/agents.md`); `command` runs anything else.
Nothing here touches the disk: `program` is resolved by the loader and the launcher.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Annotated, Literal

from pydantic import (
    AfterValidator,
    Discriminator,
    Field,
    Tag,
    ValidationInfo,
    field_validator,
    model_validator,
)

from controller.model.fields import (
    CommandArg,
    EnvName,
    Glob,
    LogLimit,
    PositiveDuration,
    SpecModel,
    check_argv,
    placeholders_in,
    schema_without_null,
)
from controller.model.ratelimit import OFF, RateLimit, default_rate_limit


@dataclass(frozen=True)
class Preset:
    """What the orchestrator knows about one agent CLI."""

    name: str
    program: str  # the binary, looked up on PATH unless the agent's `program` says otherwise
    argv: tuple[str, ...]  # after the program, before the agent's `args`
    stream: str  # the output format the shim reads (`act.runners.agent_stream`)
    install: str  # how to get the binary, for the message when it is missing
    # environment while the fleet handles its rate limits (not `rateLimit: off`); the
    # agent's `env` overrides it
    rate_limited_env: tuple[tuple[str, str], ...] = ()
    # its own folders, per attempt: environment variable -> folder under the attempt's home
    # in the state folder (RUNTIME: the short runtime folder, for sockets)
    folders: tuple[tuple[str, str], ...] = ()


RUNTIME = "<runtime>"


# Why this permission mode (docs/agents.md, measured with Claude Code 2.1.332 as root):
# `-p` alone refuses every Write (exit 0, nothing changed); `acceptEdits` lets it edit files
# inside its working directory (the worktree) but refuses Bash commands such as tests or git;
# `--allowedTools Bash` adds those. Edits outside the worktree stay refused, and show up as
# `permission_denials`, which fail the attempt. `bypassPermissions` is refused for root.
CLAUDE_CODE = Preset(
    name="claude-code",
    program="claude",
    argv=(
        "-p",
        "--output-format",
        "stream-json",
        "--verbose",
        "--permission-mode",
        "acceptEdits",
        "--allowedTools",
        "Bash",
    ),
    stream="claude-code",
    install="npm install -g @anthropic-ai/claude-code",
    # Claude Code retries a 429 itself, 10 times by default with waits up to 32 s (more
    # with a long retry-after). Under the fleet's limiter one retry is kept: its
    # `api_retry` line tells the fleet how long the server asked to wait, and a run still
    # limited after it ends and is re-queued, for free, once the provider resumes
    # (measured in bench/rate_limits.py, docs/agents.md#rate-limits).
    rate_limited_env=(("CLAUDE_CODE_MAX_RETRIES", "1"),),
    folders=(
        ("CLAUDE_CONFIG_DIR", "config"),
        ("CLAUDE_CODE_TMPDIR", "tmp"),
        ("TMPDIR", "tmp"),
        ("XDG_RUNTIME_DIR", RUNTIME),
    ),
)
# The Codex CLI, tested the same way (docs/agents.md): `codex exec --json` reads the prompt on
# stdin when none is given; the `workspace-write` sandbox lets it run commands without asking
# and write in its working directory (the worktree) and $TMPDIR (the attempt's own); /tmp,
# writable there by default, is taken out (measured: tests/e2e/test_codex.py).
CODEX = Preset(
    name="codex",
    program="codex",
    argv=(
        "exec",
        "--json",
        "--sandbox",
        "workspace-write",
        "-c",
        "sandbox_workspace_write.exclude_slash_tmp=true",
    ),
    stream="codex",
    install="npm install -g @openai/codex",
    folders=(("CODEX_HOME", "codex"), ("TMPDIR", "tmp")),
)
PRESETS: dict[str, Preset] = {p.name: p for p in (CLAUDE_CODE, CODEX)}
PresetName = Literal["claude-code", "codex"]
EXAMPLE = '[claude, -p, "{prompt}"]'


def _rate_limit_kind(value: object) -> str:
    return "off" if value is False or value == OFF else "settings"


# `rateLimit: {...}` or `rateLimit: off`: the tag picks the branch, so a mistake in the
# settings is reported alone (not next to "must be 'off'"); the loader drops the tag
RateLimitSetting = Annotated[
    Annotated[RateLimit, Tag("settings")] | Annotated[Literal["off", False], Tag("off")],
    Discriminator(_rate_limit_kind),
]


class Budget(SpecModel):
    """A spending cap in US dollars, over everything recorded in the state folder."""

    usd: float = Field(
        ge=0,
        description="once the attempts covered have spent this much (USD), nothing new starts",
    )
    hard: bool = Field(
        default=False,
        description="also stop running attempts once the budget is spent (their work is "
        "snapshotted); by default running attempts finish",
    )


class PortRange(SpecModel):
    """Ports handed out to running attempts, one each (`{port}`, `ORCHESTRATOR_PORT`)."""

    first: int = Field(alias="from", ge=1, le=65535, description="the lowest port handed out")
    last: int = Field(alias="to", ge=1, le=65535, description="the highest port handed out")

    @model_validator(mode="after")
    def _ordered(self) -> PortRange:
        if self.first > self.last:
            raise ValueError(f"'from' ({self.first}) must not exceed 'to' ({self.last})")
        return self

    @property
    def size(self) -> int:
        return self.last - self.first + 1


def _relative_file(path: str) -> str:
    """A path inside the repository: relative, no `..`, no empty or `.git` parts."""
    parts = PurePosixPath(path).parts
    if not path or path.startswith("/") or "\\" in path:
        raise ValueError(f"{path!r} must be a relative path inside the repository, with '/'")
    if any(p in ("..", ".git") for p in parts) or path.endswith("/"):
        raise ValueError(f"{path!r} must name a file inside the repository (no '..' or .git)")
    return path


RelativeFile = Annotated[str, AfterValidator(_relative_file)]


def _no_prompt(argv: list[str], what: str) -> list[str]:
    for arg in argv:
        if "prompt" in placeholders_in(arg):
            raise ValueError(
                f"{{prompt}} is not allowed in {what}: the prompt goes in on stdin "
                "(never in argv, where a long prompt fails with 'Argument list too long')"
            )
    return argv


class Agent(SpecModel):
    command: Annotated[list[CommandArg], Field(min_length=1)] | None = Field(
        default=None,
        json_schema_extra=schema_without_null,
        description="argv of any agent program (placeholders: {task}, {title}, {prompt}, "
        "{worktree}, {branch}, {attempt}, {port}); give this or `preset`",
    )
    preset: PresetName | None = Field(
        default=None,
        json_schema_extra=schema_without_null,
        description="an agent CLI the orchestrator knows: claude-code (Claude Code in print "
        "mode, the prompt on stdin, its cost read from its stream) or codex (`codex exec`, "
        "its tokens read from its stream); give this or `command`",
    )
    program: Annotated[str, Field(min_length=1)] | None = Field(
        default=None,
        json_schema_extra=schema_without_null,
        description="the preset's binary (default: `claude` or `codex` on PATH); a path with "
        "'/' is relative to the spec file's folder",
    )
    args: list[CommandArg] = Field(
        default_factory=list,
        description="extra argv after the preset's own, e.g. [--model, claude-sonnet-4-5]",
    )
    owns: list[Glob] = Field(
        default_factory=list,
        description="Globs of the files its tasks may change (a task's `paths` narrows it); a "
        "merge that changes anything else is rejected.",
    )
    env: dict[EnvName, str] = Field(
        default_factory=dict,
        description="Environment variables set for the agent (not for secrets: `passEnv`).",
    )
    timeout: PositiveDuration | None = Field(
        None, description="Per attempt of its tasks (default: the top-level `timeout`)."
    )
    max_parallel: Annotated[int, Field(ge=1)] | None = Field(
        None, description="At most this many of its tasks at once."
    )
    resources: AgentResources | None = Field(
        None, description="What one attempt needs on a Ray cluster's node."
    )
    # --- security: secrets stay out of the spec and out of Ray job listings (issue 16) ----
    pass_env: list[EnvName] = Field(
        default_factory=list,
        description="Names of environment variables the agent gets from where it runs (for "
        "secrets such as API keys): the local runner passes the controller's value, the Ray "
        "runner the worker's own; the value is never written into the spec, the state folder "
        "or a Ray job's entrypoint. Unlike `env:` values, which a Ray cluster shows to anyone "
        "who can list its jobs.",
    )
    # -- caps (docs/security.md) --
    log_limit: LogLimit | None = Field(
        default=None,
        description="Largest size of one attempt's log for this agent (overrides the "
        "top-level logLimit); older output is dropped, the end kept. E.g. 50MB, 512KB.",
    )
    allow_empty: bool = Field(
        default=False,
        description="an attempt that changes nothing may merge (a read-only agent); by "
        "default it fails with reason 'no changes'",
    )
    budget: Budget | None = Field(
        default=None,
        json_schema_extra=schema_without_null,
        description="what all attempts of this agent's tasks may spend",
    )
    copy_files: list[RelativeFile] = Field(
        default_factory=list,
        alias="copy",
        description="files copied from the main checkout into the worktree before an attempt "
        "when missing there (git-ignored ones too, e.g. .env); symlinks are refused",
    )
    setup: Annotated[list[CommandArg], Field(min_length=1)] | None = Field(
        default=None,
        json_schema_extra=schema_without_null,
        description="argv run in the worktree before each attempt's agent, e.g. [uv, sync]; "
        "its failure fails the attempt ('setup failed')",
    )
    ports: PortRange | None = Field(
        default=None,
        json_schema_extra=schema_without_null,
        description="each running attempt gets a free port of its own from this range, as "
        "{port} and $ORCHESTRATOR_PORT",
    )
    rate_limit: RateLimitSetting | None = Field(
        default=None,
        json_schema_extra=schema_without_null,
        description="how a rate limit shows (command agents: exitCodes, patterns) and how "
        "the fleet backs off from it: nothing new starts for the provider until the wait is "
        "over, and its concurrency halves, then climbs back; `off`: each agent retries on "
        "its own (on by default)",
    )

    @field_validator("command", "setup", "args", mode="before")
    @classmethod
    def _not_a_shell_string(cls, v: object, info: ValidationInfo) -> object:
        example = {"setup": "[uv, sync]", "args": "[--model, claude-sonnet-4-5]"}
        return check_argv(v, info.field_name or "argv", example.get(info.field_name or "", EXAMPLE))

    @field_validator("command")
    @classmethod
    def _program_given(cls, argv: list[str] | None) -> list[str] | None:
        if argv is not None and not argv[0].strip():
            raise ValueError("the program (first argv element) must not be empty")
        return argv

    @field_validator("args")
    @classmethod
    def _args_without_prompt(cls, argv: list[str]) -> list[str]:
        return _no_prompt(argv, "a preset's args")

    @field_validator("setup")
    @classmethod
    def _setup_without_prompt(cls, argv: list[str] | None) -> list[str] | None:
        return None if argv is None else _no_prompt(argv, "setup")

    @model_validator(mode="after")
    def _one_way_to_start(self) -> Agent:
        if (self.command is None) == (self.preset is None):
            raise ValueError(
                "give exactly one of `command` (any program) or `preset` (claude-code, codex)"
            )
        if self.command is not None and (self.program is not None or self.args):
            raise ValueError("`program` and `args` go with `preset`; put them in `command`")
        if self.ports is None and any("port" in placeholders_in(a) for a in self.argvs()):
            raise ValueError("{port} needs `ports: {from: N, to: M}` on the agent")
        return self

    def argvs(self) -> list[str]:
        """Every argv element of the agent that placeholders may fill."""
        return [*(self.command or ()), *self.args, *(self.setup or ())]

    @property
    def rate_limits(self) -> RateLimit | None:
        """The agent's rate-limit settings; None when the fleet's handling is `off`."""
        if self.rate_limit is False or self.rate_limit == OFF:
            return None
        return self.rate_limit if isinstance(self.rate_limit, RateLimit) else default_rate_limit()

    def provider(self, name: str) -> str | None:
        """What rate limit agent `name` shares (see `model.ratelimit`); None when `off`."""
        limits = self.rate_limits
        if limits is None:
            return None
        return limits.provider or self.preset or name

    @property
    def preset_info(self) -> Preset | None:
        return PRESETS[self.preset] if self.preset else None

    def program_path(self, base_dir: Path) -> str | None:
        """The preset's binary: a path (with '/') joined to `base_dir`, else a name that
        is looked up on PATH; None for a `command` agent."""
        preset = self.preset_info
        if preset is None:
            return None
        program = self.program or preset.program
        if "/" not in program:
            return program
        return os.path.normpath(base_dir / os.path.expanduser(program))


class AgentResources(SpecModel):
    """What one agent needs on a cluster node (the Ray runner's entrypoint resources)."""

    cpus: Annotated[float, Field(gt=0, le=1024)] | None = Field(
        None, description="CPUs one attempt reserves on the cluster."
    )
    memory_mb: Annotated[int | None, Field(gt=0, alias="memoryMB")] = Field(
        None, description="Memory one attempt reserves on the cluster, in MB."
    )


Agent.model_rebuild()
