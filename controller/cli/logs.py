"""`orchestrator logs TASK`: what an attempt's agent printed, or its merge's verify output.

The latest attempt by default (`--attempt N` for another); `--verify` for the verify log;
`-f` follows the log until the attempt ends (or, with `--verify`, until the merge has a
verdict), like `kubectl logs -f`. Because `-f` follows here, the spec file is given with
`--file` (long form only) for this command. The log goes to stdout, made safe for a terminal
(control characters escaped, credentials in URLs redacted); a line saying which log it is
goes to stderr. An unknown task exits 1 with a suggestion.
"""

# No `from __future__ import annotations` in the CLI modules (see cli.app).

import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from controller.cli.common import err, fail, load
from controller.model.safe_text import shown

if TYPE_CHECKING:
    from controller.model.spec import Spec

TAIL_BYTES = 4 << 20  # --tail N reads at most the log's last 4 MiB


def check_task(spec: "Spec", task: str) -> None:
    """Exit 1 with a suggestion when `task` is neither in the spec nor has any record."""
    from controller.model.problems import did_you_mean
    from controller.views.logs import known_tasks

    known = known_tasks(spec)
    if task not in known:
        raise fail(f"unknown task '{task}'{did_you_mean(task, known)}")


def _lines(texts: Iterator[str]) -> Iterator[str]:
    """Whole lines (a partial one when the text ends), so that redaction sees whole URLs."""
    rest = ""
    for text in texts:
        rest += text
        cut = rest.rfind("\n") + 1
        if cut:
            yield rest[:cut]
            rest = rest[cut:]
    if rest:
        yield rest


def logs(
    task: Annotated[str, typer.Argument(help="The task whose log to show.", show_default=False)],
    follow: Annotated[
        bool,
        typer.Option(
            "--follow", "-f", help="Keep printing as the log grows, until the attempt ends."
        ),
    ] = False,
    attempt: Annotated[
        int | None,
        typer.Option("--attempt", "-a", min=1, help="This attempt (default: the latest)."),
    ] = None,
    verify: Annotated[
        bool, typer.Option("--verify", help="The verify log of the attempt's merge.")
    ] = False,
    tail: Annotated[
        int | None, typer.Option("--tail", "-n", min=0, help="Only the last N lines.")
    ] = None,
    file: Annotated[
        Path | None,
        typer.Option(
            "--file",
            help="The spec file (here only --file: -f follows). Default: "
            "specs/orchestrator.yaml in this folder or one above, else $ORCHESTRATOR_SPEC.",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Print a task's log: what its agent printed (stdout and stderr), or with --verify the
    output of the verify gate on its merge. Exit 1 when there is no such task or log."""
    from controller.state import files
    from controller.state.paths import StatePaths
    from controller.views.logs import LogRef, finished, log_ref, read_text
    from controller.views.logs import follow as follow_log

    spec = load(file, read_only=True)
    check_task(spec, task)
    ref = log_ref(spec, task, attempt, verify)
    if not isinstance(ref, LogRef):
        raise fail(ref)
    root = StatePaths(spec.state_path).root
    if not follow and not os.path.lexists(ref.path):
        raise fail(_missing(ref))
    err.print(shown(f"==> {ref.path} <== {ref.what}"), markup=False)
    try:
        if follow:
            texts = follow_log(root, ref.path, finished(spec, ref))
        elif tail is not None:
            texts = _last_lines(root, ref.path, tail)
        else:
            texts = read_text(root, ref.path)
        _write(texts)
    except FileNotFoundError:
        raise fail(_missing(ref)) from None
    except files.UnsafeFile as exc:
        raise fail(f"{ref.path}: {exc.reason}; not read") from None
    except KeyboardInterrupt:
        return
    except BrokenPipeError:  # `orchestrator logs t1 | head`
        sys.stderr.close()


def _last_lines(root: Path, path: Path, n: int) -> Iterator[str]:
    from controller.views.logs import read_text

    lines = "".join(read_text(root, path, tail_bytes=TAIL_BYTES)).splitlines(keepends=True)
    yield "".join(lines[-n:] if n else [])


def _write(texts: Iterator[str]) -> None:
    for chunk in _lines(texts):
        sys.stdout.write(shown(chunk, multiline=True))
        sys.stdout.flush()


def _missing(ref: object) -> str:
    from controller.views.logs import LogRef

    assert isinstance(ref, LogRef)
    if ref.verify:
        return (
            f"no verify log for attempt {ref.attempt} of {ref.task}: the verify gate runs when "
            "a finished attempt is merged (and only when the spec has `verify`)"
        )
    return f"no log for attempt {ref.attempt} of {ref.task} (it never started: {ref.what})"


def register(app: typer.Typer) -> None:
    app.command()(logs)
