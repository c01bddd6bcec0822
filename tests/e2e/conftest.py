"""Everything under tests/e2e is marked `e2e`: `pytest -m "not e2e"` is the quick suite.

An end-to-end test runs the product as a user does: the CLI as a process (`python -m
controller ...`, or in a pseudo-terminal), the controller's loop with real agent processes,
a real Ray head. Each takes from half a second to tens of seconds. A unit test calls one
layer's code in this process (under tests/unit/<layer>, mirroring controller/<layer>); it
may start git or an agent as that layer itself does, but not the controller or the CLI.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.anthropic_server import AnthropicServer
from tests.support.marking import mark_folder
from tests.support.openai_server import OpenAIServer

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_folder(items, HERE, pytest.mark.e2e)


@pytest.fixture(scope="session")
def claude_bin() -> Path:
    """The pinned real Claude Code CLI (installed into .cache/claude-code when missing).

    Never a skip: without it the tests that need it fail, saying why and how to fix it.
    """
    from tests.support.claude import ClaudeUnavailable, claude_binary

    try:
        return claude_binary()
    except ClaudeUnavailable as exc:
        pytest.fail(f"the real Claude Code CLI is needed for this test: {exc}", pytrace=False)


@pytest.fixture
def anthropic() -> Iterator[AnthropicServer]:
    """The scripted Messages API server the real CLI talks to (loopback only)."""
    with AnthropicServer() as server:
        yield server


@pytest.fixture(scope="session")
def codex_bin() -> Path:
    """The pinned real Codex CLI (installed into .cache/codex when missing); never a skip."""
    from tests.support.codex import CodexUnavailable, codex_binary

    try:
        return codex_binary()
    except CodexUnavailable as exc:
        pytest.fail(f"the real Codex CLI is needed for this test: {exc}", pytrace=False)


@pytest.fixture
def openai() -> Iterator[OpenAIServer]:
    """The scripted Responses API server the real Codex CLI talks to (loopback only)."""
    with OpenAIServer() as server:
        yield server
