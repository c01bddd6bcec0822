"""Overhead at scale: the planner on 1,000 and 10,000 tasks, and observe against raw git.

Run from the repository root:

    .venv/bin/python bench/plan_scale.py

1. **Planner.** A realistic backlog (4 agents, random dependencies on earlier tasks, scope
   globs, a mix of merged / running / pending-merge / failed / new tasks) is planned several
   times; the median is reported. Target: 10,000 tasks under 200 ms.
2. **Observe.** A scratch repository with 200 task branches (100 merged by commits carrying
   the `Orchestrator-Task:` trailer) and 50 task worktrees, plus run records for those 50.
   One `controller.observe.observe(...)` pass (no store, no sampler) is timed against
   running the same git argv list directly with `subprocess.run`. Target: observe within
   1.2x of its raw git calls. The argv list is built here with the git layer's own pins
   and checked against the commands observe really runs, so the comparison stays honest.

A benchmark, not a test: it prints figures and exits 0 (1 when a target is missed).
"""

from __future__ import annotations

import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402
from common import GIT_ENV, median_ms  # noqa: E402

from controller import git  # noqa: E402
from controller.core.plan import plan  # noqa: E402
from controller.git import runner as git_runner  # noqa: E402
from controller.git.config_guard import overrides_for  # noqa: E402
from controller.model import globs  # noqa: E402
from controller.model.names import MERGE_TRAILER  # noqa: E402
from controller.model.observed import AttemptObs, Observed, ResourcesObs  # noqa: E402
from controller.model.spec import Spec, default_locations  # noqa: E402
from controller.observe import observe  # noqa: E402
from controller.state.paths import StatePaths  # noqa: E402

PLAN_TARGET_MS = 200.0
OBSERVE_TARGET_RATIO = 1.2
NOW = 1_700_000_000.0


# -- 1. the planner --------------------------------------------------------------------------
def backlog_world(n: int, seed: int = 1) -> tuple[Spec, Observed]:
    """`n` tasks in 4 agents' areas; the first ~60% mostly merged, a frontier in flight."""
    rng = random.Random(seed)
    agents = {
        f"agent{k}": {"command": ["agent", "{prompt}"], "owns": [f"pkg{k}/**", f"tests/pkg{k}/**"]}
        for k in range(4)
    }
    tasks: list[dict[str, Any]] = []
    attempts: dict[str, tuple[AttemptObs, ...]] = {}
    merged: set[str] = set()
    in_flight = 0
    for i in range(n):
        tid = f"t{i:05d}"
        k = rng.randrange(4)
        entry: dict[str, Any] = {"id": tid, "agent": f"agent{k}"}
        window = range(max(0, i - 200), i)
        deps = rng.sample(window, k=min(len(window), rng.choice([0, 0, 1, 1, 2, 3])))
        if deps:
            entry["dependsOn"] = [f"t{d:05d}" for d in deps]
        r = rng.random()
        if r < 0.75:
            entry["paths"] = [f"pkg{k}/mod{rng.randrange(200)}/**"]
        elif r < 0.95:
            entry["paths"] = [f"pkg{k}/mod{rng.randrange(200)}/*.py", f"docs/{tid}.md"]
        tasks.append(entry)
        # states: older tasks mostly merged (some failed for good); the newer ones are a
        # frontier: 2 running (2 slots free), a few to merge, some failed, the rest new
        r = rng.random()
        old = i < 0.6 * n
        if old and r < 0.95:
            merged.add(tid)
            attempts[tid] = (
                AttemptObs(tid, 1, NOW - 9000, NOW - 8000, 0, 100 + i, outcome="merged"),
            )
        elif old or r < 0.03:
            attempts[tid] = tuple(
                AttemptObs(tid, a, NOW - 900, NOW - 100 * a, 1, 100 + i, outcome="failed")
                for a in range(1, rng.randint(1, 4) + 1)
            )
        elif r < 0.032:
            attempts[tid] = (AttemptObs(tid, 1, NOW - 900, NOW - 30, 0, 100 + i),)
        elif in_flight < 2 and r < 0.1:
            in_flight += 1
            attempts[tid] = (AttemptObs(tid, 1, NOW - 60, pid=100 + i, alive=True),)
    spec = Spec.model_validate(
        {
            "apiVersion": "orchestrator/v1",
            "maxParallel": 8,
            "agents": agents,
            "backlog": tasks,
        }
    )
    base = Path(tempfile.gettempdir()) / "plan-scale" / "specs"
    spec.with_locations(default_locations(spec, base / "orchestrator.yaml"))
    obs = Observed(
        integration_sha="f" * 40,
        merged_tasks=frozenset(merged),
        attempts=attempts,
        resources=ResourcesObs(cpu_percent=35.0, memory_percent=40.0),
    )
    return spec, obs


def clear_glob_caches() -> None:
    for value in vars(globs).values():
        if hasattr(value, "cache_clear"):
            value.cache_clear()


def bench_plan(n: int, runs: int = 7) -> tuple[float, float, dict[str, int], int]:
    """(median ms with warm glob caches, first-pass ms with cold caches, counts, waits)."""
    spec, obs = backlog_world(n)
    clear_glob_caches()
    t0 = time.perf_counter()
    result = plan(spec, obs, NOW)  # a one-shot `diff` pays this; a watch loop the median
    cold = (time.perf_counter() - t0) * 1000
    warm = median_ms(lambda: plan(spec, obs, NOW), runs)
    return warm, cold, result.counts(), len(result.waits)


# -- 2. observe against raw git ------------------------------------------------------------------
def _git(repo: Path, *args: str, stdin: str | None = None) -> str:
    out = subprocess.run(
        ["git", "-C", str(repo), *args],
        input=stdin,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **GIT_ENV},
    )
    return out.stdout.strip()


def build_repo(root: Path, branches: int = 200, worktrees: int = 50, merged: int = 100) -> Path:
    repo = root / "repo"
    repo.mkdir()
    _git(repo, "init", "-q", "-b", "main")
    for i in range(20):
        (repo / f"file{i}.txt").write_text(f"line {i}\n" * 20)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "initial")
    base = _git(repo, "rev-parse", "HEAD")
    tree = _git(repo, "rev-parse", "HEAD^{tree}")
    # one distinct commit per task branch (same tree, own message), refs in one update-ref
    tips = [
        _git(repo, "commit-tree", tree, "-p", base, "-m", f"work on t{i:03d}")
        for i in range(branches)
    ]
    refs = "".join(f"create refs/heads/orchestrator/t{i:03d} {sha}\n" for i, sha in enumerate(tips))
    _git(repo, "update-ref", "--stdin", stdin=refs)
    # merge the first `merged` branches into main, each merge commit carrying the trailer
    head = base
    for i in range(merged):
        msg = f"Merge t{i:03d}\n\n{MERGE_TRAILER}: t{i:03d}\n"
        head = _git(repo, "commit-tree", tree, "-p", head, "-p", tips[i], "-m", msg)
    _git(repo, "update-ref", "refs/heads/main", head)
    _git(repo, "reset", "-q", "--hard", "main")
    wt_root = root / "state" / "worktrees"
    wt_root.mkdir(parents=True)
    for i in range(branches - worktrees, branches):  # unmerged tasks have worktrees
        _git(repo, "worktree", "add", "-q", str(wt_root / f"t{i:03d}"), f"orchestrator/t{i:03d}")
    return repo


def write_runs(state: StatePaths, tasks: list[str], live: int = 4) -> None:
    """Start and exit records for each task; the last `live` tasks run (this process)."""
    me = psutil.Process()
    for n, task in enumerate(tasks):
        d = state.task_runs(task)
        d.mkdir(parents=True, exist_ok=True)
        running = n >= len(tasks) - live
        pid = os.getpid() if running else 10_000 + n
        start = {"pid": pid, "create_time": me.create_time() if running else 1.0}
        start["started_at"] = time.time() - 100
        (d / "1.start.json").write_text(json.dumps(start))
        if not running:
            (d / "1.exit.json").write_text(json.dumps({"exit_code": 0, "ended_at": time.time()}))


def raw_argvs(repo: Path, checkout: Path) -> list[list[str]]:
    """The git commands one observe pass runs (see controller/observe/__init__.py), with the
    same pinned settings the git layer adds to every call (controller/git/runner.py)."""
    refs = git.TASK_REFS
    place = git.open_repo(repo).place
    assert checkout == repo  # the bench's integration checkout is the repository itself

    def g(*args: str) -> list[str]:
        return git_runner.git_argv(place, args, overrides_for(place))

    sha = _git(repo, "rev-parse", "refs/heads/main")
    return [
        g("rev-parse", "--verify", "--quiet", "--end-of-options", "refs/heads/main^{commit}"),
        g("worktree", "list", "--porcelain", "-z"),
        g("status", "--porcelain", "-z", "--untracked-files=no"),
        g("for-each-ref", "--format=%(refname) %(objectname)", refs),
        g("for-each-ref", "--format=%(refname)", f"--merged={sha}", refs),
        g(
            "log",
            "--first-parent",
            "-z",
            "-i",
            f"--grep={MERGE_TRAILER}:",
            f"--format=%(trailers:key={MERGE_TRAILER},valueonly,separator=%x1f)",
            "--end-of-options",
            sha,
            "--",
        ),
    ]


def observed_argvs(do_observe: Callable[[], Observed]) -> list[list[str]]:
    """The argv lists an observe pass really hands to subprocess.run."""
    seen: list[list[str]] = []
    real = git_runner.run_bounded

    def spy(argv: list[str], *args: Any, **kwargs: Any) -> Any:
        seen.append(list(argv))
        return real(argv, *args, **kwargs)

    do_observe()  # the first pass of a process also resolves the repository once
    git_runner.run_bounded = spy  # type: ignore[assignment]
    try:
        do_observe()
    finally:
        git_runner.run_bounded = real  # type: ignore[assignment]
    return seen


def bench_observe(runs: int = 21) -> dict[str, float | int]:
    with tempfile.TemporaryDirectory(prefix="plan-scale-") as tmp:
        root = Path(tmp).resolve()
        t0 = time.perf_counter()
        repo = build_repo(root)
        build_s = time.perf_counter() - t0
        state = StatePaths(root / "state")
        write_runs(state, [f"t{i:03d}" for i in range(150, 200)])

        def do_observe() -> Observed:
            return observe(
                repo=repo,
                integration="main",
                worktree_root=root / "state" / "worktrees",
                state=state,
                store=None,
                sampler=None,
                now=time.time(),
            )

        argvs = raw_argvs(repo, repo)
        actual = observed_argvs(do_observe)
        if sorted(actual) != sorted(argvs):  # observe runs some of them side by side
            raise SystemExit(f"observe's git commands changed; update raw_argvs():\n{actual}")
        env = git_runner.git_env()

        def do_raw() -> None:
            for argv in argvs:
                subprocess.run(
                    argv, capture_output=True, env=env, stdin=subprocess.DEVNULL, cwd=repo
                )

        obs = do_observe()
        assert len(obs.branches) == 200 and len(obs.merged_tasks) == 100
        assert len(obs.worktrees) == 50 and sum(a[-1].alive for a in obs.attempts.values()) == 4
        calls_before = git_runner.calls
        do_observe()
        calls = git_runner.calls - calls_before
        # interleave so that both see the same machine conditions
        t_obs: list[float] = []
        t_raw: list[float] = []
        for _ in range(runs):
            t_obs.append(median_ms(do_observe, 1))
            t_raw.append(median_ms(do_raw, 1))
        return {
            "observe_ms": statistics.median(t_obs),
            "raw_ms": statistics.median(t_raw),
            "git_calls": calls,
            "build_s": build_s,
        }


def main() -> int:
    print("command: .venv/bin/python bench/plan_scale.py")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {_git(Path('.'), 'version')}")
    print()
    ok = True
    print("| planner | median | first pass (cold caches) | target | actions | waits |")
    print("|---|---:|---:|---:|---|---:|")
    for n in (1_000, 10_000):
        ms, cold, counts, waits = bench_plan(n)
        target = f"< {PLAN_TARGET_MS:.0f} ms" if n == 10_000 else ""
        if n == 10_000 and ms >= PLAN_TARGET_MS:
            ok = False
        summary = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        print(
            f"| plan, {n:,} tasks | {ms:.1f} ms | {cold:.1f} ms | {target} | {summary} | {waits} |"
        )
    print()
    o = bench_observe()
    ratio = float(o["observe_ms"]) / float(o["raw_ms"])
    ok = ok and ratio <= OBSERVE_TARGET_RATIO
    print("| observe (200 branches, 100 merged, 50 worktrees) | median | |")
    print("|---|---:|---|")
    print(f"| `observe(...)`, one pass | {o['observe_ms']:.1f} ms | {o['git_calls']} git calls |")
    print(f"| the same git argv, run directly one after another | {o['raw_ms']:.1f} ms | |")
    print(f"| ratio observe / raw | {ratio:.2f}x | target <= {OBSERVE_TARGET_RATIO}x |")
    print()
    print(f"(scratch repo built in {o['build_s']:.1f} s; medians of 7 plan / 21 observe runs)")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
