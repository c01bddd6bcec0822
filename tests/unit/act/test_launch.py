"""What an attempt starts with: a preset's argv, the prompt on stdin (never in argv or the
environment), the agent's own folders, ports, and the limits of argv."""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import pytest

from controller.act.launch import ENV_PROMPT_MAX, launch_request, prepare_files, read_tail
from controller.model.spec import Spec
from controller.state.paths import StatePaths
from tests.support.planning import make_spec, task


def spec_with(agent: dict[str, Any], prompt: str = "Do it.", base: Path | None = None) -> Spec:
    return make_spec([task("t1", prompt=prompt)], {"dev": agent}, base_dir=base)


def request(spec: Spec, tmp_path: Path, prompt: str = "composed", port: int | None = None):
    paths = StatePaths(tmp_path / "state")
    req = launch_request(
        spec, paths, spec.backlog[0], 2, tmp_path / "wt", (), "abc", prompt=prompt, port=port
    )
    return req, paths


def test_the_claude_code_preset_builds_its_argv_and_takes_the_prompt_on_stdin(
    tmp_path: Path,
) -> None:
    spec = spec_with({"preset": "claude-code", "args": ["--model", "m-{task}"]})
    req, paths = request(spec, tmp_path, prompt="SECRET PROMPT")
    assert req.argv == (
        "claude", "-p", "--output-format", "stream-json", "--verbose",
        "--permission-mode", "acceptEdits", "--allowedTools", "Bash", "--model", "m-t1",
    )  # fmt: skip
    assert req.stdin_path == paths.prompt_file("t1", 2)
    assert not any("SECRET" in a for a in req.argv)
    assert not any("SECRET" in v for v in req.env.values())
    assert req.stream == "claude-code" and req.stream_record == paths.stream_record("t1", 2)
    home = paths.agent_home("t1", 2)
    env = req.local_env({})  # what the agent runs with where nothing else is set
    assert env["CLAUDE_CONFIG_DIR"] == str(home / "config")
    assert env["XDG_RUNTIME_DIR"] == str(paths.agent_runtime("t1", 2))
    assert len(env["XDG_RUNTIME_DIR"]) - len(str(paths.root)) == 15  # room for sockets
    assert env["ORCHESTRATOR_PROMPT_FILE"] == str(paths.prompt_file("t1", 2))
    assert env["ORCHESTRATOR_USAGE_FILE"] == str(paths.usage_file("t1", 2))


def test_program_is_found_beside_the_spec_and_the_agents_env_wins(tmp_path: Path) -> None:
    agent = {
        "preset": "claude-code",
        "program": "../bin/claude",
        "env": {"CLAUDE_CONFIG_DIR": "/c"},
    }
    spec = spec_with(agent, base=tmp_path / "specs")
    req, _ = request(spec, tmp_path)
    assert req.argv[0] == str(tmp_path / "bin" / "claude")
    assert req.local_env({})["CLAUDE_CONFIG_DIR"] == "/c"


def test_a_command_with_prompt_in_argv_gets_no_stdin_and_one_without_gets_it(
    tmp_path: Path,
) -> None:
    with_prompt, _ = request(spec_with({"command": ["agent", "{prompt}"]}), tmp_path)
    assert with_prompt.argv == ("agent", "composed") and with_prompt.stdin_path is None
    plain, paths = request(spec_with({"command": ["agent"]}), tmp_path)
    assert plain.stdin_path == paths.prompt_file("t1", 2) and plain.stream is None
    assert plain.env["ORCHESTRATOR_PROMPT"] == "Do it."  # the task's own prompt, for scripts
    assert "CLAUDE_CONFIG_DIR" not in plain.env


def test_a_prompt_too_long_for_argv_is_refused_with_the_way_out(tmp_path: Path) -> None:
    huge = "x" * (200 * 1024)
    with pytest.raises(ValueError, match="too long for the system .* stdin"):
        request(spec_with({"command": ["agent", "{prompt}"]}), tmp_path, prompt=huge)
    req, _ = request(spec_with({"preset": "claude-code"}, prompt=huge), tmp_path, prompt=huge)
    assert "ORCHESTRATOR_PROMPT" not in req.env  # over ENV_PROMPT_MAX: the file has it
    assert len(huge) > ENV_PROMPT_MAX


def test_ports_fill_the_placeholder_and_the_environment(tmp_path: Path) -> None:
    agent = {"command": ["srv", "--port={port}"], "ports": {"from": 9000, "to": 9001},
             "setup": ["prep", "{port}", "{task}"]}  # fmt: skip
    req, paths = request(spec_with(agent), tmp_path, port=9001)
    assert req.argv == ("srv", "--port=9001") and req.env["ORCHESTRATOR_PORT"] == "9001"
    assert req.setup == ("prep", "9001", "t1") and req.setup_log == paths.setup_log("t1", 2)


def test_prepare_files_writes_a_private_prompt_and_shows_it_in_the_log(tmp_path: Path) -> None:
    req, paths = request(spec_with({"preset": "claude-code"}), tmp_path, prompt="line 1\nline 2")
    paths.usage_file("t1", 2).parent.mkdir(parents=True)
    paths.usage_file("t1", 2).write_text("{}")  # stale, from an earlier launch try
    prepare_files(req, "line 1\nline 2", paths, "task t1, attempt 2 of 4")
    prompt = paths.prompt_file("t1", 2)
    assert prompt.read_text() == "line 1\nline 2"
    assert stat.S_IMODE(os.stat(prompt).st_mode) == 0o600
    assert not paths.usage_file("t1", 2).exists()
    assert Path(req.local_env({})["CLAUDE_CONFIG_DIR"]).is_dir()
    log = req.log_path.read_text()
    assert "task t1, attempt 2 of 4" in log and "line 1\nline 2\n" in log
    assert "(13 bytes, on stdin;" in log


def test_read_tail_keeps_the_end_of_a_long_log(tmp_path: Path) -> None:
    log = tmp_path / "v.log"
    log.write_text("".join(f"line {i}\n" for i in range(10000)))
    text = read_tail(tmp_path, log)
    assert text.endswith("line 9999") and text.count("\n") == 39
    assert read_tail(tmp_path, tmp_path / "missing.log") == ""


def test_the_preset_keeps_one_retry_of_its_own_under_the_fleet_s_rate_limits(
    tmp_path: Path,
) -> None:
    def retries(agent: dict[str, Any]) -> str | None:
        req, _ = request(spec_with({"preset": "claude-code", **agent}), tmp_path)
        return req.local_env({"CLAUDE_CODE_MAX_RETRIES": "7"}).get("CLAUDE_CODE_MAX_RETRIES")

    assert retries({}) == "1"  # the fleet backs off: docs/agents.md#rate-limits
    assert retries({"env": {"CLAUDE_CODE_MAX_RETRIES": "4"}}) == "4"  # the agent's env wins
    assert retries({"rateLimit": "off"}) == "7"  # its own retries, as the user set them
    command = spec_with({"command": ["a"]})
    assert "CLAUDE_CODE_MAX_RETRIES" not in request(command, tmp_path)[0].local_env({})


def test_the_codex_preset_runs_exec_in_its_sandbox_with_a_home_of_its_own(
    tmp_path: Path,
) -> None:
    spec = spec_with({"preset": "codex", "args": ["--model", "gpt-5-codex"]})
    req, paths = request(spec, tmp_path, prompt="SECRET PROMPT")
    assert req.argv == (
        "codex", "exec", "--json", "--sandbox", "workspace-write",
        "-c", "sandbox_workspace_write.exclude_slash_tmp=true", "--model", "gpt-5-codex",
    )  # fmt: skip
    assert req.stdin_path == paths.prompt_file("t1", 2) and req.stream == "codex"
    env = req.local_env({})
    assert env["CODEX_HOME"] == str(paths.agent_home("t1", 2) / "codex")
    assert env["TMPDIR"] == str(paths.agent_home("t1", 2) / "tmp")
    assert "CLAUDE_CONFIG_DIR" not in env and "CLAUDE_CODE_MAX_RETRIES" not in env
    prepare_files(req, "SECRET PROMPT", paths, "attempt 2")
    assert Path(env["CODEX_HOME"]).is_dir() and Path(env["TMPDIR"]).is_dir()
