"""Checks across fields of a spec: ids, agents, dependencies, cycles, scopes.

Each check is a pure function of the validated `Spec` that yields `(field path, message)`;
`semantic_problems` locates them in the YAML file. Tasks that came from a ROADMAP (see
`backlog_sources`) are located in the markdown file instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from controller.core.graph import find_cycles
from controller.model.globs import glob_within
from controller.model.problems import Loc, Problem, did_you_mean, format_path
from controller.model.spec import Spec
from controller.specfile.sources import locate_task_finding
from controller.specfile.yaml_tree import Locator

Finding = tuple[Loc, str]
# the composed prompt adds notes (scope, the last failure) to the task's own: keep room
ARGV_PROMPT_MAX = 100 * 1024


def duplicate_ids(spec: Spec) -> Iterator[Finding]:
    first: dict[str, int] = {}
    for i, task in enumerate(spec.backlog):
        if task.id in first:
            yield (
                ("backlog", i, "id"),
                f"duplicate task id '{task.id}' (also backlog[{first[task.id]}])",
            )
        else:
            first[task.id] = i


def unknown_agents(spec: Spec) -> Iterator[Finding]:
    names = sorted(spec.agents)
    for i, task in enumerate(spec.backlog):
        if task.agent not in spec.agents:
            hint = did_you_mean(task.agent, names) or f" (known: {', '.join(names)})"
            yield ("backlog", i, "agent"), f"unknown agent '{task.agent}'{hint}"
    if spec.backlog_from and spec.backlog_from.agent not in spec.agents:
        name = spec.backlog_from.agent
        hint = did_you_mean(name, names) or f" (known: {', '.join(names)})"
        yield ("backlogFrom", "agent"), f"unknown agent '{name}'{hint}"


def bad_dependencies(spec: Spec) -> Iterator[Finding]:
    ids = [t.id for t in spec.backlog]
    known = set(ids) | spec.completed
    for i, task in enumerate(spec.backlog):
        for j, dep in enumerate(task.depends_on):
            loc = ("backlog", i, "dependsOn", j)
            if dep == task.id:
                yield loc, f"task '{task.id}' depends on itself"
            elif dep not in known:
                yield loc, f"unknown dependency '{dep}'{did_you_mean(dep, ids)}"


def dependency_cycles(spec: Spec) -> Iterator[Finding]:
    graph = {t.id: list(t.depends_on) for t in spec.backlog}
    index = {t.id: i for i, t in enumerate(spec.backlog)}
    for cycle in find_cycles(graph):
        yield ("backlog", index[cycle[0]], "dependsOn"), "dependency cycle: " + " -> ".join(cycle)


def scopes_outside_owns(spec: Spec) -> Iterator[Finding]:
    for i, task in enumerate(spec.backlog):
        agent = spec.agents.get(task.agent)
        if agent is None or task.paths is None:
            continue
        for j, pattern in enumerate(task.paths):
            if not glob_within(pattern, agent.owns):
                owns = ", ".join(agent.owns) or "nothing (read-only agent)"
                yield (
                    ("backlog", i, "paths", j),
                    f"'{pattern}' is outside what agent '{task.agent}' owns ({owns})",
                )


def prompts_for_argv(spec: Spec) -> Iterator[Finding]:
    """A prompt too long to pass as `{prompt}` in a command (it would validate, then fail
    with "Argument list too long" at launch)."""
    for i, task in enumerate(spec.backlog):
        agent = spec.agents.get(task.agent)
        if agent is None or not any("{prompt}" in arg for arg in agent.command or ()):
            continue
        size = len(task.prompt.encode("utf-8", "surrogateescape"))
        if size > ARGV_PROMPT_MAX:
            yield (
                ("backlog", i, "prompt"),
                f"this prompt is {size // 1024} KiB, too long to pass as {{prompt}} in "
                f"agents.{task.agent}.command (at most {ARGV_PROMPT_MAX // 1024} KiB): leave "
                "{prompt} out and read the prompt from stdin or $ORCHESTRATOR_PROMPT_FILE, "
                "or use `preset: claude-code`",
            )


def local_only_features(spec: Spec) -> Iterator[Finding]:
    """What the Ray runner does not support yet: presets and worktree preparation."""
    if spec.runner.kind != "ray":
        return
    for name, agent in spec.agents.items():
        for key, used in (
            ("preset", agent.preset),
            ("copy", agent.copy_files),
            ("setup", agent.setup),
        ):
            if used:
                yield ("agents", name, key), f"`{key}` needs the local runner (runner kind ray)"


def verify_gate(spec: Spec) -> Iterator[Finding]:
    if spec.verify is not None and not spec.verify[0].strip():
        yield ("verify", 0), "the verify program must not be empty"


CHECKS: tuple[Callable[[Spec], Iterator[Finding]], ...] = (
    duplicate_ids,
    unknown_agents,
    bad_dependencies,
    dependency_cycles,
    scopes_outside_owns,
    verify_gate,
    prompts_for_argv,
    local_only_features,
)


def findings(spec: Spec) -> list[Finding]:
    return [f for check in CHECKS for f in check(spec)]


def semantic_problems(spec: Spec, locator: Locator, source: str) -> list[Problem]:
    problems = []
    for loc, message in findings(spec):
        located = locate_task_finding(spec, loc)
        if located is not None:
            file, line, col = located
        else:
            file, (line, col) = source, locator.locate(loc)
        problems.append(Problem(file, line, col, format_path(loc), message))
    return problems
