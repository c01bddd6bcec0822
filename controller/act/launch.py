"""What an agent is started with: its argv (placeholders filled), environment and files.

A pure function of the spec, the task, the attempt and where its worktree is; the runner
decides how to start it. Task fields only ever become whole argv elements and environment
values, never text a shell would parse.
"""

from __future__ import annotations

from pathlib import Path

from controller.act.runners.base import LaunchRequest
from controller.model.names import agent_committer, branch_for
from controller.model.spec import Spec, Task
from controller.state.paths import StatePaths


def launch_request(
    spec: Spec,
    paths: StatePaths,
    task: Task,
    n: int,
    worktree: Path,
    conflicts: tuple[str, ...],
    base: str | None = None,
    fresh: bool = False,
) -> LaunchRequest:
    agent = spec.agents[task.agent]
    resources = agent.resources
    branch = branch_for(task.id)
    values = {
        "task": task.id,
        "title": task.display_title,
        "prompt": task.prompt,
        "worktree": str(worktree),
        "branch": branch,
        "attempt": str(n),
    }
    argv = tuple(arg.format_map(values) for arg in agent.command)
    progress = paths.progress_file(task.id, n)
    identity = {k: v for k, v in agent_committer(task.id).items() if k not in agent.pass_env}
    env = {
        "ORCHESTRATOR_TASK": task.id,
        "ORCHESTRATOR_TITLE": task.display_title,
        "ORCHESTRATOR_PROMPT": task.prompt,
        "ORCHESTRATOR_ATTEMPT": str(n),
        "ORCHESTRATOR_WORKTREE": str(worktree),
        "ORCHESTRATOR_BRANCH": branch,
        "ORCHESTRATOR_PROGRESS_FILE": str(progress),
        "ORCHESTRATOR_CONFLICTS": "\n".join(conflicts),
    }
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
        agent_env={**identity, **agent.env},
        pass_env=tuple(agent.pass_env),
        log_limit=spec.log_limit_of(task),
        state_root=paths.root,
        command=tuple(agent.command),
        placeholders={k: v for k, v in values.items() if k != "worktree"},
    )
