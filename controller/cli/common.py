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
    from controller.model.problems import SpecError
    from controller.model.spec import Spec

out = LazyConsole(highlight=False, soft_wrap=True)
err = LazyConsole(stderr=True, highlight=False, soft_wrap=True)

DEFAULT_SPEC = Path("specs/orchestrator.yaml")


class Output(StrEnum):
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
    err.print(f"error: {shown(message)}", markup=False)
    return typer.Exit(code)


def report_problems(exc: "SpecError", output: Output) -> typer.Exit:
    if output is Output.json:
        out.print(to_json({"valid": False, "problems": [p.as_dict() for p in exc.problems]}))
    else:
        for problem in exc.problems:
            err.print(shown(str(problem)), markup=False)
        n = len(exc.problems)
        err.print(f"{n} problem{'s' if n != 1 else ''} found; nothing was done.", markup=False)
    return typer.Exit(1)


def load(file: Path, output: Output = Output.text, repo: Path | None = None) -> "Spec":
    from controller.model.problems import SpecError
    from controller.specfile.load import load_spec

    try:
        spec = load_spec(file, repo=repo)
    except SpecError as exc:
        raise report_problems(exc, output) from None
    if output is Output.text:
        for warning in spec.warnings:
            err.print(f"warning: {shown(str(warning))}", markup=False)
    return spec
