"""How fast is `orchestrator status` on a big store? Target: under 300 ms for 10,000 attempts.

Run from the repository root:

    .venv/bin/python bench/status_speed.py [--runs] [--spec-tasks N] [--tasks 1000]

It builds, in a temporary folder, a project with 1,000 tasks (4 agent types, dependencies,
one narrow write scope each) and a store with 10,000 attempts (10 per task: failures, then a
merge for 900 tasks whose merge commits are on the integration branch; 4 attempts running as
live processes with progress files; the rest failed or queued), then times:

1. **in-process**: everything `status` does after Python has imported the CLI -- load and
   validate the spec, read the world (store, git, runs directory, lock, resources), plan,
   build the model and render it as text and as JSON. This is the figure held to 300 ms.
2. **whole command**: `python -m controller status` as a user runs it, next to
   `python -m controller version`, the cost of starting Python and importing the CLI, which
   the view cannot lower.

`--runs` also writes the shim's start and exit records for every attempt (20,000 files), as
a long-lived state directory would hold them. `--spec-tasks N` keeps only the last N tasks in
the spec (the others done and removed from it, their attempts still in the store).

A benchmark, not a test: prints figures; exits 1 when the in-process median misses 300 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import psutil  # noqa: E402
from common import GIT_ENV as BENCH_GIT_ENV  # noqa: E402
from common import median_ms  # noqa: E402

from controller.cli.render import to_json  # noqa: E402
from controller.model.names import MERGE_TRAILER  # noqa: E402
from controller.observe.world import observe_spec  # noqa: E402
from controller.specfile.load import load_spec  # noqa: E402
from controller.state.paths import StatePaths  # noqa: E402
from controller.state.store import Store  # noqa: E402
from controller.views import snapshot  # noqa: E402
from controller.views.snapshot import take  # noqa: E402
from controller.views.status import build_status  # noqa: E402
from controller.views.text import status_lines  # noqa: E402

TARGET_MS = 300.0
GIT_ENV = {**os.environ, **BENCH_GIT_ENV}


def git(repo: Path, *args: str, stdin: bytes | None = None) -> None:
    subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, input=stdin, env=GIT_ENV
    )


def make_repo(root: Path, merged: list[str]) -> Path:
    """A repository whose `main` has one merge-trailer commit per merged task (fast-import)."""
    repo = root / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    stream = []
    t = 1_700_000_000
    for i, task in enumerate(["initial", *merged]):
        msg = "initial\n" if i == 0 else f"Merge task {task}\n\n{MERGE_TRAILER}: {task}\n"
        data = msg.encode()
        stream.append(b"commit refs/heads/main\n")
        stream.append(f"committer Bench <b@example.com> {t + i} +0000\n".encode())
        stream.append(f"data {len(data)}\n".encode() + data)
        if i == 0:
            stream.append(b"M 644 inline README.md\ndata 7\n# bench\n")
        stream.append(b"\n")
    git(repo, "fast-import", "--quiet", stdin=b"".join(stream))
    return repo


def write_spec(root: Path, tasks: int, in_spec: int) -> Path:
    """A spec whose backlog holds the last `in_spec` of the `tasks` (older ones done and gone
    from the spec, their attempts still in the store)."""
    agents = {
        f"agent{k}": {"command": ["agent", "{prompt}"], "owns": [f"pkg{k}/**"]} for k in range(4)
    }
    backlog = []
    first = tasks - in_spec
    for i in range(first, tasks):
        entry: dict[str, object] = {
            "id": f"t{i:04d}",
            "agent": f"agent{i % 4}",
            "paths": [f"pkg{i % 4}/mod{i}/**"],
        }
        if i % 7 == 3 and i - 3 >= first:
            entry["dependsOn"] = [f"t{i - 3:04d}"]
        backlog.append(entry)
    spec = {
        "apiVersion": "orchestrator/v1",
        "repo": "../repo",
        "integrationBranch": "main",
        "maxParallel": 8,
        "retries": 12,
        "agents": agents,
        "backlog": backlog,
    }
    path = root / "specs" / "orchestrator.yaml"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(spec, indent=1))
    return path


def fill_store(paths: StatePaths, tasks: int, per_task: int, runs: bool) -> list[str]:
    """10 attempts a task; returns the merged task ids. Live attempts use this process."""
    paths.ensure()
    Store.open(paths.db).close()  # schema
    me = psutil.Process()
    now = time.time()
    rows, merged = [], []
    live = 0
    for i in range(tasks):
        task = f"t{i:04d}"
        base = now - 86400 + i * 60
        for n in range(1, per_task + 1):
            row = _failed_row(task, n, base + n * 5, f"agent{i % 4}")
            last = n == per_task
            if last and i < tasks * 0.9:
                row.update(exit_code=0, outcome="merged", reason="")
                merged.append(task)
            elif last and live < 4 and i % 25 == 0:
                live += 1
                _make_live(row, paths, me, now)
            rows.append(row)
            if runs:
                _write_run_records(paths, row)
    _insert(paths.db, rows, now)
    return merged


def _failed_row(task: str, n: int, start: float, agent: str) -> dict[str, Any]:
    return {
        "task": task,
        "number": n,
        "created_at": start - 0.1,
        "pid": 10_000 + n,
        "create_time": start,
        "started_at": start,
        "ended_at": start + 3 + n % 3,
        "exit_code": 1,
        "outcome": "failed",
        "reason": "exit 1",
        "retry_at": start + 4,
        "agent": agent,
    }


def _make_live(row: dict[str, Any], paths: StatePaths, me: psutil.Process, now: float) -> None:
    """Turn `row` into a running attempt of this very process, with a progress file."""
    row.update(
        pid=me.pid,
        create_time=me.create_time(),
        started_at=now - 30,
        ended_at=None,
        exit_code=None,
        outcome=None,
        reason="",
        retry_at=None,
    )
    pf = paths.progress_file(row["task"], row["number"])
    pf.parent.mkdir(parents=True, exist_ok=True)
    pf.write_text("40\n")


def _write_run_records(paths: StatePaths, row: dict[str, Any]) -> None:
    """The shim's start record and (when it ended) exit record of the attempt `row`."""
    d = paths.task_runs(row["task"])
    d.mkdir(parents=True, exist_ok=True)
    n = row["number"]
    (d / f"{n}.start.json").write_text(
        json.dumps(
            {"pid": row["pid"], "create_time": row["create_time"], "started_at": row["started_at"]}
        )
    )
    if row["ended_at"] is not None:
        (d / f"{n}.exit.json").write_text(
            json.dumps({"exit_code": row["exit_code"], "ended_at": row["ended_at"]})
        )


def _insert(db: Path, rows: list[dict[str, Any]], now: float) -> None:
    con = sqlite3.connect(db)
    with con:
        con.executemany(
            "INSERT INTO attempts(task, number, created_at, pid, create_time, started_at, "
            "ended_at, exit_code, outcome, reason, retry_at, agent) VALUES (:task, :number, "
            ":created_at, :pid, :create_time, :started_at, :ended_at, :exit_code, :outcome, "
            ":reason, :retry_at, :agent)",
            rows,
        )
        con.executemany(
            "INSERT INTO events(ts, task, kind, message) VALUES (?, ?, 'exit', 'attempt')",
            [(r["started_at"], r["task"]) for r in rows],
        )
        con.execute("INSERT INTO controller(key, value) VALUES ('last_pass', ?)", (str(now),))
    con.close()


OBSERVE_MS: list[float] = []


def _timed_observe(*args: Any, **kwargs: Any) -> Any:
    """`observe_spec` as `take` calls it, timed: the controller's own reading of the world."""
    t0 = time.perf_counter()
    try:
        return observe_spec(*args, **kwargs)
    finally:
        OBSERVE_MS.append((time.perf_counter() - t0) * 1000)


snapshot.observe_spec = _timed_observe  # type: ignore[assignment]


def status_once(spec_file: Path) -> tuple[float, float, float, float, float]:
    """One `status` as the command runs it, in ms: (spec load, the controller's observe,
    the view's reading around it and plan(), model + text rendering, and -- not part of
    the default command -- the JSON rendering of `-o json`)."""
    t0 = time.perf_counter()
    spec = load_spec(spec_file)
    t1 = time.perf_counter()
    snap = take(spec)
    t2 = time.perf_counter()
    model = build_status(snap)
    "\n".join(status_lines(model))
    t3 = time.perf_counter()
    to_json(model.as_dict())
    t4 = time.perf_counter()
    observe = OBSERVE_MS[-1]
    return (
        (t1 - t0) * 1000,
        observe,
        (t2 - t1) * 1000 - observe,
        (t3 - t2) * 1000,
        (t4 - t3) * 1000,
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=1000)
    parser.add_argument("--attempts", type=int, default=10, help="attempts per task")
    parser.add_argument("--runs", action="store_true", help="also write run records")
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--spec-tasks", type=int, default=None, help="tasks in the spec (default: all)"
    )
    args = parser.parse_args()
    root = Path(tempfile.mkdtemp(prefix="status-speed-"))
    try:
        in_spec = min(args.tasks, args.spec_tasks or args.tasks)
        spec_file = write_spec(root, args.tasks, in_spec)
        paths = StatePaths(root / "state")
        merged = fill_store(paths, args.tasks, args.attempts, args.runs)
        make_repo(root, merged)
        total = args.tasks * args.attempts
        print(
            f"store: {total} attempts across {args.tasks} tasks, {len(merged)} merged"
            f"{', with run records' if args.runs else ''}"
        )
        status_once(spec_file)  # warm the OS caches
        parts = [status_once(spec_file) for _ in range(args.repeat)]
        load_ms, obs_ms, plan_ms, view_ms, json_ms = (
            statistics.median(p[i] for p in parts) for i in range(5)
        )
        total = statistics.median(sum(p[:4]) for p in parts)
        print(
            f"status in-process (default text output), median of {args.repeat}: "
            f"{total:.0f} ms (target {TARGET_MS:.0f} ms)"
        )
        print(f"  spec load and validation ({in_spec} tasks): {load_ms:.0f} ms")
        print(f"  the controller's observe pass (store, git, runs, liveness): {obs_ms:.0f} ms")
        print(f"  the view's reading around it (lock, meta, progress) + plan(): {plan_ms:.0f} ms")
        print(f"  status model + text rendering: {view_ms:.0f} ms")
        print(f"  (-o json instead of text adds: {json_ms:.0f} ms for the JSON document)")
        cmd = [sys.executable, "-m", "controller"]
        env = {**GIT_ENV, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}

        def run(*argv: str) -> None:
            subprocess.run([*cmd, *argv], check=True, capture_output=True, env=env, cwd=root)

        whole = median_ms(lambda: run("status", "-f", str(spec_file)), 3)
        base = median_ms(lambda: run("version"), 3)
        print(
            f"whole command `python -m controller status`: median {whole:.0f} ms; "
            f"`version` (interpreter + CLI imports only): {base:.0f} ms"
        )
        return 0 if total <= TARGET_MS else 1
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
