"""The real Claude Code CLI for tests: the pinned version, where it is, how to install it.

`.ci/run` installs it before the tests (`python -m tests.support.claude --install`) into the
git-ignored `.cache/claude-code` of the project; `claude_binary()` finds it there and, when
it is missing on a developer's machine, installs it the same way (npm, about 400 MB, a few
seconds with a warm npm cache). A test that needs it fails with a clear message when it
cannot be had: it never skips silently.

The CLI runs offline against the scripted Messages API server (`anthropic_server`): see
`agent()` for the environment it gets, and docs/agents.md for what was measured.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from tests.support import ROOT

VERSION = "2.1.332"
PACKAGE = f"@anthropic-ai/claude-code@{VERSION}"
CACHE = ROOT / ".cache" / "claude-code"
BINARY = CACHE / "node_modules" / ".bin" / "claude"
# The agents' home: an empty folder, so that the login shell Claude Code's Bash tool starts
# runs none of this machine's shell start-up files (a pyenv `rehash` there takes a lock file
# that an agent killed by a test leaves behind, and every later shell then waits 60 s on it)
HOME = CACHE / "home"
# priced by the model name the CLI asks for (measured with 2.1.332): USD per million tokens
MODEL = "claude-sonnet-4-5-20250929"
PRICES = {"input": 3.0, "output": 15.0, "cache_write": 3.75, "cache_read": 0.30}


class ClaudeUnavailable(RuntimeError):
    """The pinned CLI is not installed and could not be installed."""


def installed_version(binary: Path = BINARY, prefix: str = "") -> str | None:
    """The version `binary --version` prints (after `prefix`, e.g. "codex-cli"), or None."""
    try:
        out = subprocess.run([str(binary), "--version"], capture_output=True, text=True, timeout=30)
    except OSError:
        return None
    words = out.stdout.split()
    if prefix and words[:1] == [prefix]:
        words = words[1:]
    return words[0] if out.returncode == 0 and words else None


def npm_install(package: str, cache: Path, name: str, version: str, prefix: str = "") -> Path:
    """`npm install` the pinned `package` into `cache`; returns the path of its binary `name`."""
    npm = shutil.which("npm")
    if npm is None:
        raise ClaudeUnavailable(
            f"npm is not installed, so the real CLI ({package}) cannot be installed for the "
            "tests: install Node.js and npm (e.g. apt-get install npm)"
        )
    cache.mkdir(parents=True, exist_ok=True)
    argv = [npm, "install", "--prefix", str(cache), "--no-audit", "--no-fund", "--save-exact"]
    done = subprocess.run([*argv, package], capture_output=True, text=True, timeout=600)
    binary = cache / "node_modules" / ".bin" / name
    if done.returncode != 0 or installed_version(binary, prefix) != version:
        raise ClaudeUnavailable(
            f"`npm install {package}` into {cache} failed (exit {done.returncode}):\n"
            f"{done.stderr[-2000:]}"
        )
    return binary


def install(cache: Path = CACHE) -> Path:
    """`npm install` the pinned CLI into `cache`; returns the binary's path."""
    return npm_install(PACKAGE, cache, "claude", VERSION)


def claude_binary() -> Path:
    """The pinned CLI, installed first if needed (raises ClaudeUnavailable)."""
    if installed_version() == VERSION:
        return BINARY
    return install()


def cost_of(requests: int, usage: dict[str, int]) -> float:
    """What `requests` responses with `usage` each cost at `MODEL`'s prices (USD)."""
    per = (
        usage.get("input_tokens", 0) * PRICES["input"]
        + usage.get("output_tokens", 0) * PRICES["output"]
        + usage.get("cache_creation_input_tokens", 0) * PRICES["cache_write"]
        + usage.get("cache_read_input_tokens", 0) * PRICES["cache_read"]
    ) / 1e6
    return per * requests


def agent(binary: Path, base_url: str, **extra: Any) -> dict[str, Any]:
    """A spec agent running the real CLI against the scripted server at `base_url`."""
    HOME.mkdir(parents=True, exist_ok=True)
    env = {
        "HOME": str(HOME),
        "ANTHROPIC_BASE_URL": base_url,
        "ANTHROPIC_API_KEY": "sk-ant-test",
        "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
        "DISABLE_TELEMETRY": "1",
        "DISABLE_ERROR_REPORTING": "1",
        "CLAUDE_CODE_MAX_RETRIES": "1",
        **extra.pop("env", {}),
    }
    return {
        "preset": "claude-code",
        "program": str(binary),
        "args": ["--model", MODEL],
        "owns": ["**"],
        "env": env,
        **extra,
    }


def install_command(argv: list[str] | None, prog: str, find: Callable[[], Path], label: str) -> int:
    """`python -m PROG --install`: the pinned CLI `find` returns (installing it if missing)."""
    parser = argparse.ArgumentParser(prog=prog)
    parser.add_argument("--install", action="store_true", help=f"install {label} if missing")
    args = parser.parse_args(argv)
    if not args.install:
        parser.print_help()
        return 0
    try:
        binary = find()
    except ClaudeUnavailable as exc:  # CodexUnavailable too
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print(f"{label} at {os.path.relpath(binary)}")
    return 0


def main(argv: list[str] | None = None) -> int:
    return install_command(
        argv, "python -m tests.support.claude", claude_binary, f"Claude Code {VERSION}"
    )


if __name__ == "__main__":
    sys.exit(main())
