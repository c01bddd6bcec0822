"""The `orchestrator` command line: parse arguments, call the core, render. Nothing else.

Exit codes follow kubectl/terraform conventions: 0 success (for `diff`: no changes),
1 error (including usage errors and invalid specs, never a traceback), 2 `diff` has changes.
"""

from __future__ import annotations

import sys
import time
from enum import Enum
from pathlib import Path
from typing import Annotated

import click
import typer
from rich.console import Console

from controller import __version__
from controller.observe.resources import ResourceSampler
from controller.plan import plan
from controller.render import plan_lines, to_json
from controller.spec import Spec
from controller.spec_load import SpecError, load_spec
from controller.world import observe_spec, open_store

app = typer.Typer(
    name="orchestrator",
    help=(
        "Run coding agents in parallel, each in its own git worktree, and merge their work back "
        "safely. Desired state lives in a YAML spec (default specs/orchestrator.yaml); the "
        "controller keeps the repository equal to it."
    ),
    no_args_is_help=True,
    add_completion=False,
    rich_markup_mode=None,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)

DEFAULT_SPEC = Path("specs/orchestrator.yaml")


class Output(str, Enum):
    text = "text"
    json = "json"


SpecOpt = Annotated[
    Path,
    typer.Option("--file", "-f", help="The spec file.", show_default=True),
]
OutputOpt = Annotated[Output, typer.Option("--output", "-o", help="Output format.")]
RepoOpt = Annotated[
    Path | None,
    typer.Option("--repo", help="Work on this repository instead of the spec's `repo`."),
]


def fail(message: str, code: int = 1) -> typer.Exit:
    err.print(f"error: {message}", markup=False)
    return typer.Exit(code)


def report_problems(exc: SpecError, output: Output) -> typer.Exit:
    if output is Output.json:
        out.print(to_json({"valid": False, "problems": [p.as_dict() for p in exc.problems]}))
    else:
        for problem in exc.problems:
            err.print(str(problem), markup=False)
        n = len(exc.problems)
        err.print(f"{n} problem{'s' if n != 1 else ''} found; nothing was done.", markup=False)
    return typer.Exit(1)


def load(file: Path, output: Output = Output.text, repo: Path | None = None) -> Spec:
    try:
        return load_spec(file, repo=repo)
    except SpecError as exc:
        raise report_problems(exc, output) from None


@app.command()
def validate(file: SpecOpt = DEFAULT_SPEC, output: OutputOpt = Output.text) -> None:
    """Check a spec: exit 0 when valid, 1 with file:line:col messages when not."""
    spec = load(file, output)
    if output is Output.json:
        out.print(to_json({"valid": True, "problems": [], "tasks": len(spec.backlog)}))
        return
    out.print(
        f"{file}: valid ({len(spec.agents)} agents, {len(spec.backlog)} tasks, "
        f"repo {spec.repo_path}, integration branch {spec.integration_branch})",
        markup=False,
    )


@app.command()
def diff(
    file: SpecOpt = DEFAULT_SPEC,
    output: OutputOpt = Output.text,
    repo: RepoOpt = None,
    waits: Annotated[bool, typer.Option(help="Show why the other tasks wait.")] = True,
) -> None:
    """Show what the next reconcile pass would do, without doing it.

    Exit 0 when there is nothing to do, 2 when changes are pending, 1 on error.
    """
    spec = load(file, output, repo)
    store = open_store(spec, readonly=True)
    try:
        observed = observe_spec(spec, store, ResourceSampler())
    finally:
        if store is not None:
            store.close()
    result = plan(spec, observed, time.time())
    if output is Output.json:
        out.print(to_json(result.as_dict()))
    else:
        for line in plan_lines(result, show_waits=waits):
            out.print(line, markup=False)
    raise typer.Exit(2 if result.has_changes else 0)


@app.command()
def version() -> None:
    """Print the version."""
    out.print(f"orchestrator {__version__}")


def main() -> None:
    """Console-script entry point: usage errors exit 1 (2 means 'changes pending')."""
    try:
        app(standalone_mode=False)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        err.print("aborted")
        sys.exit(130)
    except click.exceptions.UsageError as exc:
        exc.show()
        sys.exit(1)
    except click.exceptions.ClickException as exc:
        exc.show()
        sys.exit(1)
    sys.exit(0)
