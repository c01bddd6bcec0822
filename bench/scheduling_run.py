"""One real run of the scheduling bench: the workload through the real `Controller`.

A temporary git repository and spec (`make_project`), `Controller.watch` with its passes and
observations timed, and the traces read back afterwards from the store, the shim's start
records and the fake agent's log: when each attempt started, exited, was seen and merged.
`critical_chain` then walks the run back from its last merge to say where the time went.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.scheduling_sim import Job
from controller.core.plan import Plan
from controller.loop.controller import Controller
from controller.model.observed import Observed
from controller.specfile.load import load_spec
from controller.state.paths import StatePaths
from controller.state.store import AttemptRow, EventRow

ROOT = Path(__file__).resolve().parent.parent
FAKE_AGENT = ROOT / "tests" / "support" / "agents" / "fake_agent.py"
TERMINAL = {"merged", "failed", "rejected"}


def spec_dict(
    jobs: Sequence[Job], parallel: int, agent: Path, order: str = "backlog"
) -> dict[str, Any]:
    return {
        "apiVersion": "orchestrator/v1",
        "repo": "../repo",
        "integrationBranch": "main",
        "maxParallel": parallel,
        "order": order,
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
                "estimate": j.sleep,  # what critical-path order plans with
                **({"dependsOn": list(j.deps)} if j.deps else {}),
            }
            for j in jobs
        ],
    }


def git(repo: Path, *args: str) -> None:
    subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)


def make_project(root: Path, jobs: Sequence[Job], parallel: int, order: str = "backlog") -> Path:
    repo = root / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    (repo / "README.md").write_text("# bench\n")
    git(repo, "add", "README.md")
    git(repo, "commit", "-q", "-m", "initial")
    spec_file = root / "specs" / "orchestrator.yaml"
    spec_file.parent.mkdir(parents=True)
    # a private copy: test suites running meanwhile kill stray tests/support/agents/fake_agent.py
    agent = shutil.copy(FAKE_AGENT, root / "fake_agent.py")
    spec_file.write_text(json.dumps(spec_dict(jobs, parallel, Path(agent), order), indent=1))
    return spec_file


@dataclass
class TaskTrace:
    """The clocks of a task's merged attempt. Each comes from the one place that knows it:
    the store's `started_at` is overwritten with the shim's own start once the exit is
    recorded, so the runner's start is read from the spawn event (`launched_at`)."""

    started: float  # the runner started the shim (spawn event's `launched_at`)
    ended: float  # attempt.ended_at (the shim's exit record)
    exit_seen: float  # ts of the `exit` event (record_exits in a pass)
    merged: float  # ts of the `merge` event
    shim_at: float  # the shim's start record (its interpreter is up)
    agent_at: float  # the fake agent's own start line in $FAKE_AGENT_LOG
    intent: float  # attempt.created_at: the spawn's intent row, before the worktree is made


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


def _instrument(controller: Controller, ids: Sequence[str]) -> tuple[list[float], list[float]]:
    """Time every pass and every observe; drain once every task is terminal."""
    pass_s: list[float] = []
    observe_s: list[float] = []
    rec = controller.reconciler
    inner_pass, inner_observe = rec.run_pass, rec.observe

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

    rec.run_pass = timed_pass  # type: ignore[method-assign]
    rec.observe = timed_observe  # type: ignore[method-assign]
    rec.on_pass = on_pass
    return pass_s, observe_s


def run_controller(
    root: Path, jobs: Sequence[Job], parallel: int, budget_s: float, order: str = "backlog"
) -> Run:
    spec_file = make_project(root, jobs, parallel, order)
    spec = load_spec(spec_file)
    agent_log = root / "agents.log"
    os.environ["FAKE_AGENT_LOG"] = str(agent_log)  # the agents inherit the environment
    controller = Controller(spec_file, spec)
    ids = [j.id for j in jobs]
    pass_s, observe_s = _instrument(controller, ids)
    with controller:
        t0 = time.time()
        controller.watch(max_seconds=budget_s)
        store = controller.store
        rows = store.attempts()
        events = store.events(kinds=["merge", "exit", "spawn", "retry"])
        problems = store.events(kinds=["stop_requested", "action_error", "spawn_failed"])
        last = controller.reconciler.last_plan
        phases = dict(last.phases) if last else {}
    traces = _traces(rows, events, _agent_starts(agent_log), StatePaths(spec.state_path))
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


def _agent_starts(agent_log: Path) -> dict[tuple[str, int], float]:
    """(task, attempt) -> when the fake agent started, from its `start` lines in
    $FAKE_AGENT_LOG (it also logs an `end` line, which must not overwrite the start)."""
    agent_ts: dict[tuple[str, int], float] = {}
    for line in agent_log.read_text().splitlines() if agent_log.exists() else []:
        kind, task, n, _pid, ts = line.split()
        if kind == "start":
            agent_ts[(task, int(n))] = float(ts)
    return agent_ts


def _traces(
    rows: Sequence[AttemptRow],
    events: Sequence[EventRow],
    agent_ts: dict[tuple[str, int], float],
    paths: StatePaths,
) -> dict[str, TaskTrace]:
    """The trace of each task's merged attempt."""
    merge_ts = {e.task: e.ts for e in events if e.kind == "merge"}
    exit_ts = {(e.task, (e.data or {}).get("attempt")): e.ts for e in events if e.kind == "exit"}
    launched = {
        (e.task, (e.data or {}).get("attempt")): float((e.data or {}).get("launched_at", e.ts))
        for e in events
        if e.kind in ("spawn", "retry")
    }
    traces: dict[str, TaskTrace] = {}
    for a in rows:
        if a.outcome == "merged" and a.task in merge_ts and a.started_at and a.ended_at:
            seen = exit_ts.get((a.task, a.number), a.ended_at)
            shim = float(json.loads(paths.start_record(a.task, a.number).read_text())["started_at"])
            runner = launched.get((a.task, a.number), shim)
            traces[a.task] = TaskTrace(
                runner,
                a.ended_at,
                seen,
                merge_ts[a.task],
                shim,
                agent_ts.get((a.task, a.number), shim),
                a.created_at or runner,
            )
    return traces


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


def spawn_after_merge(run: Run, jobs: Sequence[Job]) -> list[float]:
    """Per dependency link released by a merge: the merge event -> the runner starting the
    dependent (a dependency's merge, or a scope-group mate's that started before it), for
    tasks whose start was bound by that merge rather than by a free slot."""
    tr = run.traces
    by_id = {j.id: j for j in jobs if j.id in tr}
    out = []
    for task, job in by_id.items():
        t = tr[task]
        before = [i for i, o in tr.items() if i != task and o.started < t.started]
        releases = [tr[i].merged for i in before if i in job.deps or by_id[i].group == job.group]
        if not releases or max(releases) > t.started:
            continue
        release = max(releases)
        busy = sum(1 for o in tr.values() if o.started <= release < o.ended)
        if busy >= run.parallel:  # every slot was taken: a slot, not the merge, held it
            continue
        out.append(t.started - release)
    return out
