"""Everything under tests/e2e is marked `e2e`: `pytest -m "not e2e"` is the quick suite.

These tests run the real controller and CLI with real agent processes (or a real Ray head),
so they take seconds each; the unit tests under tests/unit take milliseconds.
"""

from __future__ import annotations

from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        if item.path.resolve().is_relative_to(HERE):
            item.add_marker(pytest.mark.e2e)
