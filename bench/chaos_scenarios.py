"""The chaos harness's four scenarios, each on its own fresh repository and state directory.

1. `crashes`: a backlog with dependencies, scope groups, a verify gate and every agent fault
   (non-zero exits, SIGKILL, hangs past the timeout, writes outside the scope, deleted files,
   a stale index.lock, commits on another branch or a detached HEAD, merge conflicts,
   megabytes of output, a broken build) while the controller is SIGKILLed over and over.
2. `world`: the world changes under the controller: worktrees and branches deleted or reset
   by hand, human commits on the integration branch, the database removed between runs, the
   state directory's disk (a size-limited tmpfs) filled up.
3. `bad-input`: invalid specs and roadmaps written over the live files of a `--watch`
   controller; each must be rejected with a located message while work goes on.
4. `concurrency`: two controllers started at once on one state directory, and `stop` /
   `stop --force` at random moments.

Random choices come from one seeded `random.Random`; process timing does not, so a rerun with
the same seed injects the same faults at nearly, not exactly, the same moments.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import re
import shutil
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.chaos_audit import Audit, run_audit
from bench.chaos_world import (
    ProcessSampler,
    Project,
    agent_processes,
    git,
    read_side_log,
    wait_until,
)

TERMINAL = {"merged", "rejected", "failed"}


@dataclass
class Outcome:
    """What one scenario injected and what its audit found."""

    name: str
    audit: Audit
    crashes_injected: int = 0
    crashes_survived: int = 0
    faults: dict[str, list[int]] = field(default_factory=dict)  # kind -> [injected, handled]
    bad_tried: int = 0
    bad_rejected: int = 0
    seconds: float = 0.0
    kill_moments: dict[str, int] = field(default_factory=dict)  # what the killed one was doing
    samples: int = 0  # process-table samples taken
    sampled_s: float = 0.0  # over this long

    def fault(self, kind: str, handled: bool) -> None:
        row = self.faults.setdefault(kind, [0, 0])
        row[0] += 1
        row[1] += int(handled)
        if not handled:
            self.audit.fail(f"fault {kind} not handled")


# --- shared steps ----------------------------------------------------------------------------


def converged(p: Project) -> bool:
    """No pending action, every task terminal (or blocked behind one), no agent alive."""
    if any(task in p.task_ids for task, _ in agent_processes().values()):
        return False
    result = p.cli("diff", "-o", "json")
    try:
        data = json.loads(result.stdout)
    except ValueError:
        return False
    if data["actions"]:
        return False
    phases: dict[str, str] = data["phases"]
    for task in p.task_ids:
        phase = phases.get(task)
        if phase == "blocked":
            continue  # behind a task that is itself terminal, checked below through it
        if phase not in TERMINAL:
            return False
    return True


def watch_unexpected_exit(p: Project, proc: subprocess.Popen[bytes], audit: Audit) -> None:
    """A controller that exited before we killed or stopped it is a finding."""
    code = proc.poll()
    if code is not None:
        tail = p.controller_output(proc)[-1500:]
        audit.fail(f"controller pid {proc.pid} exited by itself with {code}:\n{tail}")


def converge_and_stop(
    p: Project, audit: Audit, timeout: float, proc: subprocess.Popen[bytes] | None = None
) -> None:
    """Let a controller (`proc`, else a new one) converge, then stop it gracefully."""
    proc = proc or p.start_controller()
    if not wait_until(lambda: converged(p), timeout, step=1.0):
        audit.fail(f"did not converge within {timeout:.0f}s: {p.cli('diff').stdout[-2000:]}")
    watch_unexpected_exit(p, proc, audit)
    stop = p.cli("stop", "--wait", "60")
    try:
        code = proc.wait(timeout=70)
    except subprocess.TimeoutExpired:
        code = None
    if code != 0:
        audit.fail(f"graceful stop did not end the controller with 0 (got {code}): {stop.stdout}")
    p.stop_all_controllers()


LOG_ERROR = re.compile(r"--- Logging error in Loguru Handler.*?--- End of logging error ---", re.S)


def count_tracebacks(text: str) -> int:
    """Python tracebacks in a controller's output, except loguru's reports of a log line it
    could not write (the disk was full): those are the logger's, not the controller's."""
    return LOG_ERROR.sub("", text).count("Traceback")


def finish(p: Project, sampler: ProcessSampler, outcome: Outcome) -> None:
    """Audit the end state; append the findings to the scenario's audit."""
    wait_until(lambda: not agent_processes(), 15)
    sampler.stop()
    outcome.samples, outcome.sampled_s = sampler.samples, sampler.stopped - sampler.started
    audit = run_audit(p, read_side_log(p.side_log_path), sampler, outcome.name)
    outcome.audit.findings.extend(audit.findings)
    for name in (
        "tasks",
        "merged",
        "reported",
        "commits_made",
        "commits_lost",
        "duplicate_agents",
        "orphan_worktrees",
        "orphan_processes",
        "reflog_entries",
        "reflog_unverified",
    ):
        setattr(outcome.audit, name, getattr(audit, name))
    tracebacks = 0
    for proc in p.controllers:
        tracebacks += count_tracebacks(p.controller_output(proc))
    log = p.state / "logs" / "controller.log"
    if log.exists():
        tracebacks += count_tracebacks(log.read_text(errors="replace"))
    if tracebacks:
        outcome.audit.fail(f"{tracebacks} traceback(s) in controller output or log")


# --- 1. controller crashes and agent faults --------------------------------------------------

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
    work = [f"sleep {pace * (0.2 + (int(task[1:]) % 5) / 10):.2f}", f"write {own}: {task}"]
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
    and SIGKILLs the first attempt of `sigkill-external` tasks once it has run a moment."""

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
            for pid, (task, attempt) in agent_processes().items():
                if task in self.external and task not in self.killed and attempt == 1:
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
        if t.fault == "sigkill-external":
            ok = ok and t.id in human.killed
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


# --- 2. the world changes under the controller ----------------------------------------------


def mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        return False
    proc = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True
    )
    return proc.returncode == 0


def unmount(path: Path) -> None:
    subprocess.run(["umount", "-l", str(path)], capture_output=True)


def fill_disk(folder: Path) -> Path:
    filler = folder / "filler.bin"
    chunk = b"\0" * (1 << 20)
    with contextlib.suppress(OSError), filler.open("wb") as fh:
        while True:
            fh.write(chunk)
            fh.flush()
    with contextlib.suppress(OSError), filler.open("ab") as fh:  # the last few bytes too
        while True:
            fh.write(b"\0" * 4096)
            fh.flush()
    return filler


def first_start(p: Project, tasks: set[str], timeout: float = 30) -> str | None:
    """Wait for the first agent start of one of `tasks`; its id."""
    found: list[str] = []

    def check() -> bool:
        for run in read_side_log(p.side_log_path).runs:
            if run.task in tasks:
                found.append(run.task)
                return True
        return False

    wait_until(check, timeout, step=0.02)
    return found[0] if found else None


def scenario_world(root: Path, rng: random.Random, quick: bool) -> Outcome:
    started = time.monotonic()
    state = root / "state"
    on_tmpfs = mount_tmpfs(state, "6m")
    p = Project(root, rng, state_dir="../state", worktree_root="../worktrees")
    outcome = Outcome("world", Audit("world"))
    ids = [f"w{i:02d}" for i in range(8 if quick else 16)]
    backlog = [
        {
            "id": t,
            "agent": "dev",
            "prompt": f"sleep {rng.uniform(0.8, 1.6):.2f}\n"
            f"write tasks/{t}/{t}.txt: {t}\ncommit {t}",
            "paths": [f"tasks/{t}/**"],
        }
        for t in ids
    ]
    backlog.append(
        {"id": "wrej", "agent": "dev", "prompt": "write nope.txt: x\ncommit x", "paths": ["a/**"]}
    )
    p.write_spec(p.base_spec(backlog, maxParallel=3))
    sampler = ProcessSampler().start()
    proc = p.start_controller()
    humans: list[str] = []

    def human(n: int) -> None:
        """A person commits on main meanwhile; judged at the end: still on main?"""
        ok = p.human_commit(f"human/{n}.txt", f"human {n}\n", f"human commit {n}")
        humans.append(git(p.repo, "log", "-1", "--format=%H", "--", f"human/{n}.txt") if ok else "")

    # a running agent's worktree deleted by hand
    victim = first_start(p, set(ids[:3]))
    if victim:
        shutil.rmtree(p.worktrees / victim, ignore_errors=True)
    human(1)
    # a running task's branch deleted, another's reset, before their agents commit
    deleted = first_start(p, set(ids[3:5]) - {victim})
    if deleted:
        git(p.repo, "update-ref", "-d", f"refs/heads/orchestrator/{deleted}", check=False)
    reset = first_start(p, set(ids[5:7]) - {victim, deleted})
    if reset:
        git(p.repo, "update-ref", f"refs/heads/orchestrator/{reset}", "main~1", check=False)
    # the database removed between two runs
    time.sleep(rng.uniform(0.5, 1.5))
    watch_unexpected_exit(p, proc, outcome.audit)
    p.kill_controller(proc, group=False)
    for name in ("orchestrator.db", "orchestrator.db-wal", "orchestrator.db-shm"):
        (p.state / name).unlink(missing_ok=True)
    proc = p.start_controller()
    wait_until(lambda: "watching" in p.controller_output(proc), 20)
    human(2)
    # a merged task's branch deleted, another merged one reset to before its work
    wait_until(lambda: len(p.merges()) >= 2, 40)
    merged = [t for t in p.merges() if t in ids]
    if merged:
        git(p.repo, "branch", "-D", f"orchestrator/{merged[0]}", check=False)
        outcome.faults.setdefault("branch-deleted-after-merge", [0, 0])[0] += 1
    if len(merged) > 1:
        git(p.repo, "update-ref", f"refs/heads/orchestrator/{merged[1]}", "main~3", check=False)
        outcome.faults.setdefault("branch-reset-after-merge", [0, 0])[0] += 1
    # the state directory's disk fills up under the running controller, then frees again
    filled = False
    if on_tmpfs:
        filler = fill_disk(p.state)
        filled = True
        time.sleep(4)
        filler.unlink()
    human(3)
    # a rejected task's worktree removed by hand while nothing runs there
    wait_until(lambda: (p.worktrees / "wrej").is_dir() and "wrej" not in running_tasks(), 30)
    shutil.rmtree(p.worktrees / "wrej", ignore_errors=True)
    converge_and_stop(p, outcome.audit, timeout=180, proc=proc)
    merges = p.merges()
    on_main = set(git(p.repo, "rev-list", "main").split())
    status = p.status()
    for key, task in (
        ("worktree-deleted-while-running", victim),
        ("branch-deleted-while-running", deleted),
        ("branch-reset-while-running", reset),
    ):
        if task:  # merged once or, its branch tampered with, reported with the reason
            row = status.get(task, {})
            reported = row.get("phase") in ("rejected", "failed") and bool(row.get("reason"))
            outcome.fault(key, merges.get(task, 0) == 1 or (key.startswith("branch") and reported))
    for key in ("branch-deleted-after-merge", "branch-reset-after-merge"):
        if key in outcome.faults:
            outcome.faults[key][1] += int(all(merges.get(t, 0) == 1 for t in merged[:2]))
    outcome.fault("worktree-deleted-while-idle", merges.get("wrej", 0) == 0)
    for sha in humans:
        outcome.fault("human-commit-on-main", bool(sha) and sha in on_main)
    settled = all(merges.get(t, 0) == 1 for t in ids if t not in (deleted, reset))
    if filled:
        outcome.fault("state-disk-full", settled)
    outcome.fault("database-removed", settled)
    finish(p, sampler, outcome)
    if on_tmpfs:
        shutil.copytree(state, root / "state-copy", symlinks=True, dirs_exist_ok=True)
        unmount(state)
    outcome.seconds = time.monotonic() - started
    return outcome


def running_tasks() -> set[str]:
    return {task for task, _ in agent_processes().values()}
