"""The original guide's promises, measured. Run from the repository root:

    .venv/bin/python bench/guide.py [--runs 5] [--passes 20]

1. `orchestrator import-roadmap` on the original project's 33,000-line ROADMAP
   (../shared/fixtures/coffee-maker/ROADMAP.md, read in place): the whole command as a fresh
   process (target: under 1 s, exit 0), and in-process the parse and the YAML apart.
2. Reconcile pass times with and without a notify command that hangs (it sleeps 60 s, its
   timeout is 20 s): the same workload (4 tasks that fail, 4 that merge: `failed`,
   `exhausted` and `merged` events) in two fresh projects, through the in-process controller.
   Target: the medians within 50 ms of each other and no pass near the timeout.

Prints markdown tables; exits 1 when a target is missed. A benchmark, not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.common import GIT_ENV  # noqa: E402

ROADMAP = (ROOT / ".." / "shared" / "fixtures" / "coffee-maker" / "ROADMAP.md").resolve()
if not ROADMAP.is_file():
    ROADMAP = Path("/work/shared/fixtures/coffee-maker/ROADMAP.md")
IMPORT_TARGET_S = 1.0
MEDIAN_GAP_S = 0.05


def import_roadmap(runs: int) -> bool:
    argv = [sys.executable, "-m", "controller", "import-roadmap", str(ROADMAP)]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    subprocess.run(argv, capture_output=True, env=env, check=False)  # byte code, page cache
    times, codes = [], set()
    for _ in range(runs):
        t0 = time.perf_counter()
        done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False)
        times.append(time.perf_counter() - t0)
        codes.add(done.returncode)
    summary = done.stderr.strip().splitlines()[-1]
    from controller.specfile.roadmap import parse_roadmap, to_backlog_yaml

    text = ROADMAP.read_text(encoding="utf-8")
    t0 = time.perf_counter()
    parsed = parse_roadmap(text, str(ROADMAP))
    t1 = time.perf_counter()
    to_backlog_yaml(parsed.items, "code_developer")
    t2 = time.perf_counter()
    ok = codes == {0} and statistics.median(times) < IMPORT_TARGET_S
    print(f"`python -m controller import-roadmap {ROADMAP}` ({len(text.splitlines())} lines)\n")
    print("| figure | value | target |\n|---|---|---|")
    print(f"| whole command, median of {runs} | {statistics.median(times) * 1000:.0f} ms "
          f"(min {min(times) * 1000:.0f}) | < {IMPORT_TARGET_S * 1000:.0f} ms |")  # fmt: skip
    print(f"| exit codes | {sorted(codes)} | [0] |")
    print(f"| parse (in process) | {(t1 - t0) * 1000:.0f} ms | |")
    print(f"| YAML of the backlog (in process) | {(t2 - t1) * 1000:.0f} ms | |")
    print(f"| summary line | {summary} | |")
    print(f"\n{'PASS' if ok else 'FAIL'}: import-roadmap\n")
    return ok


def pass_times(tmp: Path, notify: dict[str, object] | None, passes: int) -> list[float]:
    from controller.loop.controller import Controller
    from controller.specfile.load import load_spec
    from tests.support.project import Project, kill_fake_agents, task

    backlog = [task(f"bad{i}", "exit 1") for i in range(4)] + [task(f"ok{i}") for i in range(4)]
    extra = {"notify": notify} if notify else {}
    p = Project(tmp, retries=0, maxParallel=8, backlog=backlog, **extra)
    times = []
    try:
        with Controller(p.spec_file, load_spec(p.spec_file)) as controller:
            for _ in range(passes):
                t0 = time.perf_counter()
                controller.run_pass(sync_merges=True)
                times.append(time.perf_counter() - t0)
                time.sleep(0.1)
            controller.reconciler.notifier.close(0)
    finally:
        kill_fake_agents(tmp)
    return times


def notify_passes(passes: int) -> bool:
    os.environ.update(GIT_ENV)
    hang = [sys.executable, "-c", "import time; time.sleep(60)"]
    hangs = {"command": hang, "timeout": "20s", "on": ["failed", "exhausted", "merged"]}
    with tempfile.TemporaryDirectory(prefix="bench-notify-") as tmp:
        plain = pass_times(Path(tmp) / "plain", None, passes)
        hanging = pass_times(Path(tmp) / "hanging", hangs, passes)
    rows = {"without notify": plain, "notify command hangs": hanging}
    print(f"`bench/guide.py`: {passes} reconcile passes, 8 tasks (4 fail, 4 merge)\n")
    print("| run | median | p90 | max |\n|---|---|---|---|")
    for name, t in rows.items():
        p90 = statistics.quantiles(t, n=10)[-1]
        print(f"| {name} | {statistics.median(t) * 1000:.1f} ms | {p90 * 1000:.1f} ms | "
              f"{max(t) * 1000:.1f} ms |")  # fmt: skip
    gap = abs(statistics.median(hanging) - statistics.median(plain))
    ok = gap < MEDIAN_GAP_S and max(hanging) < 5.0
    print(f"\n{'PASS' if ok else 'FAIL'}: medians {gap * 1000:.1f} ms apart "
          f"(target < {MEDIAN_GAP_S * 1000:.0f} ms), slowest pass {max(hanging):.2f} s "
          "against a 20 s notify timeout")  # fmt: skip
    return ok


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--passes", type=int, default=20)
    args = parser.parse_args()
    print(json.dumps({"python": sys.version.split()[0], "cpus": os.cpu_count()}))
    ok = import_roadmap(args.runs)
    ok = notify_passes(args.passes) and ok
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
