"""Regressions the chaos harness (`bench/chaos.py`) found in the watch loop: a full disk crashed
it. The controller runs in this process, with a real agent process.

Each test names the fault that exposed the bug and pins the fix, so that the harness's
figures (docs/reliability.md) stay true without rerunning it. The other layers' regression
tests sit beside their own tests: `tests/unit/*/test_regressions.py`, `tests/e2e/`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest

from controller.loop.controller import Controller
from controller.specfile.load import load_spec
from tests.support.project import Project, task

pytestmark = pytest.mark.timeout(60)

# --- the watch loop under a full disk ---------------------------------------------------------


def test_watch_survives_a_pass_that_fails_with_a_full_disk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    p = Project(tmp_path, backlog=[task("a", "sleep 0.1")])
    controller = Controller(p.spec_file, load_spec(p.spec_file))
    real = controller.run_pass
    calls = {"n": 0}

    def flaky(*, sync_merges: bool):  # type: ignore[no-untyped-def]
        calls["n"] += 1
        if calls["n"] <= 2:
            raise sqlite3.OperationalError("database or disk is full")
        return real(sync_merges=sync_merges)

    monkeypatch.setattr(controller, "run_pass", flaky)
    with controller:
        assert controller.watch(max_seconds=2.5) == 0
    assert calls["n"] > 2
