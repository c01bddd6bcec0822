"""The commands that read or run the controller: validate, diff, reconcile, start, stop, demo,
import-roadmap, version.

Exit codes: 0 success, 1 error (nothing done), 2 `diff` has changes, 4 a one-shot
`reconcile` pass could not carry out an action.

Heavier modules (pydantic, rich, loguru, the layers below) are imported inside the commands
that need them, so that `--help` and `version` start fast (see cli.lazy, bench/startup.py).
"""

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from controller import __version__
from controller.cli.common import (
    DEFAULT_SPEC,
    MaxParallelOpt,
    MaxRetriesOpt,
    Output,
    OutputOpt,
    PollIntervalOpt,
    RepoOpt,
    SpecBacklogOpt,
    SpecOpt,
    err,
    fail,
    load,
    out,
    overrides_of,
    running_here,
)
from controller.cli.render import plan_lines, to_json
from controller.model.safe_text import shown

if TYPE_CHECKING:
    from controller.model.overrides import Overrides
    from controller.model.spec import Spec

ACTIONS_FAILED = 4  # a one-shot `reconcile` whose pass could not carry out an action


def validate(file: SpecOpt = DEFAULT_SPEC, output: OutputOpt = Output.text) -> None:
    """Check a spec: exit 0 when valid, 1 with file:line:col messages when not."""
    spec = load(file, output)
    if output is Output.json:
        warnings = [w.as_dict() for w in spec.warnings]
        data = {"valid": True, "problems": [], "warnings": warnings, "tasks": len(spec.backlog)}
        out.print(to_json(data))
        return
    out.print(
        f"{spec.source}: valid ({len(spec.agents)} agents, {len(spec.backlog)} tasks, "
        f"repo {spec.repo_path}, integration branch {spec.integration_branch})",
        markup=False,
    )


def diff(
    file: SpecOpt = DEFAULT_SPEC,
    output: OutputOpt = Output.text,
    repo: RepoOpt = None,
    waits: Annotated[bool, typer.Option(help="Show why the other tasks wait.")] = True,
    max_parallel: MaxParallelOpt = None,
    poll_interval: PollIntervalOpt = None,
    max_retries: MaxRetriesOpt = None,
    spec_backlog: SpecBacklogOpt = None,
) -> None:
    """Show what the next reconcile pass would do, without doing it.

    Plans with the running controller's command-line settings (its --max-parallel, ...),
    and with this command's own where given. Exit 0 when there is nothing to do, 2 when
    changes are pending, 1 on error.
    """
    from controller.views.cpu import OneShotCpu

    cpu = OneShotCpu()  # the host's load from now on, without this command's own CPU
    from dataclasses import replace

    from controller.core.plan import plan
    from controller.core.specbacklog import expand
    from controller.observe.clock import local_timezone
    from controller.observe.resources import published
    from controller.observe.world import observe_spec, open_store
    from controller.views.snapshot import running_overrides, runs_here

    given = overrides_of(max_parallel, poll_interval, max_retries, spec_backlog)
    spec = load(file, output, repo)
    running = running_overrides(spec)
    overrides = given.over(running)
    _check_overrides(overrides, spec)
    if running and output is Output.text:
        from controller.model.overrides import describe

        line = f"the running controller's settings: {describe(spec, running)}"
        err.print(shown(line), markup=False)
    spec = overrides.apply(spec)
    store = open_store(spec, readonly=True)
    now = time.time()
    try:
        observed = observe_spec(spec, store, None, now=now)
        # while a controller runs, plan with the load average it acts on
        load_now = published(store, now, spec.repo_path) if runs_here(spec) else None
    finally:
        if store is not None:
            store.close()
    observed = replace(observed, resources=load_now or cpu.sample(spec.repo_path))
    spec = expand(spec, observed)
    result = plan(spec, observed, now, tz=local_timezone())
    if output is Output.json:
        out.print(to_json(result.as_dict()))
    else:
        for line in plan_lines(result, show_waits=waits):
            out.print(line, markup=False)
    raise typer.Exit(2 if result.has_changes else 0)


def _check_overrides(overrides: "Overrides", spec: "Spec") -> None:
    problem = overrides.problem(spec)
    if problem:
        raise fail(problem)


def _run_controller(
    file: Path | None, repo: Path | None, watch: bool, output: Output, overrides: "Overrides"
) -> int:
    import sqlite3

    from controller.loop.controller import Controller
    from controller.model.overrides import describe
    from controller.state.lock import LockHeld
    from controller.state.store import StoreError

    spec = load(file, output, repo)
    _check_overrides(overrides, spec)
    echo = (
        (lambda line: None)
        if output is Output.json
        else (lambda line: out.print(shown(line), markup=False))
    )
    try:
        controller = Controller(
            spec.source, spec, repo_override=repo, echo=echo, overrides=overrides
        )
        with controller:
            if watch:
                echo(
                    f"watching {spec.source} (repo {spec.repo_path}, {len(spec.backlog)} tasks); "
                    "Ctrl-C or `orchestrator stop` drains and exits"
                )
                echo(f"settings: {describe(spec, overrides)}")
                return controller.watch()
            result = controller.reconcile_once()
            failures = list(controller.reconciler.failures)
    except StoreError as exc:
        raise fail(f"cannot use the state database: {exc}") from None
    except (sqlite3.OperationalError, OSError) as exc:
        raise fail(f"cannot use the state directory {spec.state_path}: {exc}") from None
    except LockHeld as exc:
        how = f" (`orchestrator stop -f {exc.spec}`)" if exc.spec else ""
        raise fail(f"{exc}; one controller per repository: stop it first{how}") from None
    if output is Output.json:
        out.print(to_json({**result.as_dict(), "failed": failures}))
    else:
        for line in plan_lines(result, show_waits=False):
            out.print(line, markup=False)
        if failures:
            n = len(failures)
            err.print(
                shown(f"{n} action{'s' if n != 1 else ''} failed: {'; '.join(failures)}"),
                markup=False,
            )
    return ACTIONS_FAILED if failures else 0


def reconcile(
    file: SpecOpt = DEFAULT_SPEC,
    watch: Annotated[
        bool, typer.Option("--watch", "-w", help="Keep converging until stopped.")
    ] = False,
    repo: RepoOpt = None,
    output: OutputOpt = Output.text,
    max_parallel: MaxParallelOpt = None,
    poll_interval: PollIntervalOpt = None,
    max_retries: MaxRetriesOpt = None,
    spec_backlog: SpecBacklogOpt = None,
) -> None:
    """Make the world match the spec: one pass, or continuously with --watch.

    A pass spawns agents for ready tasks, retries failures after their backoff, verifies and
    merges finished work, and prunes what is done. With --watch it reacts at once to spec
    edits, agent exits, spawn-parallel and stop requests, and resyncs every pollInterval.
    --max-parallel, --poll-interval, --max-retries and --spec-backlog override the spec for
    this controller's lifetime (recorded as an event; `status` shows them).

    Exit 0; 1 on error (nothing done); 4 when a one-shot pass could not carry out an action
    (an agent that could not start, a merge that errored, a worktree that could not be
    pruned: the failures are listed on stderr, and in "failed" with -o json).
    """
    overrides = overrides_of(max_parallel, poll_interval, max_retries, spec_backlog)
    raise typer.Exit(_run_controller(file, repo, watch, output, overrides))


def start(
    file: SpecOpt = DEFAULT_SPEC,
    repo: RepoOpt = None,
    max_parallel: MaxParallelOpt = None,
    poll_interval: PollIntervalOpt = None,
    max_retries: MaxRetriesOpt = None,
    spec_backlog: SpecBacklogOpt = None,
) -> None:
    """Start the controller: `reconcile --watch` (the original guide's name and options).

    --max-parallel, --poll-interval, --max-retries and --spec-backlog override the spec for
    this controller's lifetime; `status` shows e.g. `maxParallel 2 (command line; spec
    says 4)`. Ctrl-C or `orchestrator stop` drains and exits.
    """
    overrides = overrides_of(max_parallel, poll_interval, max_retries, spec_backlog)
    raise typer.Exit(_run_controller(file, repo, True, Output.text, overrides))


def stop(
    file: SpecOpt = DEFAULT_SPEC,
    force: Annotated[
        bool, typer.Option("--force", help="Stop running agents now (their work is snapshotted).")
    ] = False,
    wait: Annotated[float, typer.Option(help="Seconds to wait for the controller to exit.")] = 30.0,
    task: Annotated[
        list[str] | None,
        typer.Option(
            "--task",
            "-t",
            metavar="ID",
            help="Stop only this task's agent (repeatable); the controller goes on.",
        ),
    ] = None,
) -> None:
    """Ask the running controller to stop: start nothing new, let running agents finish.

    With --force the agents are stopped now; uncommitted work is kept in
    refs/orchestrator/archive/<task>/<n>. Without a running controller, --force stops the
    agents directly. With --task, only those tasks' agents are stopped (their work
    snapshotted; the attempt does not count against retries) and the tasks are held until
    `orchestrator retry`; the controller goes on with the rest.
    """
    from controller.loop.controller import Controller
    from controller.loop.stop import write_stop_request
    from controller.observe.running import running_controller
    from controller.state.paths import StatePaths

    spec = load(file)
    if task:
        from controller.cli.orders import stop_tasks

        stop_tasks(spec, task)
        return
    paths = StatePaths(spec.state_path)
    holder = running_here(spec)
    if holder is None:
        if not force:
            out.print("no controller is running; nothing to stop")
            return
        with Controller(spec.source, spec) as controller:
            controller.force = controller.draining = True
            controller.run_pass(sync_merges=True)
        out.print("agents stopped; their work is kept in their worktrees and archive refs")
        return
    write_stop_request(paths, force)
    mode = "force" if force else "graceful"
    out.print(f"{mode} stop requested from controller PID {holder.pid or '?'}")
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline:
        if running_controller(spec.repo_path) is None:
            out.print("controller stopped")
            return
        time.sleep(0.1)
    out.print(f"controller still running after {wait:.0f}s (it waits for agents to finish)")


def demo(
    directory: Annotated[
        Path | None,
        typer.Option("--dir", help="Where to create the demo (default: a new temp folder)."),
    ] = None,
    seconds: Annotated[float, typer.Option(help="How long each scripted agent works.")] = 1.2,
) -> None:
    """Run the whole product on a scratch repository with bundled scripted agents.

    Creates a repo and a spec with ten tasks across three agent types, runs the reconcile
    loop to convergence (a crash, a retry and a merge conflict included) and prints the
    measured parallelism (agent time / busy time). Offline; takes a few seconds.
    """
    from controller.cli.live import LiveTable
    from controller.demo.run import run_demo

    if directory is not None:
        if directory.exists() and any(directory.iterdir()):
            raise fail(f"{directory} is not empty; choose a new folder")
        directory.mkdir(parents=True, exist_ok=True)
    with LiveTable(out.console) as live:
        code, _ = run_demo(directory, seconds=seconds, echo=live.echo, on_pass=live.update)
    raise typer.Exit(code)


def import_roadmap(
    path: Annotated[Path, typer.Argument(help="The markdown ROADMAP to read.")],
    agent: Annotated[str, typer.Option(help="Agent for the imported tasks.")] = "code_developer",
) -> None:
    """Print a markdown ROADMAP's planned items as a YAML `backlog:` for the spec.

    Items marked complete are left out (dependencies on them are already satisfied);
    blocked items come out with `paused: true`. Problems are reported on stderr with their
    line: errors (a dependency that cannot be resolved, a cycle) exit 1, warnings (a
    duplicate id and the heading used, dependency text that names no item, ...) do not.
    """
    from controller.specfile.roadmap import parse_roadmap, to_backlog_yaml
    from controller.specfile.roadmap.model import ItemStatus
    from controller.specfile.roadmap.problems import FATAL_KINDS
    from controller.state import files

    try:  # a regular file only, and not without end (a pipe, /dev/zero)
        text = files.read_regular(path, 16 * files.MIB).decode("utf-8-sig")
    except FileNotFoundError:
        raise fail(f"{path}: file not found") from None
    except files.UnsafeFile as exc:
        raise fail(f"{path}: {exc.reason}; not read") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise fail(f"{path}: cannot read: {exc}") from None
    parsed = parse_roadmap(text, str(path))
    fatal = [p for p in parsed.problems if p.kind in FATAL_KINDS]
    for problem in parsed.problems:
        level = "error" if problem.kind in FATAL_KINDS else "warning"
        where = f"{path}:{problem.line}:{problem.column}"
        err.print(shown(f"{level}: {where}: {problem.message}"), markup=False)
    out.print(to_backlog_yaml(parsed.items, agent), markup=False, end="")
    planned = sum(1 for i in parsed.items if i.status is not ItemStatus.COMPLETE)
    done = len(parsed.items) - planned
    warnings = len(parsed.problems) - len(fatal)
    summary = (
        f"{planned} planned item{'s' if planned != 1 else ''} imported ({done} complete left "
        f"out); {len(fatal)} error{'s' if len(fatal) != 1 else ''}, "
        f"{warnings} warning{'s' if warnings != 1 else ''}"
    )
    err.print(shown(summary), markup=False)
    raise typer.Exit(1 if fatal else 0)


def version() -> None:
    """Print the version."""
    sys.stdout.write(f"orchestrator {__version__}\n")  # what rich would print, without rich


def register(app: typer.Typer) -> None:
    """Add the controller commands to the CLI."""
    app.command()(validate)
    app.command()(diff)
    app.command()(reconcile)
    app.command()(start)
    app.command()(stop)
    app.command()(demo)
    app.command("import-roadmap")(import_roadmap)
    app.command()(version)
