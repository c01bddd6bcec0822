"""How fast do `orchestrator --help`, `version` and `status` start? Run from the repository root:

    .venv/bin/python bench/startup.py [--runs 15] [--baseline-rev 7fdb3b1] [--breakdown]

Targets: `--help` and `version` within 150 ms of a bare `python -c pass` (the same
interpreter, in the same run); `status` on the state of a demo run under 300 ms in all.

It makes a demo state in a temporary folder (`python -m controller demo`, with short agents),
then times each command as a fresh process (subprocess, time.perf_counter), N times each,
round-robin so that a busy machine slows every command alike, and prints medians, minima and
the difference over bare Python, with PASS/FAIL against the targets. The console script
`orchestrator` next to the interpreter is used when there is one (else `python -m
controller`); PYTHONPATH points at this checkout either way, and a check makes sure it is this
checkout's `controller` that runs.

`--breakdown` also splits the CPU time of `status` by stage (importing typer, pydantic, the
rest; loading the spec; reading the world), each measured in fresh interpreters.

`--baseline-rev REV` also times the same commands of an older revision: it checks REV out
with `git worktree add` in the temporary folder and runs `python -m controller ...` with
PYTHONPATH pointing there, next to this checkout run the same way, on the same demo state.

Byte code: both trees run with PYTHONPYCACHEPREFIX set to a folder in the temporary folder
(PYTHONDONTWRITEBYTECODE is dropped), and every command runs twice before the timed runs, so
the figures are those of an installed program with its `.pyc` files, and nothing is written
into the checkouts. A benchmark, not a test: prints figures; exits 1 when a target is missed.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shlex
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from common import GIT_ENV

ROOT = Path(__file__).resolve().parent.parent
HELP_VERSION_DELTA_MS = 150.0
STATUS_TOTAL_MS = 300.0


@dataclass(frozen=True)
class Case:
    label: str
    argv: list[str]
    env: dict[str, str]


@dataclass(frozen=True)
class Timing:
    median_ms: float  # wall clock
    min_ms: float
    cpu_ms: float  # median user + system CPU time of the process and what it waited for


def base_env(cache: Path) -> dict[str, str]:
    env = {**os.environ, **GIT_ENV, "PYTHONPYCACHEPREFIX": str(cache)}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    return env


def tree_env(env: dict[str, str], tree: Path) -> dict[str, str]:
    return {**env, "PYTHONPATH": str(tree)}


def run(argv: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, env=env, cwd=cwd, capture_output=True, text=True, check=False)


def check_imports_tree(python: str, env: dict[str, str], cwd: Path, tree: Path) -> None:
    """Fail loudly unless `controller` imports from `tree` under this environment."""
    done = run([python, "-c", "import controller; print(controller.__file__)"], env, cwd)
    where = Path(done.stdout.strip()).resolve()
    if done.returncode != 0 or not where.is_relative_to(tree.resolve()):
        sys.exit(f"controller imports from {where or done.stderr.strip()}, not {tree}")


def make_demo_state(python: str, env: dict[str, str], cwd: Path, folder: Path) -> Path:
    """A finished demo run (repo, spec and state); returns its spec file."""
    argv = [python, "-m", "controller", "demo", "--dir", str(folder), "--seconds", "0.3"]
    done = run(argv, env, cwd)
    spec = folder / "specs" / "orchestrator.yaml"
    if done.returncode != 0 or not spec.exists():
        sys.exit(f"demo failed (exit {done.returncode}):\n{done.stdout}\n{done.stderr}")
    return spec


def time_cases(cases: list[Case], runs: int, cwd: Path) -> dict[str, Timing]:
    """Median and minimum wall-clock time of each case, in ms, runs taken round-robin."""
    for case in cases:  # warm-up: byte code, page cache; and every command must work
        for _ in range(2):
            done = run(case.argv, case.env, cwd)
            if done.returncode != 0:
                sys.exit(f"{case.label} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    wall: dict[str, list[float]] = {case.label: [] for case in cases}
    cpu: dict[str, list[float]] = {case.label: [] for case in cases}
    for _ in range(runs):
        for case in cases:
            r0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            t0 = time.perf_counter()
            subprocess.run(case.argv, env=case.env, cwd=cwd, stdout=subprocess.DEVNULL, check=False)
            wall[case.label].append((time.perf_counter() - t0) * 1000)
            r1 = resource.getrusage(resource.RUSAGE_CHILDREN)
            used = r1.ru_utime - r0.ru_utime + r1.ru_stime - r0.ru_stime
            cpu[case.label].append(used * 1000)
    return {
        k: Timing(statistics.median(v), min(v), statistics.median(cpu[k])) for k, v in wall.items()
    }


def verdict(label: str, t: Timing, bare: Timing) -> str:
    if label.endswith(("--help", "version")):
        ok = t.median_ms - bare.median_ms <= HELP_VERSION_DELTA_MS
        return f"{'PASS' if ok else 'FAIL'} (Δ ≤ {HELP_VERSION_DELTA_MS:.0f} ms)"
    if label.endswith("status"):
        ok = t.median_ms < STATUS_TOTAL_MS
        return f"{'PASS' if ok else 'FAIL'} (< {STATUS_TOTAL_MS:.0f} ms)"
    return ""


def print_table(title: str, timings: dict[str, Timing], bare_label: str) -> bool:
    bare = timings[bare_label]
    print(f"\n### {title}\n")
    print("| command | median | min | Δ over bare python (median) | target | CPU time (median) |")
    print("|---|---:|---:|---:|---|---:|")
    all_ok = True
    for label, t in timings.items():
        delta = "" if label == bare_label else f"{t.median_ms - bare.median_ms:+.0f} ms"
        check = "" if label == bare_label else verdict(label, t, bare)
        all_ok = all_ok and not check.startswith("FAIL")
        print(
            f"| `{label}` | {t.median_ms:.0f} ms | {t.min_ms:.0f} ms | {delta} | {check} "
            f"| {t.cpu_ms:.0f} ms |"
        )
    return all_ok


def print_comparison(timings: dict[str, Timing], rev: str, commands: list[str]) -> None:
    print(f"\n### Before ({rev}) and after, both as `python -m controller ...`\n")
    print("| command | before | after | saved | CPU time before | CPU time after |")
    print("|---|---:|---:|---:|---:|---:|")
    for command in commands:
        before = timings[f"before: {command}"]
        after = timings[f"after: {command}"]
        print(
            f"| `{command}` | {before.median_ms:.0f} ms | {after.median_ms:.0f} ms "
            f"| {before.median_ms - after.median_ms:.0f} ms | {before.cpu_ms:.0f} ms "
            f"| {after.cpu_ms:.0f} ms |"
        )


# Where `status` spends its CPU time, stage by stage in the order the command runs them,
# in a fresh interpreter (process_time, so time spent waiting is left out).
BREAKDOWN = r"""
import json, sys, time
from pathlib import Path
clock, marks = time.process_time, {}
def mark(name, t0):
    marks[name] = (clock() - t0) * 1000
t = clock(); import typer; mark("import typer", t)
t = clock()
from controller.cli import app as cli_app, common as cli
typer.main.get_command(cli_app.app)
mark("import the CLI, build typer's command tree", t)
t = clock()
import controller.model.spec, typer._adapters
mark("import pydantic, the spec models", t)
t = clock(); import pydantic.plugin._loader; mark("importlib.metadata (pydantic's plugins)", t)
t = clock()
import controller.cli.lazy, controller.specfile.load, controller.views.cpu
import controller.views.snapshot, controller.views.status, controller.views.text
mark("import the rest (psutil, ruamel.yaml, observe, views)", t)
from controller.views.cpu import OneShotCpu
cpu = OneShotCpu()
t = clock(); spec = cli.load(Path(sys.argv[1])); mark("load and validate the spec", t)
t = clock()
snap = controller.views.snapshot.take(spec, cpu=cpu)
controller.views.text.status_lines(controller.views.status.build_status(snap))
mark("read the world, plan, render", t)
t = clock(); cli_app._collect_and_freeze(); mark("at exit: collect and freeze", t)
sys.stderr.write(json.dumps(marks))
"""


def breakdown(
    python: str, env: dict[str, str], cwd: Path, spec: str, runs: int
) -> dict[str, float]:
    """Median CPU time of each stage of `status`, from `runs` fresh interpreters."""
    samples: list[dict[str, float]] = []
    for _ in range(runs):
        done = run([python, "-c", BREAKDOWN, spec], env, cwd)
        if done.returncode != 0:
            sys.exit(f"breakdown failed:\n{done.stderr}")
        samples.append(json.loads(done.stderr.strip().splitlines()[-1]))
    return {stage: statistics.median(s[stage] for s in samples) for stage in samples[0]}


def print_breakdown(stages: dict[str, float], bare: Timing, status: Timing) -> None:
    print("\n### Where `status` spends its CPU time (medians, fresh processes)\n")
    print("| stage | CPU time |")
    print("|---|---:|")
    print(f"| start the interpreter (`python -c pass`, table above) | {bare.cpu_ms:.0f} ms |")
    for stage, ms in stages.items():
        print(f"| {stage} | {ms:.0f} ms |")
    total = bare.cpu_ms + sum(stages.values())
    print(f"| sum | {total:.0f} ms |")
    print(f"| the whole command, git included (table above) | {status.cpu_ms:.0f} ms |")


def console_script(python: str) -> list[str]:
    script = Path(python).parent / "orchestrator"
    return [str(script)] if script.exists() else [python, "-m", "controller"]


def add_worktree(rev: str, where: Path) -> None:
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "add", "--detach", "-q", str(where), rev],
        check=True,
    )


def remove_worktree(where: Path) -> None:
    subprocess.run(
        ["git", "-C", str(ROOT), "worktree", "remove", "--force", str(where)], check=False
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--runs", type=int, default=15, help="timed runs per command")
    parser.add_argument("--baseline-rev", help="also time this git revision (python -m)")
    parser.add_argument("--python", default=sys.executable, help="the interpreter to use")
    parser.add_argument(
        "--breakdown", action="store_true", help="also split status's CPU time by stage"
    )
    args = parser.parse_args()
    python = args.python
    print(f"`{shlex.join(['python', *sys.argv])}`")
    load = os.getloadavg()
    print(
        f"\n{os.cpu_count()} CPUs, Python {platform.python_version()}, load average "
        f"{load[0]:.2f} at the start, {args.runs} timed runs per command"
    )
    with tempfile.TemporaryDirectory(prefix="orch-startup-") as tmp:
        root = Path(tmp)
        env = base_env(root / "pycache")
        here = tree_env(env, ROOT)
        check_imports_tree(python, here, root, ROOT)
        spec = str(make_demo_state(python, here, root, root / "demo"))
        script = console_script(python)
        name = "orchestrator" if script[0] != python else "python -m controller"
        cases = [
            Case("python -c pass", [python, "-c", "pass"], here),
            Case(f"{name} --help", [*script, "--help"], here),
            Case(f"{name} version", [*script, "version"], here),
            Case(f"{name} status", [*script, "status", "-f", spec], here),
        ]
        commands = ["--help", "version", "status"]
        if args.baseline_rev:
            base = root / "baseline"
            add_worktree(args.baseline_rev, base)
            try:
                before = tree_env(env, base)
                check_imports_tree(python, before, root, base)
                for tag, e in (("before", before), ("after", here)):
                    for command in commands:
                        extra = ["-f", spec] if command == "status" else []
                        argv = [python, "-m", "controller", command, *extra]
                        cases.append(Case(f"{tag}: {command}", argv, e))
                timings = time_cases(cases, args.runs, root)
            finally:
                remove_worktree(base)
        else:
            timings = time_cases(cases, args.runs, root)
        stages = breakdown(python, here, root, spec, args.runs) if args.breakdown else None
    print(f"\nload average {os.getloadavg()[0]:.2f} at the end")
    ok = print_table(
        "This checkout", {c.label: timings[c.label] for c in cases[:4]}, cases[0].label
    )
    if args.baseline_rev:
        print_comparison(timings, args.baseline_rev, commands)
    if stages is not None:
        print_breakdown(stages, timings[cases[0].label], timings[cases[3].label])
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
