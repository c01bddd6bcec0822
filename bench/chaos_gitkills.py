"""Chaos scenario 5, `git-kills`: SIGKILL the controller in the middle of its git mutations.

The `crashes` scenario kills the controller at random moments, which rarely fall inside a git
call that changes something. This one aims: a thread watches the controller's children (its
threads' `/proc/<pid>/task/<tid>/children`, every millisecond) and, as soon as one is a git
process making a mutation of the kind it waits for, waits a random 0-3 ms (to land somewhere
inside it) and SIGKILLs the controller -- usually with its process group, so the git child
dies half-way too and leaves what a killed git leaves (lock files, half-written worktrees).
Then it starts a new controller and waits for the next kind.

Kinds (`KINDS`): a ref update (`update-ref`, `branch`), an archive ref (`update-ref` of
`refs/orchestrator/archive/...`), `worktree add`, a worktree removal (`worktree prune` /
`worktree remove`), `commit-tree`, and -- counted apart -- index writes (`add`, `read-tree`)
and the fast-forward of the integration checkout (`merge`). Each life waits for the kind
with the fewest kills so far; after `PATIENCE_S` it takes any kind. It goes on until every
kind has been killed at least once and there were `n_kills` kills.

The backlog makes every kind happen often: agents leave work uncommitted (leftover commits),
commit on a detached HEAD (archived at prune), write ignored build output (kept in a
tarball at prune), and run into merge conflicts with a person's commits (fresh starts
archive the old tip and reset the worktree). After the kills a controller converges and the
full audit runs; any git lock file or half-removed worktree left behind is a finding too.
"""

from __future__ import annotations

import contextlib
import os
import random
import signal
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

from bench.chaos_audit import Audit
from bench.chaos_crashes import Human, PlannedTask
from bench.chaos_procs import ProcessSampler
from bench.chaos_scenarios import Outcome, converge_and_stop, finish, watch_unexpected_exit
from bench.chaos_world import IGNORED_DIR, Project, git

KINDS = ("ref update", "archive ref", "worktree add", "worktree removal", "commit-tree")
EXTRA_KINDS = ("index write", "checkout fast-forward")
PATIENCE_S = 4.0  # waiting for the wanted kind; then any kind will do
LIFE_LIMIT_S = 10.0  # a life that sees no mutation at all ends with an ordinary kill
POLL_S = 0.001
WORKTREE_KINDS = {"add": "worktree add", "remove": "worktree removal", "prune": "worktree removal"}


def mutation_kind(argv: list[str]) -> str | None:
    """The kind of git mutation `argv` makes, or None (a read, or not git)."""
    if not argv or os.path.basename(argv[0]) != "git":
        return None
    words, args = [], iter(argv[1:])
    for arg in args:
        if arg == "-c":
            next(args, None)
        elif not arg.startswith("-"):
            words.append(arg)
    command = words[0] if words else ""
    if command == "update-ref":
        archive = any("refs/orchestrator/archive/" in a for a in argv)
        return "archive ref" if archive else "ref update"
    if command == "branch":
        return "ref update"
    if command == "worktree" and len(words) > 1:
        return WORKTREE_KINDS.get(words[1])
    if command == "commit-tree":
        return "commit-tree"
    if command in ("add", "read-tree"):
        return "index write"
    if command == "merge":
        return "checkout fast-forward"
    return None


def _children(pid: int) -> list[int]:
    found: list[int] = []
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children") as fh:
                found += [int(c) for c in fh.read().split()]
        except OSError:
            continue
    return found


def _argv(pid: int) -> list[str]:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            return fh.read().decode(errors="replace").split("\0")[:-1]
    except OSError:
        return []


class Killer:
    """Watches one controller's git children; kills it in a mutation of a wanted kind."""

    def __init__(self, rng: random.Random, kills: Counter[str]) -> None:
        self.rng = rng
        self.kills = kills

    def wanted(self, kind: str | None, waited: float) -> bool:
        """Kill in this mutation? Yes for a kind with the fewest kills so far; after
        `PATIENCE_S` for any of `KINDS`."""
        if kind not in KINDS:
            return False
        fewest = min(self.kills[k] for k in KINDS)
        return self.kills[kind] == fewest or waited > PATIENCE_S

    def hunt(self, pid: int, stop: threading.Event) -> str | None:
        """Wait for a mutation and kill `pid` in it; the kind killed (None: none was seen)."""
        started = time.monotonic()
        time.sleep(self.rng.uniform(0.0, 0.8))
        while not stop.is_set():
            waited = time.monotonic() - started
            if waited > LIFE_LIMIT_S:
                return None
            for child in _children(pid):
                kind = mutation_kind(_argv(child))
                if not self.wanted(kind, waited):
                    continue
                time.sleep(self.rng.uniform(0.0, 0.003))
                group = self.rng.random() < 0.85
                with contextlib.suppress(ProcessLookupError):
                    if group:
                        os.killpg(pid, signal.SIGKILL)
                    else:
                        os.kill(pid, signal.SIGKILL)
                return kind
            time.sleep(POLL_S)
        return None


def plan_tasks(rng: random.Random, n: int) -> list[PlannedTask]:
    kinds = ["leftovers", "detach", "merge-conflict", "plain"]
    tasks = []
    for i in range(n):
        kind = kinds[i % len(kinds)] if i < len(kinds) else rng.choice(kinds)
        tasks.append(PlannedTask(f"k{i:02d}", kind, f"tasks/k{i:02d}", ()))
    return tasks


def prompt(t: PlannedTask, rng: random.Random) -> str:
    own = f"{t.scope}/{t.id}.txt"
    lines = [
        f"sleep {rng.uniform(0.3, 1.2):.2f}",
        f"write {own}: {t.id}",
        f"write {IGNORED_DIR}/{t.id}.out: built by {t.id}",
    ]
    if t.fault == "merge-conflict":
        lines = ["sleep 1.0", f"write conflicts/{t.id}.txt: agent {t.id}", *lines]
    lines.append(f"commit {t.id}: work")
    if t.fault == "leftovers":
        lines.append(f"write {t.scope}/{t.id}-left.txt: left uncommitted")  # the controller commits
    if t.fault == "detach":
        lines.append(f"detach {t.scope}/{t.id}-detached.txt")  # archived at prune
    return "\n".join(lines)


def backlog(tasks: list[PlannedTask], rng: random.Random) -> list[dict[str, Any]]:
    return [
        {
            "id": t.id,
            "agent": "dev",
            "prompt": prompt(t, rng),
            "paths": [f"{t.scope}/**", f"conflicts/{t.id}.txt"],
        }
        for t in tasks
    ]


def locks_left(repo: Path) -> list[str]:
    """git lock files a killed controller left and nobody cleared (the controller's own
    singleton lock in `.git/orchestrator/` is a kernel lock, not a git lock file: it stays)."""
    ours = repo / ".git" / "orchestrator"
    return sorted(str(p) for p in (repo / ".git").rglob("*.lock") if p.parent != ours)


def scenario_git_kills(root: Path, rng: random.Random, quick: bool) -> Outcome:
    started = time.monotonic()
    p = Project(root, rng)
    outcome = Outcome("git-kills", Audit("git-kills"))
    n_kills = 5 if quick else 60  # quick: one of each kind
    tasks = plan_tasks(rng, 6 if quick else 30)
    (p.repo / "conflicts").mkdir()
    for t in tasks:
        (p.repo / "conflicts" / f"{t.id}.txt").write_text(f"seed {t.id}\n")
    git(p.repo, "add", "-A")
    git(p.repo, "commit", "-q", "-m", "seed conflict files")
    p.write_spec(p.base_spec(backlog(tasks, rng), retries=3, maxParallel=4))
    sampler = ProcessSampler().start()
    human = Human(p, tasks)
    human.start()
    kills: Counter[str] = Counter()
    killer = Killer(rng, kills)
    stop = threading.Event()
    deadline = time.monotonic() + (60 if quick else 600)

    def enough() -> bool:
        return sum(kills[k] for k in KINDS) >= n_kills and all(kills[k] for k in KINDS)

    while not enough() and time.monotonic() < deadline:
        proc = p.start_controller()
        kind = killer.hunt(proc.pid, stop)
        if kind is None:  # nothing to mutate in this life: an ordinary kill
            watch_unexpected_exit(p, proc, outcome.audit)
            p.kill_controller(proc, group=True)
        else:
            proc.wait()
            kills[kind] += 1
        outcome.crashes_injected += 1
    for kind in (*KINDS, *EXTRA_KINDS):
        outcome.kill_moments[f"git: {kind}"] = kills[kind]
    if not enough():
        outcome.audit.fail(f"only {sum(kills.values())} kills in git mutations ({dict(kills)})")
    converge_and_stop(p, outcome.audit, timeout=240 if not quick else 120)
    human.stop_event.set()
    human.join(5)
    for path in locks_left(p.repo):
        outcome.audit.fail(f"git lock file left behind: {path}")
    for entry in p.worktrees.glob(".removing-*") if p.worktrees.is_dir() else []:
        outcome.audit.fail(f"half-removed worktree left behind: {entry}")
    finish(p, sampler, outcome)
    outcome.crashes_survived = 0 if outcome.audit.findings else outcome.crashes_injected
    outcome.git_kills = dict(kills)
    outcome.seconds = time.monotonic() - started
    return outcome
