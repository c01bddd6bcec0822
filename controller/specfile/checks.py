"""Checks across fields of a spec: ids, agents, dependencies, cycles, scopes, specBacklog.

Each check is a pure function of the validated `Spec` that yields `(field path, message)`;
`semantic_problems` locates them in the YAML file. Tasks that came from a ROADMAP (see
`backlog_sources`) are located in the markdown file instead.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from controller.core.graph import find_cycles
from controller.core.specbacklog import eligible, spec_task_id
from controller.model.globs import glob_within
from controller.model.names import task_id_problem
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


def env_given_twice(spec: Spec) -> Iterator[Finding]:
    """A variable both set (`env:`) and passed through (`passEnv:`): which one wins?"""
    pairs: list[tuple[Loc, dict[str, str], list[str]]] = [
        (("verifyPassEnv",), spec.verify_env, spec.verify_pass_env)
    ]
    pairs += [(("agents", n, "passEnv"), a.env, a.pass_env) for n, a in spec.agents.items()]
    for loc, values, names in pairs:
        for j, name in enumerate(names):
            if name in values:
                where = "verifyEnv" if loc == ("verifyPassEnv",) else "env"
                yield (*loc, j), f"{name} is also set in {where}: give it in one place only"


def spec_backlog_problems(spec: Spec) -> Iterator[Finding]:
    """specBacklog: its agents exist, its file is the spec agent's to write, and the ids of
    the tasks it would generate are free and valid."""
    sb = spec.spec_backlog
    if sb is None:
        return
    names = sorted(spec.agents)
    agent = spec.agents.get(sb.agent)
    if agent is None:
        hint = did_you_mean(sb.agent, names) or f" (known: {', '.join(names)})"
        yield ("specBacklog", "agent"), f"unknown agent '{sb.agent}'{hint}"
    for j, name in enumerate(sb.for_agents or ()):
        if name not in spec.agents:
            hint = did_you_mean(name, names) or f" (known: {', '.join(names)})"
            yield ("specBacklog", "forAgents", j), f"unknown agent '{name}'{hint}"
    sample = sb.spec_path("x")
    if agent is not None and not glob_within(sample, agent.owns):
        owns = ", ".join(agent.owns) or "nothing (read-only agent)"
        yield (
            ("specBacklog", "path"),
            f"'{sb.path}' is outside what agent '{sb.agent}' owns ({owns}): it could not write it",
        )
    ids = {t.id: i for i, t in enumerate(spec.backlog)}
    for i, task in enumerate(spec.backlog):
        if not eligible(sb, task):
            continue
        sid = spec_task_id(task.id)
        problem = task_id_problem(sid)
        if sid in ids:
            yield (
                ("backlog", ids[sid], "id"),
                f"task id '{sid}' is the id specBacklog generates for '{task.id}': rename one",
            )
        elif problem:
            yield ("backlog", i, "id"), f"specBacklog cannot name its task: {problem}"


SECRET_WORDS = ("KEY", "TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL")


def looks_secret(name: str) -> bool:
    upper = name.upper()
    return any(word in upper for word in SECRET_WORDS)


def secrets_in_ray_env(spec: Spec) -> Iterator[Finding]:
    """Warnings: with the Ray runner, `env:` values are visible to anyone who lists jobs."""
    if spec.runner.kind != "ray":
        return
    for name, agent in spec.agents.items():
        for var in agent.env:
            if looks_secret(var):
                yield (
                    ("agents", name, "env", var),
                    f"{var} looks like a secret: with the Ray runner, env values are shown to "
                    "anyone who can list the cluster's jobs (runtime_env); use "
                    f"passEnv: [{var}] and set it on the workers instead",
                )


CHECKS: tuple[Callable[[Spec], Iterator[Finding]], ...] = (
    duplicate_ids,
    unknown_agents,
    bad_dependencies,
    dependency_cycles,
    scopes_outside_owns,
    verify_gate,
    env_given_twice,
    prompts_for_argv,
    local_only_features,
    spec_backlog_problems,
)
WARNINGS: tuple[Callable[[Spec], Iterator[Finding]], ...] = (secrets_in_ray_env,)


def findings(spec: Spec) -> list[Finding]:
    return [f for check in CHECKS for f in check(spec)]


def semantic_problems(spec: Spec, locator: Locator, source: str) -> list[Problem]:
    return located(findings(spec), spec, locator, source)


def semantic_warnings(spec: Spec, locator: Locator, source: str) -> list[Problem]:
    """Located findings that do not invalidate the spec."""
    return located([f for check in WARNINGS for f in check(spec)], spec, locator, source)


def located(found: list[Finding], spec: Spec, locator: Locator, source: str) -> list[Problem]:
    problems = []
    for loc, message in found:
        located = locate_task_finding(spec, loc)
        if located is not None:
            file, line, col = located
        else:
            file, (line, col) = source, locator.locate(loc)
        problems.append(Problem(file, line, col, format_path(loc), message))
    return problems
