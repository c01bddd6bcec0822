"""CPU cost of the shim copying an agent's output into its capped log (`logcap.pump`).

The shim reads the agent's stdout/stderr from a pipe and writes it to the log, trimming it
to `logLimit` (keeping the end). That copy is work the agent's own writes to a file did not
cost before. For each workload this runs the agent twice, the same way each time:

- alone, with stdout redirected to a file (what the old shim did): the agent's CPU time;
- under the real shim (`controller/act/runners/shim.py`, `--log-limit` 50MB): the CPU time
  of the shim and the agent together (`wait4` rusage of the shim, which reaps the agent).

The difference, minus the shim's fixed cost (start-up, records: the `true` row), is what the
pump costs. Workloads: `bulk` (100 MB in 64 KB writes: the trim runs every 25 MB), `lines`
(200,000 short lines, each flushed: one read and one write per line). Medians of `--runs`
runs. Then `idle`: the shim's own CPU time (psutil) over 6 s of an agent that writes nothing
(`sleep`), after its start-up: the pump must not poll.

The fixed cost includes byte-compiling the shim's modules when PYTHONDONTWRITEBYTECODE is
set (about 15 ms here); an installed package has them compiled.

Run from the repository root:  python bench/log_pump.py [--runs 3]
Targets: bulk pump cost < 5 ms CPU per MB; lines < 15 µs CPU per line; idle < 10 ms.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
SHIM = ROOT / "controller" / "act" / "runners" / "shim.py"

WORKLOADS = {
    "true": ("", 0),
    "bulk": (
        "import sys\nchunk = b'x' * 65535 + b'\\n'\n"
        "for _ in range(1600):\n    sys.stdout.buffer.write(chunk)\n    sys.stdout.flush()\n",
        100,
    ),
    "lines": ("for i in range(200000):\n    print(f'line {i}', flush=True)\n", 200_000),
}
TARGETS = {"bulk": 5.0, "lines": 0.015}  # ms per MB, ms per line
IDLE_TARGET_MS = 10.0  # shim CPU over IDLE_S of a silent agent
IDLE_S = 6.0


def cpu_of(argv: list[str], stdout: int) -> float:
    """CPU seconds (user + system) of `argv` and every child it reaped."""
    proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.STDOUT, close_fds=True)
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise SystemExit(f"{argv[:3]} exited {proc.returncode}")
    return usage.ru_utime + usage.ru_stime


def run_once(tmp: Path, code: str, units: int) -> tuple[float, float, int]:
    """(agent alone, shim + agent, log size) in CPU seconds and bytes; an agent without
    code is `sleep UNITS` (no Python start-up to blur the shim's own cost)."""
    tmp = Path(tempfile.mkdtemp(dir=tmp))
    script = tmp / "agent.py"
    script.write_text(code)
    agent = [sys.executable, str(script)] if code else ["sleep", str(units)]
    with open(tmp / "direct.log", "wb") as out:
        alone = cpu_of(agent, out.fileno())
    state = tmp / "state"
    log = state / "logs" / "t" / "1.log"
    shim = [sys.executable, str(SHIM), "--state-root", str(state), "--log", str(log)]
    shim += ["--start-record", str(state / "runs" / "t" / "1.start.json")]
    shim += ["--exit-record", str(state / "runs" / "t" / "1.exit.json")]
    shim += ["--log-limit", str(50 << 20), "--", *agent]
    shimmed = cpu_of(shim, subprocess.DEVNULL)
    return alone, shimmed, log.stat().st_size


def idle_cpu_ms(tmp: Path) -> float:
    """CPU milliseconds the shim spends over IDLE_S seconds of a silent agent."""
    state = Path(tempfile.mkdtemp(dir=tmp)) / "state"
    shim = [sys.executable, str(SHIM), "--state-root", str(state)]
    shim += ["--log", str(state / "1.log"), "--start-record", str(state / "1.start.json")]
    shim += ["--exit-record", str(state / "1.exit.json"), "--", "sleep", str(IDLE_S + 3)]
    proc = subprocess.Popen(shim)
    try:
        time.sleep(1.5)  # past its start-up
        me = psutil.Process(proc.pid)
        before = sum(me.cpu_times()[:2])
        time.sleep(IDLE_S)
        return (sum(me.cpu_times()[:2]) - before) * 1000
    finally:
        proc.wait()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    print(f"$ python bench/log_pump.py --runs {args.runs}\n")
    rows: dict[str, tuple[float, float, int]] = {}
    with tempfile.TemporaryDirectory(prefix="log-pump-") as tmp:
        for name, (code, units) in WORKLOADS.items():
            runs = [run_once(Path(tmp), code, units) for _ in range(args.runs)]
            rows[name] = (
                statistics.median(r[0] for r in runs),
                statistics.median(r[1] for r in runs),
                runs[-1][2],
            )
    fixed = rows["true"][1] - rows["true"][0]
    print("| workload | agent alone (CPU s) | shim + agent (CPU s) | pump cost | log size |")
    print("|---|---|---|---|---|")
    ok = True
    for name, (alone, shimmed, size) in rows.items():
        extra_ms = (shimmed - alone - (0 if name == "true" else fixed)) * 1000
        units = WORKLOADS[name][1]
        if name == "bulk":
            cost, value = f"{extra_ms / units:.2f} ms/MB", extra_ms / units
        elif name == "lines":
            cost, value = f"{extra_ms / units * 1000:.1f} µs/line", extra_ms / units
        else:
            cost, value = f"{extra_ms:.0f} ms", extra_ms
        target = TARGETS.get(name)
        met = target is None or value < target
        ok &= met
        mark = "" if target is None else (" ok" if met else " MISSED")
        print(f"| {name} | {alone:.3f} | {shimmed:.3f} | {cost}{mark} | {size:,} B |")
    print(f"\nshim fixed cost (start-up, records, `true`): {fixed * 1000:.0f} ms CPU")
    with tempfile.TemporaryDirectory(prefix="log-pump-") as tmp:
        idle = statistics.median(idle_cpu_ms(Path(tmp)) for _ in range(args.runs))
    met = idle < IDLE_TARGET_MS
    print(f"idle: shim CPU over {IDLE_S:g} s of a silent agent: {idle:.1f} ms", end="")
    print(f" ({'ok' if met else 'MISSED'}, target < {IDLE_TARGET_MS:g} ms)")
    return 0 if ok and met else 1


if __name__ == "__main__":
    sys.exit(main())
