"""The bad-spec corpus through the real CLI: `python -m controller validate` as a process.

A representative file of each kind of mistake (`SUBPROCESS_SAMPLE`; all of them with
`ORCHESTRATOR_CORPUS_SUBPROCESS=all`), the cases that need a real file system or repository
(empty file, non-UTF-8 bytes, missing repo, missing branch) and `-o json`. The processes are
started together, once for the module. The other corpus files are checked in-process by
`tests/unit/specfile/test_spec_corpus.py`; the corpus itself is `tests.support.corpus`.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import ROOT
from tests.support.corpus import (
    ALL_IN_SUBPROCESS,
    CORPUS,
    CORPUS_DIR,
    IN_SUBPROCESS,
    SUBPROCESS_SAMPLE,
    Expect,
    Result,
    assert_rejected,
    expectations_of,
)
from tests.support.repo import GIT_ENV, init_repo

PROJECT_ROOT = ROOT


def cli_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **GIT_ENV, "NO_COLOR": "1", "COLUMNS": "200", **extra}
    env["PYTHONPATH"] = os.pathsep.join(
        p for p in (str(PROJECT_ROOT), env.get("PYTHONPATH", "")) if p
    )
    return env


def run_subprocess(args: list[str], cwd: Path, **env: str) -> Result:
    """The real CLI: `python -m controller ARGS` in `cwd`."""
    done = subprocess.run(
        [sys.executable, "-m", "controller", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=cli_env(**env),
        timeout=60,
    )
    return Result(done.returncode, done.stdout, done.stderr)


@pytest.mark.timeout(30)
@pytest.mark.parametrize("path", IN_SUBPROCESS, ids=lambda p: p.stem)
def test_corpus_rejected_with_location(path: Path, subprocess_results: dict[str, Result]) -> None:
    expects = expectations_of(path)
    result = subprocess_results[path.stem]
    assert_rejected(result, str(path), expects)


# --- cases built at run time: bytes that cannot hold a comment, real repositories --------

SPEC_OK_BUT_REPO = """\
apiVersion: orchestrator/v1
repo: {repo}
integrationBranch: {branch}
agents:
  dev:
    command: [agent, "{{prompt}}"]
backlog:
  - id: a
    agent: dev
"""


@dataclass(frozen=True)
class RuntimeCase:
    name: str
    args: list[str]
    file: str  # as it must appear in the messages
    expects: list[Expect]


def build_runtime_cases(root: Path) -> list[RuntimeCase]:
    cases: list[RuntimeCase] = []

    def add(name: str, data: bytes | None, expects: list[Expect]) -> None:
        path = root / f"{name}.yaml"
        if data is not None:
            path.write_bytes(data)
        cases.append(RuntimeCase(name, ["validate", "-f", path.name], path.name, expects))

    add("empty_file", b"", [Expect(1, 1, "spec file is empty")])
    add("whitespace_only", b"\n   \n\t\n", [Expect(1, 1, "spec file is empty")])
    add(
        "non_utf8",
        b"apiVersion: orchestrator/v1\nrepo: caf\xff\n",
        [Expect(2, 10, "file is not valid UTF-8 (byte 0xff)")],
    )
    add("missing_file", None, [Expect(1, 1, "spec file not found")])
    (root / "a_directory").mkdir()
    cases.append(
        RuntimeCase(
            "directory",
            ["validate", "-f", "a_directory"],
            "a_directory",
            [Expect(1, 1, "is a directory, not a spec file")],
        )
    )
    spec = SPEC_OK_BUT_REPO.format
    add(
        "repo_missing",
        spec(repo="./no-such-repo", branch="main").encode(),
        [Expect(2, 7, "no-such-repo does not exist")],
    )
    (root / "plain_dir").mkdir()
    add(
        "repo_not_git",
        spec(repo="plain_dir", branch="main").encode(),
        [Expect(2, 7, "plain_dir is not a git repository")],
    )
    init_repo(root / "real_repo")
    add(
        "branch_missing",
        spec(repo="real_repo", branch="roadmap").encode(),
        [Expect(3, 20, "branch 'roadmap' does not exist in"), Expect(3, 20, "git -C ")],
    )
    return cases


@pytest.fixture(scope="module")
def runtime_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runtime_specs")


@pytest.fixture(scope="module")
def runtime_cases(runtime_root: Path) -> dict[str, RuntimeCase]:
    return {c.name: c for c in build_runtime_cases(runtime_root)}


@pytest.fixture(scope="module")
def subprocess_results(
    runtime_root: Path, runtime_cases: dict[str, RuntimeCase]
) -> dict[str, Result]:
    """Every real-CLI run of this module, started together (each is ~0.5 s of start-up)."""
    jobs: dict[str, Callable[[], Result]] = {}
    work = runtime_root / "cwd"
    work.mkdir(exist_ok=True)
    for path in CORPUS:
        if ALL_IN_SUBPROCESS or path.stem in SUBPROCESS_SAMPLE:
            args = ["validate", "-f", str(path)]
            jobs[path.stem] = lambda args=args: run_subprocess(args, work)
    # git must not find a repository above the temporary folder (the repo_not_git case)
    ceiling = str(runtime_root.parent)
    for case in runtime_cases.values():
        jobs["runtime:" + case.name] = lambda args=case.args: run_subprocess(
            args, runtime_root, GIT_CEILING_DIRECTORIES=ceiling
        )
    json_args = [
        "validate",
        "-f",
        str(CORPUS_DIR / "unknown_key_resources_rule.yaml"),
        "-o",
        "json",
    ]
    jobs["json"] = lambda: run_subprocess(json_args, work)
    with ThreadPoolExecutor(max_workers=max(2, os.cpu_count() or 2)) as pool:
        futures = {name: pool.submit(job) for name, job in jobs.items()}
        return {name: f.result() for name, f in futures.items()}


@pytest.mark.timeout(30)
@pytest.mark.parametrize(
    "name",
    [
        "empty_file",
        "whitespace_only",
        "non_utf8",
        "missing_file",
        "directory",
        "repo_missing",
        "repo_not_git",
        "branch_missing",
    ],
)
def test_runtime_case_rejected(
    name: str, runtime_cases: dict[str, RuntimeCase], subprocess_results: dict[str, Result]
) -> None:
    case = runtime_cases[name]
    assert_rejected(subprocess_results["runtime:" + name], case.file, case.expects)


@pytest.mark.timeout(30)
def test_json_output_locates_problems(subprocess_results: dict[str, Result]) -> None:
    result = subprocess_results["json"]
    assert result.code == 1, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    doc = json.loads(result.stdout)
    assert doc["valid"] is False
    path = CORPUS_DIR / "unknown_key_resources_rule.yaml"
    want = expectations_of(path)
    got = doc["problems"]
    assert len(got) == len(want)
    for problem, e in zip(got, want, strict=True):
        assert problem["file"] == str(path)
        assert (problem["line"], problem["column"]) == (e.line, e.column)
        assert e.text in problem["message"]
        assert problem["path"].startswith("resources.cpu[0].")
