"""Scheduling quality of the real controller: makespan, speedup, exit-to-merge latency, idle CPU.

Run from the repository root:

    .venv/bin/python bench/scheduling.py                 # 30 tasks, parallel 4 (~1.5 min)
    .venv/bin/python bench/scheduling.py --quick         # 12 tasks (~40 s)

A seeded synthetic backlog -- a random dependency DAG (each task depends on each earlier task
with probability `--edge-p`), a write scope drawn from a few groups (`group3/**`, so the
tasks of one group must run one after another) and a sleep of 0.2-2 s per task -- is run
through the REAL controller (`Controller.watch`, a real git repository in a temp dir, real
shim + fake-agent processes that sleep, write one file and commit) twice: with
`maxParallel: --parallel` and with `maxParallel: 1`. Admission by machine load is switched
off (`resources: {cpu: [{parallel: 8}], memory: [{parallel: 8}]}`) so that the bench's own
load cannot cut the parallel limit; there is no verify command.

Figures:
1. **Makespan** (`watch()` called -> last `merge` event) against the lower bound
   max(critical path, total work / parallel limit, heaviest scope group's serial work), with
   the sleeps as task durations, and again with the measured attempt durations (which include
   process start and the agent's commit). Target: within 1.15x of the (sleep) bound.
2. **Speedup** against the same workload at `maxParallel: 1` (measured in the same run) and
   against the plain sum of the sleeps.
3. **Exit -> merge latency**: `attempts.ended_at` (the shim's exit record) to the `ts` of the
   task's `merge` event in the store. Target: median under 0.5 s (no verify).
4. **Idle CPU**: `orchestrator reconcile --watch` as a subprocess on the converged spec
   (pollInterval 30s), its CPU times sampled with psutil. Target: under 1% of one core.

To explain a missed makespan target it also (a) replays the workload in a zero-overhead
simulation of the planner's policy (backlog order) and of critical-path priority, then with
the measured durations and latencies; (b) simulates those policies over 50 seeds, since one
workload says little about a policy; (c) walks the real run's critical chain back from the
last merge, splitting the makespan into startup, agent sleep, process overhead, exit->merge
and release->spawn; (d) gives per-attempt medians of each step of an attempt's life.

A benchmark, not a test: it prints figures and exits 0 (1 when a target is missed).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shlex
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import psutil  # noqa: E402
from common import GIT_ENV  # noqa: E402
from loguru import logger  # noqa: E402

from controller.core.plan import Plan  # noqa: E402
from controller.loop.controller import Controller  # noqa: E402
from controller.model.observed import Observed  # noqa: E402
from controller.specfile.load import load_spec  # noqa: E402
from controller.state.paths import StatePaths  # noqa: E402
from controller.state.store import Store  # noqa: E402

FAKE_AGENT = ROOT / "tests" / "agents" / "fake_agent.py"
TERMINAL = {"merged", "failed", "rejected"}
MAKESPAN_TARGET = 1.15
LATENCY_TARGET_S = 0.5
IDLE_TARGET_PCT = 1.0


# -- the workload ------------------------------------------------------------------------------
@dataclass(frozen=True)
class Job:
    id: str
    group: int
    deps: tuple[str, ...]
    sleep: float


def make_workload(
    seed: int, n: int, groups: int, edge_p: float, lo: float = 0.2, hi: float = 2.0
) -> list[Job]:
    rng = random.Random(seed)
    jobs: list[Job] = []
    for i in range(n):
        deps = tuple(j.id for j in jobs if rng.random() < edge_p)
        jobs.append(Job(f"t{i:02d}", rng.randrange(groups), deps, round(rng.uniform(lo, hi), 2)))
    return jobs


def critical_path(jobs: Sequence[Job], dur: dict[str, float]) -> float:
    finish: dict[str, float] = {}
    for j in jobs:  # backlog order is a topological order (deps are earlier tasks)
        finish[j.id] = max((finish[d] for d in j.deps), default=0.0) + dur[j.id]
    return max(finish.values())


def group_work(jobs: Sequence[Job], dur: dict[str, float]) -> dict[int, float]:
    out: dict[int, float] = {}
    for j in jobs:
        out[j.group] = out.get(j.group, 0.0) + dur[j.id]
    return out


@dataclass(frozen=True)
class Bound:
    critical: float
    per_slot: float
    group: float

    @property
    def value(self) -> float:
        return max(self.critical, self.per_slot, self.group)

    @property
    def bound_by(self) -> str:
        return {self.critical: "critical path", self.per_slot: "work/slots"}.get(
            self.value, "scope group"
        )


def lower_bound(jobs: Sequence[Job], dur: dict[str, float], limit: int) -> Bound:
    return Bound(
        critical_path(jobs, dur), sum(dur.values()) / limit, max(group_work(jobs, dur).values())
    )


def simulate(
    jobs: Sequence[Job],
    dur: dict[str, float],
    limit: int,
    priority: Callable[[Job], Any],
    merge_delay: dict[str, float] | None = None,
) -> float:
    """List scheduling as the planner does it: a slot is held while running, the scope group
    until merged, and a dependency counts once merged. No controller overhead."""
    delay = merge_delay or {}
    order = sorted(jobs, key=priority)
    t = 0.0
    running: dict[str, float] = {}
    pending: dict[str, float] = {}
    merged: set[str] = set()
    started: set[str] = set()
    group = {j.id: j.group for j in jobs}
    while len(merged) < len(jobs):
        held = {group[i] for i in (*running, *pending)}
        for j in order:
            if len(running) >= limit:
                break
            if j.id in started or j.group in held or not set(j.deps) <= merged:
                continue
            started.add(j.id)
            running[j.id] = t + dur[j.id]
            held.add(j.group)
        t = min([*running.values(), *pending.values()])
        for i, end in list(running.items()):
            if end <= t:
                del running[i]
                pending[i] = end + delay.get(i, 0.0)
        for i, at in list(pending.items()):
            if at <= t:
                del pending[i]
                merged.add(i)
    return t


def bottom_levels(jobs: Sequence[Job], dur: dict[str, float]) -> dict[str, float]:
    """Longest path from each task to the end of the DAG, the task included."""
    children: dict[str, list[str]] = {j.id: [] for j in jobs}
    for j in jobs:
        for d in j.deps:
            children[d].append(j.id)
    level: dict[str, float] = {}
    for j in reversed(jobs):
        level[j.id] = dur[j.id] + max((level[c] for c in children[j.id]), default=0.0)
    return level


def best_found(jobs: Sequence[Job], dur: dict[str, float], limit: int, tries: int) -> float:
    """The best of critical-path priority and `tries` random priorities (an upper bound on OPT)."""
    level = bottom_levels(jobs, dur)
    rng = random.Random(0)
    best = simulate(jobs, dur, limit, lambda j: -level[j.id])
    for _ in range(tries):
        keys = {j.id: rng.random() for j in jobs}
        best = min(best, simulate(jobs, dur, limit, lambda j, k=keys: k[j.id]))
    return best


# -- a real run --------------------------------------------------------------------------------
def spec_dict(jobs: Sequence[Job], parallel: int, agent: Path) -> dict[str, Any]:
    return {
        "apiVersion": "orchestrator/v1",
        "repo": "../repo",
        "integrationBranch": "main",
        "maxParallel": parallel,
        "pollInterval": "30s",
        "retries": 2,
        "backoff": {"initial": "0.2s", "max": "1s"},
        "timeout": "60s",
        # the bench's own load must not cut admission below maxParallel
        "resources": {"cpu": [{"parallel": 8}], "memory": [{"parallel": 8}]},
        "agents": {"dev": {"command": [sys.executable, str(agent)], "owns": ["**"]}},
        "backlog": [
            {
                "id": j.id,
                "agent": "dev",
                "paths": [f"group{j.group}/**"],
                "prompt": f"sleep {j.sleep}\nwrite group{j.group}/{j.id}.txt: {j.id}\n"
                f"commit {j.id}",
                **({"dependsOn": list(j.deps)} if j.deps else {}),
            }
            for j in jobs
        ],
    }


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def make_project(root: Path, jobs: Sequence[Job], parallel: int) -> Path:
    repo = root / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# bench\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "initial")
    spec_file = root / "specs" / "orchestrator.yaml"
    spec_file.parent.mkdir(parents=True)
    # a private copy: test suites running meanwhile kill stray tests/agents/fake_agent.py
    agent = shutil.copy(FAKE_AGENT, root / "fake_agent.py")
    spec_file.write_text(json.dumps(spec_dict(jobs, parallel, Path(agent)), indent=1))
    return spec_file


@dataclass
class TaskTrace:
    started: float  # attempt.started_at (the runner's start, before the shim runs)
    ended: float  # attempt.ended_at (the shim's exit record)
    exit_seen: float  # ts of the `exit` event (record_exits in a pass)
    merged: float  # ts of the `merge` event
    shim_at: float  # the shim's start record (its interpreter is up)
    agent_at: float  # the fake agent's own start line in $FAKE_AGENT_LOG


@dataclass
class Run:
    parallel: int
    t0: float
    makespan: float
    traces: dict[str, TaskTrace]
    attempts: int
    not_merged: list[str]
    problems: list[str]
    pass_s: list[float] = field(default_factory=list)
    observe_s: list[float] = field(default_factory=list)

    def latencies(self) -> list[float]:
        return [t.merged - t.ended for t in self.traces.values()]


def run_controller(root: Path, jobs: Sequence[Job], parallel: int, budget_s: float) -> Run:
    spec_file = make_project(root, jobs, parallel)
    spec = load_spec(spec_file)
    agent_log = root / "agents.log"
    os.environ["FAKE_AGENT_LOG"] = str(agent_log)  # the agents inherit the environment
    controller = Controller(spec_file, spec)
    ids = [j.id for j in jobs]
    pass_s: list[float] = []
    observe_s: list[float] = []
    inner_pass, inner_observe = controller.run_pass, controller.observe

    def timed_pass(*, sync_merges: bool) -> Plan:
        t = time.perf_counter()
        try:
            return inner_pass(sync_merges=sync_merges)
        finally:
            pass_s.append(time.perf_counter() - t)

    def timed_observe(now: float) -> Observed:
        t = time.perf_counter()
        try:
            return inner_observe(now)
        finally:
            observe_s.append(time.perf_counter() - t)

    def on_pass(result: Plan, _observed: Observed) -> None:
        if all(result.phases.get(i) in TERMINAL for i in ids):
            controller.draining = True

    controller.run_pass = timed_pass  # type: ignore[method-assign]
    controller.observe = timed_observe  # type: ignore[method-assign]
    controller.on_pass = on_pass
    with controller:
        t0 = time.time()
        controller.watch(max_seconds=budget_s)
        store = controller.store
        rows = store.attempts()
        events = store.events(kinds=["merge", "exit"])
        problems = store.events(kinds=["stop_requested", "action_error", "spawn_failed"])
        phases = dict(controller.last_plan.phases) if controller.last_plan else {}
    merge_ts = {e.task: e.ts for e in events if e.kind == "merge"}
    exit_ts = {(e.task, (e.data or {}).get("attempt")): e.ts for e in events if e.kind == "exit"}
    agent_ts: dict[tuple[str, int], float] = {}
    for line in agent_log.read_text().splitlines() if agent_log.exists() else []:
        _, task, n, _pid, ts = line.split()
        agent_ts[(task, int(n))] = float(ts)
    paths = StatePaths(spec.state_path)
    traces: dict[str, TaskTrace] = {}
    for a in rows:
        if a.outcome == "merged" and a.task in merge_ts and a.started_at and a.ended_at:
            seen = exit_ts.get((a.task, a.number), a.ended_at)
            start = json.loads(paths.start_record(a.task, a.number).read_text())
            traces[a.task] = TaskTrace(
                a.started_at,
                a.ended_at,
                seen,
                merge_ts[a.task],
                float(start["started_at"]),
                agent_ts.get((a.task, a.number), a.started_at),
            )
    end = max((t.merged for t in traces.values()), default=time.time())
    return Run(
        parallel=parallel,
        t0=t0,
        makespan=end - t0,
        traces=traces,
        attempts=len(rows),
        not_merged=[i for i in ids if phases.get(i) != "merged"],
        problems=[f"{e.task} {e.kind}: {e.message}" for e in problems]
        + [f"{a.task}#{a.number} {a.outcome}: {a.reason}" for a in rows if a.outcome != "merged"],
        pass_s=pass_s,
        observe_s=observe_s,
    )


# -- where the time went -----------------------------------------------------------------------
def critical_chain(run: Run, jobs: Sequence[Job]) -> tuple[dict[str, float], list[str]]:
    """Walk back from the last merge through whatever released each task's start: the merge
    of a dependency or of a scope-group mate that started earlier, or (when every slot was
    busy) the last exit before it. Returns the chain's time by kind (the kinds sum to the
    makespan) and the chain, first task first.

    A `merge` event is written when the loop collects the finished merge, which can be a
    moment after the pass that already saw the new tip spawned the dependent; such a release
    is clamped to the dependent's start.
    """
    tr = run.traces
    by_id = {j.id: j for j in jobs if j.id in tr}
    kinds = ("startup", "sleep", "process", "exit_merge", "release_spawn")
    out = dict.fromkeys(kinds, 0.0)
    chain: list[str] = []
    if not by_id:
        return out, chain
    task, end = max(by_id, key=lambda i: tr[i].merged), "merge"
    tail = tr[task].merged
    while True:
        t, job = tr[task], by_id[task]
        chain.append(task)
        if end == "merge":
            out["exit_merge"] += tail - t.ended
        out["sleep"] += job.sleep
        out["process"] += (t.ended - t.started) - job.sleep
        before = [i for i, o in tr.items() if i != task and o.started < t.started]
        releases = [
            (min(tr[i].merged, t.started), i, "merge")
            for i in before
            if i in job.deps or by_id[i].group == job.group
        ]
        exits = [(tr[i].ended, i, "exit") for i in before if tr[i].ended <= t.started]
        if exits:
            last = max(exits)
            if sum(1 for o in tr.values() if o.started < last[0] <= o.ended) >= run.parallel:
                releases.append(last)  # every slot was taken until that exit
        if not releases:
            out["startup"] += t.started - run.t0
            return out, chain[::-1]
        tail, task, end = max(releases)
        out["release_spawn"] += t.started - tail


# -- idle CPU ----------------------------------------------------------------------------------
@dataclass(frozen=True)
class Idle:
    percent: float  # of one core, the process and its reaped children
    threads: list[float]  # per thread, busiest first (psutil's 10 ms tick resolution)
    passes: int  # reconcile passes seen in the window (0 or 1: `last_pass` moved)


def idle_cpu(spec_file: Path, seconds: float) -> Idle:
    """CPU used by `orchestrator reconcile --watch` on a converged spec, after it settled."""
    exe = Path(sys.executable).parent / "orchestrator"
    argv = [str(exe)] if exe.exists() else [sys.executable, "-m", "controller"]
    log = spec_file.parent / "idle-watch.log"
    db = spec_file.parent.parent / "state" / "orchestrator.db"
    with log.open("w") as out:
        proc = subprocess.Popen(
            [*argv, "reconcile", "--watch", "-f", str(spec_file)],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=spec_file.parent.parent,
            start_new_session=True,
        )
    try:
        started = time.time()
        while last_pass(db) < started and time.time() - started < 30:
            time.sleep(0.1)
        time.sleep(2.0)  # let the first pass's prunes and imports settle
        ps = psutil.Process(proc.pid)
        passes0, cpu0, wall0 = last_pass(db), cpu_seconds(ps), time.monotonic()
        threads0 = {t.id: t.user_time + t.system_time for t in ps.threads()}
        time.sleep(seconds)
        cpu1, wall1 = cpu_seconds(ps), time.monotonic()
        threads1 = {t.id: t.user_time + t.system_time for t in ps.threads()}
        wall = wall1 - wall0
        per_thread = [100 * (v - threads0.get(k, 0.0)) / wall for k, v in threads1.items()]
        return Idle(
            100.0 * (cpu1 - cpu0) / wall,
            sorted(per_thread, reverse=True),
            int(last_pass(db) != passes0),
        )
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def cpu_seconds(ps: psutil.Process) -> float:
    t = ps.cpu_times()
    return t.user + t.system + t.children_user + t.children_system


def last_pass(db: Path) -> float:
    store = Store.open_readonly(db) if db.exists() else None
    if store is None:
        return 0.0
    try:
        return float(store.get_meta("last_pass") or 0.0)
    finally:
        store.close()


# -- report ------------------------------------------------------------------------------------
def pct(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[max(0, min(len(ordered), math.ceil(q / 100 * len(ordered))) - 1)]


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


@dataclass(frozen=True)
class Options:
    seed: int
    tasks: int
    parallel: int
    groups: int
    edge_p: float
    idle_s: float
    argv: list[str]


def parse(argv: list[str]) -> Options:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--tasks", type=int, default=None, help="30 (12 with --quick)")
    parser.add_argument("--parallel", type=int, default=4)
    parser.add_argument("--groups", type=int, default=5)
    parser.add_argument("--edge-p", type=float, default=0.1)
    parser.add_argument("--idle-seconds", type=float, default=10.0)
    parser.add_argument("--quick", action="store_true", help="12 tasks instead of 30")
    a = parser.parse_args(argv)
    return Options(
        seed=a.seed,
        tasks=a.tasks or (12 if a.quick else 30),
        parallel=a.parallel,
        groups=a.groups,
        edge_p=a.edge_p,
        idle_s=a.idle_seconds,
        argv=argv,
    )


def figures(opt: Options, jobs: Sequence[Job], par: Run, seq: Run, idle: Idle) -> dict[str, bool]:
    """Print the headline table; returns which targets were met."""
    med = statistics.median
    sleeps = {j.id: j.sleep for j in jobs}
    total = sum(sleeps.values())
    b = lower_bound(jobs, sleeps, opt.parallel)
    measured = {j.id: par.traces[j.id].ended - par.traces[j.id].started for j in jobs}
    bm = lower_bound(jobs, measured, opt.parallel)
    lat, slat = par.latencies(), seq.latencies()
    ratio = par.makespan / b.value
    ok = {
        "makespan": ratio <= MAKESPAN_TARGET,
        "latency": med(lat) < LATENCY_TARGET_S,
        "idle": idle.percent < IDLE_TARGET_PCT,
    }
    edges = sum(len(j.deps) for j in jobs)
    print(f"command: {shlex.join(['.venv/bin/python', 'bench/scheduling.py', *opt.argv])}")
    print(
        f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {opt.tasks} tasks (seed "
        f"{opt.seed}, {edges} dependency edges, {opt.groups} scope groups, sleeps 0.2-2 s, sum "
        f"{total:.1f} s); no verify; resources {{cpu: [{{parallel: 8}}], memory: "
        "[{parallel: 8}]} so machine load never cuts admission"
    )
    print()
    print("| figure | value | target | |")
    print("|---|---:|---:|---|")
    rows = [
        (f"makespan, maxParallel {opt.parallel}", f"{par.makespan:.2f} s", "", ""),
        (
            f"lower bound, sleeps: max(CP {b.critical:.2f}, work/{opt.parallel} "
            f"{b.per_slot:.2f}, heaviest group {b.group:.2f})",
            f"{b.value:.2f} s",
            "",
            b.bound_by,
        ),
        ("makespan / bound", f"{ratio:.2f}x", f"<= {MAKESPAN_TARGET}x", verdict(ok["makespan"])),
        (
            f"lower bound, measured attempt durations: max(CP {bm.critical:.2f}, "
            f"work/{opt.parallel} {bm.per_slot:.2f}, heaviest group {bm.group:.2f})",
            f"{bm.value:.2f} s",
            "",
            f"makespan / it {par.makespan / bm.value:.2f}x",
        ),
        ("makespan, maxParallel 1 (same run)", f"{seq.makespan:.2f} s", "", ""),
        ("speedup vs maxParallel 1", f"{seq.makespan / par.makespan:.2f}x", "", ""),
        (f"speedup vs sum of sleeps ({total:.1f} s)", f"{total / par.makespan:.2f}x", "", ""),
        (
            f"exit -> merge, median / p95 / max (maxParallel {opt.parallel})",
            f"{med(lat):.3f} / {pct(lat, 95):.3f} / {max(lat):.3f} s",
            f"median < {LATENCY_TARGET_S} s",
            verdict(ok["latency"]),
        ),
        (
            "exit -> merge, median / p95 / max (maxParallel 1)",
            f"{med(slat):.3f} / {pct(slat, 95):.3f} / {max(slat):.3f} s",
            "",
            "",
        ),
        (
            f"idle CPU, `reconcile --watch` on the converged spec (poll 30s, {opt.idle_s:g} s)",
            f"{idle.percent:.2f}% of a core",
            f"< {IDLE_TARGET_PCT}%",
            f"{verdict(ok['idle'])}; {idle.passes} pass(es) in the window; busiest threads "
            + ", ".join(f"{t:.2f}%" for t in idle.threads[:4]),
        ),
    ]
    for row in rows:
        print("| " + " | ".join(row) + " |")
    return ok


def analysis(opt: Options, jobs: Sequence[Job], par: Run) -> None:
    """Print where the makespan went: simulations, the critical chain, per-attempt costs."""
    med = statistics.median
    sleeps = {j.id: j.sleep for j in jobs}
    tr = par.traces
    measured = {j.id: tr[j.id].ended - tr[j.id].started for j in jobs}
    latency = {j.id: tr[j.id].merged - tr[j.id].ended for j in jobs}
    bound = lower_bound(jobs, sleeps, opt.parallel).value
    level = bottom_levels(jobs, sleeps)

    def backlog(j: Job) -> int:
        return int(j.id[1:])

    rows = [
        ("planner policy (backlog order), sleeps", simulate(jobs, sleeps, opt.parallel, backlog)),
        (
            "critical-path priority, sleeps",
            simulate(jobs, sleeps, opt.parallel, lambda j: -level[j.id]),
        ),
        ("best of CP + 300 random priorities, sleeps", best_found(jobs, sleeps, opt.parallel, 300)),
        (
            "backlog order, measured attempt durations",
            simulate(jobs, measured, opt.parallel, backlog),
        ),
        (
            "backlog order, measured durations + measured exit->merge",
            simulate(jobs, measured, opt.parallel, backlog, latency),
        ),
        ("real run", par.makespan),
    ]
    print()
    print(
        "| where the makespan goes (simulated rows: no controller overhead) | makespan | / bound |"
    )
    print("|---|---:|---:|")
    for label, value in rows:
        print(f"| {label} | {value:.2f} s | {value / bound:.2f}x |")
    survey = policy_survey(opt, 50)
    print()
    print(
        f"| policy alone over seeds {opt.seed}-{opt.seed + 49} (zero overhead, sleeps) "
        "| median / bound | mean | workloads within 1.15x |"
    )
    print("|---|---:|---:|---:|")
    for label, ratios in survey.items():
        within = sum(r <= MAKESPAN_TARGET for r in ratios) / len(ratios)
        print(f"| {label} | {med(ratios):.3f}x | {statistics.mean(ratios):.3f}x | {within:.0%} |")
    chain, ids = critical_chain(par, jobs)
    print()
    print(
        f"critical chain of the real run ({' > '.join(ids)}): startup {chain['startup']:.2f} + "
        f"sleep {chain['sleep']:.2f} + process overhead {chain['process']:.2f} + exit->merge "
        f"{chain['exit_merge']:.2f} + release->spawn {chain['release_spawn']:.2f} = "
        f"{sum(chain.values()):.2f} s"
    )
    t = list(tr.values())
    steps = [
        ("runner start -> shim's start record", [x.shim_at - x.started for x in t]),
        ("shim's start record -> agent's first line", [x.agent_at - x.shim_at for x in t]),
        (
            "agent's sleep over -> exit record (git add + commit, exits)",
            [x.ended - x.agent_at - sleeps[i] for i, x in tr.items()],
        ),
        ("exit record -> `exit` event (watch wake + pass)", [x.exit_seen - x.ended for x in t]),
        (
            "`exit` event -> `merge` event (merge job + collect)",
            [x.merged - x.exit_seen for x in t],
        ),
        (f"one pass ({len(par.pass_s)} passes)", par.pass_s),
        (f"one observe ({len(par.observe_s)} calls)", par.observe_s),
    ]
    print()
    print(f"| per attempt, maxParallel {opt.parallel} | median | p95 |")
    print("|---|---:|---:|")
    for label, values in steps:
        print(f"| {label} | {med(values) * 1000:.0f} ms | {pct(values, 95) * 1000:.0f} ms |")


def policy_survey(opt: Options, seeds: int) -> dict[str, list[float]]:
    """Makespan / bound of each scheduling policy, simulated, over `seeds` workloads."""
    out: dict[str, list[float]] = {"backlog order (the planner)": [], "critical path": []}
    out["best of CP + 100 random priorities"] = []
    for seed in range(opt.seed, opt.seed + seeds):
        jobs = make_workload(seed, opt.tasks, opt.groups, opt.edge_p)
        dur = {j.id: j.sleep for j in jobs}
        bound = lower_bound(jobs, dur, opt.parallel).value
        level = bottom_levels(jobs, dur)
        runs = (
            simulate(jobs, dur, opt.parallel, lambda j: int(j.id[1:])),
            simulate(jobs, dur, opt.parallel, lambda j, lv=level: -lv[j.id]),
            best_found(jobs, dur, opt.parallel, 100),
        )
        for key, value in zip(out, runs, strict=True):
            out[key].append(value / bound)
    return out


def main(argv: list[str] | None = None) -> int:
    opt = parse(sys.argv[1:] if argv is None else argv)
    os.environ.update(GIT_ENV)
    logger.remove()  # the controller's file log stays; keep the terminal for the figures
    jobs = make_workload(opt.seed, opt.tasks, opt.groups, opt.edge_p)
    budget = 60 + 10 * sum(j.sleep for j in jobs)
    with tempfile.TemporaryDirectory(prefix="orchestrator-bench-") as tmp:
        par = run_controller(Path(tmp) / "par", jobs, opt.parallel, budget)
        seq = run_controller(Path(tmp) / "seq", jobs, 1, budget)
        spec_file = Path(tmp) / "par" / "specs" / "orchestrator.yaml"
        idle = idle_cpu(spec_file, opt.idle_s)
    if par.not_merged or seq.not_merged:
        print(f"not converged: {par.not_merged} (parallel), {seq.not_merged} (sequential)")
        for line in par.problems + seq.problems:
            print(f"  {line}")
        return 1
    ok = figures(opt, jobs, par, seq, idle)
    analysis(opt, jobs, par)
    return 0 if all(ok.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
