"""Read-only views for people and scripts: status, dashboard, activity-summary, events.

These commands only parse options, call `controller.views` and print. None of them takes
the controller lock or creates the state directory or database, and each works whether or
not a controller runs. The heavy modules are imported inside the commands so that other
commands do not pay for them.
"""

# No `from __future__ import annotations` here: typer reads every command's annotations at
# each start, and real annotation objects spare it compiling and evaluating the strings.

import contextlib
import io
import json
import sys
import time
from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from controller.cli.common import DEFAULT_SPEC, RepoOpt, SpecOpt

if TYPE_CHECKING:
    from rich.text import Text

    from controller.model.spec import Spec
    from controller.views.summary import Summary


class StatusOutput(StrEnum):
    text = "text"
    wide = "wide"
    json = "json"


class SummaryOutput(StrEnum):
    text = "text"
    json = "json"
    markdown = "markdown"


class EventsOutput(StrEnum):
    text = "text"
    json = "json"


def _read_errors() -> tuple[type[BaseException], ...]:
    import sqlite3

    from controller.git import GitError
    from controller.state.store import StoreError

    return (GitError, StoreError, sqlite3.Error)


def status(
    file: SpecOpt = DEFAULT_SPEC,
    output: Annotated[
        StatusOutput,
        typer.Option("--output", "-o", help="text, wide (adds worktree, branch), json"),
    ] = StatusOutput.text,
    repo: RepoOpt = None,
) -> None:
    """Show the controller, every task's phase and reason, resources and parallelism.

    The phase and reason are the planner's own (the same `diff` prints). ETAs come from the
    agent's progress rate when it writes progress, else from the median duration of earlier
    attempts of the same agent type; the ETA column says which. When the spec file is
    invalid, shows the last valid spec the controller runs on, with the file's problems on
    top, and exits 3 (0 otherwise).
    """
    from controller.views.cpu import OneShotCpu

    cpu = OneShotCpu()  # CPU% is measured from here, so the read need not wait for it
    from controller.cli.common import SPEC_INVALID, Output, fail, load_or_last, out
    from controller.cli.lazy import stdout_is_plain
    from controller.cli.render import to_json
    from controller.views.snapshot import take
    from controller.views.status import build_status
    from controller.views.text import invalid_spec_banner, status_lines, styled

    as_json = output is StatusOutput.json
    spec, problems = load_or_last(file, Output.json if as_json else Output.text, repo)
    try:
        model = build_status(take(spec, cpu=cpu))
    except _read_errors() as exc:
        raise fail(str(exc)) from None
    code = SPEC_INVALID if problems else 0
    if as_json:
        data = model.as_dict()
        data["spec"].update(valid=not problems, problems=[p.as_dict() for p in problems])
        out.print(to_json(data), markup=False)
        raise typer.Exit(code)
    banner = invalid_spec_banner(model, problems)
    lines = status_lines(model, wide=output is StatusOutput.wide)
    if not stdout_is_plain() and out.is_terminal:  # rich loads only for a terminal
        out.print(styled([*banner, *lines], model, banner=len(banner)), markup=False)
    else:
        sys.stdout.write("\n".join([*banner, *lines]) + "\n")
    raise typer.Exit(code)


def dashboard(
    file: SpecOpt = DEFAULT_SPEC,
    repo: RepoOpt = None,
    interval: Annotated[float, typer.Option(help="Seconds between refreshes.")] = 1.0,
    once: Annotated[bool, typer.Option("--once", help="Print one frame and exit.")] = False,
    svg: Annotated[
        Path | None,
        typer.Option("--svg", help="Save one frame as an SVG screenshot to FILE and exit."),
    ] = None,
    width: Annotated[int, typer.Option(help="Screenshot width in columns (--svg).")] = 100,
    height: Annotated[int, typer.Option(help="Screenshot height in rows (--svg).")] = 30,
    frames: Annotated[
        int,
        typer.Option(
            help="With --once/--svg: refresh this many times (every --interval) first, "
            "so the CPU, memory and disk history has samples."
        ),
    ] = 1,
) -> None:
    """A live terminal view: tasks with progress, CPU, memory and disk history against the
    admission thresholds, a timeline of attempts, recent events and the parallelism.

    Refreshes every --interval seconds from fresh reads of the world. Keys, k9s-style:
    arrows or j/k select a task, `l` opens its log (`v` its verify log), `r` retries it,
    `s` stops it, `?` shows the help, Esc goes back, `q` or Ctrl-C quits. Designed to fit
    an 80x24 terminal (over SSH too). When stdout is not a terminal it prints one frame, as
    with --once. With an invalid spec file it shows the last valid spec
    the controller runs on, and says so in its footer.
    """
    from controller.cli.common import Output, fail, load_or_last, out
    from controller.observe.resources import ResourceSampler
    from controller.views.dashboard import Dashboard, Frame, render
    from controller.views.live import Keys, run_live

    _check_dashboard_options(interval, svg, width, height, frames)
    spec, _ = load_or_last(file, Output.text, repo)
    one_frame = (once or svg is not None) and frames == 1
    sampler = None if one_frame else ResourceSampler(disk_path=spec.repo_path)
    dash = Dashboard(spec.source, spec, repo=repo, interval=interval, sampler=sampler)

    def last_frame() -> Frame:
        for _ in range(frames - 1):
            dash.refresh()
            time.sleep(interval)
        return dash.refresh()

    try:
        if svg is not None:
            _save_svg(render(last_frame(), width, height), svg, width, height)
            out.print(f"dashboard frame saved to {svg}", markup=False)
            return
        if once or not out.is_terminal:  # a pipe or a file gets one frame, not a loop
            w, h = out.size
            out.print(render(last_frame(), w, h), markup=False)
            return
        with contextlib.suppress(KeyboardInterrupt):
            run_live(dash, out.console, Keys(), act=lambda kind, task: _act(dash.spec, kind, task))
    except _read_errors() as exc:
        raise fail(str(exc)) from None


def _act(spec: "Spec", kind: str, task: str) -> str:
    """The dashboard's `r` and `s`: the orders `retry` and `stop --task`, one line back."""
    from controller.cli.orders import OrderError, give_orders
    from controller.observe.running import running_controller

    try:
        given = give_orders(spec, kind, [task])
    except OrderError as exc:
        return str(exc)
    after = given[0].after if given else 0
    done = "retry requested" if kind == "retry" else "stop requested"
    holder = running_controller(spec.repo_path)
    later = "" if holder is not None else "; no controller is running: `orchestrator start`"
    return f"{task}: {done} (after attempt {after}){later}"


def _check_dashboard_options(
    interval: float, svg: Path | None, width: int, height: int, frames: int
) -> None:
    from controller.cli.common import fail

    if not interval > 0 or interval != interval:
        raise fail(f"--interval must be a positive number of seconds, got {interval}")
    if svg is not None and (width < 40 or height < 10):
        raise fail("--width must be at least 40 and --height at least 10")
    if frames < 1:
        raise fail(f"--frames must be at least 1, got {frames}")


def _save_svg(frame: "Text", svg: Path, width: int, height: int) -> None:
    """Write one rendered dashboard frame to `svg` as a screenshot of a width x height terminal."""
    from rich.console import Console

    from controller.cli.common import fail

    shot = Console(
        record=True,
        width=width,
        height=height,
        file=io.StringIO(),
        force_terminal=True,
        color_system="truecolor",
    )
    shot.print(frame)
    try:
        shot.save_svg(str(svg), title="orchestrator dashboard")
    except OSError as exc:
        raise fail(f"cannot write {svg}: {exc}") from None


def activity_summary(
    file: SpecOpt = DEFAULT_SPEC,
    hours: Annotated[float, typer.Option(help="The window: the last N hours.")] = 24.0,
    output: Annotated[
        SummaryOutput, typer.Option("--output", "-o", help="text, json or markdown")
    ] = SummaryOutput.text,
    svg: Annotated[
        Path | None, typer.Option("--svg", help="Also write the timeline as an SVG image.")
    ] = None,
    repo: RepoOpt = None,
) -> None:
    """Completed, active and queued tasks in a window, and what parallelism bought.

    Parallelism = sum of attempt durations (failed ones too) / wall-clock time with at least
    one agent running (no sequential run is measured); efficiency = parallelism /
    maxParallel; parallelization rate = share of that busy time with two or more agents
    running; overlap = agent time - busy time. All measured from the recorded attempts,
    clipped to the window.
    """
    from controller.cli.common import fail, load, out
    from controller.cli.render import to_json
    from controller.views.cpu import OneShotCpu
    from controller.views.snapshot import take
    from controller.views.summary import build_summary
    from controller.views.text import summary_lines, summary_markdown

    if not (hours > 0 and hours <= 24 * 365 * 100):
        raise fail(f"--hours must be a positive number of hours, got {hours:g}")
    cpu = OneShotCpu()  # as in `status`: the read need not wait for the CPU window
    spec = load(file, repo=repo, read_only=True)
    try:
        snap = take(spec, cpu=cpu)
    except _read_errors() as exc:
        raise fail(str(exc)) from None
    s = build_summary(snap.spec, snap.attempts, snap.plan.phases, hours=hours, now=snap.now)
    if svg is not None:
        _write_timeline(s, svg)
    if output is SummaryOutput.json:
        out.print(to_json(s.as_dict()), markup=False)
    elif output is SummaryOutput.markdown:
        sys.stdout.write(summary_markdown(s))
    else:
        sys.stdout.write("\n".join(summary_lines(s)) + "\n")
    if svg is not None and output is not SummaryOutput.json:
        sys.stdout.write(f"\ntimeline written to {svg}\n")


def _write_timeline(s: "Summary", svg: Path) -> None:
    """The summary's attempts as an SVG timeline in `svg`, its figures in the subtitle."""
    from controller.cli.common import fail
    from controller.model.durations import format_duration
    from controller.views.timeline import timeline_svg

    start = min((b.start for b in s.bars), default=s.start)
    end = max((b.end for b in s.bars), default=s.now)
    p = s.parallelism
    text = timeline_svg(
        s.bars,
        start,
        end,
        title=f"orchestrator: {len(s.bars)} attempts of {len({b.task for b in s.bars})} tasks",
        subtitle=f"parallelism {p.speedup:.2f}x (agent time / busy time) · efficiency "
        f"{s.efficiency:.0%} of maxParallel {s.limit} · 2+ agents "
        f"{p.parallelization_rate:.0%} of busy time · {format_duration(p.time_saved_s)} overlap",
    )
    try:
        svg.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise fail(f"cannot write {svg}: {exc}") from None


def events(
    file: SpecOpt = DEFAULT_SPEC,
    task: Annotated[str | None, typer.Option("--task", "-t", help="Only this task.")] = None,
    kind: Annotated[
        list[str] | None,
        typer.Option("--kind", "-k", help="Only these kinds (repeat, or comma-separate)."),
    ] = None,
    follow: Annotated[
        bool, typer.Option("--follow", "-F", help="Keep printing new events (Ctrl-C stops).")
    ] = False,
    tail: Annotated[
        int | None, typer.Option("--tail", "-n", help="Only the last N matching events.")
    ] = None,
    output: Annotated[
        EventsOutput, typer.Option("--output", "-o", help="text, or json (one per line with -F)")
    ] = EventsOutput.text,
) -> None:
    """The controller's event log: spawns, exits, retries, merges, conflicts, stops, prunes.

    Filter with --task and --kind; --follow tails it (polling the store; Ctrl-C exits 0).
    """
    from controller.cli.common import fail, load

    if tail is not None and tail < 0:
        raise fail(f"--tail must be zero or more, got {tail}")
    kinds = _event_kinds(kind)
    spec = load(file, read_only=True)
    if task is not None:
        _check_event_task(spec, task)
    try:
        _print_events(spec, task, kinds, tail, follow, as_json=output is EventsOutput.json)
    except _read_errors() as exc:
        raise fail(str(exc)) from None
    except BrokenPipeError:  # `orchestrator events | head`
        sys.stderr.close()


def _check_event_task(spec: "Spec", task: str) -> None:
    """Exit 1 with a suggestion for a task the spec does not name and no event mentions."""
    from controller.cli.common import fail
    from controller.model.problems import did_you_mean
    from controller.views.events import read_events
    from controller.views.logs import known_tasks

    known = known_tasks(spec)
    if task in known:
        return
    try:
        if read_events(spec, task=task, kinds=None, tail=1):
            return
    except _read_errors():
        pass
    raise fail(f"unknown task '{task}'{did_you_mean(task, known)}")


def _event_kinds(kind: list[str] | None) -> list[str] | None:
    """The --kind filter, split at commas; warns about kinds the controller never writes."""
    from controller.cli.common import err
    from controller.views.events import KNOWN_KINDS, split_kinds

    kinds = split_kinds(kind)
    unknown = sorted(set(kinds or ()) - set(KNOWN_KINDS))
    if unknown:
        err.print(
            f"warning: unknown event kind(s) {', '.join(unknown)} "
            f"(known: {', '.join(KNOWN_KINDS)})",
            markup=False,
        )
    return kinds


def _print_events(
    spec: "Spec",
    task: str | None,
    kinds: list[str] | None,
    tail: int | None,
    follow: bool,
    *,
    as_json: bool,
) -> None:
    """Print the matching events; with `follow`, then every new one until Ctrl-C."""
    from controller.views.events import event_dict, event_line, max_event_id, read_events
    from controller.views.events import follow as follow_events

    def emit_lines(lines: list[str]) -> None:
        if lines:
            sys.stdout.write("\n".join(lines) + "\n")
            sys.stdout.flush()

    rows = read_events(spec, task=task, kinds=kinds, tail=tail)
    if not follow:
        if as_json:
            sys.stdout.write(json.dumps([event_dict(e) for e in rows], indent=2) + "\n")
        else:
            emit_lines([event_line(e) for e in rows])
        return
    emit_lines([json.dumps(event_dict(e)) if as_json else event_line(e) for e in rows])
    since = rows[-1].id if rows else max_event_id(spec)
    try:
        for e in follow_events(spec, task=task, kinds=kinds, since_id=since):
            emit_lines([json.dumps(event_dict(e)) if as_json else event_line(e)])
    except KeyboardInterrupt:
        return


def register(app: typer.Typer) -> None:
    """Add the view commands to the CLI."""
    app.command()(status)
    app.command()(dashboard)
    app.command("activity-summary")(activity_summary)
    app.command()(events)
