"""A first spec for an existing repository (`orchestrator init`): what it detects, and the
YAML it writes.

Detected, never guessed wildly: the integration branch (the branch checked out, else `main`
or `master`), the tracked top-level folders (code folders become the developer agent's
scope, `docs/` the writer's), and a verify command that works on a merge result: for a
Python project `<python> -m pytest -q` with an interpreter that can import pytest (the
project's `.venv` first), `PYTHONPATH=src` for a src layout (an editable install would test
the main checkout instead of the merge); `npm test`, `cargo test`, `go test ./...` or
`make test` for other projects. Agents use the Claude Code preset. The text starts with the
schema line editors read (`specs/schema.json` is written beside it).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

from controller import git

DOC_DIRS = ("docs", "doc")
NOT_CODE = frozenset({*DOC_DIRS, "specs", "state", ".github", ".gitlab", ".vscode", ".idea"})
MANIFESTS = ("pyproject.toml", "setup.py", "setup.cfg", "package.json", "Cargo.toml", "go.mod")


@dataclass
class Scaffold:
    """What `init` found in the repository."""

    top: Path
    branch: str
    code_dirs: list[str] = field(default_factory=list)
    docs_dir: str | None = None
    manifests: list[str] = field(default_factory=list)
    verify: list[str] | None = None
    verify_env: dict[str, str] = field(default_factory=dict)
    verify_note: str = ""  # why there is no verify command, or what to check
    state_dir: str | None = None  # when the default (`state/` at the top) is taken


class InitError(RuntimeError):
    pass


def integration_branch(repo: git.Repo, given: str | None) -> str:
    """`given`, else the branch checked out, else main or master (one with a commit)."""
    candidates = [given] if given else []
    if not given:
        head = git.run(repo.place, "symbolic-ref", "--quiet", "--short", "HEAD", check=False)
        candidates += [head.stdout.strip()] if head.ok and head.stdout.strip() else []
        candidates += ["main", "master"]
    for name in candidates:
        if git.rev_parse(repo, f"refs/heads/{name}") is not None:
            return name
    if given:
        raise InitError(f"branch '{given}' does not exist (or has no commit yet)")
    raise InitError("no branch with a commit yet: commit something first, then init again")


def tracked_top(repo: git.Repo, branch: str) -> tuple[list[str], list[str]]:
    """(folders, files) tracked at the top of `branch`."""
    listed = git.run(repo.place, "ls-tree", "-z", f"refs/heads/{branch}").stdout
    dirs, files = [], []
    for entry in listed.split("\0"):
        meta, _, name = entry.partition("\t")
        if name:
            (dirs if meta.split(" ")[1:2] == ["tree"] else files).append(name)
    return sorted(dirs), sorted(files)


def _imports_pytest(python: str) -> bool:
    try:
        done = subprocess.run(
            [python, "-c", "import pytest"], capture_output=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def pytest_python(top: Path) -> str | None:
    """An interpreter that can run the project's tests: its own virtualenv's first."""
    found = [top / ".venv" / "bin" / "python", top / "venv" / "bin" / "python"]
    candidates = [str(p) for p in found if p.is_file()]
    candidates += [sys.executable, shutil.which("python3") or "", shutil.which("python") or ""]
    for python in dict.fromkeys(c for c in candidates if c):
        if _imports_pytest(python):
            return python
    return None


def _python_verify(s: Scaffold, dirs: list[str]) -> None:
    python = pytest_python(s.top)
    if python is None:
        s.verify_note = "no interpreter here can import pytest: install it, then set verify"
        return
    s.verify = [python, "-m", "pytest", "-q"]
    if "src" in dirs:  # an editable install would import the main checkout, not the merge
        s.verify_env = {"PYTHONPATH": "src"}


def _other_verify(s: Scaffold, files: list[str]) -> None:
    if "package.json" in files:
        try:
            scripts = json.loads((s.top / "package.json").read_text()).get("scripts") or {}
        except (OSError, ValueError, AttributeError):
            scripts = {}
        if "test" in scripts:
            s.verify = ["npm", "test"]
    elif "Cargo.toml" in files:
        s.verify = ["cargo", "test"]
    elif "go.mod" in files:
        s.verify = ["go", "test", "./..."]
    elif "Makefile" in files and "\ntest:" in "\n" + _read(s.top / "Makefile"):
        s.verify = ["make", "test"]
    if s.verify is None:
        s.verify_note = "no test command found: set verify to one that passes on every merge"


def _read(path: Path) -> str:
    try:
        return path.read_text(errors="replace")
    except OSError:
        return ""


def detect(start: Path, branch: str | None = None) -> Scaffold:
    """Look at the repository `start` is in (InitError when there is none to work on)."""
    try:
        repo = git.open_repo(start)
    except git.GitError:
        raise InitError(
            f"{start} is not in a git repository: `git init`, commit, then init again"
        ) from None
    if repo.top is None:
        raise InitError("a bare repository has no checkout to scaffold a spec in")
    s = Scaffold(repo.top, integration_branch(repo, branch))
    dirs, files = tracked_top(repo, s.branch)
    s.code_dirs = [d for d in dirs if d not in NOT_CODE and not d.startswith(".")]
    s.docs_dir = next((d for d in DOC_DIRS if d in dirs), None)
    s.manifests = [f for f in MANIFESTS if f in files]
    python = {"pyproject.toml", "setup.py", "setup.cfg"} & set(files) or "tests" in dirs
    if python and "package.json" not in files:
        _python_verify(s, dirs)
    else:
        _other_verify(s, files)
    if "state" in dirs or "state" in files:
        s.state_dir = "../.orchestrator"
    return s


def _flow(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(i) for i in items) + "]"


def spec_text(s: Scaffold) -> str:
    """The spec file `init` writes for what `detect` found."""
    developer = [f"{d}/**" for d in s.code_dirs] + s.manifests if s.code_dirs else ["**"]
    lines = [
        "# yaml-language-server: $schema=./schema.json",
        f"# Written by `orchestrator init` for {s.top.name}. Check it: `orchestrator validate`;",
        "# see what it would do: `orchestrator diff`; run it: `orchestrator start`.",
        "apiVersion: orchestrator/v1",
        "repo: ..                      # the git repository, relative to this file",
        f"integrationBranch: {s.branch}   # finished work is merged here",
    ]
    if s.state_dir:
        lines.append(f"stateDir: {s.state_dir}   # ./state is taken in this repository")
    lines += ["maxParallel: 3", "retries: 2                    # after a failed attempt"]
    lines += ["timeout: 1h                   # per attempt"]
    if s.verify:
        lines.append(f"verify: {_flow(s.verify)}   # must pass on every merge (docs/verify.md)")
        if s.verify_env:
            env = ", ".join(f"{k}: {v}" for k, v in s.verify_env.items())
            lines.append(f"verifyEnv: {{{env}}}   # the merge result's code, not an install")
    else:
        lines.append(f"# verify: [make, test]   # {s.verify_note} (docs/verify.md)")
    lines += ["agents:", "  developer:", "    preset: claude-code   # docs/agents.md"]
    lines.append(f"    owns: {_flow(developer)}")
    if s.docs_dir and s.code_dirs:
        lines += ["  writer:", "    preset: claude-code"]
        lines.append(f"    owns: {_flow([f'{s.docs_dir}/**', '*.md'])}")
    lines += [
        "backlog: []",
        "# backlog:",
        "#   - id: first-task",
        "#     agent: developer",
        "#     prompt: Say what to change, and how to know it is done.",
        "#     paths: [src/**]   # optional: narrower than the agent's owns",
    ]
    return "\n".join(lines) + "\n"


def agent_missing() -> str | None:
    """How to get Claude Code when its binary is not on PATH (the preset needs it)."""
    if shutil.which("claude"):
        return None
    return (
        "Claude Code is not on PATH: install it (npm install -g @anthropic-ai/claude-code), "
        "set `program:` to its path, or replace `preset: claude-code` with `command: [...]`"
    )


def write_files(s: Scaffold, schema: str, force: bool) -> Path:
    """Write specs/orchestrator.yaml and specs/schema.json; the spec's path."""
    folder = s.top / "specs"
    target = folder / "orchestrator.yaml"
    if target.exists() and not force:
        raise InitError(f"{target} exists; --force replaces it")
    folder.mkdir(exist_ok=True)
    target.write_text(spec_text(s), encoding="utf-8")
    (folder / "schema.json").write_text(schema, encoding="utf-8")
    return target
