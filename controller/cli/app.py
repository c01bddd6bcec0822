"""The `orchestrator` command line: the typer app, its commands and the entry point.

The commands live in `controller_commands` (validate, diff, reconcile, start, stop, demo,
import-roadmap, version), `spawn` (spawn-parallel), `views` (status, dashboard,
activity-summary, events), `logs`, `orders` (retry, reset), `clean` and `init`; what they
share in `common`. Exit codes follow kubectl/terraform conventions: 0 success (for `diff`:
no changes), 1 error (usage errors and invalid specs included, never a traceback), 2 `diff`
has changes, 3 `status` shown from the last valid spec because the file is invalid, 4 a
one-shot `reconcile` pass could not carry out an action.
"""

# No `from __future__ import annotations` here: typer reads every command's annotations at
# each start, and real annotation objects spare it compiling and evaluating the strings.

import atexit
import gc
import sys
from typing import Annotated

import typer

from controller import __version__
from controller.cli import clean, controller_commands, init, logs, orders, spawn, views
from controller.cli.common import err
from controller.cli.lazy import silence_loguru

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


def _print_version(value: bool) -> None:
    if value:
        sys.stdout.write(f"orchestrator {__version__}\n")
        raise typer.Exit(0)


@app.callback()
def _options(
    show_version: Annotated[
        bool,
        typer.Option(
            "--version", callback=_print_version, is_eager=True, help="Print the version and exit."
        ),
    ] = False,
) -> None:
    """Options of `orchestrator` itself (before the command)."""


controller_commands.register(app)
spawn.register(app)
views.register(app)
logs.register(app)
orders.register(app)
clean.register(app)
init.register(app)


def _help_defaults(command: object) -> dict[str, object]:
    """`--help` is False unless given, for the app and every command (a click `default_map`).

    Without a default the flag's value is None, and typer coerces None through a pydantic
    TypeAdapter, which imports pydantic (~100 ms) for every command, even `version`.
    """
    names = getattr(command, "commands", {})
    return {"help": False, **{name: {"help": False} for name in names}}


def _collect_and_freeze() -> None:
    """At exit: collect the garbage (its finalizers run as usual), then freeze what is left.

    The interpreter's shutdown runs several full garbage collections over every object still
    alive, ~60 ms after `status` (pydantic, typer and rich make many); frozen objects are
    skipped, and are still freed by reference counting as the modules are torn down.
    """
    gc.collect()
    gc.freeze()


def main() -> None:
    """Console-script entry point: usage errors exit 1 (2 means 'changes pending')."""
    silence_loguru()  # logs go to state/logs/controller.log, not the terminal
    atexit.unregister(_collect_and_freeze)  # once per process, however often main() runs
    atexit.register(_collect_and_freeze)  # runs after the threads are joined
    command = typer.main.get_command(app)
    try:
        result = command.main(
            prog_name="orchestrator", standalone_mode=False, default_map=_help_defaults(command)
        )
    except typer.Exit as exc:
        sys.exit(exc.exit_code)
    except KeyboardInterrupt:
        err.print("interrupted")
        sys.exit(130)
    except Exception as exc:
        # click's usage errors (vendored by newer typer versions): show them, exit 1
        show = getattr(exc, "show", None)
        if callable(show) and hasattr(exc, "exit_code"):
            show()
            sys.exit(1)
        if type(exc).__name__ == "Abort":
            err.print("aborted")
            sys.exit(130)
        raise
    sys.exit(result if isinstance(result, int) else 0)
