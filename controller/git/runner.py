"""The one place that starts git: argv, environment, pins, timeout, errors, a call counter.

Why one runner: the controller's promises about git (nothing lost, the integration branch
only moves by compare-and-swap, no agent can make the controller run its code) can only be
checked if every git process goes through the same door. Every call here

- names its repository explicitly (`--git-dir`, and `--work-tree` when it needs one) instead
  of letting git discover it from the current directory or a `.git` file an agent can edit;
- pins the settings through which a repository can make git run programs: hooks
  (`core.hooksPath=/dev/null`), the fsmonitor, and (see `config_guard`) the filter, merge
  and diff drivers and the remote helpers an agent could define in the shared `.git/config`;
- drops inherited variables that would redirect git elsewhere (`GIT_DIR`, `GIT_INDEX_FILE`,
  ...), disables terminal prompts and optional locks;
- is killed after a timeout by a watchdog timer (not `subprocess.run(timeout=)`, whose wait
  polls with sleeps and adds about a millisecond to every call of an observe pass).

GitPython is not used here: importing it costs about 90 ms (it runs `git version` at import)
and its command runner adds nothing this module needs; see docs/architecture.md.
"""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from controller.model.safe_text import redact

GIT_TIMEOUT_S = 120.0
# settings that make git run a program, pinned off for every call the controller makes
PINNED_CONFIG: tuple[str, ...] = (
    "core.hooksPath=/dev/null",
    "core.fsmonitor=false",
    "core.untrackedCache=false",
    "gc.auto=0",  # no background `git gc --auto` spawned by the controller's own commands
    "protocol.ext.allow=never",
)
# inherited variables that would point git somewhere other than the place we name
REDIRECTING_ENV = (
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_COMMON_DIR",
    "GIT_PREFIX",
    "GIT_NAMESPACE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_CEILING_DIRECTORIES",
    "GIT_DISCOVERY_ACROSS_FILESYSTEM",
)

calls = 0  # git processes started so far (tests and benchmarks diff it around a pass)
_calls_lock = threading.Lock()


class GitError(RuntimeError):
    """A git command failed (or could not run, or timed out).

    Its message and `stderr` have the credentials of any URL cut out (a push to
    `https://user:token@host/...` fails with the URL in its argv): the message travels into
    events, `controller.log`, `status` and the terminal. `argv` keeps the exact call.
    """

    def __init__(self, argv: Sequence[str], returncode: int, stderr: str) -> None:
        self.argv = tuple(argv)
        self.returncode = returncode
        self.stderr = redact(stderr)
        super().__init__(redact(f"{' '.join(self.argv)} exited {returncode}: {stderr.strip()}"))

    @property
    def brief(self) -> str:
        """`git <command>: <first line of its error>`, without the pinned settings: the
        part of the failure people need (a holdoff's reason in `status`)."""
        args = iter(self.argv[1:])
        command = ""
        for arg in args:
            if arg == "-c":
                next(args, None)
            elif not arg.startswith("-"):
                command = arg
                break
        lines = [line.strip() for line in self.stderr.splitlines() if line.strip()]
        return f"git {command}: {lines[0] if lines else f'exited {self.returncode}'}"


@dataclass(frozen=True)
class Place:
    """Where a git command runs: a git directory, plus a work tree when the command needs one.

    Build places with `controller.git.places` (which checks a worktree's `.git` file and
    registration before trusting them), not by hand from paths an agent could have edited.
    """

    git_dir: Path
    work_tree: Path | None = None

    def argv(self) -> list[str]:
        out = [f"--git-dir={self.git_dir}"]
        if self.work_tree is not None:
            out.append(f"--work-tree={self.work_tree}")
        return out


def git_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in REDIRECTING_ENV}
    env["GIT_TERMINAL_PROMPT"] = "0"
    env["GIT_OPTIONAL_LOCKS"] = "0"
    env.update(extra or {})
    return env


def pinned(overrides: Sequence[str] = ()) -> list[str]:
    """`git` with the pinned settings, then `overrides` (later `-c` settings win)."""
    argv = ["git"]
    for setting in (*PINNED_CONFIG, *overrides):
        argv += ["-c", setting]
    return argv


def git_argv(place: Place, args: Sequence[str], overrides: Sequence[str] = ()) -> list[str]:
    """The full argv of one git call: pins first, then the caller's overrides, then args."""
    return [*pinned(overrides), *place.argv(), *args]


def run_bounded(
    argv: Sequence[str],
    env: Mapping[str, str],
    timeout_s: float,
    *,
    cwd: Path | None = None,
    input: bytes | None = None,
) -> subprocess.CompletedProcess[bytes]:
    """Run `argv` to completion, killed after `timeout_s` (raises TimeoutExpired then).

    Every git process the controller starts passes here (and is counted in `calls`).
    """
    global calls
    with _calls_lock:  # observe runs its git calls from several threads
        calls += 1
    proc = subprocess.Popen(
        list(argv),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        stdin=subprocess.PIPE if input is not None else subprocess.DEVNULL,
        env=dict(env),
        cwd=cwd,
    )
    fired = threading.Event()

    def kill() -> None:
        fired.set()
        proc.kill()

    timer = threading.Timer(timeout_s, kill)
    timer.daemon = True
    timer.start()
    try:
        out, err = proc.communicate(input)
    finally:
        timer.cancel()
    if fired.is_set():
        raise subprocess.TimeoutExpired(list(argv), timeout_s)
    return subprocess.CompletedProcess(list(argv), proc.returncode, out, err)
