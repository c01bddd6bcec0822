"""Read-only git queries of an observe pass: worktrees, task branches, merged tasks, dirtiness.

Every function here is one `git` process whatever the number of tasks, so a pass costs a
constant number of git calls; the module-level `calls` counter (incremented per invocation)
lets tests and benchmarks assert that. Plain subprocess with argv lists and `-z` porcelain
output: no shell, no GitPython layer, a stable machine format. `GIT_OPTIONAL_LOCKS=0` keeps
`git status` from taking the index lock under an agent's feet.
"""

from __future__ import annotations

import os
import subprocess
import threading
from pathlib import Path

from controller.model.names import BRANCH_PREFIX, MERGE_TRAILER, task_for_branch, task_id_problem
from controller.model.observed import BranchObs, WorktreeObs

GIT_TIMEOUT_S = 120.0
TASK_REFS = "refs/heads/" + BRANCH_PREFIX.rstrip("/")

calls = 0  # git invocations so far (tests and benchmarks diff it around a pass)
_calls_lock = threading.Lock()


class GitError(RuntimeError):
    """A git command failed."""


def run_bounded(
    argv: list[str], env: dict[str, str], timeout_s: float
) -> subprocess.CompletedProcess[bytes]:
    """Run `argv` to completion, killed after `timeout_s`.

    A watchdog timer does the killing instead of `subprocess.run(timeout=...)`, whose wait
    polls with sleeps and adds about a millisecond to every one of the pass's git calls.
    """
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, env=env
    )
    fired = threading.Event()

    def kill() -> None:
        fired.set()
        proc.kill()

    timer = threading.Timer(timeout_s, kill)
    timer.daemon = True
    timer.start()
    try:
        out, err = proc.communicate()
    finally:
        timer.cancel()
    if fired.is_set():
        raise subprocess.TimeoutExpired(argv, timeout_s)
    return subprocess.CompletedProcess(argv, proc.returncode, out, err)


def _run(cwd: Path | str, *args: str) -> subprocess.CompletedProcess[bytes]:
    global calls
    with _calls_lock:  # observe() runs its git calls from several threads
        calls += 1
    argv = ["git", "-C", str(cwd), *args]
    env = {**os.environ, "GIT_OPTIONAL_LOCKS": "0", "GIT_TERMINAL_PROMPT": "0"}
    try:
        return run_bounded(argv, env, GIT_TIMEOUT_S)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise GitError(f"{' '.join(argv)}: {exc}") from exc


def _out(cwd: Path | str, *args: str) -> str:
    proc = _run(cwd, *args)
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise GitError(f"git -C {cwd} {' '.join(args)} exited {proc.returncode}: {err}")
    return proc.stdout.decode(errors="surrogateescape")


def _short(ref: str) -> str:
    return ref.removeprefix("refs/heads/")


def parse_worktrees(text: str) -> list[WorktreeObs]:
    """Parse `git worktree list --porcelain -z` output (pure)."""
    result: list[WorktreeObs] = []
    fields: dict[str, str] = {}

    def flush() -> None:
        if "worktree" in fields:
            branch = fields.get("branch")
            result.append(
                WorktreeObs(
                    path=fields["worktree"],
                    head=fields.get("HEAD") or None,
                    branch=_short(branch) if branch else None,
                    bare="bare" in fields,
                    locked="locked" in fields,
                    prunable="prunable" in fields,
                )
            )
        fields.clear()

    for token in text.split("\0"):
        if not token:
            flush()
            continue
        key, _, value = token.partition(" ")
        fields[key] = value
    flush()
    return result


def list_worktrees(repo: Path) -> list[WorktreeObs]:
    """All worktrees of `repo` (main one first), incl. bare, detached, locked, prunable."""
    return parse_worktrees(_out(repo, "worktree", "list", "--porcelain", "-z"))


def task_branches(repo: Path, integration: str | None) -> dict[str, BranchObs]:
    """Task branches `orchestrator/<id>` by task id, with `merged` = tip reachable from
    `integration` (a branch, ref or sha; None -> nothing merged). Two git calls."""
    listed = _out(repo, "for-each-ref", "--format=%(refname) %(objectname)", TASK_REFS)
    merged_refs: set[str] = set()
    if integration is not None:
        merged_out = _out(
            repo, "for-each-ref", "--format=%(refname)", f"--merged={integration}", TASK_REFS
        )
        merged_refs = set(merged_out.split())
    result: dict[str, BranchObs] = {}
    for line in listed.splitlines():
        ref, _, sha = line.partition(" ")
        task = task_for_branch(ref)
        if task is not None and sha:
            result[task] = BranchObs(task=task, sha=sha, merged=ref in merged_refs)
    return result


def parse_trailer_values(text: str) -> frozenset[str]:
    """Task ids from `log -z --format=%(trailers:...,valueonly,separator=%x1f)` (pure)."""
    tasks: set[str] = set()
    for record in text.split("\0"):
        for value in record.split("\x1f"):
            value = value.strip()
            if value and task_id_problem(value) is None:
                tasks.add(value)
    return frozenset(tasks)


def merged_tasks(repo: Path, integration: str) -> frozenset[str]:
    """Task ids whose `Orchestrator-Task:` trailer is on a commit of `integration`'s
    first-parent history (the merge commits the controller made). One git call; empty when
    `integration` does not resolve."""
    proc = _run(
        repo,
        "log",
        "--first-parent",
        "-z",
        "-i",
        f"--grep={MERGE_TRAILER}:",
        f"--format=%(trailers:key={MERGE_TRAILER},valueonly,separator=%x1f)",
        "--end-of-options",
        integration,
        "--",
    )
    if proc.returncode != 0:
        return frozenset()
    return parse_trailer_values(proc.stdout.decode(errors="replace"))


def rev(repo: Path, ref: str) -> str | None:
    """The commit `ref` names (tags peeled), or None when it does not resolve."""
    proc = _run(repo, "rev-parse", "--verify", "--quiet", "--end-of-options", f"{ref}^{{commit}}")
    if proc.returncode != 0:
        return None
    return proc.stdout.decode().strip() or None


def is_dirty(worktree: Path | str) -> bool:
    """True when the worktree has staged or unstaged changes to tracked files.

    Untracked files do not count: a fast-forward of that checkout refuses by itself to
    overwrite one, and most checkouts hold some (virtualenvs, build output).
    """
    out = _out(worktree, "status", "--porcelain", "-z", "--untracked-files=no")
    return bool(out)
