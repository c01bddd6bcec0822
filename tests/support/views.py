"""Helpers for the view tests (status, summary, events, dashboard), unit and end-to-end.

A private copy of the fake agent per test (clean-ups elsewhere match the original's path),
the store's rows read with plain sqlite, this module's own interval arithmetic to check the
product's figures against, the CLI run in-process, and a dashboard frame read back as text.
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import signal
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import psutil
from rich.cells import cell_len
from rich.console import Console
from typer.testing import CliRunner

from controller.cli.app import app
from controller.views.dashboard import Frame, render
from tests.support.project import FAKE_AGENT, Project


def own_agent(tmp: Path) -> str:
    """A private copy of the fake agent: clean-ups elsewhere match the original's path."""
    dst = tmp / "agent" / "view_agent.py"
    dst.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(FAKE_AGENT, dst)
    return str(dst)


def agents_spec(agent: str, *names: str) -> dict[str, Any]:
    return {name: {"command": [sys.executable, agent], "owns": ["**"]} for name in names}


def kill_own_agents(agent: str) -> None:
    for proc in psutil.process_iter(["pid", "cmdline"]):
        try:
            if agent in (proc.info["cmdline"] or []):
                proc.kill()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue


def kill_controller(proc: subprocess.Popen[str]) -> None:
    """SIGKILL the controller (its own session); agents live on in theirs."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(proc.pid, signal.SIGKILL)
    proc.wait(timeout=10)


def store_rows(p: Project) -> list[dict[str, Any]]:
    con = sqlite3.connect(f"file:{p.state / 'orchestrator.db'}?mode=ro", uri=True)
    con.row_factory = sqlite3.Row
    try:
        return [dict(r) for r in con.execute("SELECT * FROM attempts ORDER BY task, number")]
    finally:
        con.close()


def rows_or_empty(p: Project) -> list[dict[str, Any]]:
    try:
        return store_rows(p)
    except sqlite3.Error:
        return []


def started(p: Project, task_id: str) -> bool:
    return any(r["task"] == task_id and r["started_at"] for r in rows_or_empty(p))


def recorded_spans(
    p: Project, rows: list[dict[str, Any]], now: float | None = None
) -> list[tuple[float, float]]:
    """(start, end) of each attempt from its store row; where the row lacks a time (the
    controller was killed between starting the agent and recording it), from the shim's
    start/exit record, the world's account. Unfinished attempts end at `now`."""
    spans = []
    for r in rows:
        start, end = r["started_at"], r["ended_at"]
        runs = p.state / "runs" / r["task"]
        if start is None and (runs / f"{r['number']}.start.json").exists():
            start = json.loads((runs / f"{r['number']}.start.json").read_text())["started_at"]
        if end is None and (runs / f"{r['number']}.exit.json").exists():
            end = json.loads((runs / f"{r['number']}.exit.json").read_text())["ended_at"]
        if start is not None and (end is not None or now is not None):
            spans.append((start, end if end is not None else now))
    return spans


def shim_start(p: Project, task_id: str, number: int = 1) -> float:
    record = p.state / "runs" / task_id / f"{number}.start.json"
    return float(json.loads(record.read_text())["started_at"])


def busy_figures(spans: list[tuple[float, float]], limit: int) -> dict[str, float]:
    """Speedup and friends by elementary segments: between consecutive endpoints, count the
    intervals covering the midpoint (independent of the product's sweep line)."""
    spans = [(s, e) for s, e in spans if e > s]
    points = sorted({t for span in spans for t in span})
    busy = overlap = 0.0
    for a, b in zip(points, points[1:], strict=False):
        mid = (a + b) / 2
        depth = sum(1 for s, e in spans if s <= mid < e)
        busy += (b - a) if depth >= 1 else 0.0
        overlap += (b - a) if depth >= 2 else 0.0
    work = sum(e - s for s, e in spans)
    speedup = work / busy if busy else 0.0
    return {
        "work_s": work,
        "busy_s": busy,
        "speedup": speedup,
        "efficiency": speedup / limit,
        "parallelization_rate": overlap / busy if busy else 0.0,
        "time_saved_s": work - busy,
    }


def invoke(p: Project, *args: str) -> tuple[int, str, str]:
    """Run a read-only command in this process (the real CLI code without the interpreter
    start-up; `Project.cli` runs it as a process). Returns (exit code, stdout, stderr)."""
    result = CliRunner().invoke(app, [*args, "-f", str(p.spec_file)])
    return result.exit_code, result.stdout, result.stderr


def cli_json(p: Project, *args: str) -> Any:
    result = p.cli(*args, "-o", "json")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def screen(frame: Frame, width: int = 80, height: int = 24) -> list[str]:
    console = Console(
        record=True, width=width, height=height, file=io.StringIO(), force_terminal=True
    )
    console.print(render(frame, width, height))
    lines = console.export_text().rstrip("\n").split("\n")
    assert len(lines) <= height, lines
    assert all(cell_len(line) <= width for line in lines), lines
    return lines
