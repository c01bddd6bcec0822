"""Landing a finished task on the integration branch -- never by merging in a user's checkout.

Why this shape: the merge is computed in memory (`git merge-tree`), committed as an object,
verified in a throw-away scratch worktree, and only then published -- by compare-and-swap of
the integration ref, or, when the integration branch is checked out somewhere, by a
fast-forward of that (clean) checkout. So a failed, conflicting, rejected or raced merge
leaves every ref and every checkout exactly as it was, and the caller can simply retry.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from controller import git
from controller.act.verify import run_verify
from controller.model import names
from controller.model.globs import path_matches
from controller.model.outcomes import MergeOutcome

ATTEMPT_TRAILER = "Orchestrator-Attempt"


def merge_message(task: str, title: str, attempt: int) -> str:
    return (
        f"Merge task {task}: {title}\n\n"
        f"{names.MERGE_TRAILER}: {task}\n"
        f"{ATTEMPT_TRAILER}: {attempt}\n"
    )


def out_of_scope(changed: list[str], scope: list[str]) -> tuple[str, ...]:
    return tuple(path for path in changed if not path_matches(path, scope))


def _publish(repo: git.Repo, integration: str, new: str, old: str) -> MergeOutcome:
    """Move the integration branch from `old` to `new`, or say why not."""
    checkout = git.worktree_for_branch(repo, integration)
    if checkout is None:
        ref = f"refs/heads/{integration}"
        if git.cas_update_ref(repo, ref, new, old, reason=f"land {new[:12]}"):
            return MergeOutcome("merged", sha=new)
        return MergeOutcome("raced", message=f"{integration} moved while merging; will retry")
    try:
        place = git.worktree_place(repo, checkout, allow_main=True)
    except git.WorktreeRedirected as exc:
        return MergeOutcome("blocked", message=f"{integration} checkout not trusted: {exc}")
    # Untracked files do not block: `merge --ff-only` refuses to overwrite them by itself.
    if git.is_dirty(place):
        return MergeOutcome(
            "blocked",
            message=(
                f"{integration} is checked out at {checkout} with uncommitted changes; "
                "commit or stash them so it can be fast-forwarded (nothing was moved)"
            ),
        )
    if git.rev_parse(repo, f"refs/heads/{integration}") != old:
        return MergeOutcome("raced", message=f"{integration} moved in {checkout}; will retry")
    try:
        git.fast_forward_checkout(place, new)
    except git.GitError as exc:
        if git.rev_parse(repo, f"refs/heads/{integration}") != old:
            return MergeOutcome("raced", message=f"{integration} moved in {checkout}; will retry")
        return MergeOutcome(
            "blocked",
            message=f"cannot fast-forward {checkout} ({exc.stderr.strip()}); nothing was moved",
        )
    return MergeOutcome("merged", sha=new)


def _commit_leftovers(repo: git.Repo, task: str, attempt: int, worktree: Path | None) -> None:
    """Commit what the agent left uncommitted -- only if the worktree is on the task branch.

    Raises WorktreeRedirected when the worktree's pointers were edited: its work is then
    not trusted into a merge (the caller rejects the attempt; prune archives the work).
    """
    if worktree is None or not worktree.exists():
        return
    branch = names.branch_for(task)
    on_branch = git.worktree_for_branch(repo, branch)
    if on_branch is None or on_branch.resolve() != worktree.resolve():
        return
    place = git.worktree_place(repo, worktree)
    message = f"{task}: uncommitted work left by attempt {attempt}"
    git.commit_leftovers(repo, place, branch, message)


def _landing_problem(
    repo: git.Repo, task: str, old: str, tree: str, scope: list[str], allow_empty: bool
) -> MergeOutcome | None:
    """What the merge would land (old tip -> merged tree): rejected when it leaves the
    scope, "empty" when it is nothing (unless the task may change nothing)."""
    changed = [c.path for c in git.landed_changes(repo, old, tree)]
    if not changed and not allow_empty:
        return MergeOutcome("empty", message="nothing to merge into the integration branch")
    offending = out_of_scope(changed, scope)
    if not offending:
        return None
    return MergeOutcome(
        "rejected",
        offending=offending,
        message=f"{len(offending)} changed file(s) outside the write scope of {task}",
    )


def land_task(
    repo_path: Path,
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
    allow_empty: bool = False,
) -> MergeOutcome:
    """Merge `orchestrator/<task>` into `integration` (see the module docstring).

    An attempt that would land nothing is not merged (outcome "empty", the task fails with
    "no changes") unless `allow_empty`: then the merge commit has parents [integration tip,
    branch tip] even when the branch adds nothing -- except when both are the same commit:
    git drops the duplicate parent, so the commit then has one parent and exists only to
    carry the trailers.
    """
    repo = git.open_repo(repo_path)
    branch = names.branch_for(task)
    try:
        _commit_leftovers(repo, task, attempt, worktree)
    except git.WorktreeRedirected as exc:
        return MergeOutcome("rejected", message=f"worktree tampered with: {exc}")
    branch_sha = git.rev_parse(repo, f"refs/heads/{branch}")
    if branch_sha is None:
        return MergeOutcome("rejected", message=f"branch {branch} does not exist")
    old = git.rev_parse(repo, f"refs/heads/{integration}")
    if old is None:
        return MergeOutcome("blocked", message=f"integration branch {integration} does not exist")
    if git.merge_base(repo, old, branch_sha) is None:
        # e.g. its branch was deleted by hand and the agent's next commit started a new root
        return MergeOutcome(
            "rejected",
            message=f"{branch} shares no history with {integration}; not merged (branch kept)",
        )
    merged = git.merge_tree(repo, old, branch_sha)
    if merged.tree is None:
        return MergeOutcome(
            "conflict", conflicts=merged.conflicts, message=f"{branch} conflicts with {integration}"
        )
    problem = _landing_problem(repo, task, old, merged.tree, scope, allow_empty)
    if problem is not None:
        return problem
    new = git.commit_tree(repo, merged.tree, [old, branch_sha], merge_message(task, title, attempt))
    if verify:
        with git.scratch_worktree(repo, scratch_root, new) as scratch:
            failure = run_verify(verify, scratch, verify_log, verify_timeout_s)
        if failure:
            return MergeOutcome("verify_failed", sha=None, message=failure)
    return _publish(repo, integration, new, old)


@dataclass(frozen=True)
class MergeJob:
    """Everything a merge needs, so it can run on a worker thread without the store."""

    task: str
    attempt: int
    repo: Path
    integration: str
    title: str
    worktree: Path | None
    scope: list[str]
    verify: list[str] | None
    verify_timeout_s: float
    verify_log: Path
    scratch_root: Path
    allow_empty: bool = False

    def run(self) -> MergeOutcome:
        try:
            return land_task(
                self.repo,
                integration=self.integration,
                task=self.task,
                title=self.title,
                attempt=self.attempt,
                worktree=self.worktree,
                scope=self.scope,
                verify=self.verify,
                verify_timeout_s=self.verify_timeout_s,
                verify_log=self.verify_log,
                scratch_root=self.scratch_root,
                allow_empty=self.allow_empty,
            )
        except (git.GitError, git.WorktreeError, OSError) as exc:
            return MergeOutcome("error", message=f"merge failed, will retry: {exc}")
