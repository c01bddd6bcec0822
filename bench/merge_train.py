"""The merge train: verify runs and drain time for 16 finished branches, batch 1 against 8.

Run from the repository root:

    .venv/bin/python bench/merge_train.py                # 3 workloads x 3 configurations
    .venv/bin/python bench/merge_train.py --cpu-verify   # verify burns 2 s of CPU, not sleep

16 tasks run at once through the REAL controller (`Controller.watch`, a real repository in a
temp dir, real shim + fake-agent processes); every agent sleeps until one common moment,
then writes its file and commits, so all 16 finish together. `verify` takes 2 s (a sleep, or
with --cpu-verify a busy loop, like a single-process test suite) and fails when a file named
BROKEN is anywhere in the tree. Three workloads: 0, 1 and 2 of the 16 agents leave a BROKEN
file on their first attempt (seeded choice); their retry removes it.

Each workload runs with `mergeQueue: {batch: 1}` (every branch verified on its own),
`{batch: 8}` and `{batch: 8, parallelVerify: 2}`, and reports:
- verify runs (each run notes itself), and the drain time: first agent exit -> last landing;
- the bound: ceil(log2 C(16, k)) runs to find k culprits, plus the runs that land the rest
  (ceil((16 - k) / 8) for the good branches, one for the retried culprits) -- a yardstick: a
  passing run both tells and lands, so a strategy can come in under this sum; the strict
  information bound is ceil(log2 C(16, k)) alone;
- checks: every position the integration branch had (its reflog) was a commit a verify run
  passed, with no BROKEN file in its tree; exactly the culprits were rejected; all 16 landed.

It also replays the train's decisions (`core.train`) without processes for every placement
of the culprits, against a plain bisection that starts over with the rest after each landing.

A benchmark, not a test: it prints figures and exits 0 (1 when a check fails or a target is
missed). Targets (verify runs of batch 8 against batch 1): 5x fewer with no culprit, 2x with
one, 1.5x with two; the drain time must improve at least as much. parallelVerify 2 verifies
more probes at once, trading runs for time: it is held to the drain-time target only.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import os
import random
import shlex
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from common import GIT_ENV  # noqa: E402
from loguru import logger  # noqa: E402

from controller.core.plan import Plan  # noqa: E402
from controller.core.train import Bisection, after_probes, next_probes  # noqa: E402
from controller.loop.controller import Controller  # noqa: E402
from controller.model.observed import Observed  # noqa: E402
from controller.specfile.load import load_spec  # noqa: E402

FAKE_AGENT = ROOT / "tests" / "support" / "agents" / "fake_agent.py"
TASKS = 16
TARGETS = {0: 5.0, 1: 2.0, 2: 1.5}
CONFIGS: dict[str, dict[str, int]] = {  # --configs names them by batch[xparallelVerify]
    "1": {"batch": 1},
    "8": {"batch": 8},
    "8x2": {"batch": 8, "parallelVerify": 2},
}


def label(name: str) -> str:
    queue = CONFIGS[name]
    extra = f", parallelVerify {queue['parallelVerify']}" if "parallelVerify" in queue else ""
    return f"batch {queue['batch']}{extra}"


VERIFY = """
import os, subprocess, sys, time
notes, seconds, mode = sys.argv[1], float(sys.argv[2]), sys.argv[3]
start = time.time()
if mode == "cpu":
    while time.process_time() < seconds:
        pass
else:
    time.sleep(seconds)
broken = any("BROKEN" in files for _, _, files in os.walk("."))
sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout.strip()
with open(notes, "a") as f:
    f.write(f"{start} {time.time()} {sha} {'fail' if broken else 'pass'}\\n")
sys.exit(1 if broken else 0)
"""


def git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


@dataclass(frozen=True)
class Result:
    runs: int
    drain: float
    bad_positions: list[str]  # reflog positions not passed by verify (should be none)
    rejected: set[str]  # tasks with a verify_failed attempt
    merged: int


def spec_dict(tmp: Path, culprits: set[int], queue: dict[str, int], cpu: bool) -> dict[str, Any]:
    at = time.time() + 6.0  # every agent finishes just after this moment
    tasks = []
    for i in range(TASKS):
        steps = [f"sleep-until {at}", f"write t{i:02d}/work.txt: {i}"]
        if i in culprits:
            steps += [f"on-attempt 1 write t{i:02d}/BROKEN: broken"]
            steps += [f"on-attempt 2 remove t{i:02d}/BROKEN"]
        tasks.append(
            {
                "id": f"t{i:02d}",
                "agent": "dev",
                "paths": [f"t{i:02d}/**"],
                "prompt": "\n".join([*steps, f"commit t{i:02d}"]),
            }
        )
    mode = "cpu" if cpu else "sleep"
    return {
        "apiVersion": "orchestrator/v1",
        "repo": "../repo",
        "integrationBranch": "main",
        "maxParallel": TASKS,
        "pollInterval": "30s",
        "retries": 2,
        "backoff": {"initial": "0.5s", "max": "1s"},
        "timeout": "120s",
        "verify": [sys.executable, "-c", VERIFY, str(tmp / "verify-runs.txt"), "2", mode],
        "verifyTimeout": "60s",
        "mergeQueue": queue,
        "resources": {"cpu": [{"parallel": TASKS}], "memory": [{"parallel": TASKS}]},
        "agents": {
            "dev": {"command": [sys.executable, str(tmp / "fake_agent.py")], "owns": ["**"]}
        },
        "backlog": tasks,
    }


def run_once(tmp: Path, culprits: set[int], queue: dict[str, int], cpu: bool) -> Result:
    repo = tmp / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# bench\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "initial")
    shutil.copy(FAKE_AGENT, tmp / "fake_agent.py")
    spec_file = tmp / "specs" / "orchestrator.yaml"
    spec_file.parent.mkdir(parents=True)
    spec_file.write_text(json.dumps(spec_dict(tmp, culprits, queue, cpu), indent=1))
    controller = Controller(spec_file, load_spec(spec_file))
    ids = [f"t{i:02d}" for i in range(TASKS)]

    def on_pass(result: Plan, _observed: Observed) -> None:
        if all(result.phases.get(i) in ("merged", "failed", "rejected") for i in ids):
            controller.draining = True

    controller.on_pass = on_pass
    with controller:
        controller.watch(max_seconds=300)
        rows = controller.store.attempts()
        merges = controller.store.events(kinds=["merge"])
    notes = (tmp / "verify-runs.txt").read_text().splitlines()
    passed = {line.split()[2] for line in notes if line.endswith("pass")}
    first_exit = min(r.ended_at for r in rows if r.ended_at)
    positions = git(repo, "reflog", "show", "--format=%H", "refs/heads/main").split()[:-1]
    bad = [
        sha
        for sha in positions
        if sha not in passed or "BROKEN" in git(repo, "ls-tree", "-r", "--name-only", sha)
    ]
    return Result(
        runs=len(notes),
        drain=max(e.ts for e in merges) - first_exit,
        bad_positions=bad,
        rejected={r.task for r in rows if r.outcome == "verify_failed"},
        merged=len({e.task for e in merges}),
    )


def bound(k: int, batch: int = 8) -> tuple[int, int]:
    """(the issue's bound, the information bound) in verify runs."""
    info = math.ceil(math.log2(math.comb(TASKS, k))) if k else 0
    return info + math.ceil((TASKS - k) / batch) + (1 if k else 0), info


def replay(culprits: set[int], *, plain: bool, batch: int = 8) -> int:
    """Verify runs the train's decisions take to land 16 branches queued at once and find
    the culprits (their retries aside); `plain`: start over with the rest after a landing."""
    queue, runs = list(range(TASKS)), 0
    while queue:
        links = queue[:batch]
        state = Bisection(len(links))
        while not state.done:
            probes = next_probes(state, batch)
            runs += len(probes)
            new = after_probes(state, {p: not culprits.intersection(links[:p]) for p in probes})
            restart = plain and new.good > state.good and not new.done
            state = Bisection(new.links, new.good, None) if restart else new
        cut = state.culprit + 1 if state.culprit is not None else state.good
        queue = links[cut:] + queue[len(links) :]
    return runs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--cpu-verify", action="store_true", help="verify burns 2 s of CPU")
    parser.add_argument("--workloads", default="0,1,2", help="culprit counts to run")
    parser.add_argument("--configs", default="1,8,8x2", help="which configurations (1, 8, 8x2)")
    args = parser.parse_args(sys.argv[1:] if argv is None else argv)
    os.environ.update(GIT_ENV)
    logger.remove()
    rng = random.Random(args.seed)
    configs = [c.strip() for c in args.configs.split(",")]
    shown = ["bench/merge_train.py", *(sys.argv[1:] if argv is None else argv)]
    print(f"command: {shlex.join(['.venv/bin/python', *shown])}")
    verify = "burns 2 s of CPU" if args.cpu_verify else "sleeps 2 s"
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {TASKS} tasks finishing "
        f"together; verify {verify}; seed {args.seed}"
    )
    ok = True
    for k in (int(x) for x in args.workloads.split(",")):
        culprits = set(rng.sample(range(TASKS), k))
        results: dict[str, Result] = {}
        for name in configs:
            with tempfile.TemporaryDirectory(prefix="orchestrator-train-") as tmp:
                results[name] = run_once(Path(tmp), culprits, CONFIGS[name], args.cpu_verify)
        ok &= report(k, culprits, results)
    print()
    print("| replayed decisions, batch 8, every placement | ours (mean) | plain bisection (mean) |")
    print("|---|---:|---:|")
    for k in (1, 2):
        places = [set(c) for c in itertools.combinations(range(TASKS), k)]
        ours = statistics.mean(replay(c, plain=False) for c in places)
        plain = statistics.mean(replay(c, plain=True) for c in places)
        label = f"{k} culprit{'s' if k > 1 else ''} (their retries aside)"
        print(f"| {label} | {ours:.2f} | {plain:.2f} |")
    return 0 if ok else 1


def report(k: int, culprits: set[int], results: dict[str, Result]) -> bool:
    names = sorted(f"t{i:02d}" for i in culprits)
    issue_bound, info = bound(k)
    print()
    print(
        f"### {k} culprit{'s' if k != 1 else ''} ({', '.join(names) or 'none'}); bound "
        f"{issue_bound} runs (ceil(log2 C(16,{k})) = {info} + landing runs)"
    )
    print()
    print(
        "| configuration | verify runs | first exit -> last landing | runs vs batch 1 "
        "| drain vs batch 1 | checks |"
    )
    print("|---|---:|---:|---:|---:|---|")
    base = results.get("1")
    ok = True
    for name, r in results.items():
        checks_ok = not r.bad_positions and r.rejected == set(names) and r.merged == TASKS
        ok &= checks_ok
        checks = "reflog all verified, exactly the culprits rejected, 16 landed"
        if not checks_ok:
            checks = (
                f"**failed**: {len(r.bad_positions)} unverified positions, rejected "
                f"{sorted(r.rejected)}, {r.merged} landed"
            )
        fewer = f"{base.runs / r.runs:.2f}x" if base else ""
        faster = f"{base.drain / r.drain:.2f}x" if base else ""
        if base and name != "1":
            # the targets are batch 8's; more probes at once trade runs for time, so
            # parallelVerify is held to the drain time only
            target = TARGETS.get(k, 1.0)
            runs_met = base.runs / r.runs >= target or "parallelVerify" in CONFIGS[name]
            drain_met = base.drain / r.drain >= target
            ok &= runs_met and drain_met
            if "parallelVerify" not in CONFIGS[name]:
                fewer += f" (target {target:g}x: {'met' if runs_met else '**missed**'})"
            faster += f" (target {target:g}x: {'met' if drain_met else '**missed**'})"
        print(f"| {label(name)} | {r.runs} | {r.drain:.1f} s | {fewer} | {faster} | {checks} |")
    return ok


if __name__ == "__main__":
    sys.exit(main())
