"""What every command shares: the consoles, the common options, failing cleanly, loading the
spec with located problems.

Exit codes follow kubectl/terraform conventions: 0 success (for `diff`: no changes),
1 error (including usage errors and invalid specs, never a traceback), 2 `diff` has changes.
Every line meant for a person passes `model.safe_text.shown` (credentials redacted, control
characters escaped); JSON output carries the exact text.
"""

# No `from __future__ import annotations` in the CLI modules: typer reads every command's
# annotations at each start, and real annotation objects spare it evaluating strings.

from enum import StrEnum
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from controller.cli.lazy import LazyConsole
from controller.cli.render import to_json
from controller.model.safe_text import shown

if TYPE_CHECKING:
    from controller.model.overrides import Overrides
    from controller.model.problems import Problem, SpecError
    from controller.model.spec import Spec
    from controller.observe.running import RunningController

out = LazyConsole(highlight=False, soft_wrap=True)
err = LazyConsole(stderr=True, highlight=False, soft_wrap=True)

DEFAULT_SPEC = None  # found by `specfile.discover`: specs/orchestrator.yaml up to the repo root


class Output(StrEnum):
    text = "text"
    json = "json"


SpecOpt = Annotated[
    Path | None,
    typer.Option(
        "--file",
        "-f",
        help="The spec file. Default: specs/orchestrator.yaml in this folder or one above it, "
        "up to the repository root; else $ORCHESTRATOR_SPEC.",
        show_default=False,
    ),
]
OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="Output format.")]
RepoOpt = Annotated[
    Path | None,
    typer.Option("--repo", help="Work on this repository instead of the spec's `repo`."),
]
# the original guide's options: they override the spec for the controller's lifetime
MaxParallelOpt = Annotated[
    int | None,
    typer.Option(
        "--max-parallel", min=1, max=1024, help="At most this many agents (spec: maxParallel)."
    ),
]
PollIntervalOpt = Annotated[
    str | None,
    typer.Option(
        "--poll-interval",
        help="Resync every this many seconds, or a duration such as 30s, 5m (spec: "
        "pollInterval; the loop also wakes on every change it sees).",
    ),
]
MaxRetriesOpt = Annotated[
    int | None,
    typer.Option(
        "--max-retries",
        min=0,
        max=100,
        help="Retries after a task's first failed attempt (spec: retries; a task's own "
        "`retries` still wins).",
    ),
]
SpecBacklogOpt = Annotated[
    int | None,
    typer.Option(
        "--spec-backlog",
        min=1,
        max=1024,
        help="Specifications kept written ahead of the implementation (spec: "
        "specBacklog.ahead; needs a specBacklog in the spec).",
    ),
]


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"error: {shown(message)}", markup=False)
    return typer.Exit(code)


def report_problems(exc: "SpecError", output: Output, *, read_only: bool = False) -> typer.Exit:
    """The spec's problems (JSON, or one located line each), exit 1. A command that acts
    says that nothing was done; a read-only one (`read_only`) only counts them."""
    if output is Output.json:
        out.print(to_json({"valid": False, "problems": [p.as_dict() for p in exc.problems]}))
    else:
        for problem in exc.problems:
            err.print(shown(str(problem)), markup=False)
        n = len(exc.problems)
        done = "." if read_only else "; nothing was done."
        err.print(f"{n} problem{'s' if n != 1 else ''} found{done}", markup=False)
    return typer.Exit(1)


def overrides_of(
    max_parallel: int | None,
    poll_interval: str | None,
    max_retries: int | None,
    spec_backlog: int | None,
) -> "Overrides":
    """The command-line settings (a bad --poll-interval exits 1 with the reason)."""
    from controller.model.durations import parse_duration
    from controller.model.overrides import Overrides

    seconds = None
    if poll_interval is not None:
        try:
            seconds = parse_duration(poll_interval)
        except ValueError as exc:
            raise fail(f"--poll-interval: {exc}") from None
        if not seconds > 0:
            raise fail("--poll-interval must be more than zero")
    return Overrides(max_parallel, seconds, max_retries, spec_backlog)


def spec_path(file: Path | None) -> Path:
    """The spec file to use: -f, else found (`specfile.discover`); exits 1 saying where it
    looked when there is none."""
    from controller.specfile.discover import spec_file

    found = spec_file(file)
    if isinstance(found, str):
        raise fail(found)
    return found


def load(
    file: Path | None,
    output: Output = Output.text,
    repo: Path | None = None,
    *,
    read_only: bool = False,
) -> "Spec":
    """The spec (-f, else found), validated; exits 1 with its located problems. The file
    used is `spec.source`."""
    from controller.model.problems import SpecError
    from controller.specfile.load import load_spec

    file = spec_path(file)
    try:
        spec = load_spec(file, repo=repo)
    except SpecError as exc:
        raise report_problems(exc, output, read_only=read_only) from None
    _warn(spec, output)
    return spec


def _warn(spec: "Spec", output: Output) -> None:
    if output is Output.text:
        for warning in spec.warnings:
            err.print(f"warning: {shown(str(warning))}", markup=False)


SPEC_INVALID = 3  # `status`: the view is shown, but the spec file is invalid


def load_or_last(
    file: Path | None, output: Output, repo: Path | None = None
) -> tuple["Spec", list["Problem"]]:
    """The spec, or when the file is invalid the last valid one a controller recorded for it
    (`views.fallback`) with the file's problems; without one, the problems are reported and
    the command exits 3 (SPEC_INVALID)."""
    from controller.model.problems import SpecError
    from controller.specfile.load import load_spec
    from controller.views.fallback import last_valid_spec

    path = spec_path(file)
    if not path.exists():  # no such file: a usage error (exit 1), not an invalid spec
        return load(path, output, repo, read_only=True), []
    try:
        spec = load_spec(path, repo=repo)
    except SpecError as exc:
        problems = list(exc.problems)
    else:
        _warn(spec, output)
        return spec, []
    last = last_valid_spec(path)
    if last is not None:
        return last, problems
    if output is Output.json:
        out.print(to_json({"valid": False, "problems": [p.as_dict() for p in problems]}))
    else:
        for problem in problems:
            err.print(shown(str(problem)), markup=False)
        err.print(
            f"{path} is invalid, and no controller has recorded a valid version of it: "
            "nothing to show",
            markup=False,
        )
    raise typer.Exit(SPEC_INVALID)


def running_here(spec: "Spec") -> "RunningController | None":
    """The controller running on `spec`'s repository and state folder, or None; exits 1 when
    one runs on the repository with another spec (it would never see this spec's requests)."""
    from controller.observe.running import running_controller

    holder = running_controller(spec.repo_path)
    if holder is None:
        return None
    if not holder.uses(spec.state_path):
        pid = f"PID {holder.pid}" if holder.pid else "another process"
        other = holder.spec_file or "another spec"
        raise fail(
            f"a controller ({pid}) runs on this repository with spec {other}, not "
            f"{spec.source}; one controller per repository: give -f {other}"
        )
    return holder
