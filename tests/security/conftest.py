"""The security suite: one test per finding of the adversarial review (docs/security.md).

Each test reproduces an attack with a real repository and a hostile agent script
(`tests/support/agents/hostile_agent.py`) and checks that the controller was not turned
against the user's data. They run the controller, so they count as end-to-end (`e2e`).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.marking import mark_folder

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    mark_folder(items, HERE, pytest.mark.e2e)
