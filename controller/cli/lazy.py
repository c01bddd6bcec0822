"""What keeps the command line's start-up cheap: rich and loguru load only when used.

`orchestrator --help` and `version` should cost little more than starting Python. Importing
rich costs ~40 ms and loguru ~90 ms, so the consoles here make their rich `Console` on first
use, `stdout_is_plain` answers "would rich treat stdout as a terminal?" without importing
rich when the answer is certainly no, and `silence_loguru` removes loguru's default stderr
sink without importing loguru: at once when it is loaded, else the moment something imports
it. Imports nothing beyond the standard library at module level.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from types import ModuleType
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from importlib.machinery import ModuleSpec

    from rich.console import Console, ConsoleDimensions


class LazyConsole:
    """A rich `Console(**options)` made the first time something prints through it."""

    def __init__(self, **options: Any) -> None:
        self._options = options
        self._console: Console | None = None

    @property
    def console(self) -> Console:
        if self._console is None:
            from rich.console import Console

            self._console = Console(**self._options)
        return self._console

    def print(self, *objects: Any, **kwargs: Any) -> None:
        self.console.print(*objects, **kwargs)

    @property
    def is_terminal(self) -> bool:
        return self.console.is_terminal

    @property
    def size(self) -> ConsoleDimensions:
        return self.console.size


def stdout_is_plain() -> bool:
    """True when stdout is certainly not a terminal to rich (a pipe or a file, with no
    TTY_COMPATIBLE=1 or FORCE_COLOR set), decided without importing rich.

    Rich's `Console.is_terminal` returns True only for TTY_COMPATIBLE=1, a non-empty
    FORCE_COLOR or an `isatty()` stream; when none holds it returns False, and so does
    this. False means "ask rich" (`LazyConsole.is_terminal`), not "a terminal".
    """
    if os.environ.get("TTY_COMPATIBLE") == "1" or os.environ.get("FORCE_COLOR"):
        return False
    stream = getattr(sys.stdout, "rich_proxied_file", sys.stdout)
    try:
        return stream is None or not stream.isatty()
    except (AttributeError, ValueError):  # no isatty, or closed: rich says "not a terminal"
        return True


class _SilenceOnImport:
    """A `sys.meta_path` finder that lets loguru load as usual, then removes its stderr sink."""

    def find_spec(
        self, name: str, path: Sequence[str] | None, target: ModuleType | None = None
    ) -> ModuleSpec | None:
        if name != "loguru":
            return None
        sys.meta_path.remove(self)  # one shot; also keeps the lookup below from recursing
        from importlib.util import find_spec

        spec = find_spec(name)
        loader = spec.loader if spec is not None else None
        if loader is None:
            return spec
        run = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run(module)
            module.logger.remove()

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def silence_loguru() -> None:
    """Logs go to state/logs/controller.log (the loop adds that sink), never the terminal."""
    loaded = sys.modules.get("loguru")
    if loaded is not None:
        loaded.logger.remove()
    elif not any(isinstance(finder, _SilenceOnImport) for finder in sys.meta_path):
        sys.meta_path.insert(0, _SilenceOnImport())
