"""Per-task overhead of the Ray runner against the local runner, measured in the same run.

Runs the same backlog (independent tasks whose fake agent sleeps a fixed time and writes a
file) through the real controller twice: once with the local runner, once with the Ray
runner against a local Ray head (127.0.0.1). For each task it measures

- spawn -> agent start: from the attempt's intent row (written just before the controller
  starts the attempt) to the agent's own first line (logged by the fake agent);
- agent exit -> merged: from the agent's last line to the controller's `merge` event.

Run from the repository root:  python bench/ray_overhead.py [--tasks 8] [--sleep 1.0]
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.project import FAKE_AGENT, Project, stop_process, wait_until  # noqa: E402
from tests.support.raycluster import RAY_ENV, local_ray_cluster  # noqa: E402


def run_backlog(
    root: Path, tasks: int, sleep: float, runner: dict | None
) -> dict[str, list[float]]:
    p = Project(root)
    backlog = [
        {
            "id": f"t{i}",
            "agent": "dev",
            "prompt": f"sleep {sleep}\nwrite t{i}.txt: {i}",
            "paths": [f"t{i}.txt"],
        }
        for i in range(tasks)
    ]
    extra: dict = {"runner": runner} if runner else {}
    if runner:
        subprocess.run(["git", "init", "-q", "--bare", runner["remote"]], check=True)
    p.write_spec(
        maxParallel=4,
        agents={
            "dev": {
                "command": [sys.executable, FAKE_AGENT],
                "owns": ["**"],
                "env": {"FAKE_AGENT_LOG": str(p.agent_log)},
            }
        },
        backlog=backlog,
        **extra,
    )
    env = {**p.env(), **RAY_ENV}
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller", "reconcile", "--watch", "-f", str(p.spec_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=p.tmp,
        env=env,
        start_new_session=True,
    )
    try:
        ok = wait_until(lambda: len(set(p.merges())) == tasks, timeout=600, step=0.2)
    finally:
        out = stop_process(proc)
    if not ok:
        raise SystemExit(f"did not converge: merged {p.merges()}\n{out[-3000:]}")
    con = sqlite3.connect(p.state / "orchestrator.db")
    created = {
        t: c for t, c in con.execute("SELECT task, created_at FROM attempts WHERE number = 1")
    }
    merged = {t: ts for t, ts in con.execute("SELECT task, ts FROM events WHERE kind = 'merge'")}
    con.close()
    starts, ends = {}, {}
    for line in p.agent_log.read_text().splitlines():
        kind, task, _n, _pid, ts = line.split()
        (starts if kind == "start" else ends)[task] = float(ts)
    return {
        "spawn_to_start": [starts[t] - created[t] for t in created],
        "exit_to_merge": [merged[t] - ends[t] for t in merged],
    }


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=8)
    parser.add_argument("--sleep", type=float, default=1.0)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ray-overhead-") as tmp:
        root = Path(tmp)
        t0 = time.perf_counter()
        local = run_backlog(root / "local", args.tasks, args.sleep, None)
        local_s = time.perf_counter() - t0
        with local_ray_cluster(cpus=2) as address:
            runner = {
                "kind": "ray",
                "address": address,
                "remote": str(root / "remote.git"),
                "python": sys.executable,
            }
            t0 = time.perf_counter()
            ray = run_backlog(root / "ray", args.tasks, args.sleep, runner)
            ray_s = time.perf_counter() - t0
    print(f"command: python bench/ray_overhead.py --tasks {args.tasks} --sleep {args.sleep}")
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, local Ray head (2 CPUs)\n")
    print("| per task | local median | local p95 | ray median | ray p95 | ray / local (median) |")
    print("|---|---:|---:|---:|---:|---:|")
    for key, label in (
        ("spawn_to_start", "spawn -> agent start"),
        ("exit_to_merge", "agent exit -> merged"),
    ):
        lm, rm = statistics.median(local[key]), statistics.median(ray[key])
        print(
            f"| {label} | {lm:.3f} s | {p95(local[key]):.3f} s | {rm:.3f} s | "
            f"{p95(ray[key]):.3f} s | {rm / lm:.1f}x |"
        )
    whole = f"whole backlog ({args.tasks} tasks, maxParallel 4)"
    print(f"| {whole} | {local_s:.1f} s | | {ray_s:.1f} s | | {ray_s / local_s:.1f}x |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
