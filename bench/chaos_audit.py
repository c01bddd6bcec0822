"""The chaos harness's audit: is the end state of a scenario what the design promises?

Written independently of the controller's bookkeeping: it reads git (merge trailers on the
integration branch, refs, the reflog, `git worktree list`), the process table (through the
sampler and `/proc`) and the chaos agent's side log -- never the controller's database. The
only controller output it consults is `orchestrator status -o json`, for the reason of a task
that did not merge (the user-visible report the brief asks for).

Checks, each producing findings (strings) and counts:
- every task in the spec merged exactly once, or reported with its phase and reason;
- every commit an agent logged is reachable from main, a task branch or an archive ref;
- every file an agent wrote (logged with its content's blob id before any commit) is kept
  with that content: in a commit reachable from main, a task branch or an archive ref, in
  an archive of ignored files (`state/archive/<task>/*.tar.gz`), or still in the task's
  worktree -- unless the same agent later wrote or deleted it again (then that counts);
- every merged task's files on main are what its branch had when merged (the merge took
  them unchanged), and still on main unless a later commit on main changed them;
- no two agent processes of one task were ever alive together: the agents' own O_EXCL lock
  per task (`chaos_agent.take_task_lock`), the sampler, and the logged run intervals of one
  task (ends completed from the sampler);
- no worktree other than those of unmerged spec tasks remains, nor a stray directory;
- every commit main's reflog ever pointed at passes the verify predicate (no `BROKEN`);
- no process of the scenario is left behind.
"""

from __future__ import annotations

import hashlib
import os
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bench.chaos_procs import ProcessSampler, processes_under
from bench.chaos_world import MARKER, TRAILER, Project, SideLog, git, git_ok

REPORTED_PHASES = {"failed", "rejected", "blocked"}


@dataclass
class Audit:
    """Findings and counts of one scenario's audit."""

    scenario: str
    findings: list[str] = field(default_factory=list)
    tasks: int = 0
    merged: int = 0
    reported: int = 0
    commits_made: int = 0
    commits_lost: int = 0
    duplicate_agents: int = 0
    orphan_worktrees: int = 0
    orphan_processes: int = 0
    reflog_entries: int = 0
    reflog_unverified: int = 0
    files_checked: int = 0
    files_lost: int = 0
    merged_files_checked: int = 0
    merged_files_wrong: int = 0

    def fail(self, message: str) -> None:
        self.findings.append(f"[{self.scenario}] {message}")

    @property
    def orphans(self) -> int:
        return self.orphan_worktrees + self.orphan_processes


def check_merges(p: Project, audit: Audit, status: dict[str, dict[str, object]]) -> set[str]:
    merges = p.merges()
    merged = set()
    for task in p.task_ids:
        audit.tasks += 1
        count = merges.get(task, 0)
        if count > 1:
            audit.fail(f"task {task} merged {count} times")
        if count >= 1:
            audit.merged += 1
            merged.add(task)
            continue
        row = status.get(task, {})
        phase, reason = str(row.get("phase", "")), str(row.get("reason", "") or "")
        if phase in REPORTED_PHASES and reason.strip():
            audit.reported += 1
        else:
            audit.fail(f"task {task} neither merged nor reported: phase {phase!r} {reason!r}")
    return merged


def reachable_commits(repo: Path) -> set[str]:
    refs = git(
        repo,
        "for-each-ref",
        "--format=%(objectname)",
        "refs/heads/orchestrator/",
        "refs/orchestrator/archive/",
    ).split()
    tips = ["refs/heads/main", *refs]
    return set(git(repo, "rev-list", *tips).split())


def check_commits(p: Project, side: SideLog, audit: Audit) -> None:
    reachable = reachable_commits(p.repo)
    for task, attempt, sha, ref in side.commits:
        audit.commits_made += 1
        if sha not in reachable:
            audit.commits_lost += 1
            kept = "kept" if git_ok(p.repo, "cat-file", "-e", f"{sha}^{{commit}}") else "gone"
            audit.fail(
                f"commit {sha[:10]} of {task} attempt {attempt} (on {ref}) is not reachable "
                f"from main, a task branch or an archive ref (object {kept})"
            )


def check_duplicates(side: SideLog, sampler: ProcessSampler, audit: Audit) -> None:
    dup_tasks = {task for _, task, _ in sampler.duplicates}
    for ts, task, pids in sampler.duplicates[:5]:
        audit.fail(f"two agents of {task} alive at {ts:.3f}: pids {pids}")
    for task, attempt, pid, holder in side.duplicates:  # the agents' own O_EXCL lock
        dup_tasks.add(task)
        audit.fail(f"{task} attempt {attempt} (pid {pid}) found pid {holder} of {task} alive")
    by_task: dict[str, list[tuple[float, float, int, int]]] = {}
    for run in side.runs:
        seen = sampler.seen.get(run.pid)
        end = run.end if run.end is not None else (seen.last if seen else run.start)
        by_task.setdefault(run.task, []).append((run.start, end, run.attempt, run.pid))
    for task, intervals in by_task.items():
        intervals.sort()
        for (_s1, e1, n1, p1), (s2, _e2, n2, p2) in zip(intervals, intervals[1:], strict=False):
            if s2 < e1 - 0.001:
                dup_tasks.add(task)
                audit.fail(
                    f"{task}: attempt {n2} (pid {p2}) started {e1 - s2:.3f}s before attempt "
                    f"{n1} (pid {p1}) ended"
                )
    audit.duplicate_agents = len(dup_tasks)


def check_worktrees(p: Project, merged: set[str], audit: Audit) -> None:
    out = git(p.repo, "worktree", "list", "--porcelain")
    paths = [line.split(" ", 1)[1] for line in out.splitlines() if line.startswith("worktree ")]
    allowed = set(p.task_ids) - merged
    root = os.path.realpath(p.worktrees)
    registered = set()
    for path in paths[1:]:
        real = os.path.realpath(path)
        registered.add(real)
        name = os.path.basename(real)
        if os.path.dirname(real) == root and name in allowed:
            continue
        audit.orphan_worktrees += 1
        audit.fail(f"worktree {path} remains (not an unmerged task of the spec)")
    if os.path.isdir(root):
        for entry in os.scandir(root):
            if os.path.realpath(entry.path) not in registered:
                audit.orphan_worktrees += 1
                audit.fail(f"stray directory {entry.path} in the worktree root")
    scratch = p.state / "scratch"
    if scratch.is_dir():
        for entry in os.scandir(scratch):
            audit.orphan_worktrees += 1
            audit.fail(f"verify scratch {entry.path} remains")


def passes_verify(repo: Path, sha: str) -> bool:
    names = git(repo, "ls-tree", "-r", "--name-only", sha).splitlines()
    return not any(os.path.basename(n) == MARKER for n in names)


def check_reflog(p: Project, audit: Audit) -> None:
    shas = git(p.repo, "log", "-g", "--format=%H", "refs/heads/main").split()
    shas += git(p.repo, "rev-list", "--first-parent", "main").split()
    for sha in dict.fromkeys(shas):
        audit.reflog_entries += 1
        if not passes_verify(p.repo, sha):
            audit.reflog_unverified += 1
            audit.fail(f"main pointed at {sha[:10]}, which fails the verify predicate")


def check_processes(p: Project, audit: Audit, exclude: Iterable[int] = ()) -> None:
    left = processes_under(p.root, exclude)
    audit.orphan_processes = len(left)
    for pid, text in left[:10]:
        audit.fail(f"process {pid} left behind: {text}")


def blob_id(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def reachable_files(repo: Path) -> set[tuple[str, str]]:
    """(path, blob) of every file in every commit reachable from main, a task branch or an
    archive ref: each appears as added or changed in some commit's diff (against a parent,
    or from nothing for a root commit). One git call."""
    refs = git(
        repo,
        "for-each-ref",
        "--format=%(refname)",
        "refs/heads/orchestrator/",
        "refs/orchestrator/archive/",
    ).split()
    out = git(
        repo, "log", "--raw", "--no-abbrev", "--no-renames", "-m", "--root", "--format=",
        "refs/heads/main", *refs,
    )  # fmt: skip
    found: set[tuple[str, str]] = set()
    for line in out.splitlines():
        if line.startswith(":") and "\t" in line:
            meta, _, path = line.partition("\t")
            new = meta.split()[3]
            if set(new) != {"0"}:
                found.add((path, new))
    return found


def archived_ignored(state: Path, audit: Audit) -> set[tuple[str, str, str]]:
    """(task, path, blob) of every file in the archives of ignored files; an archive that
    cannot be read whole is a finding."""
    found: set[tuple[str, str, str]] = set()
    for archive in sorted((state / "archive").glob("*/*.tar.gz")):
        try:
            with tarfile.open(archive) as tar:
                for member in tar.getmembers():
                    handle = tar.extractfile(member) if member.isfile() else None
                    if handle is not None:
                        found.add((archive.parent.name, member.name, blob_id(handle.read())))
        except (tarfile.TarError, EOFError, OSError) as exc:
            audit.fail(f"archive of ignored files {archive} is unreadable: {exc}")
    return found


def in_worktree(p: Project, task: str, path: str, blob: str) -> bool:
    target = p.worktrees / task / path
    try:
        return not target.is_symlink() and blob_id(target.read_bytes()) == blob
    except OSError:
        return False


def check_writes(p: Project, side: SideLog, audit: Audit, exempt: Iterable[str] = ()) -> None:
    """Every file an agent wrote is kept (see the module docstring)."""
    skip = set(exempt)
    last: dict[tuple[str, str], tuple[int, int, str | None]] = {}
    wiped: dict[str, int] = {}
    for ev in side.files:
        if ev.blob is None and ev.path == "*":
            wiped[ev.task] = ev.seq
        else:
            last[(ev.task, ev.path)] = (ev.seq, ev.attempt, ev.blob)
    reachable = reachable_files(p.repo)
    archived = archived_ignored(p.state, audit)
    for (task, path), (seq, attempt, blob) in sorted(last.items()):
        if task in skip or blob is None or wiped.get(task, -1) > seq:
            continue
        audit.files_checked += 1
        if (path, blob) in reachable or (task, path, blob) in archived:
            continue
        if in_worktree(p, task, path, blob):
            continue
        audit.files_lost += 1
        audit.fail(
            f"{path} as {task} attempt {attempt} wrote it (blob {blob[:10]}) is in no commit "
            "reachable from main, a task branch or an archive ref, in no archive of ignored "
            "files, and not in its worktree"
        )


def _first_parent_changes(repo: Path) -> list[tuple[str, list[str], str, dict[str, str]]]:
    """main's first-parent commits, oldest first: (sha, parents, tasks, {path: new blob})."""
    fmt = f"%x01%H %P%x02%(trailers:key={TRAILER},valueonly,separator=%x2C)"
    out = git(
        repo, "log", "--first-parent", "--reverse", "--raw", "--no-abbrev", "--no-renames",
        "--diff-merges=first-parent", f"--format={fmt}", "main",
    )  # fmt: skip
    commits = []
    for chunk in out.split("\x01")[1:]:
        header, _, rest = chunk.partition("\x02")
        shas = header.split()
        trailers, _, raw = rest.partition("\n")
        changes = {}
        for line in raw.splitlines():
            if line.startswith(":") and "\t" in line:
                meta, _, path = line.partition("\t")
                changes[path] = meta.split()[3]
        commits.append((shas[0], shas[1:], trailers.strip(), changes))
    return commits


def _tree(repo: Path, rev: str) -> dict[str, str]:
    out = git(repo, "ls-tree", "-r", "--full-tree", rev)
    return {line.split("\t", 1)[1]: line.split()[2] for line in out.splitlines() if "\t" in line}


def check_merged_content(p: Project, audit: Audit) -> None:
    """Each merge took its branch's files unchanged, and main still has them unless a later
    commit on main changed them (see the module docstring)."""
    commits = _first_parent_changes(p.repo)
    main = _tree(p.repo, "main")
    zero = "0" * 40
    for i, (sha, parents, tasks, changes) in enumerate(commits):
        if not tasks or len(parents) != 2:
            continue
        branch = _tree(p.repo, parents[1])
        later = {path for _, _, _, ch in commits[i + 1 :] for path in ch}
        for path, new in changes.items():
            audit.merged_files_checked += 1
            landed = None if new == zero else new
            if branch.get(path) != landed:
                audit.merged_files_wrong += 1
                audit.fail(f"merge {sha[:10]} of {tasks} landed {path} unlike its branch")
            elif path not in later and main.get(path) != landed:
                audit.merged_files_wrong += 1
                audit.fail(f"{path} of {tasks} changed on main with no later commit")


def run_audit(
    p: Project,
    side: SideLog,
    sampler: ProcessSampler,
    scenario: str,
    exempt_writes: Iterable[str] = (),
) -> Audit:
    audit = Audit(scenario)
    merged = check_merges(p, audit, p.status())
    check_commits(p, side, audit)
    check_writes(p, side, audit, exempt_writes)
    check_merged_content(p, audit)
    check_duplicates(side, sampler, audit)
    check_worktrees(p, merged, audit)
    check_reflog(p, audit)
    check_processes(p, audit)
    return audit
