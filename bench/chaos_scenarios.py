"""The chaos harness's four scenarios, each on its own fresh repository and state directory,
and the steps they share (converge and stop, the final audit) and report in (`Outcome`).

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

Scenario 1 is `chaos_crashes.py`, 2 `chaos_world_faults.py`, 3 and 4 `chaos_control.py`.
Random choices come from one seeded `random.Random`; process timing does not, so a rerun with
the same seed injects the same faults at nearly, not exactly, the same moments.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Iterable
from dataclasses import dataclass, field

from bench.chaos_audit import Audit, run_audit
from bench.chaos_procs import ProcessSampler, agent_processes
from bench.chaos_world import Project, read_side_log, wait_until

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
    git_kills: dict[str, int] = field(default_factory=dict)  # git-kills: kills per kind

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


def finish(
    p: Project, sampler: ProcessSampler, outcome: Outcome, exempt_writes: Iterable[str] = ()
) -> None:
    """Audit the end state; append the findings to the scenario's audit. `exempt_writes`:
    tasks whose files the harness itself destroyed (a worktree deleted by hand)."""
    wait_until(lambda: not agent_processes(), 15)
    sampler.stop()
    outcome.samples, outcome.sampled_s = sampler.samples, sampler.stopped - sampler.started
    side = read_side_log(p.side_log_path)
    audit = run_audit(p, side, sampler, outcome.name, exempt_writes)
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
        "files_checked",
        "files_lost",
        "merged_files_checked",
        "merged_files_wrong",
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
