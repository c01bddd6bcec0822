"""The chaos harness's view of one scenario's world: a repository, a spec, the real CLI.

Everything here reads the world the way a suspicious outsider would: git through the `git`
command, processes through `/proc`, the chaos agent's own side log. Nothing trusts the
controller's database; that is the point of the audit (`bench/chaos_audit.py`).

The process table (which chaos agents are alive, sampled on a thread) is `chaos_procs.py`.
"""

from __future__ import annotations

import contextlib
import json
import os
import random
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
AGENT = str(Path(__file__).resolve().parent / "chaos_agent.py")
MARKER = "BROKEN"  # the verify gate fails while a file of this name is in the tree
VERIFY = [
    sys.executable,
    "-c",
    "import os, sys; sys.exit(any('BROKEN' in f for _, _, f in os.walk('.')))",
]
GIT_ENV = {
    "GIT_AUTHOR_NAME": "Chaos Human",
    "GIT_AUTHOR_EMAIL": "human@example.com",
    "GIT_COMMITTER_NAME": "Chaos Human",
    "GIT_COMMITTER_EMAIL": "human@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
}
TRAILER = "Orchestrator-Task"
# the harness's own git calls (a person's): hooks an agent planted can tell them apart
HUMAN_ENV = {**GIT_ENV, "CHAOS_HUMAN": "1"}
IGNORED_DIR = "build"  # ignored by the repository's .gitignore: agents' "build output"
# scenario folders whose deadline passed: their (abandoned) thread may start nothing more
ABANDONED: set[Path] = set()


class Abandoned(RuntimeError):
    """The scenario missed its deadline; the harness has moved on."""


def git(repo: Path, *args: str, check: bool = True) -> str:
    env = {**os.environ, **HUMAN_ENV}
    proc = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, env=env, check=False
    )
    if check and proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)}: {proc.stderr.strip()}")
    return proc.stdout.strip()


def git_ok(repo: Path, *args: str) -> bool:
    """True when `git args...` succeeds (e.g. `cat-file -e`)."""
    env = {**os.environ, **HUMAN_ENV}
    proc = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, env=env)
    return proc.returncode == 0


def wait_until(predicate: Callable[[], bool], timeout: float, step: float = 0.1) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(step)
    return predicate()


def dump_spec(data: Any) -> str:
    """A spec as JSON, which is YAML too (key order kept, one value per line)."""
    return json.dumps(data, indent=2) + "\n"


def replace_file(path: Path, data: str | bytes) -> None:
    """Write `path` by rename, as editors do (the watcher sees one atomic change)."""
    tmp = path.with_name(f".{path.name}.chaos-tmp")
    if isinstance(data, bytes):
        tmp.write_bytes(data)
    else:
        tmp.write_text(data, encoding="utf-8")
    os.replace(tmp, path)


# --- the side log the chaos agent writes ----------------------------------------------------


@dataclass(frozen=True)
class AgentRun:
    task: str
    attempt: int
    pid: int
    start: float
    end: float | None = None
    how: str | None = None


@dataclass(frozen=True)
class FileEvent:
    """A file an agent wrote (`blob` = git id of its content) or deleted (`blob` None); `seq`
    orders events of the whole log."""

    seq: int
    task: str
    attempt: int
    path: str
    blob: str | None


@dataclass(frozen=True)
class SideLog:
    runs: tuple[AgentRun, ...]
    commits: tuple[tuple[str, int, str, str], ...]  # task, attempt, sha, ref
    files: tuple[FileEvent, ...] = ()
    duplicates: tuple[tuple[str, int, int, int], ...] = ()  # task, attempt, pid, holder pid


def read_side_log(path: Path) -> SideLog:
    starts: dict[int, AgentRun] = {}
    ends: dict[int, tuple[float, str]] = {}
    commits = []
    files: list[FileEvent] = []
    duplicates: list[tuple[str, int, int, int]] = []
    text = path.read_text() if path.exists() else ""
    for seq, line in enumerate(text.splitlines()):
        parts = line.split(" ")
        if not parts:
            continue
        if parts[0] == "write" and len(parts) >= 5:
            files.append(FileEvent(seq, parts[1], int(parts[2]), " ".join(parts[4:]), parts[3]))
            continue
        if parts[0] == "delete" and len(parts) >= 4:
            files.append(FileEvent(seq, parts[1], int(parts[2]), " ".join(parts[3:]), None))
            continue
        if parts[0] == "duplicate" and len(parts) == 5:
            duplicates.append((parts[1], int(parts[2]), int(parts[3]), int(parts[4])))
            continue
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "start" and len(parts) == 5:
            starts[int(parts[3])] = AgentRun(
                parts[1], int(parts[2]), int(parts[3]), float(parts[4])
            )
        elif parts[0] == "end" and len(parts) == 6:
            ends.setdefault(int(parts[3]), (float(parts[4]), parts[5]))
        elif parts[0] == "commit" and len(parts) == 5:
            commits.append((parts[1], int(parts[2]), parts[3], parts[4]))
    runs = []
    for pid, run in starts.items():
        end, how = ends.get(pid, (None, None))
        runs.append(AgentRun(run.task, run.attempt, pid, run.start, end, how))
    return SideLog(
        tuple(sorted(runs, key=lambda r: r.start)),
        tuple(commits),
        tuple(files),
        tuple(duplicates),
    )


# --- one project: repo + spec + state, driven through the real CLI ---------------------------


@dataclass
class Project:
    """A scenario's world under `root`: repo/, specs/orchestrator.yaml, chaos/ (side files)."""

    root: Path
    rng: random.Random
    state_dir: str | None = None  # relative to specs/, when not the default ../state
    worktree_root: str | None = None
    spec: dict[str, Any] = field(default_factory=dict)
    controllers: list[subprocess.Popen[bytes]] = field(default_factory=list)
    extra_env: dict[str, str] = field(default_factory=dict)  # for controllers and agents

    def __post_init__(self) -> None:
        self.repo = self.root / "repo"
        self.specs = self.root / "specs"
        self.spec_file = self.specs / "orchestrator.yaml"
        self.chaos = self.root / "chaos"
        for d in (self.repo, self.specs, self.chaos):
            d.mkdir(parents=True, exist_ok=True)
        git(self.repo, "init", "-q", "-b", "main")
        (self.repo / "README.md").write_text("# chaos\n")
        (self.repo / ".gitignore").write_text(f"{IGNORED_DIR}/\n")  # build output
        git(self.repo, "add", "-A")
        git(self.repo, "commit", "-q", "-m", "initial")

    @property
    def state(self) -> Path:
        return (self.specs / self.state_dir).resolve() if self.state_dir else self.root / "state"

    @property
    def worktrees(self) -> Path:
        if self.worktree_root:
            return (self.specs / self.worktree_root).resolve()
        return self.state / "worktrees"

    @property
    def side_log_path(self) -> Path:
        return self.chaos / "agents.log"

    def base_spec(self, backlog: list[dict[str, Any]], **extra: Any) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "apiVersion": "orchestrator/v1",
            "repo": "../repo",
            "integrationBranch": "main",
            "maxParallel": 4,
            "pollInterval": "1s",
            "retries": 3,
            "backoff": {"initial": "0.2s", "max": "1s"},
            "timeout": "20s",
            "resources": {"cpu": [{"parallel": 8}], "memory": [{"parallel": 8}]},
            "verify": VERIFY,
            "verifyTimeout": "30s",
            "agents": {
                "dev": {"command": [sys.executable, AGENT, "{task}", "{attempt}"], "owns": ["**"]}
            },
            "backlog": backlog,
        }
        if self.state_dir:
            spec["stateDir"] = self.state_dir
        if self.worktree_root:
            spec["worktreeRoot"] = self.worktree_root
        spec.update(extra)
        return spec

    def write_spec(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        replace_file(self.spec_file, dump_spec(spec))

    @property
    def task_ids(self) -> list[str]:
        return [t["id"] for t in self.spec.get("backlog", [])]

    def env(self) -> dict[str, str]:
        return {
            **os.environ,
            **GIT_ENV,
            "CHAOS_DIR": str(self.chaos),
            "PYTHONPATH": str(ROOT),
            **self.extra_env,
        }

    # -- the real CLI ------------------------------------------------------------------------
    def check_alive(self) -> None:
        if self.root in ABANDONED:
            raise Abandoned(f"{self.root}: past its deadline")

    def cli(self, *args: str, timeout: float = 90) -> subprocess.CompletedProcess[str]:
        self.check_alive()
        return subprocess.run(
            [sys.executable, "-m", "controller", *args, "-f", str(self.spec_file)],
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=self.root,
            env=self.env(),
        )

    def start_controller(self) -> subprocess.Popen[bytes]:
        self.check_alive()
        n = len(self.controllers)
        out = (self.chaos / f"controller-{n}.out").open("wb")
        proc = subprocess.Popen(
            [sys.executable, "-m", "controller", "reconcile", "--watch", "-f", str(self.spec_file)],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            cwd=self.root,
            env=self.env(),
            start_new_session=True,
        )
        out.close()
        self.controllers.append(proc)
        return proc

    def controller_output(self, proc: subprocess.Popen[bytes]) -> str:
        n = self.controllers.index(proc)
        path = self.chaos / f"controller-{n}.out"
        return path.read_text(errors="replace") if path.exists() else ""

    def kill_controller(self, proc: subprocess.Popen[bytes], *, group: bool) -> None:
        """SIGKILL the controller (with its own children when `group`); agents live on."""
        with contextlib.suppress(ProcessLookupError):
            if group:
                os.killpg(proc.pid, signal.SIGKILL)
            else:
                os.kill(proc.pid, signal.SIGKILL)
        proc.wait()

    def stop_all_controllers(self) -> None:
        for proc in self.controllers:
            if proc.poll() is None:
                self.kill_controller(proc, group=True)

    # -- git readings ------------------------------------------------------------------------
    def merges(self) -> Counter[str]:
        """How many merge commits on main's first-parent history name each task."""
        out = git(
            self.repo,
            "log",
            "--first-parent",
            f"--format=%(trailers:key={TRAILER},valueonly,separator=%x2C)",
            "main",
        )
        return Counter(t.strip() for t in out.split() if t.strip())

    def status(self) -> dict[str, dict[str, Any]]:
        """task -> {phase, reason} from `orchestrator status -o json` (else `diff -o json`)."""
        result = self.cli("status", "-o", "json")
        with contextlib.suppress(ValueError, KeyError, TypeError):
            if result.returncode == 0:
                data = json.loads(result.stdout)
                return {t["task"]: t for t in data["tasks"]}
        result = self.cli("diff", "-o", "json")
        data = json.loads(result.stdout)
        reasons = {w["task"]: w["reason"] for w in data["waits"]}
        reasons.update({a["task"]: a["reason"] for a in data["actions"]})
        return {
            t: {"task": t, "phase": phase, "reason": reasons.get(t, "")}
            for t, phase in data["phases"].items()
        }

    def human_commit(self, path: str, text: str, message: str, attempts: int = 20) -> bool:
        """A person commits on main in the main checkout (retried while git is busy)."""
        for _ in range(attempts):
            target = self.repo / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text)
            add = subprocess.run(
                ["git", "-C", str(self.repo), "add", "--", path],
                capture_output=True,
                env={**os.environ, **HUMAN_ENV},
            )
            done = add.returncode == 0 and (
                subprocess.run(
                    ["git", "-C", str(self.repo), "commit", "-q", "-m", message, "--", path],
                    capture_output=True,
                    env={**os.environ, **HUMAN_ENV},
                ).returncode
                == 0
            )
            if done:
                return True
            time.sleep(0.2)
        return False
