"""Control characters an agent puts in a file name never reach the terminal raw.

Finding 8 of the review (docs/security.md): the rejection reason of a file written outside
the scope went raw to `status`, `events`, `diff`, `dashboard` and the watch output, so a
name holding `ESC ] 0 ; ... BEL` retitled the terminal and `ESC [ 2 K` erased lines.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.security.hostile import hostile_project, job, phase
from tests.support.project import stop_process, wait_until

pytestmark = pytest.mark.timeout(120)

NAME = "conf/evil\x1b]0;pwned\x07\x1b[2K\x9b31m.txt"  # OSC title, erase line, 8-bit CSI
ESCAPED = "conf/evil\\x1b]0;pwned\\x07\\x1b[2K\\x9b31m.txt"
RAW = ("\x1b", "\x07", "\x9b")


def test_escape_sequences_in_a_file_name_are_shown_escaped(tmp_path: Path) -> None:
    typed = NAME.encode("unicode_escape").decode()  # the prompt names it with escapes
    evil = job("evil", f"write-escaped {typed}: gotcha", "write src/ok.py: ok", "commit evil")
    p = hostile_project(tmp_path, backlog=[evil])
    proc = p.watch()
    try:
        rejected = wait_until(lambda: phase(p, "evil")[0] == "rejected", timeout=60)
    finally:
        watch_output = stop_process(proc)
    assert rejected, watch_output
    shown = {
        "watch": watch_output,
        "status": p.cli("status").stdout,
        "status -o wide": p.cli("status", "-o", "wide").stdout,
        "events": p.cli("events").stdout,
        "diff": p.cli("diff").stdout,
        "dashboard": p.cli("dashboard", "--once").stdout,
        "controller.log": (p.state / "logs" / "controller.log").read_text(),
    }
    raw = {name: [c for c in RAW if c in text] for name, text in shown.items()}
    assert all(not found for found in raw.values()), raw
    for name in ("watch", "status", "events", "diff", "controller.log"):
        assert ESCAPED in shown[name], (name, shown[name])
    # scripts still get the exact name
    status = json.loads(p.cli("status", "-o", "json").stdout)
    reason = next(t["reason"] for t in status["tasks"] if t["task"] == "evil")
    assert NAME in reason
    events = json.loads(p.cli("events", "-o", "json").stdout)
    assert [NAME] in [e["data"].get("paths") for e in events if e["kind"] == "rejected"]
