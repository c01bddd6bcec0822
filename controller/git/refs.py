"""Reading and moving refs: commits by name, ancestry, task branches, merged tasks, and the
ways the controller moves a ref (compare-and-swap, new archive refs that never overwrite an
existing one, and compare-and-swap deletes for `orchestrator clean`).

Archive refs are made with a reflog of their own, so `clean --archives --older-than` can
tell when an archive was made (not only how old the work in it is)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from controller.git.command import run
from controller.git.places import Repo, as_repo
from controller.git.runner import GitError
from controller.model import names
from controller.model.names import BRANCH_PREFIX, MERGE_TRAILER, task_for_branch, task_id_problem
from controller.model.observed import BranchObs

TASK_REFS = "refs/heads/" + BRANCH_PREFIX.rstrip("/")


def rev_parse(repo: Path | Repo, ref: str) -> str | None:
    """The commit `ref` names (tags peeled), or None when it names no commit."""
    r = as_repo(repo)
    proc = run(
        r.place,
        "rev-parse",
        "--verify",
        "--quiet",
        "--end-of-options",
        f"{ref}^{{commit}}",
        check=False,
    )
    return (proc.stdout.strip() or None) if proc.ok else None


def is_ancestor(repo: Path | Repo, ancestor: str, descendant: str) -> bool:
    args = ("merge-base", "--is-ancestor", "--end-of-options", ancestor, descendant)
    return run(as_repo(repo).place, *args, check=False).ok


def merge_base(repo: Path | Repo, a: str, b: str) -> str | None:
    """The best common ancestor of two commits, or None when they share no history."""
    proc = run(as_repo(repo).place, "merge-base", "--end-of-options", a, b, check=False)
    return (proc.stdout.strip() or None) if proc.ok else None


def task_branches(repo: Path | Repo, integration: str | None) -> dict[str, BranchObs]:
    """Task branches `orchestrator/<id>` by task id, with `merged` = tip reachable from
    `integration` (a branch, ref or sha; None -> nothing merged). Two git calls."""
    place = as_repo(repo).place
    listed = run(place, "for-each-ref", "--format=%(refname) %(objectname)", TASK_REFS).stdout
    merged_refs: set[str] = set()
    if integration is not None:
        merged_out = run(
            place, "for-each-ref", "--format=%(refname)", f"--merged={integration}", TASK_REFS
        ).stdout
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


def merged_tasks(repo: Path | Repo, integration: str) -> frozenset[str]:
    """Task ids whose `Orchestrator-Task:` trailer is on a commit of `integration`'s
    first-parent history (the merge commits the controller made). One git call; empty when
    `integration` does not resolve."""
    proc = run(
        as_repo(repo).place,
        "log",
        "--first-parent",
        "-z",
        "-i",
        f"--grep={MERGE_TRAILER}:",
        f"--format=%(trailers:key={MERGE_TRAILER},valueonly,separator=%x1f)",
        "--end-of-options",
        integration,
        "--",
        check=False,
    )
    return parse_trailer_values(proc.stdout) if proc.ok else frozenset()


def cas_update_ref(
    repo: Path | Repo, ref: str, new: str, old: str, *, reason: str = "land"
) -> bool:
    """Move `ref` from `old` to `new` atomically; False (no raise) when it no longer is `old`."""
    r = as_repo(repo)
    proc = run(r.place, "update-ref", "-m", f"orchestrator: {reason}", ref, new, old, check=False)
    if proc.ok:
        return True
    if rev_parse(r, ref) != (old or None):
        return False
    proc.raise_error()


def create_archive_ref(repo: Path | Repo, task: str, number: int, sha: str) -> str:
    """Point a fresh archive ref at `sha`: `<archive>/<n>`, else `<n>-2`, `<n>-3`, ...

    Existing refs are never overwritten; one already pointing at `sha` is reused.
    """
    r = as_repo(repo)
    base = names.archive_ref(task, number)
    for k in range(1, 10_000):
        ref = base if k == 1 else f"{base}-{k}"
        current = rev_parse(r, ref)
        if current == sha:
            return ref
        if current is not None:
            continue
        proc = run(
            r.place,
            "update-ref",
            "--create-reflog",  # when it was archived, for `clean --older-than`
            "-m",
            "orchestrator: archive",
            ref,
            sha,
            "",
            check=False,
        )
        if proc.ok:
            return ref
        if rev_parse(r, ref) is None:
            proc.raise_error()
    raise GitError(["update-ref", base], 1, "no free archive ref number")


def archive_branch_tip(repo: Path | Repo, task: str, number: int) -> str | None:
    """Point an archive ref at the tip of `orchestrator/<task>` (None if no such branch)."""
    r = as_repo(repo)
    sha = rev_parse(r, f"refs/heads/{names.branch_for(task)}")
    return create_archive_ref(r, task, number, sha) if sha else None


def delete_ref(repo: Path | Repo, ref: str, old: str) -> bool:
    """Delete `ref` only if it still points at `old` (compare-and-swap); False when it moved
    or is gone, so a ref someone updated meanwhile is never lost."""
    if not old or not old.strip("0"):  # git reads an all-zero old value as "do not check"
        raise ValueError(f"deleting {ref} needs the commit it must still point at")
    r = as_repo(repo)
    proc = run(r.place, "update-ref", "-m", "orchestrator: clean", "-d", ref, old, check=False)
    if proc.ok:
        return True
    if rev_parse(r, ref) != old:
        return False
    proc.raise_error()


@dataclass(frozen=True)
class ArchiveRef:
    ref: str
    sha: str
    made_at: float  # when it was archived (its reflog), else its commit's date


def archive_refs(repo: Path | Repo) -> list[ArchiveRef]:
    """Every archive ref `refs/orchestrator/archive/...`, oldest first."""
    r = as_repo(repo)
    fmt = "--format=%(refname) %(objectname) %(committerdate:unix)"
    listed = run(r.place, "for-each-ref", fmt, names.ARCHIVE_PREFIX.rstrip("/")).stdout
    found = []
    for line in listed.splitlines():
        ref, sha, date = (line.split(" ") + ["", ""])[:3]
        if not ref or not sha:
            continue
        made = _reflog_created(r, ref)
        found.append(ArchiveRef(ref, sha, made if made is not None else float(date or 0)))
    return sorted(found, key=lambda a: (a.made_at, a.ref))


def _reflog_created(repo: Repo, ref: str) -> float | None:
    """When `ref` was created, from its reflog's oldest entry (None without a reflog)."""
    proc = run(repo.place, "reflog", "show", "--date=unix", "--format=%gd", ref, "--", check=False)
    lines = proc.stdout.split()
    if not proc.ok or not lines:
        return None
    stamp = lines[-1].rpartition("@{")[2].rstrip("}")
    return float(stamp) if stamp.isdigit() else None
