"""Landing a finished task on the integration branch -- never by merging in a user's checkout.

Why this shape: the merge is computed in memory (`git merge-tree`), committed as an object,
verified in a throw-away scratch worktree, and only then published -- by compare-and-swap of
the integration ref, or, when the integration branch is checked out somewhere, by a
fast-forward of that (clean) checkout. So a failed, conflicting, rejected or raced merge
leaves every ref and every checkout exactly as it was, and the caller can simply retry.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

from controller import git
from controller.act.verify import pid_file_for, run_verify
from controller.model import names
from controller.model.globs import path_matches
from controller.model.links import escaping_links
from controller.model.observed import WorktreeObs
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


def publish(
    repo: git.Repo,
    integration: str,
    new: str,
    old: str,
    listing: list[WorktreeObs] | None = None,
) -> MergeOutcome:
    """Move the integration branch from `old` to `new` (a merge commit made on `old`), or say
    why not: by compare-and-swap of the ref, or, where the branch is checked out, by a
    fast-forward of that checkout made under its index lock (`git.fast_forward_checkout`:
    as atomic as the swap)."""
    checkout = git.worktree_for_branch(repo, integration, listing)
    if checkout is None:
        ref = f"refs/heads/{integration}"
        if git.cas_update_ref(repo, ref, new, old, reason=f"land {new[:12]}"):
            return MergeOutcome("merged", sha=new)
        return MergeOutcome("raced", message=f"{integration} moved while merging; will retry")
    try:
        place = git.worktree_place(repo, checkout, allow_main=True)
    except git.WorktreeRedirected as exc:
        return MergeOutcome("blocked", message=f"{integration} checkout not trusted: {exc}")
    try:
        git.fast_forward_checkout(place, integration, new, old, descends=True)
    except git.CheckoutRefused as exc:
        if exc.raced:
            return MergeOutcome("raced", message=f"{exc.reason}; will retry")
        return MergeOutcome("blocked", message=f"{exc.reason} (nothing was moved)")
    return MergeOutcome("merged", sha=new)


def _commit_leftovers(
    repo: git.Repo,
    task: str,
    attempt: int,
    worktree: Path | None,
    listing: list[WorktreeObs] | None = None,
) -> None:
    """Commit what the agent left uncommitted -- only if the worktree is on the task branch.

    Raises WorktreeRedirected when the worktree's pointers were edited: its work is then
    not trusted into a merge (the caller rejects the attempt; prune archives the work).
    """
    if worktree is None or not worktree.exists():
        return
    branch = names.branch_for(task)
    on_branch = git.worktree_for_branch(repo, branch, listing)
    if on_branch is None or on_branch.resolve() != worktree.resolve():
        return
    place = git.worktree_place(repo, worktree)
    message = f"{task}: changes from attempt {attempt}"
    git.commit_leftovers(repo, place, branch, message)


def _scope_problem(
    task: str, changes: list[git.Change], scope: list[str], allow_empty: bool
) -> MergeOutcome | None:
    """What the merge would land (old tip -> merged tree): rejected when it leaves the
    scope, "empty" when it is nothing (unless the task may change nothing)."""
    if not changes and not allow_empty:
        return MergeOutcome("empty", message="nothing to merge into the integration branch")
    offending = out_of_scope([c.path for c in changes], scope)
    if not offending:
        return None
    return MergeOutcome(
        "rejected",
        offending=offending,
        message=f"{len(offending)} changed file(s) outside the write scope of {task}",
    )


def external_links(repo: git.Repo, changes: list[git.Change]) -> dict[str, str]:
    """The symlinks the merge would land that point outside the repository (path -> target)."""
    links = [c for c in changes if c.adds_symlink]
    if not links:
        return {}
    targets = git.blob_texts(repo, [c.new_sha for c in links])
    return escaping_links({c.path: targets.get(c.new_sha, "") for c in links})


def _link_problem(links: dict[str, str], allowed: bool) -> MergeOutcome | None:
    """Rejected when the merge lands symlinks out of the repository (unless allowed)."""
    if not links or allowed:
        return None
    shown = ", ".join(f"{path} -> {target}" for path, target in sorted(links.items()))
    return MergeOutcome(
        "rejected",
        message=f"symlink(s) pointing outside the repository: {shown} "
        "(set allowExternalSymlinks: true in the spec to accept them)",
    )


@dataclass(frozen=True)
class MergeJob:
    """Everything landing one task needs, so it can run on a worker thread without the store
    (alone, `run`; or as a link of a merge train, `act.train`)."""

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
    verify_env: Mapping[str, str] | None = None  # None: the scrubbed default (act.verify)
    allow_external_symlinks: bool = False
    state_root: Path | None = None  # the state folder the verify log lies in
    log_limit: int | None = None
    allow_empty: bool = False  # the task may land nothing (else "no changes")
    # who the merge commit is authored by (name, email); the committer is the controller
    author: tuple[str, str] | None = None

    def run(self) -> MergeOutcome:
        rest = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "repo"}
        try:
            return land_task(self.repo, **rest)
        except (git.GitError, git.WorktreeError, OSError) as exc:
            why = exc.brief if isinstance(exc, git.GitError) else str(exc)
            return MergeOutcome("error", message=f"merge failed, will retry: {why}")


@dataclass(frozen=True)
class Link:
    """One task's merge commit, made on top of the previous link of a chain (or the tip)."""

    task: str
    sha: str
    # symlinks it lands that point outside the repository (allowExternalSymlinks: true)
    external_links: tuple[tuple[str, str], ...] = ()


def build_link(
    repo: git.Repo, base: str, job: MergeJob, listing: list[WorktreeObs] | None = None
) -> Link | MergeOutcome:
    """Merge `orchestrator/<task>` onto commit `base` in memory and commit the result; or
    the outcome that keeps it from landing (rejected, conflict, empty). Moves no ref.

    With `allow_empty`, the merge commit has parents [base, branch tip] even when the branch
    adds nothing -- except when both are the same commit: git drops the duplicate parent, so
    the commit then has one parent and exists only to carry the trailers. `listing`: the
    repository's worktrees, when the caller just listed them.
    """
    branch, integration = names.branch_for(job.task), job.integration
    try:
        _commit_leftovers(repo, job.task, job.attempt, job.worktree, listing)
    except git.WorktreeRedirected as exc:
        return MergeOutcome("rejected", message=f"worktree tampered with: {exc}")
    branch_sha = git.rev_parse(repo, f"refs/heads/{branch}")
    if branch_sha is None:
        return MergeOutcome("rejected", message=f"branch {branch} does not exist")
    try:
        merged = git.merge_tree(repo, base, branch_sha)
    except git.GitError as exc:
        if "unrelated histories" not in exc.stderr:
            raise
        # e.g. its branch was deleted by hand and the agent's next commit started a new root
        return MergeOutcome(
            "rejected",
            message=f"{branch} shares no history with {integration}; not merged (branch kept)",
        )
    if merged.tree is None:
        return MergeOutcome(
            "conflict", conflicts=merged.conflicts, message=f"{branch} conflicts with {integration}"
        )
    changes = git.landed_changes(repo, base, merged.tree)
    links = external_links(repo, changes)
    rejected = _scope_problem(job.task, changes, job.scope, job.allow_empty) or _link_problem(
        links, job.allow_external_symlinks
    )
    if rejected is not None:
        return rejected
    message = merge_message(job.task, job.title, job.attempt)
    sha = git.commit_tree(
        repo, merged.tree, [base, branch_sha], message, git.authored_by(job.author)
    )
    return Link(job.task, sha, tuple(sorted(links.items())))


def land_task(repo_path: Path, **job: Any) -> MergeOutcome:
    """Merge `orchestrator/<task>` into `integration`; `job` holds the other fields of a
    `MergeJob` (see the module docstring and `land`)."""
    return land(MergeJob(repo=repo_path, **job))


def verify_link(
    job: MergeJob, repo: git.Repo, sha: str, log: Path | None = None, header: str = ""
) -> str | None:
    """Run the verify gate on commit `sha` in a scratch worktree, its output in `log`
    (default: the job's verify log); why it failed, or None when it passed."""
    if not job.verify:
        return None
    with git.scratch_worktree(repo, job.scratch_root, sha) as scratch:
        return run_verify(
            job.verify,
            scratch,
            log or job.verify_log,
            job.verify_timeout_s,
            job.verify_env,
            state_root=job.state_root,
            log_limit=job.log_limit,
            header=header,
            pid_file=pid_file_for(scratch),
        )


def land(job: MergeJob) -> MergeOutcome:
    """Merge `orchestrator/<task>` into `job.integration` on its own (see the module
    docstring): `build_link` on the tip, verify it, publish it.

    An attempt that would land nothing is not merged (outcome "empty", the task fails with
    "no changes") unless `allow_empty` (see `build_link`).
    """
    repo = git.open_repo(job.repo)
    old = git.rev_parse(repo, f"refs/heads/{job.integration}")
    if old is None:
        return MergeOutcome(
            "blocked", message=f"integration branch {job.integration} does not exist"
        )
    link = build_link(repo, old, job)
    if isinstance(link, MergeOutcome):
        return link
    failure = verify_link(job, repo, link.sha)
    if failure:
        return MergeOutcome("verify_failed", sha=None, message=failure)
    published = publish(repo, job.integration, link.sha, old)
    return replace(published, external_links=link.external_links)
