"""What an agent is started with: its argv (placeholders filled), environment and files.

`launch_request` is a pure function of the spec, the task, the attempt, its composed prompt
and where its worktree is; the runner decides how to start it. Task fields only ever become
whole argv elements and environment values, never text a shell would parse.

The prompt is written to a file here (mode 0600), named by `$ORCHESTRATOR_PROMPT_FILE`, and
reaches the agent once: on stdin, or as `{prompt}` in a `command` whose argv has it (stdin
is then /dev/null). A `preset` always takes it on stdin. An argv element too long for the
system (Linux allows 128 KiB) is refused with a clear reason. `$ORCHESTRATOR_PROMPT` holds
the task's own prompt (not the composed one) for scripts, and is left out above
`ENV_PROMPT_MAX` bytes.
"""

from __future__ import annotations

import os
from pathlib import Path

from controller.act.runners.base import LaunchRequest
from controller.core.prompt import tail
from controller.model.agent import RUNTIME, Agent
from controller.model.fields import placeholders_in
from controller.model.names import agent_committer, branch_for
from controller.model.spec import Spec, Task
from controller.state import files
from controller.state.paths import StatePaths

ARG_MAX_BYTES = 128 * 1024 - 1  # Linux MAX_ARG_STRLEN, the trailing NUL excluded
ENV_PROMPT_MAX = 32 * 1024
BANNER = "===== orchestrator"


# the folders a preset's agent keeps its own files in (created 0700 before it starts)
AGENT_FOLDERS = (
    "CLAUDE_CONFIG_DIR",
    "CLAUDE_CODE_TMPDIR",
    "XDG_RUNTIME_DIR",
    "CODEX_HOME",
    "TMPDIR",
)


def _argv(spec: Spec, agent: Agent, values: dict[str, str]) -> tuple[str, ...]:
    preset = agent.preset_info
    if preset is None:
        argv = tuple(arg.format_map(values) for arg in agent.command or ())
    else:
        program = agent.program_path(spec.locations.base_dir) or preset.program
        argv = (program, *preset.argv, *(arg.format_map(values) for arg in agent.args))
    for arg in argv:
        size = len(arg.encode("utf-8", "surrogateescape"))
        if size > ARG_MAX_BYTES:
            raise ValueError(
                f"an argv element of {size // 1024} KiB is too long for the system (at most "
                "128 KiB): pass the prompt on stdin ({prompt} left out of `command`, or "
                "a `preset`) or read $ORCHESTRATOR_PROMPT_FILE"
            )
    return argv


def _prompt_in_argv(agent: Agent) -> bool:
    """The prompt goes in once: as `{prompt}` when the command has it, else on stdin."""
    return any("prompt" in placeholders_in(arg) for arg in agent.command or ())


def preset_env(agent: Agent, home: Path, runtime: Path) -> dict[str, str]:
    """A preset agent's own folders for one attempt, inside the state folder: its config
    (credentials, sessions, transcripts), temp files and runtime socket never touch the
    user's ~/.claude or /tmp, and concurrent attempts never share them. Plus what the
    preset needs while the fleet handles its rate limits (`Preset.rate_limited_env`)."""
    preset = agent.preset_info
    if preset is None:
        return {}
    fleet = dict(preset.rate_limited_env) if agent.rate_limits is not None else {}
    own = {env: str(runtime if sub == RUNTIME else home / sub) for env, sub in preset.folders}
    return {
        **own,
        "DISABLE_AUTOUPDATER": "1",  # a fleet runs the version installed, unchanged
        **fleet,  # e.g. few retries of its own while the fleet backs off together
    }


def _env(
    agent: Agent,
    paths: StatePaths,
    task: Task,
    n: int,
    values: dict[str, str],
    conflicts: tuple[str, ...],
) -> dict[str, str]:
    """What the orchestrator tells the agent (`ORCHESTRATOR_*`); it wins over the agent's own
    environment (`agent_env`: a preset's folders, the committer identity, the spec's `env`)."""
    env = {
        "ORCHESTRATOR_TASK": task.id,
        "ORCHESTRATOR_TITLE": task.display_title,
        "ORCHESTRATOR_ATTEMPT": str(n),
        "ORCHESTRATOR_WORKTREE": values["worktree"],
        "ORCHESTRATOR_BRANCH": values["branch"],
        "ORCHESTRATOR_PROGRESS_FILE": str(paths.progress_file(task.id, n)),
        "ORCHESTRATOR_PROMPT_FILE": str(paths.prompt_file(task.id, n)),
        "ORCHESTRATOR_USAGE_FILE": str(paths.usage_file(task.id, n)),
        "ORCHESTRATOR_CONFLICTS": "\n".join(conflicts),
    }
    if len(task.prompt.encode("utf-8", "surrogateescape")) <= ENV_PROMPT_MAX:
        env["ORCHESTRATOR_PROMPT"] = task.prompt
    if values["port"]:
        env["ORCHESTRATOR_PORT"] = values["port"]
    return env


def _placeholder_values(
    task: Task, n: int, worktree: Path, prompt: str, port: int | None
) -> dict[str, str]:
    """What the placeholders of an agent's command stand for in this attempt."""
    return {
        "task": task.id,
        "title": task.display_title,
        "prompt": prompt,
        "worktree": str(worktree),
        "branch": branch_for(task.id),
        "attempt": str(n),
        "port": "" if port is None else str(port),
    }


def launch_request(
    spec: Spec,
    paths: StatePaths,
    task: Task,
    n: int,
    worktree: Path,
    conflicts: tuple[str, ...],
    base: str | None = None,
    fresh: bool = False,
    *,
    prompt: str = "",
    port: int | None = None,
) -> LaunchRequest:
    agent = spec.agents[task.agent]
    resources = agent.resources
    branch = branch_for(task.id)
    values = _placeholder_values(task, n, worktree, prompt, port)
    argv = _argv(spec, agent, values)
    progress = paths.progress_file(task.id, n)
    env = _env(agent, paths, task, n, values, conflicts)
    # what the agent runs with besides ours: a preset's own folders, the committer identity
    # (unless passed through from where it runs), then the spec's `env` values
    identity = {k: v for k, v in agent_committer(task.id).items() if k not in agent.pass_env}
    own = preset_env(agent, paths.agent_home(task.id, n), paths.agent_runtime(task.id, n))
    setup = tuple(arg.format_map(values) for arg in agent.setup) if agent.setup else None
    preset = agent.preset_info
    return LaunchRequest(
        task=task.id,
        number=n,
        argv=argv,
        cwd=worktree,
        env=env,
        log_path=paths.task_log(task.id, n),
        start_record=paths.start_record(task.id, n),
        exit_record=paths.exit_record(task.id, n),
        progress_file=progress,
        timeout_s=spec.timeout_of(task),
        branch=branch,
        base_sha=base,
        fresh=fresh,
        cpus=resources.cpus if resources else None,
        memory_mb=resources.memory_mb if resources else None,
        agent_env={**own, **identity, **agent.env},
        pass_env=tuple(agent.pass_env),
        log_limit=spec.log_limit_of(task),
        state_root=paths.root,
        stdin_path=None if _prompt_in_argv(agent) else paths.prompt_file(task.id, n),
        setup=setup,
        setup_log=paths.setup_log(task.id, n) if setup else None,
        stream=preset.stream if preset else None,
        stream_record=paths.stream_record(task.id, n) if preset else None,
        command=tuple(agent.command or ()),
        placeholders={k: v for k, v in values.items() if k != "worktree"},
    )


def prepare_files(req: LaunchRequest, prompt: str, paths: StatePaths, header: str) -> None:
    """Before the runner starts the attempt: the prompt file (0600), the agent's own folders,
    no stale usage report, and the composed prompt shown at the top of the attempt's log.
    Every file is opened through `state.files`: an agent may have planted a symlink or a
    pipe anywhere in the state folder."""
    root = paths.root
    prompt_file = paths.prompt_file(req.task, req.number)
    files.write_atomic(root, prompt_file, prompt.encode("utf-8", "surrogateescape"))
    files.unlink(root, paths.usage_file(req.task, req.number))
    own = req.local_env({})
    folders = [Path(own[name]) for name in AGENT_FOLDERS if name in own]
    files.ensure_dirs(root, *(f for f in folders if f.is_relative_to(root)))
    size = len(prompt.encode("utf-8", "surrogateescape"))
    channel = "on stdin" if req.stdin_path is not None else "as {prompt}"
    text = (
        f"{BANNER}: {header}\n"
        f"{BANNER}: the prompt ({size} bytes, {channel}; {prompt_file}):\n"
        + (prompt if prompt.endswith("\n") else prompt + "\n")
        + f"{BANNER}: end of the prompt =====\n"
    )
    fd = files.open_file(root, req.log_path, os.O_WRONLY | os.O_APPEND)
    try:
        os.write(fd, text.encode("utf-8", "surrogateescape"))
    finally:
        os.close(fd)


def read_tail(root: Path, path: Path, max_bytes: int = 16 * 1024) -> str:
    """The end of a log in the state folder `root` (at most `max_bytes`, from a line start),
    or "" when unreadable (missing, or not a regular file)."""
    try:
        data = files.read_bytes(root, path, max_bytes, tail=True)
    except OSError:
        return ""
    text = data.decode("utf-8", "replace")
    return tail(text.split("\n", 1)[1] if len(data) == max_bytes and "\n" in text else text)
