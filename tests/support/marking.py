"""Marking every test under a folder (for the `e2e` marker of tests/e2e and tests/security)."""

from __future__ import annotations

from pathlib import Path

import pytest


def mark_folder(items: list[pytest.Item], folder: Path, marker: pytest.MarkDecorator) -> None:
    for item in items:
        if item.path.resolve().is_relative_to(folder):
            item.add_marker(marker)
