"""The pure core loads nothing that does I/O (checked in a fresh interpreter)."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

FORBIDDEN = (
    "sqlite3",
    "subprocess",
    "psutil",
    "git",  # GitPython
    "controller.observe",
    "controller.state",
    "controller.act",
    "controller.git",
    "controller.loop",
    "controller.specfile",
)

PROBE = """
import json, sys
import {module}
print(json.dumps(sorted(sys.modules)))
"""


@pytest.mark.parametrize(
    "module",
    [
        "controller.core.plan",
        "controller.core.schedule",
        "controller.core.lifecycle",
        "controller.core.outcomes",
        "controller.core.metrics",
        "controller.core.graph",
        "controller.core.attribution",
    ],
)
def test_core_module_loads_no_io(module: str) -> None:
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(module=module)],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    loaded = set(json.loads(out))
    assert module in loaded
    found = sorted(m for m in loaded for f in FORBIDDEN if m == f or m.startswith(f + "."))
    assert found == [], f"{module} pulls in {found}"


def test_the_probe_can_fail() -> None:
    """The same probe sees a module that does load I/O (so the test above can fail)."""
    out = subprocess.run(
        [sys.executable, "-c", PROBE.format(module="controller.state.store")],
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout
    assert "sqlite3" in json.loads(out)
