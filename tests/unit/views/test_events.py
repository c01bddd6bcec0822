"""`orchestrator events`: the `--kind` list. The log, its filters and `--follow` against a live
controller are in `tests/e2e/test_events.py`."""

from __future__ import annotations

from controller.views.events import split_kinds


def test_split_kinds() -> None:
    assert split_kinds(None) is None and split_kinds([" , "]) is None
    assert split_kinds(["merge,exit", "spawn"]) == ["merge", "exit", "spawn"]
