"""The spec backlog: specifications written ahead of the implementation (`specBacklog`).

A pure expansion of the spec's backlog, as a function of (spec, observed facts):

- every backlog task of the agents in `forAgents` (default: all but the spec agent) whose
  specification file (`path` with its id) is not on the integration branch, and that has not
  started, gets a generated task `<id>-spec` placed just before it: run by the spec agent,
  its scope that one file, its prompt from the template. The task then depends on it;
- a generated task that has any history (attempts, a worktree, a branch, a merge) stays, so
  it is shown, merged and pruned like any other; once its file is on the integration branch
  (it merged, or someone wrote it), the task no longer waits for it;
- removing `specBacklog` removes the generated tasks: the usual rules for a task that left
  the spec apply (its agent stopped, its worktree pruned with uncommitted work archived, its
  branch kept). Nothing is lost.

How far ahead the spec agent may run is a start rule (`gates.spec_ahead`, using `ahead`).
"""

from __future__ import annotations

from controller.model.observed import Observed
from controller.model.spec import Spec, SpecBacklog, Task

SUFFIX = "-spec"


def spec_task_id(task_id: str) -> str:
    return f"{task_id}{SUFFIX}"


def eligible(sb: SpecBacklog, task: Task) -> bool:
    """Whether `task` gets a specification first."""
    if sb.for_agents is not None:
        return task.agent in sb.for_agents
    return task.agent != sb.agent


def spec_paths(spec: Spec) -> list[str]:
    """The specification files of the spec's tasks (to look up on the integration branch)."""
    sb = spec.spec_backlog
    if sb is None:
        return []
    return [sb.spec_path(t.id) for t in spec.backlog if eligible(sb, t)]


def _spec_task(sb: SpecBacklog, task: Task, path: str) -> Task:
    prompt = sb.prompt.format(id=task.id, title=task.display_title, prompt=task.prompt, path=path)
    return Task.model_validate(
        {
            "id": spec_task_id(task.id),
            "agent": sb.agent,
            "title": f"Specification of {task.display_title}",
            "prompt": prompt,
            "paths": [path],
        }
    )


def expand(spec: Spec, observed: Observed) -> Spec:
    """`spec` with the generated specification tasks in its backlog (see the module doc)."""
    sb = spec.spec_backlog
    if sb is None:
        return spec
    ids = {t.id for t in spec.backlog}
    history = (
        set(observed.attempts)
        | set(observed.worktrees)
        | set(observed.branches)
        | set(observed.merged_tasks)
    )
    backlog: list[Task] = []
    generated: dict[str, str] = {}
    for task in spec.backlog:
        if not eligible(sb, task):
            backlog.append(task)
            continue
        sid, path = spec_task_id(task.id), sb.spec_path(task.id)
        present = path in observed.present_paths
        needed = not (
            present
            or task.paused
            or task.id in observed.merged_tasks
            or task.id in spec.completed
            or observed.attempts.get(task.id)
        )
        update: dict[str, object] = {"prompt": f"{task.prompt}\n\nSpecification: {path}".lstrip()}
        if sid not in ids and (needed or sid in history):
            backlog.append(_spec_task(sb, task, path))
            generated[sid] = task.id
            if not present and sid not in task.depends_on:
                update["depends_on"] = [*task.depends_on, sid]
        backlog.append(task.model_copy(update=update))
    expanded = spec.model_copy(update={"backlog": backlog})
    expanded._generated = generated
    return expanded


def specs_ahead(
    spec: Spec, done: set[str] | frozenset[str], started: set[str] | frozenset[str]
) -> list[str]:
    """Generated specification tasks that are ahead of their implementation: written or being
    written (`started`: running, finished, retrying, or admitted this pass; `done`: merged)
    while the task they serve is not merged."""
    return [
        sid
        for sid, task_id in spec.generated.items()
        if task_id not in done and (sid in done or sid in started)
    ]
