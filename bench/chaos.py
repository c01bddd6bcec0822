"""Fault-injection harness: run the real controller through crashes, agent faults, world
faults, bad input and concurrent control, then audit the end state independently.

    python bench/chaos.py --seed 42           # the full run (about 4 minutes on 2 cores)
    python bench/chaos.py --seed 42 --quick   # the short version the test suite runs

Every scenario runs `python -m controller reconcile --watch -f SPEC` subprocesses on a fresh
git repository with the chaos agent (`bench/chaos_agent.py`), injects its faults, lets the
controller converge, stops it gracefully and audits git, the process table and the agents'
side log (`bench/chaos_audit.py`). A figures table is printed at the end; the exit status is
1 when any audit found anything. What each scenario does: `bench/chaos_scenarios.py` (and the
module of each scenario it names); the published figures: docs/reliability.md.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.chaos_control import scenario_bad_input, scenario_concurrency  # noqa: E402
from bench.chaos_crashes import scenario_crashes  # noqa: E402
from bench.chaos_procs import processes_under  # noqa: E402
from bench.chaos_scenarios import Outcome  # noqa: E402
from bench.chaos_world_faults import scenario_world, unmount  # noqa: E402

SCENARIOS = ("crashes", "world", "bad-input", "concurrency")


def cleanup(folder: Path) -> None:
    """Whatever happened, leave nothing running and nothing mounted under `folder`."""
    for pid, _ in processes_under(folder):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    state = folder / "state"
    if os.path.ismount(state):
        unmount(state)


def run_scenario(name: str, root: Path, seed: int, quick: bool) -> Outcome:
    """One scenario on `root/name`, seeded by (seed, name), cleaned up afterwards."""
    rng = random.Random(f"{seed}/{name}")
    folder = root / name
    try:
        return _run(name, folder, rng, quick)
    finally:
        cleanup(folder)


def _run(name: str, folder: Path, rng: random.Random, quick: bool) -> Outcome:
    runners: dict[str, Callable[[], Outcome]] = {
        "crashes": lambda: scenario_crashes(
            folder,
            rng,
            n_tasks=15 if quick else 40,
            n_kills=6 if quick else 100,
            pace=1 if quick else 14,
        ),
        "world": lambda: scenario_world(folder, rng, quick),
        "bad-input": lambda: scenario_bad_input(folder, rng, quick),
        "concurrency": lambda: scenario_concurrency(folder, rng, quick),
    }
    return runners[name]()


def figures(outcomes: list[Outcome]) -> dict[str, object]:
    faults: dict[str, list[int]] = {}
    for o in outcomes:
        for kind, (injected, handled) in o.faults.items():
            row = faults.setdefault(kind, [0, 0])
            row[0] += injected
            row[1] += handled
    total = {
        "crashes_injected": sum(o.crashes_injected for o in outcomes),
        "crashes_survived": sum(o.crashes_survived for o in outcomes),
        "faults_injected": sum(v[0] for v in faults.values()),
        "faults_handled": sum(v[1] for v in faults.values()),
        "bad_inputs_tried": sum(o.bad_tried for o in outcomes),
        "bad_inputs_rejected": sum(o.bad_rejected for o in outcomes),
        "tasks": sum(o.audit.tasks for o in outcomes),
        "tasks_merged_once": sum(o.audit.merged for o in outcomes),
        "tasks_reported": sum(o.audit.reported for o in outcomes),
        "agent_commits": sum(o.audit.commits_made for o in outcomes),
        "commits_lost": sum(o.audit.commits_lost for o in outcomes),
        "duplicate_agents": sum(o.audit.duplicate_agents for o in outcomes),
        "orphans": sum(o.audit.orphans for o in outcomes),
        "main_positions_checked": sum(o.audit.reflog_entries for o in outcomes),
        "main_positions_unverified": sum(o.audit.reflog_unverified for o in outcomes),
        "findings": sum(len(o.audit.findings) for o in outcomes),
        "process_table_samples": sum(o.samples for o in outcomes),
        "samples_per_second": round(
            sum(o.samples for o in outcomes) / max(1e-9, sum(o.sampled_s for o in outcomes))
        ),
    }
    moments: dict[str, int] = {}
    for o in outcomes:
        for what, n in o.kill_moments.items():
            moments[what] = moments.get(what, 0) + n
    return {
        "total": total,
        "faults": faults,
        "kill_moments": moments,
        "seconds": {o.name: o.seconds for o in outcomes},
    }


def print_table(data: dict[str, object]) -> None:
    total = data["total"]
    faults = data["faults"]
    assert isinstance(total, dict) and isinstance(faults, dict)
    print("\nfault kind                        injected  handled")
    for kind, (injected, handled) in sorted(faults.items()):
        print(f"  {kind:<32}{injected:>8}{handled:>9}")
    moments = data["kill_moments"]
    assert isinstance(moments, dict)
    if moments:
        print("\ncontroller killed while           times")
        for what, n in sorted(moments.items()):
            print(f"  {what:<32}{n:>5}")
    print("\nfigure                            value")
    for key, value in total.items():
        print(f"  {key:<32}{value}")
    seconds = data["seconds"]
    assert isinstance(seconds, dict)
    print(
        "  time per scenario               "
        + ", ".join(f"{k} {v:.0f}s" for k, v in seconds.items())
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--quick", action="store_true", help="the short version (~1 minute)")
    parser.add_argument("--only", action="append", choices=SCENARIOS, help="run only these")
    parser.add_argument("--workdir", type=Path, help="keep the scenarios' files here")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    root = args.workdir or Path(tempfile.mkdtemp(prefix="orchestrator-chaos-"))
    root.mkdir(parents=True, exist_ok=True)
    mode = "--quick " if args.quick else ""
    print(f"chaos run: python bench/chaos.py --seed {args.seed} {mode}(files in {root})")
    started = time.monotonic()
    outcomes = []
    for name in args.only or SCENARIOS:
        print(f"- {name} ...", flush=True)
        outcome = run_scenario(name, root, args.seed, args.quick)
        outcomes.append(outcome)
        verdict = (
            "ok" if not outcome.audit.findings else f"{len(outcome.audit.findings)} finding(s)"
        )
        print(f"  {name}: {verdict} in {outcome.seconds:.0f}s", flush=True)
        for finding in outcome.audit.findings[:30]:
            print(f"  ! {finding}")
    data = figures(outcomes)
    data["seed"], data["quick"] = args.seed, args.quick
    data["wall_seconds"] = round(time.monotonic() - started, 1)
    print_table(data)
    if args.json:
        args.json.write_text(json.dumps(data, indent=2))
    left = processes_under(root)
    if left:
        print(f"! {len(left)} process(es) left behind: {left[:5]}")
    failed = any(o.audit.findings for o in outcomes) or bool(left)
    if args.workdir is None and not failed:
        shutil.rmtree(root, ignore_errors=True)
    print("\nRESULT:", "FAIL" if failed else "PASS", f"({data['wall_seconds']}s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
