"""Chaos scenario 1, `crashes`: every agent fault while the controller is SIGKILLed over and over.

A backlog with dependencies, scope groups and a verify gate, in which every task carries one
agent fault (non-zero exits, SIGKILL, hangs past the timeout, writes outside the scope, deleted
files, a stale index.lock, commits on another branch or a detached HEAD, merge conflicts,
megabytes of output, a broken build) or none. Each fault must end the way the design says
(`AGENT_FAULTS`), and a crash counts as survived only when the end state audits clean.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.chaos_audit import Audit
from bench.chaos_procs import ProcessSampler, agent_processes
from bench.chaos_scenarios import Outcome, converge_and_stop, finish, watch_unexpected_exit
from bench.chaos_world import IGNORED_DIR, Project, git, read_side_log, wait_until

# kind -> how the task must end: merged (after the fault), rejected or failed (reported)
AGENT_FAULTS: dict[str, str] = {
    "exit-nonzero": "merged",
    "exit-always": "failed",
    "sigkill-self": "merged",
    "sigkill-external": "merged",
    "hang-timeout": "merged",
    "hang-ignoring-sigterm": "merged",
    "write-outside-scope": "rejected",
    "delete-tracked-files": "rejected",
    "delete-whole-worktree": "merged",
    "stale-index-lock": "merged",
    "commit-other-branch": "merged",
    "commit-detached-head": "merged",
    "merge-conflict": "merged",
    "verify-fails": "merged",
    "megabytes-output": "merged",
}
# the chaos agent's one-shot directive behind a fault (its marker shows that it fired)
ONE_SHOT = {
    "exit-nonzero": "fail-first",
    "sigkill-self": "sigkill-first",
    "hang-timeout": "hang-first",
    "hang-ignoring-sigterm": "hard-hang-first",
    "verify-fails": "break-first",
}


def fault_prompt(kind: str, task: str, scope: str, pace: float = 1.0) -> list[str]:
    """The chaos agent's directives for a task with fault `kind`; `pace` stretches its work."""
    own = f"{scope}/{task}.txt"
    built = f"write {IGNORED_DIR}/{task}.out: built by {task}"  # ignored: never committed
    work = [f"sleep {pace * (0.2 + (int(task[1:]) % 5) / 10):.2f}", f"write {own}: {task}", built]
    commit = [f"commit {task}: work"]
    return {
        "none": [*work, *commit],
        "exit-nonzero": ["fail-first 3", *work, *commit],
        "exit-always": ["sleep 0.2", "exit 5"],
        "sigkill-self": [f"write {own}: half", "sigkill-first", *work, *commit],
        "sigkill-external": ["sleep 2.5", *work, *commit],
        "hang-timeout": [f"write {own}: half", "hang-first", *work, *commit],
        "hang-ignoring-sigterm": ["hard-hang-first", *work, *commit],
        "write-outside-scope": [*work, f"write elsewhere/{task}.txt: sneaky", *commit],
        "delete-tracked-files": [*work, "delete-tracked", *commit],
        "delete-whole-worktree": [*work, *commit, "delete-everything"],
        "stale-index-lock": [*work, "index-lock"],
        "commit-other-branch": [*work, *commit, f"side-branch {scope}/{task}-side.txt"],
        "commit-detached-head": [*work, *commit, f"detach {scope}/{task}-detached.txt"],
        "merge-conflict": ["sleep 1.0", f"write conflicts/{task}.txt: agent {task}", *commit],
        "verify-fails": [f"break-first {scope}/BROKEN", *work, *commit],
        "megabytes-output": [*work, "flood 3", *commit],
    }[kind]


@dataclass(frozen=True)
class PlannedTask:
    id: str
    fault: str
    scope: str
    deps: tuple[str, ...]


def plan_backlog(rng: random.Random, n: int) -> list[PlannedTask]:
    """n tasks: a third in four scope groups, every fault once (twice when n allows it),
    the rest well-behaved, and a random dependency DAG over the tasks expected to merge."""
    kinds = list(AGENT_FAULTS) * (2 if n >= 2 * len(AGENT_FAULTS) + 5 else 1)
    faults = kinds + ["none"] * max(0, n - len(kinds))
    faults = faults[:n]
    rng.shuffle(faults)
    tasks: list[PlannedTask] = []
    for i, fault in enumerate(faults):
        tid = f"t{i:02d}"
        scope = f"tasks/g{i % 4}" if i % 3 == 0 else f"tasks/{tid}"
        good = [t.id for t in tasks if AGENT_FAULTS.get(t.fault, "merged") == "merged"]
        deps = tuple(sorted(rng.sample(good, k=min(len(good), rng.choice((0, 0, 1, 2))))))
        tasks.append(PlannedTask(tid, fault, scope, deps))
    return tasks


def hang_timeout(pace: float) -> float:
    return 2.0 + pace


def backlog_entry(t: PlannedTask, pace: float = 1.0) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "id": t.id,
        "agent": "dev",
        "prompt": "\n".join(fault_prompt(t.fault, t.id, t.scope, pace)),
        "paths": [f"{t.scope}/**", f"conflicts/{t.id}.txt"],
    }
    if t.deps:
        entry["dependsOn"] = list(t.deps)
    if t.fault in ("hang-timeout", "hang-ignoring-sigterm"):
        entry["timeout"] = f"{hang_timeout(pace):g}s"  # well above its normal work
    return entry


class Human(threading.Thread):
    """Commits a conflicting edit on main as soon as a conflict task's first attempt starts,
    and SIGKILLs the first attempt of `sigkill-external` tasks that runs, once it has run a
    moment."""

    def __init__(self, p: Project, tasks: list[PlannedTask]):
        super().__init__(name="chaos-human", daemon=True)
        self.p = p
        self.conflict = {t.id for t in tasks if t.fault == "merge-conflict"}
        self.external = {t.id for t in tasks if t.fault == "sigkill-external"}
        self.done: set[str] = set()
        self.killed: set[str] = set()
        self.stop_event = threading.Event()

    def run(self) -> None:
        while not self.stop_event.wait(0.05):
            for run in read_side_log(self.p.side_log_path).runs:
                if run.task in self.conflict and run.task not in self.done:
                    self.done.add(run.task)
                    self.p.human_commit(
                        f"conflicts/{run.task}.txt", f"human {run.task}\n", f"human: {run.task}"
                    )
            for pid, (task, _attempt) in agent_processes().items():
                # the first attempt that runs (a kill of the controller mid-spawn may leave
                # attempt 1 never started, and attempt 2 the first to run)
                if task in self.external and task not in self.killed:
                    time.sleep(0.3)
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(pid, signal.SIGKILL)
                        self.killed.add(task)


def judge_agent_faults(
    p: Project,
    tasks: list[PlannedTask],
    outcome: Outcome,
    human: Human,
    sampler: ProcessSampler,
    pace: float,
) -> None:
    """Did each injected agent fault end the way the design says it should?"""
    merges, status = p.merges(), p.status()
    side = read_side_log(p.side_log_path)
    archived = set(
        git(p.repo, "for-each-ref", "--format=%(refname)", "refs/orchestrator/archive/").split()
    )
    for t in tasks:
        if t.fault == "none":
            continue
        expected = AGENT_FAULTS[t.fault]
        merged = merges.get(t.id, 0) == 1
        runs = [r for r in side.runs if r.task == t.id]
        row = status.get(t.id, {})
        phase, reason = row.get("phase"), str(row.get("reason") or "")
        if any(merges.get(d, 0) != 1 for d in t.deps) and not merged:
            ok = phase == "blocked"  # its dependency did not land: waiting is right
        elif expected == "merged":
            ok = merged
        elif expected == "rejected":
            ok = not merged and phase == "rejected" and "outside" in reason
        else:
            ok = not merged and phase == "failed" and "exit 5" in reason
        if t.fault in ONE_SHOT:  # the fault really fired once
            ok = ok and (p.chaos / "faulted" / f"{t.id}.{ONE_SHOT[t.fault]}").exists()
        if t.fault == "merge-conflict":
            ok = ok and t.id in human.done and any(f"/{t.id}/" in r for r in archived)
        if t.fault == "sigkill-external" and t.id not in human.killed:
            outcome.audit.fail(f"{t.id} (sigkill-external): the harness never killed its agent")
            ok = False
        if t.fault in ("hang-timeout", "hang-ignoring-sigterm"):
            # killed at its timeout (+5 s grace when it ignores SIGTERM), not left hanging
            grace = 5.0 if t.fault == "hang-ignoring-sigterm" else 0.0
            limit = hang_timeout(pace) + grace + 3.0
            lives = [s.last - r.start for r in runs if (s := sampler.seen.get(r.pid))]
            ok = ok and bool(lives) and max(lives) <= limit
        if t.fault == "megabytes-output":
            logs = list((p.state / "logs" / t.id).glob("*.log"))
            ok = ok and any(f.stat().st_size >= 3 * 1024 * 1024 for f in logs)
        outcome.fault(t.fault, ok)
        if not ok:
            outcome.audit.fail(f"{t.id} ({t.fault}): expected {expected}, got {phase} {reason!r}")


def scenario_crashes(
    root: Path, rng: random.Random, n_tasks: int, n_kills: int, pace: float = 1.0
) -> Outcome:
    """`n_tasks` tasks (every agent fault among them) while the controller is SIGKILLed
    `n_kills` times at random moments; agents' work lasts `pace` times 0.2-0.6 s."""
    started = time.monotonic()
    p = Project(root, rng)
    outcome = Outcome("crashes", Audit("crashes"))
    tasks = plan_backlog(rng, n_tasks)
    for t in tasks:
        (p.repo / "conflicts").mkdir(exist_ok=True)
        (p.repo / "conflicts" / f"{t.id}.txt").write_text(f"seed {t.id}\n")
    git(p.repo, "add", "-A")
    git(p.repo, "commit", "-q", "-m", "seed conflict files")
    p.write_spec(p.base_spec([backlog_entry(t, pace) for t in tasks], retries=3))
    sampler = ProcessSampler().start()
    human = Human(p, tasks)
    human.start()
    mergeable = sum(1 for t in tasks if AGENT_FAULTS.get(t.fault, "merged") == "merged")
    for _ in range(n_kills):
        proc = p.start_controller()
        time.sleep(rng.uniform(0.3, 2.5))
        alive = proc.poll() is None
        watch_unexpected_exit(p, proc, outcome.audit)
        note_kill_moment(p, proc, outcome, mergeable)
        p.kill_controller(proc, group=rng.random() < 0.5)
        outcome.crashes_injected += 1
        outcome.crashes_survived += int(alive)
        time.sleep(rng.uniform(0.0, 0.3))
    converge_and_stop(p, outcome.audit, timeout=300)
    human.stop_event.set()
    human.join(5)
    wait_until(lambda: not agent_processes(), 15)
    judge_agent_faults(p, tasks, outcome, human, sampler, pace)
    finish(p, sampler, outcome)
    check_scope_groups(p, tasks, outcome.audit)
    if outcome.audit.findings:  # a crash counts as survived only if the end state is right
        outcome.crashes_survived = 0
    outcome.seconds = time.monotonic() - started
    return outcome


def note_kill_moment(
    p: Project, proc: subprocess.Popen[bytes], outcome: Outcome, mergeable: int
) -> None:
    """What the controller was doing when it was killed (read from the world, roughly)."""
    moments = outcome.kill_moments
    if sum(p.merges().values()) < mergeable:
        moments["before the backlog was done"] = moments.get("before the backlog was done", 0) + 1
    if "watching" not in p.controller_output(proc):
        moments["still starting up"] = moments.get("still starting up", 0) + 1
        return
    scratch = p.state / "scratch"
    if scratch.is_dir() and any(scratch.iterdir()):
        moments["verifying a merge"] = moments.get("verifying a merge", 0) + 1
    if any(task in p.task_ids for task, _ in agent_processes().values()):
        moments["agents running"] = moments.get("agents running", 0) + 1


def check_scope_groups(p: Project, tasks: list[PlannedTask], audit: Audit) -> None:
    """No two tasks of one scope group ever ran at the same time (side log intervals)."""
    scope = {t.id: t.scope for t in tasks}
    runs = [r for r in read_side_log(p.side_log_path).runs if r.end is not None]
    runs.sort(key=lambda r: r.start)
    for i, a in enumerate(runs):
        for b in runs[i + 1 :]:
            if b.start >= (a.end or a.start):
                break
            if a.task != b.task and scope.get(a.task) == scope.get(b.task):
                audit.fail(f"{a.task} and {b.task} share scope {scope[a.task]} but overlapped")
