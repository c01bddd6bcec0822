"""Reader of the runs directory the agent shim writes (`state/runs/<task>/<n>.*`).

The shim records, outside the controller process, what only it can see: the agent's pid and
create time when it starts (`<n>.start.json`), how it ended (`<n>.exit.json`), what a preset
agent's stream said (`<n>.stream.json`), and the agent may add its usage (`<n>.usage.json`)
and a progress percentage (`<n>.progress`). Because these files are the world's account of a run,
the controller can die and restart at any moment and still learn what happened. A record the
shim was still writing (half-written or corrupt JSON) is treated as missing, never a crash;
the next pass reads it complete.
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from controller.model.names import task_id_problem
from controller.model.observed import AgentReport
from controller.observe.reports import read_report
from controller.state.paths import StatePaths

_RECORD_RE = re.compile(r"^([0-9]{1,9})\.(start|exit|stream|usage)\.json$")


@dataclass(frozen=True)
class StartRecord:
    pid: int | None = None
    create_time: float | None = None
    started_at: float | None = None
    handle: str | None = None  # a remote runner's id for the attempt (e.g. "ray:<job id>")


@dataclass(frozen=True)
class ExitRecord:
    exit_code: int | None = None
    ended_at: float | None = None
    timed_out: bool = False
    signal: int | None = None
    setup_failed: bool = False  # the agent's `setup` failed; the agent never ran
    setup_error: str = ""


@dataclass(frozen=True)
class RunRecord:
    """What the runs directory says about one attempt; any record may be missing."""

    task: str
    number: int
    start: StartRecord | None = None
    exit: ExitRecord | None = None
    report: AgentReport | None = None  # the stream record, else the agent's usage file


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _float(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) else None


def load_record(path: Path) -> dict[str, Any] | None:
    """A start/exit record as a dict, or None when missing or unreadable (never raises)."""
    try:
        data = json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def parse_start(data: dict[str, Any]) -> StartRecord:
    return StartRecord(
        pid=_int(data.get("pid")),
        create_time=_float(data.get("create_time")),
        started_at=_float(data.get("started_at")),
        handle=data["handle"] if isinstance(data.get("handle"), str) else None,
    )


def parse_exit(data: dict[str, Any]) -> ExitRecord:
    return ExitRecord(
        exit_code=_int(data.get("exit_code")),
        ended_at=_float(data.get("ended_at")),
        timed_out=data.get("timed_out") is True,
        signal=_int(data.get("signal")),
        setup_failed=data.get("setup_failed") is True,
        setup_error=data["setup_error"][:500] if isinstance(data.get("setup_error"), str) else "",
    )


def read_task_runs(
    task_dir: Path, task: str, settled: frozenset[int] = frozenset()
) -> dict[int, RunRecord]:
    """Records of one task directory, keyed by attempt number (except `settled` ones)."""
    starts: dict[int, StartRecord] = {}
    exits: dict[int, ExitRecord] = {}
    reports: dict[tuple[int, str], AgentReport] = {}
    try:
        entries = list(os.scandir(task_dir))
    except OSError:
        return {}
    for entry in entries:
        m = _RECORD_RE.match(entry.name)
        if not m:
            continue
        number, kind = int(m.group(1)), m.group(2)
        if number in settled:
            continue
        if kind in ("stream", "usage"):
            report = read_report(Path(entry.path))
            if report is not None:
                reports[(number, kind)] = report
            continue
        data = load_record(Path(entry.path))
        if data is None:
            continue
        if kind == "start":
            starts[number] = parse_start(data)
        else:
            exits[number] = parse_exit(data)
    # a report alone makes no attempt: only the shim's records say one was started
    numbers = starts.keys() | exits.keys()
    return {
        n: RunRecord(
            task=task,
            number=n,
            start=starts.get(n),
            exit=exits.get(n),
            report=reports.get((n, "stream")) or reports.get((n, "usage")),
        )
        for n in sorted(numbers)
    }


def read_runs(
    paths: StatePaths, settled: Mapping[str, frozenset[int]] | None = None
) -> dict[str, dict[int, RunRecord]]:
    """Every task's run records: task id -> attempt number -> record.

    Directories whose name is not a valid task id are ignored, as are unknown files.
    `settled` names attempts whose verdict the store already holds (with their pid, times
    and exit code): their files are not read again, which keeps a long-lived state
    directory cheap to observe.
    """
    settled = settled or {}
    out: dict[str, dict[int, RunRecord]] = {}
    try:
        entries = list(os.scandir(paths.runs))
    except OSError:
        return out
    for entry in entries:
        if not entry.is_dir() or task_id_problem(entry.name):
            continue
        records = read_task_runs(Path(entry.path), entry.name, settled.get(entry.name, frozenset()))
        if records:
            out[entry.name] = records
    return out


def parse_progress(text: str) -> float | None:
    """Percentage from the last non-empty line ("42", "42.5%"), clamped to 0..100."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    if not lines:
        return None
    value = lines[-1].removesuffix("%").strip()
    try:
        number = float(value)
    except ValueError:
        return None
    if math.isnan(number):
        return None
    return min(100.0, max(0.0, number))


def read_progress(path: Path) -> float | None:
    """The progress an agent wrote to its progress file, or None if absent or unreadable."""
    try:
        text = Path(path).read_text(errors="replace")
    except OSError:
        return None
    return parse_progress(text)
