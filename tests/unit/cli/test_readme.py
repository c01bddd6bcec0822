"""The README's command table lists every command of the CLI, each with its exit codes."""

from __future__ import annotations

import re

import typer

from controller.cli.app import app
from tests.support import ROOT

ROW = re.compile(r"^\| `orchestrator ([a-z-]+)[^|]*\| [^|]+ \| ([^|]+) \|$")


def test_every_command_is_in_the_readme_table_with_its_exit_codes() -> None:
    commands = set(typer.main.get_command(app).commands)  # type: ignore[attr-defined]
    rows = {}
    for line in (ROOT / "README.md").read_text(encoding="utf-8").splitlines():
        m = ROW.match(line)
        if m:
            rows[m.group(1)] = m.group(2)
    assert commands - set(rows) == set(), "commands missing from README's table"
    assert set(rows) - commands == set(), "README's table names commands that do not exist"
    for name, codes in rows.items():
        assert re.match(r"^0\b", codes.strip()), f"{name}: exit codes should start with 0: {codes}"
    assert "4 a one-shot pass" in rows["reconcile"] and "3 spec invalid" in rows["status"]
