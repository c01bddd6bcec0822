"""Chaos scenarios about controlling the controller: bad input and concurrent control.

3. `bad-input`: invalid specs and roadmaps written (by rename) over the live files of a
   running `--watch` controller. Each must produce a `spec_invalid` event whose problems
   carry `file:line:col` (and the same located line in controller.log), while the last valid
   spec stays in force: the spec generation does not change, no agent is signalled, and the
   backlog still converges.
4. `concurrency`: two controllers started at once on the same state directory (exactly one
   wins, the other exits 1 naming the holder's PID), then `stop` or `stop --force` at a
   random moment; repeated, and the backlog must still converge with a clean audit.
"""

from __future__ import annotations

import json
import random
import sqlite3
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from bench.chaos_audit import Audit
from bench.chaos_inputs import (
    BadInput,
    corpus_inputs,
    hostile_inputs,
    roadmap_inputs,
    roadmap_text,
    spec_inputs,
)
from bench.chaos_procs import ProcessSampler, agent_processes
from bench.chaos_scenarios import Outcome, converge_and_stop, finish, watch_unexpected_exit
from bench.chaos_world import (
    AGENT,
    VERIFY,
    Project,
    git,
    git_ok,
    read_side_log,
    replace_file,
    wait_until,
)

# --- 3. bad input ----------------------------------------------------------------------------


def bad_input_spec(ids: list[str], rng: random.Random, seconds: float = 3.0) -> str:
    """The valid spec of the bad-input scenario, as block YAML a person would write."""
    py = json.dumps(sys.executable)
    lines = [
        "apiVersion: orchestrator/v1",
        "repo: ../repo",
        "integrationBranch: main",
        "maxParallel: 2",
        "pollInterval: 1s",
        "retries: 3",
        "timeout: 60s",
        "backoff:",
        "  initial: 0.2s",
        "  max: 1s",
        "resources:",
        "  cpu: [{parallel: 8}]",
        "  memory: [{parallel: 8}]",
        f"verify: {json.dumps(VERIFY)}",
        "agents:",
        "  dev:",
        f'    command: [{py}, {json.dumps(AGENT)}, "{{task}}", "{{attempt}}"]',
        '    owns: ["tasks/**"]',
        "backlogFrom:",
        "  roadmap: ../roadmap/ROADMAP.md",
        "  agent: dev",
        "backlog:",
    ]
    for i, t in enumerate(ids):
        pause = rng.uniform(seconds / 1.5, seconds * 1.33)
        prompt = f"sleep {pause:.2f}\\nwrite tasks/{t}/{t}.txt: {t}\\ncommit {t}"
        lines += [
            f"- id: {t}",
            "  agent: dev",
            f'  paths: ["tasks/{t}/**"]',
            f'  prompt: "{prompt}"',
        ]
        if i >= 5:
            lines.append(f"  dependsOn: [{ids[i - 5]}]")
    return "\n".join(lines) + "\n"


def spec_invalid_events(db: Path) -> list[dict[str, Any]]:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            rows = con.execute(
                "SELECT data FROM events WHERE kind = 'spec_invalid' ORDER BY id"
            ).fetchall()
        finally:
            con.close()
    except sqlite3.Error:
        return []
    return [json.loads(r[0]) if r[0] else {} for r in rows]


def meta(db: Path, key: str) -> str | None:
    try:
        con = sqlite3.connect(f"file:{db}?mode=ro", uri=True, timeout=5)
        try:
            row = con.execute("SELECT value FROM controller WHERE key = ?", (key,)).fetchone()
        finally:
            con.close()
    except sqlite3.Error:
        return None
    return row[0] if row else None


def located(problems: list[dict[str, Any]], bad: BadInput, target: Path) -> str | None:
    """None when the problems locate the mistake as expected, else what is wrong."""
    if not problems:
        return "no problems in the event"
    for pr in problems:
        if not (isinstance(pr.get("line"), int) and isinstance(pr.get("column"), int)):
            return f"problem without line/column: {pr}"
        if pr["line"] < 1 or pr["column"] < 1:
            return f"problem at {pr['line']}:{pr['column']}"
    if not any(Path(pr.get("file", "")) == target for pr in problems):
        return f"no problem names {target}: {problems[0]}"
    if bad.line is not None:
        spots = {(pr["line"], pr["column"]) for pr in problems}
        if bad.column is not None and (bad.line, bad.column) not in spots:
            return f"expected {bad.line}:{bad.column}, got {sorted(spots)}"
        if bad.column is None and bad.line not in {s[0] for s in spots}:
            return f"expected line {bad.line}, got {sorted(spots)}"
    return None


# the roadmap of the bad-input scenario: (US number, prompt, dependencies)
ROADMAP_ITEMS: list[tuple[str, str, list[str]]] = [
    ("101", "sleep 1.5\nwrite tasks/us-101/a.txt: a\ncommit us-101", []),
    ("102", "sleep 1.5\nwrite tasks/us-102/b.txt: b\ncommit us-102", ["101"]),
    ("103", "sleep 1.0\nwrite tasks/us-103/c.txt: c\ncommit us-103", []),
]


def scenario_bad_input(root: Path, rng: random.Random, quick: bool) -> Outcome:
    started = time.monotonic()
    p = Project(root, rng)
    outcome = Outcome("bad-input", Audit("bad-input"))
    ids = [f"t{i:02d}" for i in range(6 if quick else 14)]
    road = root / "roadmap" / "ROADMAP.md"
    road.parent.mkdir(parents=True)
    good_road = roadmap_text(ROADMAP_ITEMS)
    road.write_text(good_road)
    valid = bad_input_spec(ids, rng, 1.5 if quick else 3.0)
    replace_file(p.spec_file, valid)
    p.spec = {
        "backlog": [{"id": t} for t in ids] + [{"id": f"us-{n}"} for n, _, _ in ROADMAP_ITEMS]
    }
    inputs = _pick_inputs(valid, rng, quick)
    sampler = ProcessSampler().start()
    proc = p.start_controller()
    wait_until(lambda: bool(read_side_log(p.side_log_path).runs), 30)
    db = p.state / "orchestrator.db"
    generation = meta(db, "spec_generation")
    progress_before = _progress(p)
    for bad in inputs:
        target = p.spec_file if bad.target == "spec" else road
        _expect_rejected(p, bad, target, outcome)
        replace_file(target, valid if bad.target == "spec" else good_road)
        if proc.poll() is not None:
            watch_unexpected_exit(p, proc, outcome.audit)
            proc = p.start_controller()
            wait_until(lambda c=proc: "watching" in p.controller_output(c), 20)
    time.sleep(1.0)
    if meta(db, "spec_generation") != generation:
        outcome.audit.fail("the spec generation changed during the bad-input barrage")
    if _progress(p) <= progress_before:
        outcome.audit.fail("no agent started and nothing merged while bad input arrived")
    watch_unexpected_exit(p, proc, outcome.audit)
    p.kill_controller(proc, group=False)
    converge_and_stop(p, outcome.audit, timeout=180)
    signalled = [r for r in read_side_log(p.side_log_path).runs if (r.how or "").startswith("sig")]
    for r in signalled:
        outcome.audit.fail(f"agent {r.task} attempt {r.attempt} was signalled ({r.how})")
    missing = [t for t in p.task_ids if p.merges().get(t, 0) != 1]
    if missing:
        outcome.audit.fail(f"tasks not merged exactly once after the barrage: {missing}")
    finish(p, sampler, outcome)
    outcome.seconds = time.monotonic() - started
    return outcome


def _pick_inputs(valid: str, rng: random.Random, quick: bool) -> list[BadInput]:
    """The barrage: all inputs (a sample of 12 when quick), shuffled, hostile ones last."""
    inputs = spec_inputs(valid) + roadmap_inputs(ROADMAP_ITEMS)
    if not quick:
        inputs += corpus_inputs()
    else:
        inputs = rng.sample(inputs, 12)
    rng.shuffle(inputs)
    if not quick:  # last: should one hang the controller, it cannot hide the others' results
        inputs += hostile_inputs(valid)
    return inputs


def _progress(p: Project) -> int:
    """Merges plus agent starts so far: grows while work goes on."""
    return sum(p.merges().values()) + len(read_side_log(p.side_log_path).runs)


def _expect_rejected(p: Project, bad: BadInput, target: Path, outcome: Outcome) -> None:
    """Write `bad` over `target`; it must be rejected with a located problem, also logged."""
    db = p.state / "orchestrator.db"
    log = p.state / "logs" / "controller.log"
    before = len(spec_invalid_events(db))
    replace_file(target, bad.data)
    outcome.bad_tried += 1
    got = wait_until(lambda: len(spec_invalid_events(db)) > before, 20, step=0.03)
    events = spec_invalid_events(db)
    why = "no spec_invalid event within 20s" if not got else None
    if got:
        problems = events[-1].get("problems", [])
        why = located(problems, bad, target.resolve() if bad.target == "roadmap" else target)
        first = problems[0] if problems else {}
        where = f"{first.get('file')}:{first.get('line')}:{first.get('column')}"
        if why is None and where not in log.read_text(errors="replace"):
            why = f"{where} not in controller.log"
    if why is None:
        outcome.bad_rejected += 1
    else:
        outcome.audit.fail(f"bad input {bad.name} not rejected as expected: {why}")


# --- 4. concurrency: two controllers, stop and stop --force ----------------------------------


def two_at_once(p: Project, outcome: Outcome) -> subprocess.Popen[bytes] | None:
    """Start two controllers together; exactly one must win. Returns the winner."""
    a, b = p.start_controller(), p.start_controller()
    wait_until(lambda: a.poll() is not None or b.poll() is not None, 20, step=0.05)
    time.sleep(0.5)
    exited = [c for c in (a, b) if c.poll() is not None]
    alive = [c for c in (a, b) if c.poll() is None]
    if len(exited) != 1 or len(alive) != 1:
        outcome.fault("two-controllers-at-once", False)
        outcome.audit.fail(f"two controllers at once: {len(alive)} alive, {len(exited)} exited")
        return alive[0] if alive else None
    loser, winner = exited[0], alive[0]
    text = p.controller_output(loser)
    ok = loser.returncode == 1 and f"PID {winner.pid}" in text and "Traceback" not in text
    outcome.fault("two-controllers-at-once", ok)
    if not ok:
        outcome.audit.fail(
            f"loser exited {loser.returncode} without naming PID {winner.pid}: {text}"
        )
    return winner


def archived_file(p: Project, task: str) -> bool:
    """Some archive ref of `task` holds the file its agent had written, uncommitted."""
    refs = git(p.repo, "for-each-ref", "--format=%(refname)", f"refs/orchestrator/archive/{task}/")
    path = f"tasks/{task}/{task}.txt"
    return any(git_ok(p.repo, "cat-file", "-e", f"{ref}:{path}") for ref in refs.split())


def stop_and_time(p: Project, force: bool) -> float:
    """Run `orchestrator stop [--force]`; when its request reached the state directory."""
    request = p.state / "stop-request"
    cli = subprocess.Popen(
        [sys.executable, "-m", "controller", "stop", "--wait", "60", "-f", str(p.spec_file)]
        + (["--force"] if force else []),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=p.root,
        env=p.env(),
    )
    seen = None
    while cli.poll() is None:
        if seen is None and request.exists():
            seen = time.time()
        time.sleep(0.005)
    return seen if seen is not None else time.time()


def scenario_concurrency(root: Path, rng: random.Random, quick: bool) -> Outcome:
    started = time.monotonic()
    p = Project(root, rng)
    outcome = Outcome("concurrency", Audit("concurrency"))
    ids = [f"d{i:02d}" for i in range(6 if quick else 14)]
    backlog = [
        {
            "id": t,
            "agent": "dev",
            "prompt": f"write tasks/{t}/{t}.txt: {t}\nwrite build/{t}.out: built by {t}\n"
            f"sleep {rng.uniform(0.8, 2.0):.2f}\ncommit {t}",
            "paths": [f"tasks/{t}/**"],
        }
        for t in ids
    ]
    p.write_spec(p.base_spec(backlog, maxParallel=3))
    sampler = ProcessSampler().start()
    rounds = 2 if quick else 10
    forced = set(rng.sample(range(rounds), rounds // 2))  # half graceful, half forced
    for n in range(rounds):
        winner = two_at_once(p, outcome)
        if winner is None:
            continue
        time.sleep(rng.uniform(0.3, 2.5))
        force = n in forced
        ok = stop_round(p, winner, ids, force, outcome)
        outcome.fault("stop-force" if force else "stop-graceful", ok)
        p.stop_all_controllers()
    converge_and_stop(p, outcome.audit, timeout=180)
    finish(p, sampler, outcome)
    outcome.seconds = time.monotonic() - started
    return outcome


def stop_round(
    p: Project, winner: subprocess.Popen[bytes], ids: list[str], force: bool, outcome: Outcome
) -> bool:
    """`stop` (or `stop --force`) the running controller: it must exit 0, a forced stop must
    archive the killed agents' work, a graceful one must signal no agent and start none."""
    running = {pid: task for pid, (task, _) in agent_processes().items() if task in ids}
    runs = {r.pid: r for r in read_side_log(p.side_log_path).runs}
    asked = stop_and_time(p, force)
    try:
        code = winner.wait(timeout=70)
    except subprocess.TimeoutExpired:
        code = None
    wait_until(lambda r=running: not (set(r) & set(agent_processes())), 15)
    ends = {r.pid: r for r in read_side_log(p.side_log_path).runs}
    ok = code == 0
    if force:
        for pid, task in running.items():
            # an agent the stop killed (not one that finished just before it) had written
            # its file, uncommitted: that work must be in an archive ref
            how = ends[pid].how or "" if pid in ends else ""
            killed = not how.startswith("exit-")
            old_enough = pid in runs and asked - runs[pid].start > 0.3
            if killed and old_enough and not archived_file(p, task):
                ok = False
                outcome.audit.fail(f"stop --force: work of {task} (pid {pid}) not archived")
    else:
        signalled = [
            pid for pid in running if (ends.get(pid) and (ends[pid].how or "").startswith("sig"))
        ]
        late = [r for r in ends.values() if r.start > asked + 1.5]
        ok = ok and not signalled and not late
        if signalled or late:
            outcome.audit.fail(f"graceful stop: signalled {signalled}, started after: {late}")
    return ok
