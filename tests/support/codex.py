"""The real Codex CLI for tests: the pinned version, where it is, how to install it.

Like `tests.support.claude`: `.ci/run` installs it (`python -m tests.support.codex
--install`) into the git-ignored `.cache/codex` with npm; `codex_binary()` finds it there, or
installs it; a test that needs it fails, saying why, when it cannot be had (never a skip).
The CLI runs offline against the scripted Responses API server (`openai_server`): see
`agent()` for how it is pointed there, and docs/agents.md for what was measured.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

from tests.support import ROOT
from tests.support.claude import (
    ClaudeUnavailable,
    install_command,
    installed_version,
    npm_install,
)

VERSION = "0.171.0"
PACKAGE = f"@openai/codex@{VERSION}"
CACHE = ROOT / ".cache" / "codex"
BINARY = CACHE / "node_modules" / ".bin" / "codex"
MODEL = "gpt-5-codex"


class CodexUnavailable(ClaudeUnavailable):
    """The pinned CLI is not installed and could not be installed."""


def codex_binary() -> Path:
    """The pinned CLI, installed first if needed (raises CodexUnavailable)."""
    if installed_version(BINARY, prefix="codex-cli") == VERSION:
        return BINARY
    try:
        return npm_install(PACKAGE, CACHE, "codex", VERSION, prefix="codex-cli")
    except ClaudeUnavailable as exc:
        raise CodexUnavailable(str(exc)) from None


def provider_args(base_url: str) -> list[str]:
    """`-c` settings that point Codex at the scripted server (the `scripted` provider)."""
    settings = {
        "name": "scripted",
        "base_url": base_url,
        "wire_api": "responses",
        "env_key": "OPENAI_API_KEY",
    }  # dotted keys, not a TOML table: `{...}` in args would be a placeholder
    out = []
    for key, value in settings.items():
        out += ["-c", f'model_providers.scripted.{key}="{value}"']
    return [*out, "-c", "model_provider=scripted"]


def agent(binary: Path, base_url: str, **extra: Any) -> dict[str, Any]:
    """A spec agent running the real Codex CLI against the scripted server at `base_url`."""
    env = {"OPENAI_API_KEY": "sk-test", **extra.pop("env", {})}
    return {
        "preset": "codex",
        "program": str(binary),
        "args": ["--model", MODEL, *provider_args(base_url)],
        "owns": ["**"],
        "env": env,
        **extra,
    }


def main(argv: list[str] | None = None) -> int:
    return install_command(argv, "python -m tests.support.codex", codex_binary, f"Codex {VERSION}")


if __name__ == "__main__":
    sys.exit(main())
