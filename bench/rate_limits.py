"""Rate limits across the fleet: 12 real Claude Code agents against a rate-limited server.

The same backlog runs twice in one invocation, each time through the real controller
(`orchestrator reconcile --watch` as a process) with the real Claude Code CLI (the pinned
version in .cache/claude-code) against the scripted Messages API server
(`tests/support/anthropic_server.py`), which allows `--limit` requests per `--window`
seconds across all clients (a fixed window; a 429 carries `retry-after`, the time until the
window resets):

- **fleet**: the orchestrator's handling (the default): the provider starts slowly, backs
  off together, its concurrency halves and climbs back (AIMD), the preset keeps one retry of
  Claude Code's own (`CLAUDE_CODE_MAX_RETRIES=1`), an attempt that ends on a 429 is
  re-queued for free. The one setting given is `rateLimit: {quiet: <2 windows>}` (the
  default, 60s, suits the per-minute limits of real APIs, not a 5 s window);
- **off**: `rateLimit: off`: every agent retries on its own, with Claude Code's default of
  10 retries and its own backoff.

Each task's script takes `--requests` requests (Write calls, then a final text), each
answered after `--think` seconds (a model is not instant: without it one agent alone could
outrun the limit and no concurrency limit could help), so the backlog needs tasks x requests
requests; at `limit / window` per second that is the floor of
the wall time. Measured per mode: tasks merged and failed, attempts (and those that ended on
a rate limit), the 429 responses the server sent and the requests it served (its own
counters), and the wall time from the controller's start to the last merge.

Targets: 0 tasks failed with the fleet's handling, at least 5x fewer 429s than `off`, and a
wall time at most 1.2x the floor.

Run from the repository root:  python bench/rate_limits.py [--tasks 12] [--limit 4] [--window 5]
12 real CLIs at once need about 2.2 GB and several CPU-seconds each at start-up.
"""

from __future__ import annotations

import argparse
import json
import sqlite3
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.support.anthropic_server import AnthropicServer, call, say, write  # noqa: E402
from tests.support.claude import agent, claude_binary  # noqa: E402
from tests.support.project import Project, stop_process, wait_until  # noqa: E402

TARGET_RATIO = 5.0
TARGET_WALL = 1.2


@dataclass
class Result:
    mode: str
    merged: int
    failed: int
    attempts: int
    rate_limited_attempts: int
    served: int
    rate_limited_responses: int
    wall_s: float
    timed_out: bool


def spec_agent(
    binary: Path, url: str, mode: str, max_retries: str | None, rate_limit: str | None
) -> dict[str, Any]:
    dev = agent(binary, url)
    del dev["env"]["CLAUDE_CODE_MAX_RETRIES"]  # the tests' low value: here the real defaults
    if max_retries is not None:
        dev["env"]["CLAUDE_CODE_MAX_RETRIES"] = max_retries
    if mode == "off":
        dev["rateLimit"] = "off"
    elif rate_limit:
        dev["rateLimit"] = json.loads(rate_limit)
    return dev


def counts(p: Project) -> tuple[int, int, int]:
    """(attempts, attempts that ended on a rate limit, tasks whose retries are exhausted)."""
    db = p.state / "orchestrator.db"
    if not db.exists():
        return 0, 0, 0
    con = sqlite3.connect(db)
    rows = con.execute("SELECT outcome FROM attempts").fetchall()
    con.close()
    st = json.loads(p.cli("status", "-o", "json").stdout)
    failed = sum(1 for t in st["tasks"] if t["phase"] == "failed")
    return len(rows), sum(1 for (o,) in rows if o == "rate_limited"), failed


def run_mode(
    root: Path, binary: Path, mode: str, args: argparse.Namespace, max_retries: str | None
) -> Result:
    with AnthropicServer() as server:
        backlog = []
        for i in range(args.tasks):
            steps = [
                call(write(f"t{i}/f{k}.txt", f"{i}.{k}\n"), delay=args.think)
                for k in range(args.requests - 1)
            ]
            server.add_script(f"t{i}", [*steps, say("Done.", delay=args.think)])
            backlog.append(
                {"id": f"t{i}", "agent": "dev", "prompt": f"[script:t{i}] write the files",
                 "paths": [f"t{i}/**"]}
            )  # fmt: skip
        server.set_rate_limit(args.limit, args.window)
        p = Project(
            root / mode,
            agents={
                "dev": spec_agent(binary, server.url, mode, max_retries, args.fleet_rate_limit)
            },
            maxParallel=args.tasks,
            retries=args.retries,
            timeout="10m",
            pollInterval="5s",
            resources={"cpu": [{"parallel": 64}], "memory": [{"parallel": 64}]},
            backlog=backlog,
        )
        floor = args.tasks * args.requests * args.window / args.limit
        started = time.monotonic()
        started_wall = time.time()
        out = (root / f"{mode}.controller.out").open("w")  # a pipe nobody reads could fill up
        proc = subprocess.Popen(
            [sys.executable, "-m", "controller", "reconcile", "--watch", "-f", str(p.spec_file)],
            stdout=out,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=p.tmp,
            env=p.env(),
            start_new_session=True,
        )
        try:

            def settled() -> bool:
                merged = len(set(p.merges()))
                if merged == args.tasks:
                    return True
                return merged + counts(p)[2] == args.tasks

            done = wait_until(settled, timeout=args.timeout_factor * floor, step=0.5)
            wall = time.monotonic() - started
        finally:
            stop_process(proc, timeout=120)
            out.close()
        stats = server.stats()
        attempts, limited, failed = counts(p)
        log = [(e["time"] - started_wall, e["status"]) for e in stats["log"] if "status" in e]
        (root / f"{mode}.server.json").write_text(json.dumps(log))
        return Result(
            mode=mode,
            merged=len(set(p.merges())),
            failed=failed,
            attempts=attempts,
            rate_limited_attempts=limited,
            served=stats["served"],
            rate_limited_responses=stats["rate_limited"],
            wall_s=wall,
            timed_out=not done,
        )


def report(results: list[Result], args: argparse.Namespace, command: str) -> bool:
    needed = args.tasks * args.requests
    floor = needed * args.window / args.limit
    print(f"`{command}`\n")
    print(
        f"{args.tasks} tasks x {args.requests} requests = {needed} requests needed; the server "
        f"allows {args.limit} per {args.window:g} s (fixed window) -> floor {floor:.1f} s\n"
    )
    print(
        "| mode | merged | failed | attempts (rate limited) | requests served | "
        "429 responses | wall time | wall / floor |"
    )
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        late = " (timed out)" if r.timed_out else ""
        print(
            f"| {r.mode} | {r.merged} | {r.failed} | {r.attempts} ({r.rate_limited_attempts}) | "
            f"{r.served} | {r.rate_limited_responses} | {r.wall_s:.1f} s{late} | "
            f"{r.wall_s / floor:.2f}x |"
        )
    by = {r.mode: r for r in results}
    fleet, off = by.get("fleet"), by.get("off")
    ok = True
    if fleet is not None:
        checks = [("0 tasks failed", fleet.failed == 0 and fleet.merged == args.tasks)]
        checks.append(
            (f"wall time <= {TARGET_WALL}x the floor", fleet.wall_s <= TARGET_WALL * floor)
        )
        if off is not None:
            ratio = off.rate_limited_responses / max(1, fleet.rate_limited_responses)
            print(f"\n429 responses, off / fleet: {ratio:.1f}x")
            checks.append((f">= {TARGET_RATIO:g}x fewer 429s than off", ratio >= TARGET_RATIO))
        print()
        for name, met in checks:
            print(f"- {name}: {'met' if met else 'MISSED'}")
            ok = ok and met
    return ok


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="bench/rate_limits.py", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--tasks", type=int, default=12, help="tasks, all started at once")
    parser.add_argument("--requests", type=int, default=3, help="requests per task (>= 2)")
    parser.add_argument("--limit", type=int, default=4, help="requests allowed per window")
    parser.add_argument("--window", type=float, default=5.0, help="the window, in seconds")
    parser.add_argument(
        "--think", type=float, default=1.0, help="seconds the server takes per answer (a model)"
    )
    parser.add_argument("--retries", type=int, default=3, help="the spec's retries per task")
    parser.add_argument("--modes", default="fleet,off", help="comma-separated: fleet, off")
    parser.add_argument(
        "--max-retries", default=None, help="CLAUDE_CODE_MAX_RETRIES for the fleet mode "
        "(default: the preset's own)"
    )  # fmt: skip
    parser.add_argument(
        "--timeout-factor", type=float, default=6.0, help="give up after this x floor"
    )
    parser.add_argument("--keep", default=None, help="keep the runs in this (new) folder")
    parser.add_argument(
        "--fleet-rate-limit",
        default=None,
        help="the fleet mode's rateLimit, as JSON (default: quiet = two windows)",
    )
    args = parser.parse_args(argv)
    if args.fleet_rate_limit is None:
        args.fleet_rate_limit = json.dumps({"quiet": f"{2 * args.window:g}s"})
    binary = claude_binary()
    command = "python bench/rate_limits.py " + " ".join(argv if argv is not None else sys.argv[1:])
    results = []
    with tempfile.TemporaryDirectory(prefix="bench-rate-limits-") as tmp:
        root = Path(args.keep) if args.keep else Path(tmp)
        for mode in args.modes.split(","):
            retries = args.max_retries if mode == "fleet" else None
            results.append(run_mode(root, binary, mode, args, retries))
            print(f"# {mode}: done in {results[-1].wall_s:.1f} s", file=sys.stderr)
    return 0 if report(results, args, command.strip()) else 1


if __name__ == "__main__":
    sys.exit(main())
