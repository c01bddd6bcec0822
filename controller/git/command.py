"""Running one git command at a `Place`: pinned, with its repository's programs neutralised.

`run` and `out` are what the rest of the git layer calls; `runner` starts the process and
`config_guard` supplies the overrides for the place's repository config.
"""

from __future__ import annotations

import subprocess
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn

from controller.git.config_guard import overrides_for
from controller.git.runner import (
    GIT_TIMEOUT_S,
    GitError,
    Place,
    git_argv,
    git_env,
    pinned,
    run_bounded,
)


@dataclass(frozen=True)
class Result:
    argv: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    def raise_error(self) -> NoReturn:
        raise GitError(self.argv, self.returncode, self.stderr)


def _decode(data: bytes) -> str:
    return data.decode("utf-8", errors="surrogateescape")


def _execute(
    argv: list[str],
    env: Mapping[str, str] | None,
    timeout_s: float,
    check: bool,
    *,
    cwd: Path | None = None,
    input: bytes | None = None,
) -> Result:
    try:
        proc = run_bounded(argv, git_env(env), timeout_s, cwd=cwd, input=input)
    except subprocess.TimeoutExpired:
        raise GitError(argv, -9, f"timed out after {timeout_s:g}s") from None
    except OSError as exc:
        raise GitError(argv, -1, f"could not run git: {exc}") from None
    result = Result(tuple(argv), proc.returncode, _decode(proc.stdout), _decode(proc.stderr))
    if check and not result.ok:
        result.raise_error()
    return result


def run(
    place: Place,
    *args: str,
    env: Mapping[str, str] | None = None,
    input: str | None = None,
    timeout_s: float = GIT_TIMEOUT_S,
    check: bool = True,
) -> Result:
    """Run one git command at `place`; raises GitError when it fails and `check` is true."""
    argv = git_argv(place, args, overrides_for(place))
    data = input.encode("utf-8", errors="surrogateescape") if input is not None else None
    return _execute(argv, env, timeout_s, check, cwd=place.work_tree, input=data)


def out(place: Place, *args: str, env: Mapping[str, str] | None = None) -> str:
    """stdout of a git command that must succeed."""
    return run(place, *args, env=env).stdout


def run_in(
    directory: Path,
    *args: str,
    env: Mapping[str, str] | None = None,
    check: bool = True,
    timeout_s: float = GIT_TIMEOUT_S,
) -> Result:
    """Run git in a directory the controller itself created and owns (a repository it is
    about to `init` or clone, e.g. a Ray worker's checkout or the demo's scratch repo):
    git discovers the repository there. Pins apply as everywhere; there is no agent-written
    config to neutralise yet."""
    return _execute([*pinned(), "-C", str(directory), *args], env, timeout_s, check)
