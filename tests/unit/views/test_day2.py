"""The day-2 views without processes: the status colours on the right characters, the banner
of an invalid spec, logs read safely (and followed through a trim), the dashboard's keys and
screens, the resource legend, the spec a controller records for `status`."""

from __future__ import annotations

import io
import os
import threading
import time
from dataclasses import replace
from pathlib import Path

import pytest
from rich.console import Console

from controller.model.problems import Problem
from controller.model.spec import Threshold, spec_generation
from controller.model.spec_record import spec_from_record, spec_record
from controller.state import files
from controller.views.live import Screen, parse_keys
from controller.views.logs import RESUMED, follow, read_text, tail_lines
from controller.views.screens import Ui, help_screen, log_screen, window
from controller.views.sparklines import rule_label
from controller.views.status import PHASE_STYLE, StatusModel
from controller.views.text import invalid_spec_banner, status_lines, styled
from tests.support.planning import make_spec
from tests.unit.views.test_dashboard import _busy_frame


def _status(n: int = 6) -> StatusModel:
    return _busy_frame(n).status


def test_the_phase_column_is_coloured_whatever_the_task_names() -> None:
    """`styled` once looked for the first gap in the line, which for a short task name lies
    in the task column's padding: the colour then fell on the wrong characters."""
    m = _status()
    short = replace(m, tasks=tuple(replace(v, task=f"t{i}") for i, v in enumerate(m.tasks)))
    short = replace(
        short, tasks=(replace(short.tasks[0], task="a-much-longer-task"), *short.tasks[1:])
    )
    lines = status_lines(short)
    text = styled(lines, short)
    start = len(lines) - len(short.tasks)
    offsets = [len("\n".join(lines[:i])) + (1 if i else 0) for i in range(len(lines))]
    for row, view in enumerate(short.tasks):
        line_start = offsets[start + row]
        coloured = [
            text.plain[s.start : s.end]
            for s in text.spans
            if line_start <= s.start < line_start + len(lines[start + row])
        ]
        assert coloured == [view.phase], (lines[start + row], coloured)
        assert PHASE_STYLE.get(view.phase)


def test_an_invalid_spec_is_said_on_top_with_its_problems() -> None:
    m = _status()
    problems = [Problem("specs/o.yaml", 3, 14, "maxParallel", "Input should be an integer")]
    banner = invalid_spec_banner(m, problems)
    assert banner[0].startswith("! ") and "is invalid (1 problem)" in banner[0]
    assert "showing the last valid spec" in banner[0]
    assert banner[1] == "!   specs/o.yaml:3:14: maxParallel: Input should be an integer"
    assert invalid_spec_banner(m, []) == []
    text = styled([*banner, *status_lines(m)], m, banner=len(banner))
    assert any(s.style == "yellow" and s.start == 0 for s in text.spans)


def test_the_spec_a_controller_records_comes_back_the_same(tmp_path: Path) -> None:
    spec = make_spec(["a", "b"], base_dir=tmp_path / "specs", maxParallel=2)
    spec._completed = frozenset({"done-1"})
    again = spec_from_record(spec_record(spec))
    assert again is not None
    assert spec_generation(again) == spec_generation(spec)
    assert again.state_path == spec.state_path and again.completed == spec.completed
    assert again.source.is_absolute()
    assert spec_from_record("{}") is None and spec_from_record("not json") is None


def _log(root: Path, text: bytes) -> Path:
    path = root / "logs" / "t1" / "1.log"
    path.parent.mkdir(parents=True)
    path.write_bytes(text)
    return path


def test_a_log_is_read_in_chunks_and_undecodable_bytes_survive(tmp_path: Path) -> None:
    path = _log(tmp_path, b"one\n" + "\u00e9".encode() * 40000 + b"\xff\n")
    text = "".join(read_text(tmp_path, path))
    assert text.startswith("one\n") and text.count("\u00e9") == 40000
    assert text.endswith("\udcff\n")  # the byte kept, shown as \xff where it is printed
    (last,) = tail_lines(tmp_path, path, 1)
    assert last.endswith("\u00e9\udcff")


def test_a_planted_symlink_or_pipe_is_never_read(tmp_path: Path) -> None:
    secret = tmp_path / "secret"
    secret.write_text("the user's file")
    (tmp_path / "state" / "logs" / "t1").mkdir(parents=True)
    link = tmp_path / "state" / "logs" / "t1" / "1.log"
    link.symlink_to(secret)
    with pytest.raises(files.UnsafeFile):
        "".join(read_text(tmp_path / "state", link))
    fifo = link.with_name("2.log")
    os.mkfifo(fifo)
    started = time.monotonic()
    with pytest.raises(files.UnsafeFile):
        "".join(read_text(tmp_path / "state", fifo))
    assert time.monotonic() - started < 5  # not blocked on the pipe


def _trim_in_place(path: Path, keep: int, note: bytes) -> None:
    """What the log cap does: the newest `keep` bytes moved to the start, behind a note."""
    with open(path, "r+b") as fh:
        tail = fh.read()[-keep:]
        fh.seek(0)
        fh.write(note + tail)
        fh.truncate()


def test_follow_reads_as_the_log_grows_and_goes_on_after_a_trim(tmp_path: Path) -> None:
    path = _log(tmp_path, b"".join(b"line %05d " % i + b"x" * 90 + b"\n" for i in range(100)))
    done = threading.Event()

    def agent() -> None:
        time.sleep(0.5)
        with open(path, "ab") as fh:
            fh.write(b"second\n")
        time.sleep(0.5)
        _trim_in_place(path, 5000, b"[orchestrator: 5200 bytes dropped]\n")
        with open(path, "ab") as fh:
            fh.write(b"third\n")
        time.sleep(0.5)
        done.set()

    thread = threading.Thread(target=agent)
    thread.start()
    text = "".join(follow(tmp_path, path, done.is_set))
    thread.join()
    assert text.count("line 00099") == 1 and text.count("second") == 1  # nothing twice
    assert text.index("second") < text.index(RESUMED) < text.index("third")
    assert text.endswith("third\n")
    # a log rewritten with none of what was printed: on from its end, said so
    path.write_bytes(b"")
    assert "".join(follow(tmp_path, path, lambda: True)) == ""


def test_keys_from_the_terminal() -> None:
    assert parse_keys("jk\x1b[A\x1b[Bl\r\x1bq?") == [
        "down", "up", "up", "down", "l", "enter", "esc", "q", "?"
    ]  # fmt: skip
    assert parse_keys("\x1b[5~r") == ["r"]  # an unknown sequence (page up) is dropped


class _Dash:
    def __init__(self) -> None:
        self.frame = _busy_frame(6)
        self.spec = self.frame.status  # not read by these keys
        self.interval = 1.0

    def refresh(self) -> object:
        return self.frame


def test_the_keys_select_open_act_and_go_back() -> None:
    asked: list[tuple[str, str]] = []
    screen = Screen(_Dash(), lambda kind, task: asked.append((kind, task)) or f"{kind} ok")  # type: ignore[arg-type]
    screen.refresh()
    order = screen.order()
    assert screen.ui.selected == order[0]
    assert screen.key("down") and screen.ui.selected == order[1]
    assert screen.key("up") and screen.key("up") and screen.ui.selected == order[0]
    assert screen.key("r") and asked == [("retry", order[0])] and screen.ui.message == "retry ok"
    assert screen.key("s") and asked[-1] == ("stop", order[0])
    assert screen.key("l") and screen.ui.screen == "log" and not screen.ui.verify
    assert screen.key("v") and screen.ui.verify
    assert screen.key("esc") and screen.ui.screen == "tasks"
    assert screen.key("?") and screen.ui.screen == "help"
    assert screen.key("q") and screen.ui.screen == "tasks"  # q leaves the help first
    assert not screen.key("q")  # then quits


def test_screens_fit_and_the_selection_stays_in_view() -> None:
    assert window(10, 4, None) == (0, 4) and window(10, 4, 2) == (0, 4)
    assert window(10, 4, 7) == (4, 8) and window(3, 4, 2) == (0, 3)
    ui = Ui()
    ui.move(["a", "b"], 5)
    assert ui.selected == "b"
    console = Console(record=True, width=60, height=10, file=io.StringIO())
    console.print(log_screen("log of t1", [f"line {i}" for i in range(50)], "", 60, 10))
    shown = console.export_text().splitlines()
    assert len(shown) == 10 and shown[0].startswith("log of t1") and shown[-2] == "line 49"
    assert "Esc back" in shown[-1]
    console.print(help_screen(60, 12))
    assert "retry it" in console.export_text()


def test_the_legend_says_what_each_rule_allows() -> None:
    rules = [
        Threshold(below=50, parallel=4),
        Threshold(below=80, parallel=2),
        Threshold(parallel=1),
    ]
    assert [rule_label(rules, i) for i in range(3)] == ["<50%→4", "<80%→2", "≥80%→1"]
    assert rule_label([Threshold(parallel=8)], 0) == "any→8"
