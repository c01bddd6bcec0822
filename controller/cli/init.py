"""`orchestrator init`: a first spec for the repository you are in, checked at once.

Writes `specs/orchestrator.yaml` at the top of the repository (and `specs/schema.json`, which
the spec's first line points editors at) from what `specfile.scaffold` detects: the
integration branch, agents using the Claude Code preset with scopes from the tracked
folders, and a verify command that works on a merge result. Then runs `validate` on it and
exits with its code: 0 valid, 1 with its located problems (a missing `claude` binary
included, with how to get it).
"""

# No `from __future__ import annotations` in the CLI modules (see cli.app).

from pathlib import Path
from typing import Annotated

import typer

from controller.cli.common import err, fail, out
from controller.model.safe_text import shown


def init(
    branch: Annotated[
        str | None,
        typer.Option(
            "--branch",
            help="The integration branch (default: the one checked out, else main or master).",
        ),
    ] = None,
    force: Annotated[
        bool, typer.Option("--force", help="Replace an existing specs/orchestrator.yaml.")
    ] = False,
) -> None:
    """Write specs/orchestrator.yaml for the repository you are in, then validate it.

    Detects the integration branch, proposes Claude Code agents (a developer owning the code
    folders, a writer owning docs/) and a verify command that works on a merge result (for
    Python: pytest with an interpreter that has it). Exit 0 when the spec is valid, 1 when
    not (the problems say what to fix) or when there is no repository to work on.
    """
    from controller.cli.controller_commands import validate
    from controller.specfile.scaffold import InitError, agent_missing, detect, write_files
    from controller.specfile.schema import render_schema

    try:
        found = detect(Path.cwd(), branch)
        target = write_files(found, render_schema(), force)
    except InitError as exc:
        raise fail(str(exc)) from None
    except OSError as exc:
        raise fail(f"cannot write the spec: {exc}") from None
    out.print(shown(f"wrote {target} and {target.parent / 'schema.json'}"), markup=False)
    verify = " ".join(found.verify) if found.verify else f"none ({found.verify_note})"
    out.print(shown(f"integration branch {found.branch}; verify: {verify}"), markup=False)
    missing = agent_missing()
    if missing:
        err.print(shown(f"note: {missing}"), markup=False)
    validate(target)
    out.print(
        "next: add tasks to `backlog:`, then `orchestrator diff` and `orchestrator start`",
        markup=False,
    )


def register(app: typer.Typer) -> None:
    app.command()(init)
