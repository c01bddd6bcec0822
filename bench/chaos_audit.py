"""The chaos harness's audit: is the end state of a scenario what the design promises?

Written independently of the controller's bookkeeping: it reads git (merge trailers on the
integration branch, refs, the reflog, `git worktree list`), the process table (through the
sampler and `/proc`) and the chaos agent's side log -- never the controller's database. The
only controller output it consults is `orchestrator status -o json`, for the reason of a task
that did not merge (the user-visible report the brief asks for).

Checks, each producing findings (strings) and counts:
- every task in the spec merged exactly once, or reported with its phase and reason;
- every commit an agent logged is reachable from main, a task branch or an archive ref;
- no two agent processes of one task were ever alive together (sampler) and no two logged
  run intervals of one task overlap (side log, ends completed from the sampler);
- no worktree other than those of unmerged spec tasks remains, nor a stray directory;
- every commit main's reflog ever pointed at passes the verify predicate (no `BROKEN`);
- no process of the scenario is left behind.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

from bench.chaos_procs import ProcessSampler, processes_under
from bench.chaos_world import MARKER, Project, SideLog, git, git_ok

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


def run_audit(p: Project, side: SideLog, sampler: ProcessSampler, scenario: str) -> Audit:
    audit = Audit(scenario)
    merged = check_merges(p, audit, p.status())
    check_commits(p, side, audit)
    check_duplicates(side, sampler, audit)
    check_worktrees(p, merged, audit)
    check_reflog(p, audit)
    check_processes(p, audit)
    return audit
