"""Helpers shared by the unit and end-to-end tests (no tests here), and where things are.

`repo` makes real git repositories, `project` a scratch project driven through the real CLI,
`planning` hand-built planner inputs, `views` the status/summary arithmetic and CLI helpers,
`raycluster` a local Ray head; `agents/` holds the fake agent, `data/` the spec corpus.
"""

from __future__ import annotations

from pathlib import Path

SUPPORT = Path(__file__).resolve().parent
ROOT = SUPPORT.parent.parent  # the repository: the `controller` package is importable from it
DATA = SUPPORT / "data"
FAKE_AGENT = str(SUPPORT / "agents" / "fake_agent.py")
HOSTILE_AGENT = str(SUPPORT / "agents" / "hostile_agent.py")
