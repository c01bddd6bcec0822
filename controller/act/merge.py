"""Landing a finished task on the integration branch -- never by merging in a user's checkout.

Why this shape: the merge is computed in memory (`git merge-tree`), committed as an object,
verified in a throw-away scratch worktree, and only then published -- by compare-and-swap of
the integration ref, or, when the integration branch is checked out somewhere, by a
fast-forward of that (clean) checkout. So a failed, conflicting, rejected or raced merge
leaves every ref and every checkout exactly as it was, and the caller can simply retry.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Literal

from controller.git import ops as gitops
from controller.model import names
from controller.model.globs import path_matches

ATTEMPT_TRAILER = "Orchestrator-Attempt"
VERIFY_KILL_GRACE_S = 5.0

# "error": git itself failed (not a race); the caller waits a little before trying again
OutcomeKind = Literal[
    "merged", "conflict", "verify_failed", "rejected", "raced", "blocked", "error"
]


@dataclass(frozen=True)
class MergeOutcome:
    kind: OutcomeKind
    sha: str | None = None  # the merge commit (merged)
    conflicts: tuple[str, ...] = ()  # conflicting files (conflict)
    offending: tuple[str, ...] = ()  # files outside the write scope (rejected)
    message: str = ""


def merge_message(task: str, title: str, attempt: int) -> str:
    return (
        f"Merge task {task}: {title}\n\n"
        f"{names.MERGE_TRAILER}: {task}\n"
        f"{ATTEMPT_TRAILER}: {attempt}\n"
    )


def out_of_scope(changed: list[str], scope: list[str]) -> tuple[str, ...]:
    return tuple(path for path in changed if not path_matches(path, scope))


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the verify command's process group (it leads its own session)."""
    for sig, wait_s in ((signal.SIGTERM, VERIFY_KILL_GRACE_S), (signal.SIGKILL, 1.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _run_logged(argv: list[str], cwd: Path, log: BinaryIO, timeout_s: float) -> int | None:
    """Run `argv` with output to `log`; its exit code, or None on timeout."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        code = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return None
    with contextlib.suppress(ProcessLookupError):  # leftovers must not outlive the command
        os.killpg(proc.pid, signal.SIGKILL)
    return code


def run_verify(verify: list[str], cwd: Path, log_path: Path, timeout_s: float) -> str | None:
    """Run the verify gate in `cwd`; None when it passed, else why it failed."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        log.write(f"$ {shlex.join(verify)}\n".encode())
        log.flush()
        try:
            code = _run_logged(verify, cwd, log, timeout_s)
        except OSError as exc:
            log.write(f"orchestrator: cannot run verify command: {exc}\n".encode())
            return f"verify command could not start ({exc}); log: {log_path}"
    if code is None:
        return f"verify timed out after {timeout_s:g}s; log: {log_path}"
    if code != 0:
        return f"verify exited with code {code}; log: {log_path}"
    return None


def _publish(repo: Path, integration: str, new: str, old: str) -> MergeOutcome:
    """Move the integration branch from `old` to `new`, or say why not."""
    checkout = gitops.worktree_for_branch(repo, integration)
    if checkout is None:
        if gitops.cas_update_ref(
            repo, f"refs/heads/{integration}", new, old, reason=f"land {new[:12]}"
        ):
            return MergeOutcome("merged", sha=new)
        return MergeOutcome("raced", message=f"{integration} moved while merging; will retry")
    # Untracked files do not block: `merge --ff-only` refuses to overwrite them by itself.
    if gitops.has_uncommitted(checkout, untracked=False):
        return MergeOutcome(
            "blocked",
            message=(
                f"{integration} is checked out at {checkout} with uncommitted changes; "
                "commit or stash them so it can be fast-forwarded (nothing was moved)"
            ),
        )
    if gitops.rev_parse(checkout, "HEAD") != old:
        return MergeOutcome("raced", message=f"{integration} moved in {checkout}; will retry")
    try:
        gitops.fast_forward_checkout(checkout, new)
    except gitops.GitError as exc:
        if gitops.rev_parse(checkout, "HEAD") != old:
            return MergeOutcome("raced", message=f"{integration} moved in {checkout}; will retry")
        return MergeOutcome(
            "blocked",
            message=f"cannot fast-forward {checkout} ({exc.stderr.strip()}); nothing was moved",
        )
    return MergeOutcome("merged", sha=new)


def _commit_leftovers(repo: Path, task: str, attempt: int, worktree: Path | None) -> None:
    """Commit what the agent left uncommitted -- only if the worktree is on the task branch."""
    if worktree is None or not worktree.exists():
        return
    on_branch = gitops.worktree_for_branch(repo, names.branch_for(task))
    if on_branch is None or on_branch.resolve() != worktree.resolve():
        return
    gitops.commit_leftovers(worktree, f"{task}: uncommitted work left by attempt {attempt}")


def land_task(
    repo: Path,
    *,
    integration: str,
    task: str,
    title: str,
    attempt: int,
    worktree: Path | None,
    scope: list[str],
    verify: list[str] | None,
    verify_timeout_s: float,
    verify_log: Path,
    scratch_root: Path,
) -> MergeOutcome:
    """Merge `orchestrator/<task>` into `integration` (see the module docstring).

    The merge commit has parents [integration tip, branch tip] even when the branch adds
    nothing -- except when both are the same commit: git drops the duplicate parent, so the
    commit then has one parent and exists only to carry the trailers.
    """
    branch = names.branch_for(task)
    _commit_leftovers(repo, task, attempt, worktree)
    branch_sha = gitops.rev_parse(repo, f"refs/heads/{branch}")
    if branch_sha is None:
        return MergeOutcome("rejected", message=f"branch {branch} does not exist")
    old = gitops.rev_parse(repo, f"refs/heads/{integration}")
    if old is None:
        return MergeOutcome("blocked", message=f"integration branch {integration} does not exist")

    if gitops.merge_base(repo, old, branch_sha) is None:
        # e.g. its branch was deleted by hand and the agent's next commit started a new root
        return MergeOutcome(
            "rejected",
            message=f"{branch} shares no history with {integration}; not merged (branch kept)",
        )
    offending = out_of_scope(gitops.changed_files(repo, old, branch_sha), scope)
    if offending:
        return MergeOutcome(
            "rejected",
            offending=offending,
            message=f"{len(offending)} changed file(s) outside the write scope of {task}",
        )
    merged = gitops.merge_tree(repo, old, branch_sha)
    if merged.tree is None:
        return MergeOutcome(
            "conflict",
            conflicts=merged.conflicts,
            message=f"{branch} conflicts with {integration}",
        )
    new = gitops.commit_tree(
        repo, merged.tree, [old, branch_sha], merge_message(task, title, attempt)
    )
    if verify:
        with gitops.scratch_worktree(repo, scratch_root, new) as scratch:
            failure = run_verify(verify, scratch, verify_log, verify_timeout_s)
        if failure:
            return MergeOutcome("verify_failed", sha=None, message=failure)
    return _publish(repo, integration, new, old)
