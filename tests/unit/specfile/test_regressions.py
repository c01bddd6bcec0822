"""Regressions the chaos harness (`bench/chaos.py`) found in the loader: an alias bomb hung it
(and so the watch loop).

Each test names the fault that exposed the bug and pins the fix, so that the harness's
figures (docs/reliability.md) stay true without rerunning it. The other layers' regression
tests sit beside their own tests: `tests/unit/*/test_regressions.py`, `tests/e2e/`.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.timeout(60)

# --- an alias bomb fed to the loader (bad-input scenario; the guard is in spec_load) -----------

ALIAS_BOMB = """apiVersion: orchestrator/v1
agents:
  dev: {command: [agent], owns: ["**"]}
x-anchors:
  a: &a [x, x, x, x, x, x, x, x, x, x]
  b: &b [*a, *a, *a, *a, *a, *a, *a, *a, *a, *a]
  c: &c [*b, *b, *b, *b, *b, *b, *b, *b, *b, *b]
  d: &d [*c, *c, *c, *c, *c, *c, *c, *c, *c, *c]
  e: &e [*d, *d, *d, *d, *d, *d, *d, *d, *d, *d]
  f: &f [*e, *e, *e, *e, *e, *e, *e, *e, *e, *e]
  g: &g [*f, *f, *f, *f, *f, *f, *f, *f, *f, *f]
  h: &h [*g, *g, *g, *g, *g, *g, *g, *g, *g, *g]
"""


def test_an_alias_bomb_is_rejected_quickly(tmp_path: Path) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text(ALIAS_BOMB)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "controller", "validate", "-f", str(spec)],
            capture_output=True,
            text=True,
            timeout=10,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    except subprocess.TimeoutExpired:
        pytest.fail("validate still running after 10 s")
    assert result.returncode == 1 and "spec.yaml:" in result.stderr
