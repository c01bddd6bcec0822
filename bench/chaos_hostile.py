"""Chaos scenario 6, `hostile`: agents that try to turn the controller against the user.

Each hostile task runs `tests/support/agents/hostile_agent.py` with one attack, picked at
random (the quick run picks two; the full run plays every attack once), the attacks of
`tests/security/`: a `.git` file redirected at a repository outside, hooks, an fsmonitor and
filter drivers planted in the shared `.git`, a revert hidden behind a second merge base, a
gitlink hidden from diff, a forged start record naming another process, symlinks and a FIFO
planted in the state folder, escape sequences in a file name, a symlink out of the
repository, and a daemon that leaves the attempt's session.

Besides each attack's own expectation (`Attack.check`) and the usual audit, a canary folder
outside the repository, the worktree root and the state folder -- files, a link target and a
git repository, some of them the attacks' targets -- must be byte for byte unchanged at the
end (`canary_digest`), and every commit on the integration branch must be the seed, a
person's commit or a merge the controller made. Planted hooks and programs touch a file in
the canary only when the controller itself runs them (not when an agent's own git call or a
person's does), so a change in the canary is the controller's doing.

The controller is killed and restarted once mid-way, so the start-up clean-ups meet what the
attacks planted too.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.chaos_audit import Audit
from bench.chaos_procs import ProcessSampler
from bench.chaos_scenarios import Outcome, converge_and_stop, finish
from bench.chaos_world import ROOT, TRAILER, Project, git

HOSTILE_AGENT = str(ROOT / "tests" / "support" / "agents" / "hostile_agent.py")
ESC = "\x1b"


def run_json(*argv: str) -> str:
    return "run " + json.dumps(list(argv))


def canary_digest(folder: Path) -> str:
    """Everything about the folder's entries that a write, a removal or a chmod changes."""
    h = hashlib.sha256()
    for dirpath, dirnames, filenames in sorted(os.walk(folder)):
        dirnames.sort()
        for name in sorted([*dirnames, *filenames]):
            path = Path(dirpath, name)
            st = os.lstat(path)
            h.update(f"{path.relative_to(folder)}|{st.st_mode:o}".encode())
            if os.path.islink(path):
                h.update(os.readlink(path).encode())
            elif path.is_file():
                h.update(path.read_bytes())
    return h.hexdigest()


def make_canary(folder: Path) -> None:
    (folder / "dir").mkdir(parents=True)
    (folder / "a.txt").write_text("the user's notes\n")
    (folder / "dir" / "keep.bin").write_bytes(bytes(range(256)))
    (folder / "link").symlink_to(folder / "a.txt")
    repo = folder / "repo"
    git(folder, "init", "-q", "-b", "main", str(repo))
    (repo / "code.py").write_text("print('the user\\'s other project')\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "another project")


def touch_unless_agent_or_person(mark: Path) -> str:
    """A shell line for a planted hook or program: marks the canary only when the
    controller runs it (agents have $ORCHESTRATOR_TASK, the harness's person $CHAOS_HUMAN)."""
    return f'[ -n "$ORCHESTRATOR_TASK$CHAOS_HUMAN" ] || touch {mark}'


@dataclass
class World:
    """What the attacks know of the scenario's world."""

    p: Project
    canary: Path
    seed_sha: str
    victim: subprocess.Popen[bytes] | None = None
    humans: list[str] = field(default_factory=list)  # shas of the person's commits


@dataclass
class Attack:
    name: str
    tasks: list[dict[str, Any]]
    check: Callable[[World, dict[str, dict[str, Any]]], str | None]  # None: handled


def _phase(status: dict[str, dict[str, Any]], task: str) -> tuple[str, str]:
    row = status.get(task, {})
    return str(row.get("phase", "")), str(row.get("reason") or "")


def _task(tid: str, *lines: str, **extra: Any) -> dict[str, Any]:
    return {"id": tid, "agent": "hostile", "prompt": "\n".join(lines), **extra}


def _rejected(tid: str, fragment: str) -> Callable[[World, dict[str, dict[str, Any]]], str | None]:
    def check(w: World, status: dict[str, dict[str, Any]]) -> str | None:
        phase, reason = _phase(status, tid)
        if phase == "rejected" and fragment in reason and tid not in w.p.merges():
            return None
        return f"{tid}: expected rejected ({fragment!r}), got {phase} {reason!r}"

    return check


def attack_redirect(w: World, tid: str) -> Attack:
    target = w.canary / "repo" / ".git"
    lines = [f"write conf/{tid}.txt: evil", f"redirect-gitdir {target}"]
    return Attack("redirected .git", [_task(tid, *lines)], _rejected(tid, ".git"))


def attack_hooks(w: World, tid: str) -> Attack:
    mark = w.canary / f"ran-{tid}"
    line = touch_unless_agent_or_person(mark)
    monitor = w.p.chaos / f"fsmonitor-{tid}.sh"
    monitor.write_text(f"#!/bin/sh\n{line}\nexit 1\n")
    monitor.chmod(0o755)
    lines = [
        *(f"hook {h}: {line}" for h in ("post-checkout", "post-merge", "post-commit")),
        *(f"hook {h}: {line}" for h in ("prepare-commit-msg", "reference-transaction")),
        f"config core.fsmonitor: {monitor}",
        f"config filter.evil.smudge: {line}; cat",
        f"config filter.evil.clean: {line}; cat",
        f"config merge.evil.driver: {line}; false",
        "attributes * filter=evil merge=evil",
        f"write src/{tid}.py: planted",  # left uncommitted: the controller commits it
    ]

    def check(w: World, status: dict[str, dict[str, Any]]) -> str | None:
        merged = tid in w.p.merges()
        return None if merged and not mark.exists() else f"{tid}: merged {merged}, ran {mark}"

    return Attack("planted hooks, fsmonitor, filters", [_task(tid, *lines)], check)


def attack_revert(w: World, tid: str) -> Attack:
    first, second = f"{tid}a", f"{tid}b"
    sa = _task(first, "sleep 2", f"write src/{first}.py: a", f"commit {first}")
    sb = _task(
        second,
        run_json("git", "reset", "-q", "--hard", f"orchestrator/{first}"),
        run_json("git", "merge", "-q", "--no-ff", "-s", "ours", "-m", "take main", "human-fix"),
        f"write src/{second}.py: b",
        f"commit {second}",
        dependsOn=[first],
    )

    def check(w: World, status: dict[str, dict[str, Any]]) -> str | None:
        secret = git(w.p.repo, "show", "main:conf/secret.txt", check=False)
        wrong = _rejected(second, "conf/secret.txt")(w, status)
        if wrong is None and secret == "fixed secret":
            return None
        return f"{second}: {wrong or 'rejected'}; conf/secret.txt on main is {secret!r}"

    return Attack("revert behind a second merge base", [sa, sb], check)


def attack_gitlink(w: World, tid: str) -> Attack:
    lines = [
        "config diff.ignoreSubmodules: all",
        f"write src/{tid}.py: ok",
        run_json("mkdir", "-p", f"vendor/{tid}"),
        run_json("git", "add", f"src/{tid}.py"),
        run_json(
            "git", "update-index", "--add", "--cacheinfo", f"160000,{w.seed_sha},vendor/{tid}"
        ),
        run_json("git", "commit", "-q", "-m", "vendor a submodule"),
    ]
    return Attack("gitlink hidden from diff", [_task(tid, *lines)], _rejected(tid, f"vendor/{tid}"))


def attack_forged_start(w: World, tid: str) -> Attack:
    assert w.victim is not None
    import psutil

    created = psutil.Process(w.victim.pid).create_time()
    lines = [f"forge-start {w.victim.pid} {created}", "sleep 60"]

    def check(w: World, status: dict[str, dict[str, Any]]) -> str | None:
        alive = w.victim is not None and w.victim.poll() is None
        phase, _ = _phase(status, tid)
        return None if alive and phase == "failed" else f"{tid}: victim alive {alive}, {phase}"

    return Attack("forged start record", [_task(tid, *lines, timeout="3s")], check)


def attack_state_folder(w: World, tid: str, rng: random.Random) -> Attack:
    how = rng.choice(["scratch", "log", "fifo"])
    plant = {
        "scratch": f"symlink $STATE/scratch -> {w.canary / 'dir'}",
        "log": f"symlink $STATE/logs/{tid}/$NEXT.log -> {w.canary / 'a.txt'}",
        "fifo": "fifo $PROGRESS",
    }[how]
    lines = [plant, f"write src/{tid}.py: x", "attempt 1: exit 3"]

    def check(w: World, status: dict[str, dict[str, Any]]) -> str | None:
        started = time.monotonic()
        shown = w.p.cli("status", timeout=30)
        slow = time.monotonic() - started > 20
        ok = tid in w.p.merges() and shown.returncode == 0 and not slow
        return None if ok else f"{tid} ({how}): merged {tid in w.p.merges()}, status slow {slow}"

    return Attack(f"state folder: {how}", [_task(tid, *lines)], check)


def attack_escapes(w: World, tid: str) -> Attack:
    lines = [f"write-escaped conf/{tid}\\x1b]0;pwned\\x07\\x1b[2K.txt: x", f"commit {tid}"]

    def check(w: World, status: dict[str, dict[str, Any]]) -> str | None:
        wrong = _rejected(tid, "conf/")(w, status)
        shown = w.p.cli("status").stdout + w.p.cli("events").stdout
        raw = ESC in shown or "\x07" in shown
        return wrong or (f"{tid}: a raw escape sequence reached the terminal" if raw else None)

    return Attack("escape sequences in a name", [_task(tid, *lines)], check)


def attack_external_symlink(w: World, tid: str) -> Attack:
    lines = [run_json("ln", "-s", str(w.canary / "a.txt"), f"src/{tid}-link"), f"commit {tid}"]
    return Attack("symlink out of the repository", [_task(tid, *lines)], _rejected(tid, "symlink"))


def attack_daemon(w: World, tid: str) -> Attack:
    pid_file = w.p.chaos / f"daemon-{tid}.pid"
    lines = [f"daemon {pid_file}", f"write src/{tid}.py: d", f"commit {tid}"]

    def check(w: World, status: dict[str, dict[str, Any]]) -> str | None:
        if not pid_file.exists():
            return f"{tid}: the daemon never started"
        pid = int(pid_file.read_text().split()[0])  # "PID SID AGENT_SID"
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return None
        return f"{tid}: the daemon (pid {pid}) outlived its attempt"

    return Attack("daemon leaving the session", [_task(tid, *lines)], check)


ATTACKS = (
    "redirect",
    "hooks",
    "revert",
    "gitlink",
    "forged-start",
    "state-folder",
    "escapes",
    "external-symlink",
    "daemon",
)


def build(name: str, w: World, tid: str, rng: random.Random) -> Attack:
    makers: dict[str, Callable[[], Attack]] = {
        "redirect": lambda: attack_redirect(w, tid),
        "hooks": lambda: attack_hooks(w, tid),
        "revert": lambda: attack_revert(w, tid),
        "gitlink": lambda: attack_gitlink(w, tid),
        "forged-start": lambda: attack_forged_start(w, tid),
        "state-folder": lambda: attack_state_folder(w, tid, rng),
        "escapes": lambda: attack_escapes(w, tid),
        "external-symlink": lambda: attack_external_symlink(w, tid),
        "daemon": lambda: attack_daemon(w, tid),
    }
    return makers[name]()


def person_fixes_the_secret(w: World, first: str, stop: threading.Event) -> None:
    """When the first task of the revert attack starts, a person fixes conf/secret.txt on
    main (and names the commit `human-fix`), so that it becomes a second merge base."""
    log = w.p.chaos / "hostile.log"
    while not stop.wait(0.05):
        if log.exists() and f"start {first} " in log.read_text():
            w.p.human_commit("conf/secret.txt", "fixed secret\n", "person: rotate secret")
            sha = git(w.p.repo, "rev-parse", "main")
            git(w.p.repo, "branch", "-f", "human-fix", sha)
            w.humans.append(sha)
            return


def check_main_history(w: World, audit: Audit) -> None:
    """Every commit on main's first-parent history: the seed, a person's, or a merge."""
    fmt = f"--format=%H%x00%ce%x00%(trailers:key={TRAILER},valueonly,separator=%x2C)%x01"
    out = git(w.p.repo, "log", "--first-parent", fmt, "main")
    for record in out.split("\x01"):
        fields = record.strip().split("\x00")
        if len(fields) != 3:
            continue
        sha, email, tasks = fields
        ours = email == "orchestrator@localhost" and tasks.strip()
        if not (ours or email == "human@example.com" or sha in w.humans):
            audit.fail(f"main has commit {sha[:10]} by {email}: not a merge, not a person's")


def scenario_hostile(root: Path, rng: random.Random, quick: bool) -> Outcome:
    started = time.monotonic()
    p = Project(root, rng)
    outcome = Outcome("hostile", Audit("hostile"))
    (p.repo / "conf").mkdir()
    (p.repo / "conf" / "secret.txt").write_text("old secret\n")
    git(p.repo, "add", "-A")
    git(p.repo, "commit", "-q", "-m", "config")
    canary = root / "canary"
    make_canary(canary)
    before = canary_digest(canary)
    victim = subprocess.Popen(["sleep", "600"], cwd="/", start_new_session=True)
    w = World(p, canary, git(p.repo, "rev-parse", "main"), victim)
    names = list(ATTACKS) if not quick else rng.sample(ATTACKS, 2)
    attacks = [build(name, w, f"h{i:02d}", rng) for i, name in enumerate(names)]
    spec = p.base_spec([t for a in attacks for t in a.tasks], retries=1, maxParallel=3)
    spec["agents"]["hostile"] = {"command": [sys.executable, HOSTILE_AGENT], "owns": ["src/**"]}
    p.write_spec(spec)
    p.extra_env["FAKE_AGENT_LOG"] = str(p.chaos / "hostile.log")  # the hostile agent logs here
    stop = threading.Event()
    for attack in attacks:
        if attack.name.startswith("revert"):
            first = attack.tasks[0]["id"]
            args = (w, first, stop)
            threading.Thread(target=person_fixes_the_secret, args=args, daemon=True).start()
    sampler = ProcessSampler().start()
    try:
        proc = p.start_controller()
        time.sleep(rng.uniform(2.0, 4.0))
        p.kill_controller(proc, group=rng.random() < 0.5)  # restart once mid-way
        converge_and_stop(p, outcome.audit, timeout=150)
        status = p.status()
        for attack in attacks:
            problem = attack.check(w, status)
            outcome.fault(f"hostile: {attack.name}", problem is None)
            if problem:
                outcome.audit.fail(problem)
        if canary_digest(canary) != before:
            outcome.audit.fail(f"the canary folder {canary} changed")
        check_main_history(w, outcome.audit)
        finish(p, sampler, outcome)
    finally:
        stop.set()
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        for pid_file in p.chaos.glob("daemon-*.pid"):
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid_file.read_text()), signal.SIGKILL)
    outcome.seconds = time.monotonic() - started
    return outcome
