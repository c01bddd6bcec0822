"""Which spec file a command works on, when `-f` does not say: found the way git finds its
repository, and `$ORCHESTRATOR_SPEC` as the default outside any project.

The order, first found wins:
1. `-f FILE`, when given: what a person types on the command line is what they mean;
2. `specs/orchestrator.yaml` in the current folder or a folder above it, up to the root of
   the git repository the current folder is in (not beyond it, and only the current folder
   when it is in no repository: a spec in a shared parent such as /tmp is never picked up);
3. `$ORCHESTRATOR_SPEC` (a path; relative to the current folder).

The variable comes after the search, unlike KUBECONFIG: it is a default for when you are in
no project, so a value left in your shell never makes a command act on another repository
than the one you are in. Standard library only (the command line's fast start).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

SPEC_NAME = Path("specs") / "orchestrator.yaml"
ENV = "ORCHESTRATOR_SPEC"


@dataclass(frozen=True)
class Search:
    """Where the spec was found (`found`), else the folders looked in and why it stopped."""

    found: Path | None
    looked: list[Path] = field(default_factory=list)
    root: Path | None = None  # the repository root the search stopped at

    def message(self) -> str:
        if len(self.looked) == 1:
            where = f"in {self.looked[0]}"
        else:
            where = f"in {', '.join(str(p) for p in self.looked[:-1])} and {self.looked[-1]}"
        stop = " (the repository root)" if self.root is not None else " (in no git repository)"
        return (
            f"no spec found: looked for {SPEC_NAME} {where}{stop}; ${ENV} is not set. Give one "
            "with -f FILE, set $ORCHESTRATOR_SPEC, or create one with `orchestrator init`"
        )


def search(start: Path | None = None) -> Search:
    """`specs/orchestrator.yaml` from `start` (default: the current folder) up to the root of
    its repository (see the module docstring)."""
    here = Path(os.path.abspath(start or Path.cwd()))
    upward = [here, *here.parents]
    root = next((folder for folder in upward if (folder / ".git").exists()), None)
    folders = upward[: upward.index(root) + 1] if root is not None else [here]
    for i, folder in enumerate(folders):
        candidate = folder / SPEC_NAME
        if candidate.is_file():
            return Search(_shortest(candidate), folders[: i + 1], root)
    return Search(None, folders, root)


def _shortest(path: Path) -> Path:
    """`path` relative to the current folder when that reads shorter (as users type it)."""
    try:
        rel = Path(os.path.relpath(path))
    except ValueError:
        return path
    return rel if len(str(rel)) < len(str(path)) else path


def spec_file(given: Path | None) -> Path | str:
    """The spec to use: `given` (-f), else the search, else `$ORCHESTRATOR_SPEC`; when none
    is found, the message saying where it looked (a str)."""
    if given is not None:
        return given
    found = search()
    if found.found is not None:
        return found.found
    env = os.environ.get(ENV, "").strip()
    if env:
        return Path(os.path.expanduser(env))
    return found.message()
