"""Fault-injection harness: run the real controller through crashes, kills inside its git
calls, agent faults, world faults, hostile agents, bad input and concurrent control, then
audit the end state independently.

    python bench/chaos.py --seeds 1-5         # the full run, five seeds (~8 minutes a seed)
    python bench/chaos.py --seed 42 --quick   # the short version the test suite runs

Every scenario has a convergence deadline: missing it is a finding (with the last lines of
the controller's log), never a hang; so is an exception in the harness itself.

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
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.chaos_audit import Audit  # noqa: E402
from bench.chaos_control import scenario_bad_input, scenario_concurrency  # noqa: E402
from bench.chaos_crashes import scenario_crashes  # noqa: E402
from bench.chaos_gitkills import scenario_git_kills  # noqa: E402
from bench.chaos_hostile import scenario_hostile  # noqa: E402
from bench.chaos_procs import processes_under  # noqa: E402
from bench.chaos_scenarios import Outcome  # noqa: E402
from bench.chaos_world import ABANDONED  # noqa: E402
from bench.chaos_world_faults import scenario_world, unmount  # noqa: E402

SCENARIOS = ("crashes", "git-kills", "world", "hostile", "bad-input", "concurrency")
# convergence deadline per scenario, seconds: (quick, full)
DEADLINES = {
    "crashes": (100, 900),
    "git-kills": (130, 900),
    "world": (80, 400),
    "hostile": (100, 500),
    "bad-input": (80, 600),
    "concurrency": (80, 400),
}
LOG_TAIL_LINES = 40


def cleanup(folder: Path) -> None:
    """Whatever happened, leave nothing running and nothing mounted under `folder`."""
    for pid, _ in processes_under(folder):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    state = folder / "state"
    if os.path.ismount(state):
        unmount(state)


def log_tail(folder: Path, lines: int = LOG_TAIL_LINES) -> str:
    """The last lines of the scenario's controller.log (and of the newest controller output)."""
    parts = []
    log = folder / "state" / "logs" / "controller.log"
    outs = sorted((folder / "chaos").glob("controller-*.out"), key=lambda f: f.stat().st_mtime)
    for path in [log, *outs[-1:]]:
        if path.exists():
            text = path.read_text(errors="replace").splitlines()[-lines:]
            parts.append(f"--- last {len(text)} lines of {path}:\n" + "\n".join(text))
    return "\n".join(parts) or "(no controller log)"


def run_scenario(name: str, root: Path, seed: int, quick: bool) -> Outcome:
    """One scenario on `root/name`, seeded by (seed, name), within its deadline, cleaned up
    afterwards. A missed deadline or a harness exception is a finding, never a hang."""
    rng = random.Random(f"{seed}/{name}")
    folder = root / name
    deadline = DEADLINES[name][0 if quick else 1]
    result: dict[str, Outcome | BaseException] = {}

    def work() -> None:
        try:
            result["outcome"] = _run(name, folder, rng, quick)
        except BaseException as exc:  # reported below as a finding
            result["error"] = exc

    started = time.monotonic()
    thread = threading.Thread(target=work, name=f"chaos-{name}", daemon=True)
    thread.start()
    thread.join(deadline)
    try:
        if thread.is_alive():
            ABANDONED.add(folder)  # the scenario's thread may start nothing more
            outcome = Outcome(name, Audit(name))
            outcome.audit.fail(
                f"missed its convergence deadline of {deadline}s\n{log_tail(folder)}"
            )
        elif "error" in result:
            error = result["error"]
            trace = "".join(traceback.format_exception(error)[-6:])
            outcome = Outcome(name, Audit(name))
            outcome.audit.fail(f"the harness failed: {error!r}\n{trace}\n{log_tail(folder)}")
        else:
            outcome = result["outcome"]  # type: ignore[assignment]
        outcome.seconds = outcome.seconds or time.monotonic() - started
        return outcome
    finally:
        cleanup(folder)
        thread.join(10)


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
        "git-kills": lambda: scenario_git_kills(folder, rng, quick),
        "hostile": lambda: scenario_hostile(folder, rng, quick),
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
        "git_kills": sum(sum(o.git_kills.values()) for o in outcomes),
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
        "files_agents_wrote_checked": sum(o.audit.files_checked for o in outcomes),
        "files_lost": sum(o.audit.files_lost for o in outcomes),
        "merged_files_checked": sum(o.audit.merged_files_checked for o in outcomes),
        "merged_files_wrong": sum(o.audit.merged_files_wrong for o in outcomes),
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
    print("\nfault kind                                    injected  handled")
    for kind, (injected, handled) in sorted(faults.items()):
        print(f"  {kind:<44}{injected:>8}{handled:>9}")
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


def parse_seeds(text: str) -> list[int]:
    """`1,2,3`, `1-5`, or a mix (`1-3,7`)."""
    seeds: list[int] = []
    for part in text.split(","):
        first, dash, last = part.strip().partition("-")
        if dash:
            seeds += range(int(first), int(last) + 1)
        elif first:
            seeds.append(int(first))
    if not seeds:
        raise argparse.ArgumentTypeError(f"no seeds in {text!r}")
    return seeds


def run_seed(seed: int, root: Path, only: list[str] | None, quick: bool) -> dict[str, object]:
    """Every scenario (or `only` those) with one seed; its figures, printed as it goes."""
    mode = "--quick " if quick else ""
    print(f"chaos run: python bench/chaos.py --seed {seed} {mode}(files in {root})")
    started = time.monotonic()
    outcomes = []
    for name in only or SCENARIOS:
        print(f"- {name} ...", flush=True)
        outcome = run_scenario(name, root, seed, quick)
        outcomes.append(outcome)
        verdict = (
            "ok" if not outcome.audit.findings else f"{len(outcome.audit.findings)} finding(s)"
        )
        print(f"  {name}: {verdict} in {outcome.seconds:.0f}s", flush=True)
        for finding in outcome.audit.findings[:30]:
            print(f"  ! {finding}")
    data = figures(outcomes)
    data["seed"], data["quick"] = seed, quick
    data["wall_seconds"] = round(time.monotonic() - started, 1)
    print_table(data)
    left = processes_under(root)
    if left:
        print(f"! {len(left)} process(es) left behind: {left[:5]}")
    data["passed"] = not any(o.audit.findings for o in outcomes) and not left
    return data


def print_seeds(runs: list[dict[str, object]]) -> None:
    print("\nseed  result  wall s  crashes  git kills  faults  files checked  findings")
    for run in runs:
        total = run["total"]
        assert isinstance(total, dict)
        print(
            f"{run['seed']:>4}  {'PASS' if run['passed'] else 'FAIL':<6}  "
            f"{run['wall_seconds']:>6.0f}  {total['crashes_injected']:>7}  "
            f"{total['git_kills']:>9}  {total['faults_injected']:>6}  "
            f"{total['files_agents_wrote_checked']:>13}  {total['findings']:>8}"
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=None, help="one seed (default 1)")
    parser.add_argument("--seeds", type=parse_seeds, help="several: 1,2,3 or 1-5")
    parser.add_argument("--quick", action="store_true", help="the short version (~2 minutes)")
    parser.add_argument("--only", action="append", choices=SCENARIOS, help="run only these")
    parser.add_argument("--workdir", type=Path, help="keep the scenarios' files here")
    parser.add_argument("--json", type=Path, help="also write the figures as JSON")
    args = parser.parse_args(argv)
    seeds = args.seeds or [args.seed if args.seed is not None else 1]
    base = args.workdir or Path(tempfile.mkdtemp(prefix="orchestrator-chaos-"))
    base.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    runs = []
    for seed in seeds:
        root = base / f"seed-{seed}" if len(seeds) > 1 else base
        root.mkdir(parents=True, exist_ok=True)
        runs.append(run_seed(seed, root, args.only, args.quick))
    failed = not all(run["passed"] for run in runs)
    if len(runs) > 1:
        print_seeds(runs)
    if args.json:
        data: object = runs[0] if len(runs) == 1 else runs
        args.json.write_text(json.dumps(data, indent=2))
    if args.workdir is None and not failed:
        shutil.rmtree(base, ignore_errors=True)
    wall = round(time.monotonic() - started, 1)
    print("\nRESULT:", "FAIL" if failed else "PASS", f"({wall}s)")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
