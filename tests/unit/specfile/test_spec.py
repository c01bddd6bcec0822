"""The spec's good path: the example loads, defaults, durations, resolved paths.

Invalid specs are covered by the corpus in `test_spec_corpus.py`; this file checks that a
valid spec means what the README and docs/architecture.md say it means. `validate` as a
process: `tests/e2e/test_cli.py`.
"""

from __future__ import annotations

import os
import re
import shutil
from pathlib import Path

import pytest

from controller.model.fields import PLACEHOLDERS, placeholders_in
from controller.model.problems import SpecError
from controller.model.spec import Spec
from controller.specfile.load import load_spec, read_spec_text
from tests.support import ROOT
from tests.support.repo import git, init_repo

PROJECT_ROOT = ROOT
EXAMPLE = PROJECT_ROOT / "specs" / "example.yaml"

MINIMAL = """\
apiVersion: orchestrator/v1
agents:
  dev:
    command: [agent, "{prompt}"]
    owns: ["src/**"]
backlog:
  - id: a
    agent: dev
"""


def from_text(text: str, base: Path = Path("/nowhere/specs")) -> Spec:
    spec, _ = read_spec_text(text, "spec.yaml", base)
    return spec


def write_spec(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# --- the example -------------------------------------------------------------------------


def test_example_parses_without_a_repository() -> None:
    spec = from_text(EXAMPLE.read_text(), EXAMPLE.parent)
    assert spec.api_version == "orchestrator/v1"
    assert spec.integration_branch == "main"
    assert sorted(spec.agents) == ["architect", "assistant", "code_developer", "project_manager"]
    assert len(spec.backlog) == 10
    assert spec.verify == ["python", "-m", "pytest", "-q", "-x"]
    assert spec.agents["assistant"].owns == []
    assert spec.agents["assistant"].max_parallel == 1
    by_id = {t.id: t for t in spec.backlog}
    assert by_id["us-048"].depends_on == ["us-047"]
    assert spec.scope_of(by_id["us-043"]) == ("docs/US-043-*.md",)
    assert spec.scope_of(by_id["demo-metrics"]) == ()  # read-only agent, no paths
    assert spec.max_attempts(by_id["us-043"]) == 4
    # `repo: ..` beside specs/ is the project itself
    assert spec.repo_path == PROJECT_ROOT
    assert spec.state_path == PROJECT_ROOT / "state"


def test_example_loads_next_to_a_real_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_repo(tmp_path)
    bin_dir = tmp_path / "bin"  # its agents are Claude Code runs: validate looks for `claude`
    bin_dir.mkdir()
    (bin_dir / "claude").write_text("#!/bin/sh\n")
    (bin_dir / "claude").chmod(0o755)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    target = tmp_path / "specs" / "example.yaml"
    target.parent.mkdir()
    shutil.copy(EXAMPLE, target)
    spec = load_spec(target)
    assert spec.repo_path == tmp_path.resolve()
    assert spec.source == target
    assert spec.state_path == tmp_path.resolve() / "state"
    assert spec.worktree_root_path == tmp_path.resolve() / "state" / "worktrees"


# --- defaults and durations ---------------------------------------------------------------


def test_defaults_match_design() -> None:
    spec = from_text(MINIMAL)
    assert spec.repo == "."
    assert spec.integration_branch == "main"
    assert spec.max_parallel == 4
    assert spec.poll_interval == 30.0
    assert spec.retries == 3
    assert (spec.backoff.initial, spec.backoff.max) == (10.0, 300.0)
    assert spec.timeout == 7200.0
    assert spec.verify is None
    assert spec.paused is False
    cpu = [(r.below, r.parallel) for r in spec.resources.cpu]
    memory = [(r.below, r.parallel) for r in spec.resources.memory]
    assert cpu == [(50, 4), (70, 3), (80, 2), (None, 1)]
    assert memory == [(50, 4), (80, 3), (None, 1)]
    task = spec.backlog[0]
    assert task.prompt == ""
    assert task.depends_on == []
    assert task.display_title == "a"
    assert spec.timeout_of(task) == 7200.0
    assert spec.max_attempts(task) == 4


def test_default_thresholds_equal_written_out_ones() -> None:
    written = MINIMAL + (
        "resources:\n"
        "  cpu: [{below: 50, parallel: 4}, {below: 70, parallel: 3}, "
        "{below: 80, parallel: 2}, {parallel: 1}]\n"
        "  memory: [{below: 50, parallel: 4}, {below: 80, parallel: 3}, {parallel: 1}]\n"
    )
    assert from_text(written).resources == from_text(MINIMAL).resources


def test_durations_are_parsed_to_seconds() -> None:
    text = MINIMAL.replace(
        "agents:",
        "pollInterval: 1h30m\ntimeout: 45\nverifyTimeout: 500ms\n"
        "backoff: {initial: 2s, max: 1d}\nagents:",
    )
    spec = from_text(text)
    assert spec.poll_interval == 5400.0
    assert spec.timeout == 45.0
    assert spec.verify_timeout == 0.5
    assert (spec.backoff.initial, spec.backoff.max) == (2.0, 86400.0)


def test_timeout_precedence_task_then_agent_then_spec() -> None:
    text = """\
apiVersion: orchestrator/v1
timeout: 2h
agents:
  slow: {command: [agent], timeout: 30m}
  plain: {command: [agent]}
backlog:
  - {id: own, agent: slow, timeout: 5m}
  - {id: from-agent, agent: slow}
  - {id: from-spec, agent: plain}
"""
    spec = from_text(text)
    own, from_agent, from_spec = spec.backlog
    assert spec.timeout_of(own) == 300.0
    assert spec.timeout_of(from_agent) == 1800.0
    assert spec.timeout_of(from_spec) == 7200.0


def test_max_attempts_and_retries_override() -> None:
    text = """\
apiVersion: orchestrator/v1
retries: 2
agents:
  dev: {command: [agent]}
backlog:
  - {id: default, agent: dev}
  - {id: never-retry, agent: dev, retries: 0}
  - {id: stubborn, agent: dev, retries: 9}
"""
    spec = from_text(text)
    assert [spec.max_attempts(t) for t in spec.backlog] == [3, 1, 10]


def test_scope_is_paths_else_owns() -> None:
    text = """\
apiVersion: orchestrator/v1
agents:
  dev: {command: [agent], owns: ["src/**", "tests/**"]}
backlog:
  - {id: narrow, agent: dev, paths: ["src/a/**"]}
  - {id: wide, agent: dev}
  - {id: none, agent: dev, paths: []}
"""
    narrow, wide, none = (spec := from_text(text)).backlog
    assert spec.scope_of(narrow) == ("src/a/**",)
    assert spec.scope_of(wide) == ("src/**", "tests/**")
    assert spec.scope_of(none) == ()  # an explicit empty scope writes nothing


def test_snake_case_field_names_are_rejected_with_the_camel_case_name() -> None:
    with pytest.raises(SpecError, match="unknown field 'max_parallel'; did you mean 'maxParallel'"):
        from_text(MINIMAL.replace("agents:", "max_parallel: 2\nagents:"))


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("maxParallel: true", "maxParallel: must be a whole number, got a boolean True"),
        ("paused: 1", "paused: must be true or false, got a number 1"),
        ("repo: 42", "repo: must be a string, got a number 42 (quote it to make it text)"),
    ],
)
def test_no_silent_coercion_between_types(line: str, message: str) -> None:
    with pytest.raises(SpecError, match=re.escape(message)):
        from_text(MINIMAL.replace("agents:", f"{line}\nagents:"))


def test_spec_is_immutable() -> None:
    spec = from_text(MINIMAL)
    with pytest.raises(ValueError):
        spec.max_parallel = 9  # type: ignore[misc]


# --- placeholders ------------------------------------------------------------------------


def test_every_documented_placeholder_is_accepted() -> None:
    args = ", ".join(f'"{{{p}}}"' for p in PLACEHOLDERS)
    command = f"[agent, {args}]\n    ports: {{from: 8100, to: 8101}}"
    spec = from_text(MINIMAL.replace('[agent, "{prompt}"]', command))
    assert spec.agents["dev"].command[1:] == [f"{{{p}}}" for p in PLACEHOLDERS]


def test_doubled_braces_are_literal() -> None:
    command = '[sh, -c, "echo {{not a placeholder}} {task}; jq {{}} x.json"]'
    spec = from_text(MINIMAL.replace('[agent, "{prompt}"]', command))
    assert spec.agents["dev"].command[2] == "echo {{not a placeholder}} {task}; jq {{}} x.json"
    assert placeholders_in(spec.agents["dev"].command[2]) == ["task"]


@pytest.mark.parametrize(
    ("arg", "names"),
    [("plain", []), ("{task}", ["task"]), ("--at={worktree}/{branch}", ["worktree", "branch"])],
)
def test_placeholders_in(arg: str, names: list[str]) -> None:
    assert placeholders_in(arg) == names


@pytest.mark.parametrize("arg", ["{prompt!r}", "{attempt:03d}", "{task", "task}"])
def test_placeholders_in_rejects_malformed(arg: str) -> None:
    with pytest.raises(ValueError):
        placeholders_in(arg)


# --- where state and worktrees live ------------------------------------------------------


def test_state_beside_a_specs_folder(tmp_path: Path) -> None:
    spec = from_text(MINIMAL, tmp_path / "specs")
    assert spec.state_path == tmp_path.resolve() / "state"
    assert spec.worktree_root_path == tmp_path.resolve() / "state" / "worktrees"


def test_state_in_the_spec_folder_otherwise(tmp_path: Path) -> None:
    spec = from_text(MINIMAL, tmp_path / "config")
    assert spec.state_path == tmp_path.resolve() / "config" / "state"


def test_explicit_state_dir_and_worktree_root_are_relative_to_the_spec(tmp_path: Path) -> None:
    text = MINIMAL.replace("agents:", "stateDir: ../var/orch\nworktreeRoot: /abs/wt\nagents:")
    spec = from_text(text, tmp_path / "specs")
    assert spec.state_path == tmp_path.resolve() / "var" / "orch"
    assert spec.worktree_root_path == Path("/abs/wt")


def test_repo_is_relative_to_the_spec_file_not_the_cwd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    init_repo(tmp_path / "project")
    path = write_spec(tmp_path / "project" / "specs" / "o.yaml", "repo: ..\n" + MINIMAL)
    monkeypatch.chdir(tmp_path)
    assert load_spec(path.relative_to(tmp_path)).repo_path == (tmp_path / "project").resolve()


# --- the repository check and --repo -----------------------------------------------------


def test_repo_override_replaces_the_spec_repo(tmp_path: Path) -> None:
    other = init_repo(tmp_path / "other")
    path = write_spec(tmp_path / "specs" / "o.yaml", "repo: ./does-not-exist\n" + MINIMAL)
    with pytest.raises(SpecError, match="does not exist"):
        load_spec(path)
    spec = load_spec(path, repo=other)
    assert spec.repo_path == other.resolve()


def test_repo_override_still_checks_the_integration_branch(tmp_path: Path) -> None:
    other = init_repo(tmp_path / "other", branch="trunk")
    path = write_spec(tmp_path / "o.yaml", MINIMAL)
    with pytest.raises(SpecError) as exc:
        load_spec(path, repo=other)
    (problem,) = exc.value.problems
    assert problem.path == "integrationBranch"
    assert "branch 'main' does not exist" in problem.message
    git(other, "branch", "main")
    assert load_spec(path, repo=other).integration_branch == "main"


def test_check_repo_false_skips_the_repository(tmp_path: Path) -> None:
    path = write_spec(tmp_path / "o.yaml", "repo: ./nope\n" + MINIMAL)
    assert load_spec(path, check_repo=False).repo_path == (tmp_path / "nope").resolve()


def test_problem_renders_file_line_column(tmp_path: Path) -> None:
    path = write_spec(tmp_path / "o.yaml", MINIMAL.replace("agent: dev", "agent: deev"))
    with pytest.raises(SpecError) as exc:
        load_spec(path, check_repo=False)
    (problem,) = exc.value.problems
    assert str(problem) == (
        f"{path}:8:12: backlog[0].agent: unknown agent 'deev'; did you mean 'dev'?"
    )
    assert problem.as_dict()["line"] == 8


# --- nesting -----------------------------------------------------------------------------


def test_a_deeply_nested_document_is_a_located_problem_not_a_crash() -> None:
    deep = "apiVersion: orchestrator/v1\nagents: " + "[" * 5000 + "]" * 5000 + "\n"
    with pytest.raises(SpecError, match="nested too deeply"):
        from_text(deep)


# --- caps and special files (docs/security.md) ---------------------------------------


def test_log_limit_defaults_to_50mb_and_an_agent_overrides_it() -> None:
    spec = from_text(MINIMAL)
    assert spec.log_limit == 50 << 20
    assert spec.log_limit_of(spec.backlog[0]) == 50 << 20
    text = MINIMAL.replace("    owns:", "    logLimit: 512KB\n    owns:")
    spec = from_text("logLimit: 2MB\n" + text)
    assert spec.log_limit == 2 << 20
    assert spec.log_limit_of(spec.backlog[0]) == 512 << 10


def test_a_bad_log_limit_is_a_located_problem() -> None:
    with pytest.raises(SpecError) as exc:
        from_text("logLimit: 1KB\n" + MINIMAL)
    (problem,) = exc.value.problems
    assert (problem.line, problem.path) == (1, "logLimit") and "keeps too little" in str(problem)
    with pytest.raises(SpecError, match="logLimit: .*invalid size"):
        from_text("logLimit: lots\n" + MINIMAL)


def test_a_spec_that_is_a_pipe_or_device_is_refused_without_reading(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.yaml"
    os.mkfifo(fifo)
    (tmp_path / "zero.yaml").symlink_to("/dev/zero")
    for path, kind in ((fifo, "named pipe"), (tmp_path / "zero.yaml", "character device")):
        with pytest.raises(SpecError) as exc:
            load_spec(path, check_repo=False)
        (problem,) = exc.value.problems
        assert str(problem) == f"{path}:1:1: is a {kind}, not a regular file; not read"


# --- agents: presets, budgets, worktree setup ------------------------------------------


def agent_problems(agent_yaml: str, extra: str = "") -> list[str]:
    text = MINIMAL.replace('    command: [agent, "{prompt}"]\n', agent_yaml) + extra
    try:
        from_text(text)
    except SpecError as exc:
        return [f"{p.path}: {p.message}" for p in exc.problems]
    return []


def test_a_claude_code_preset_agent_with_its_options() -> None:
    spec = from_text(
        MINIMAL.replace(
            '    command: [agent, "{prompt}"]\n',
            "    preset: claude-code\n    args: [--model, m]\n    allowEmpty: true\n"
            "    budget: {usd: 5, hard: true}\n    copy: [.env, config/local.yaml]\n"
            "    setup: [uv, sync]\n    ports: {from: 8100, to: 8199}\n",
        )
        + "budget: {usd: 50}\n"
    )
    dev = spec.agents["dev"]
    assert dev.preset == "claude-code" and dev.command is None and dev.args == ["--model", "m"]
    assert dev.budget is not None and dev.budget.hard and spec.budget.usd == 50
    assert dev.copy_files == [".env", "config/local.yaml"] and dev.setup == ["uv", "sync"]
    assert dev.ports is not None and (dev.ports.first, dev.ports.last, dev.ports.size) == (
        8100, 8199, 100,
    )  # fmt: skip
    assert spec.allow_empty(spec.backlog[0])


@pytest.mark.parametrize(
    ("agent", "problem"),
    [
        ("    env: {}\n", "agents.dev: give exactly one of `command`"),
        ("    command: [a]\n    preset: claude-code\n", "give exactly one of `command`"),
        ("    preset: claude-cod\n", "agents.dev.preset: must be 'claude-code'"),
        ("    command: [a]\n    program: x\n", "`program` and `args` go with `preset`"),
        ('    preset: claude-code\n    args: ["{prompt}"]\n', "{prompt} is not allowed in"),
        ('    command: [a]\n    setup: [x, "{prompt}"]\n', "{prompt} is not allowed in setup"),
        ('    command: [a, "{port}"]\n', "{port} needs `ports: {from: N, to: M}`"),
        ("    command: [a]\n    ports: {from: 9, to: 8}\n", "'from' (9) must not exceed 'to' (8)"),
        ("    command: [a]\n    copy: [../x]\n", "agents.dev.copy[0]: '../x' must name a file"),
        ("    command: [a]\n    copy: [/etc/x]\n", "must be a relative path inside"),
        ("    command: [a]\n    budget: {usd: -1}\n", "agents.dev.budget.usd"),
        ("    command: [a]\n    setup: uv sync\n", "setup must be a list of argv elements"),
    ],
)
def test_bad_agent_options_are_located(agent: str, problem: str) -> None:
    found = agent_problems(agent)
    assert any(problem in p for p in found), found


def test_a_prompt_too_long_for_argv_is_caught_by_validate() -> None:
    long_prompt = "x" * (101 * 1024)
    found = agent_problems('    command: [agent, "{prompt}"]\n', f"    prompt: {long_prompt}\n")
    assert found and found[0].startswith("backlog[0].prompt: this prompt is 101 KiB")
    assert agent_problems("    preset: claude-code\n", f"    prompt: {long_prompt}\n") == []


def test_presets_and_worktree_setup_need_the_local_runner() -> None:
    ray = "runner: {kind: ray, address: 'http://h:8265', remote: git@x:r}\n"
    text = MINIMAL.replace('    command: [agent, "{prompt}"]\n', "    preset: claude-code\n") + ray
    with pytest.raises(SpecError) as exc:
        from_text(text)
    assert "agents.dev.preset: `preset` needs the local runner" in str(exc.value)


def test_a_bad_rate_limit_pattern_is_located_at_its_element(tmp_path: Path) -> None:
    text = MINIMAL.replace(
        '    owns: ["src/**"]\n',
        '    owns: ["src/**"]\n    rateLimit:\n      exitCodes: [75]\n'
        "      patterns: ['429', 'retry in (\\d+']\n",
    )
    path = write_spec(tmp_path / "o.yaml", text)
    with pytest.raises(SpecError) as exc:
        load_spec(path, check_repo=False)
    (problem,) = exc.value.problems
    assert str(problem).startswith(f"{path}:8:25: agents.dev.rateLimit.patterns[1]: ")
    assert "invalid regular expression `retry in (\\d+`: missing ), unterminated" in str(problem)
    off = write_spec(
        tmp_path / "p.yaml", MINIMAL.replace("    owns:", "    rateLimit: off\n    owns:")
    )
    assert load_spec(off, check_repo=False).agents["dev"].rate_limits is None
