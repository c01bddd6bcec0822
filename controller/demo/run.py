"""`orchestrator demo`: the whole product on an embedded default, offline, in seconds.

It creates a scratch repository and a spec with ten tasks across three agent types (with
dependencies, a verify gate, an agent that crashes once, and a teammate's commit that makes
one task's merge conflict), runs the real reconcile loop to convergence with a live view,
and ends with the measured parallelism: agent time over the time an agent ran (no sequential
run is made to compare with).
"""

from __future__ import annotations

import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from controller.core.metrics import Parallelism, parallelism
from controller.core.plan import Plan
from controller.git.command import run_in
from controller.loop.controller import Controller
from controller.model.observed import Observed
from controller.specfile.load import load_spec
from controller.state.store import AttemptRow, Store

TERMINAL = {"merged", "failed", "rejected"}
CONFLICT_TASK = "pm-changelog"

TASKS = [
    ("arch-api", "architect", [], "write docs/architecture/api.md: # API design\\nREST, JSON."),
    ("arch-storage", "architect", [], "write docs/architecture/storage.md: # Storage\\nSQLite."),
    (
        "pm-roadmap",
        "project_manager",
        [],
        "write docs/roadmap/ROADMAP.md: # Roadmap\\n- API\\n- Storage",
    ),
    (
        CONFLICT_TASK,
        "project_manager",
        [],
        "append docs/CHANGELOG.md: - added the API and storage layers",
    ),
    ("dev-models", "code_developer", ["arch-api"], "write app/models.py: ITEMS: list[str] = []"),
    (
        "dev-storage",
        "code_developer",
        ["arch-storage"],
        "write app/storage.py: def save(item: str) -> None:\\n    pass\nfail-once",
    ),
    (
        "dev-api",
        "code_developer",
        ["dev-models"],
        "write app/api.py: from app.models import ITEMS\\n\\ndef list_items() -> list[str]:\\n"
        "    return ITEMS",
    ),
    ("dev-cli", "code_developer", [], "write app/cli.py: print('hello from the demo app')"),
    (
        "dev-tests",
        "code_developer",
        ["dev-api", "dev-storage"],
        "write tests/test_api.py: from app.api import list_items\\n\\ndef test_empty():\\n"
        "    assert list_items() == []",
    ),
    (
        "pm-guide",
        "project_manager",
        ["dev-api"],
        "write docs/guide.md: # Guide\\nCall list_items().",
    ),
]


def _git(repo: Path, *args: str) -> None:
    run_in(repo, *args)


def make_repo(root: Path) -> Path:
    repo = root / "repo"
    (repo / "app").mkdir(parents=True)
    (repo / "docs").mkdir()
    (repo / "app" / "__init__.py").write_text("")
    (repo / "docs" / "CHANGELOG.md").write_text("# Changelog\n")
    (repo / "README.md").write_text("# demo app\n")
    _git(repo, "init", "-q", "-b", "main")
    _git(repo, "config", "user.name", "Demo Teammate")
    _git(repo, "config", "user.email", "teammate@example.com")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "initial commit")
    return repo


def spec_text(python: str, seconds: float) -> str:
    python = json.dumps(python)
    cmd = f'[{python}, -m, controller.demo.agent, --seconds, "{seconds}"]'
    lines = [
        "# Written by `orchestrator demo`. Edit it and run `orchestrator diff -f <this file>`.",
        "apiVersion: orchestrator/v1",
        "repo: ../repo",
        "integrationBranch: main",
        "maxParallel: 4",
        "pollInterval: 5s",
        "retries: 2",
        "backoff: {initial: 1s, max: 4s}",
        "timeout: 2m",
        "resources:   # the demo ignores machine load; real specs keep the defaults",
        "  cpu: [{parallel: 4}]",
        "  memory: [{parallel: 4}]",
        f"verify: [{python}, -m, compileall, -q, app]",
        "agents:",
        "  architect:",
        f"    command: {cmd}",
        '    owns: ["docs/architecture/**"]',
        "  project_manager:",
        f"    command: {cmd}",
        '    owns: ["docs/*.md", "docs/roadmap/**"]',
        "  code_developer:",
        f"    command: {cmd}",
        '    owns: ["app/**", "tests/**"]',
        "backlog:",
    ]
    for task_id, agent, deps, prompt in TASKS:
        path = [ln.split(" ", 1)[1].split(":", 1)[0] for ln in prompt.split("\n") if ": " in ln]
        lines += [
            f"  - id: {task_id}",
            f"    agent: {agent}",
            f"    title: {task_id.replace('-', ' ')}",
            f"    paths: [{', '.join(path)}]",
            "    prompt: |",
            *[f"      {ln}" for ln in prompt.split("\n")],
        ]
        if deps:
            lines.append(f"    dependsOn: [{', '.join(deps)}]")
    return "\n".join(lines) + "\n"


def teammate_commit(repo: Path) -> None:
    """A human edits the changelog on main while the agent for it is at work."""
    changelog = repo / "docs" / "CHANGELOG.md"
    changelog.write_text(changelog.read_text() + "- fixed a typo in the README (teammate)\n")
    _git(repo, "commit", "-q", "-am", "changelog: teammate's entry")


CAUSES = {"failed": "crash", "conflict": "merge conflict", "verify_failed": "failed verify"}


def retry_causes(attempts: list[AttemptRow]) -> str:
    """What the retries followed, counted from the attempts (", after 1 crash and 1 merge
    conflict"); empty when nothing was retried."""
    last = {}
    for a in attempts:
        last[a.task] = max(last.get(a.task, 0), a.number)
    counts: dict[str, int] = {}
    for a in attempts:
        if a.number < last[a.task]:  # an attempt that was followed by another
            cause = CAUSES.get(a.outcome or "", a.outcome or "lost")
            counts[cause] = counts.get(cause, 0) + 1
    if not counts:
        return ""
    parts = [f"{n} {cause}{'s' if n != 1 else ''}" for cause, n in sorted(counts.items())]
    return ", after " + " and ".join(parts)


def measured(store: Store) -> Parallelism:
    spans = [
        (a.started_at, a.ended_at)
        for a in store.attempts()
        if a.started_at is not None and a.ended_at is not None
    ]
    return parallelism(spans)


def run_demo(
    root: Path | None = None,
    *,
    seconds: float = 1.2,
    echo: Callable[[str], None] = print,
    on_pass: Callable[[Plan, Observed], None] | None = None,
) -> tuple[int, Path]:
    """Build the scratch project and converge it; returns (exit code, demo folder)."""
    root = root or Path(tempfile.mkdtemp(prefix="orchestrator-demo-"))
    repo = make_repo(root)
    spec_file = root / "specs" / "orchestrator.yaml"
    spec_file.parent.mkdir(parents=True)
    spec_file.write_text(spec_text(sys.executable, seconds))
    spec = load_spec(spec_file)
    state = {"teammate": False}
    started = time.time()

    controller = Controller(spec_file, spec, echo=echo)

    def observe_pass(plan: Plan, observed: Observed) -> None:
        if on_pass:
            on_pass(plan, observed)
        if not state["teammate"] and plan.phases.get(CONFLICT_TASK) in ("running", "starting"):
            teammate_commit(repo)
            state["teammate"] = True
            echo(f"* a teammate commits to docs/CHANGELOG.md on main while {CONFLICT_TASK} runs")
        if all(plan.phases.get(t.id) in TERMINAL for t in spec.backlog):
            controller.draining = True

    controller.on_pass = observe_pass
    with controller:
        controller.watch(max_seconds=300)
        stats = measured(controller.store)
        last = controller.reconciler.last_plan
        phases = dict(last.phases) if last else {}
        attempts = controller.store.attempts()
    wall = time.time() - started
    merged = sum(1 for t in spec.backlog if phases.get(t.id) == "merged")
    retries = len(attempts) - len({a.task for a in attempts})
    echo("")
    echo(
        f"{merged}/{len(spec.backlog)} tasks merged into main in {wall:.1f}s wall-clock "
        f"({len(attempts)} attempts, {retries} retries{retry_causes(attempts)})"
    )
    echo(
        f"measured parallelism {stats.speedup:.2f}x: {stats.work_s:.1f}s of agent time (failed "
        f"attempts included) in {stats.busy_s:.1f}s with an agent running, 2+ agents "
        f"{stats.parallelization_rate:.0%} of that time (no sequential run was made)"
    )
    echo(f"demo folder: {root}  (spec: {spec_file}); look around:")
    echo(f"  orchestrator status -f {spec_file}")
    echo(f"  orchestrator events -f {spec_file}")
    echo(f"  orchestrator logs dev-storage --attempt 1 --file {spec_file}   # the crash")
    echo(f"  git -C {repo} log --oneline --graph")
    return (0 if merged == len(spec.backlog) else 1), root
