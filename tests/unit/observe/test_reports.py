"""What agents report about their runs: stream records and usage files, read as hostile."""

from __future__ import annotations

import json
import os
from pathlib import Path

from controller.model.observed import Usage
from controller.observe.reports import parse_report
from controller.observe.runs import RunRecord, read_task_runs
from controller.state import files


def runs_in(folder: Path) -> dict[int, RunRecord]:
    fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY)
    try:
        return read_task_runs(fd, "t1")
    finally:
        os.close(fd)


def test_a_usage_file_of_a_command_agent(tmp_path: Path) -> None:
    path = tmp_path / "1.usage.json"
    path.write_text(json.dumps({"input_tokens": 1200, "output_tokens": 300, "cost_usd": 0.0081,
                                "turns": 4}))  # fmt: skip
    (tmp_path / "1.exit.json").write_text('{"exit_code": 0}')
    report = runs_in(tmp_path)[1].report
    assert report is not None and report.turns == 4
    assert report.usage == Usage(1200, 300, 0, 0, 0.0081)


def test_bad_values_are_dropped_not_believed() -> None:
    report = parse_report(
        {
            "usage": {"input_tokens": -1, "output_tokens": 2.5, "cost_usd": float("inf")},
            "turns": True,
            "last_action": "Edit \x1b[2Jx.py\n" + "y" * 500,
            "denials": ["Write /x", 7, None, ""],
            "api_retries": 10**12,
        }
    )
    assert report is not None and report.usage is None and report.turns is None
    assert report.last_action is not None and report.last_action.startswith("Edit [2Jx.py y")
    assert len(report.last_action) == 200
    assert report.denials == ("Write /x",) and report.api_retries == 0


def test_unreadable_oversized_or_planted_files_are_no_report(tmp_path: Path) -> None:
    for n in (1, 2, 3):
        (tmp_path / f"{n}.exit.json").write_text('{"exit_code": 0}')
    (tmp_path / "1.usage.json").write_text(
        '{"cost_usd": 1, "pad": "' + "x" * files.RECORD_LIMIT + '"}'
    )
    (tmp_path / "2.usage.json").write_text("{not json")
    os.mkfifo(tmp_path / "3.usage.json")  # a pipe an agent planted: never read, never blocks
    runs = runs_in(tmp_path)
    assert [runs[n].report for n in (1, 2, 3)] == [None, None, None]
    assert parse_report([1, 2]) is None


def test_the_runs_dir_prefers_the_shims_stream_record_to_the_agents_file(tmp_path: Path) -> None:
    (tmp_path / "1.usage.json").write_text('{"cost_usd": 0.0001}')  # what the agent claims
    (tmp_path / "1.stream.json").write_text(
        json.dumps({"usage": {"cost_usd": 0.25}, "turns": 3, "finished": True})
    )
    (tmp_path / "1.exit.json").write_text('{"exit_code": 0}')
    (tmp_path / "2.exit.json").write_text('{"exit_code": 0}')
    (tmp_path / "2.usage.json").write_text('{"cost_usd": 0.5}')
    (tmp_path / "9.usage.json").write_text('{"cost_usd": 0.5}')  # no such attempt
    runs = runs_in(tmp_path)
    assert sorted(runs) == [1, 2]  # a report alone makes no attempt
    assert runs[1].report is not None and runs[1].report.usage.cost_usd == 0.25
    assert runs[2].report is not None and runs[2].report.usage.cost_usd == 0.5
