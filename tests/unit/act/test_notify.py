"""Notifications: which events are which, the JSON on stdin, and that nothing waits for the
command (a hanging one is killed at its timeout, a failing one is reported, not raised)."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import psutil
import pytest
from ruamel.yaml import YAML

from controller.act.notify import Notifier, notification
from controller.model.spec import Notify
from controller.state.store import EventRow
from tests.support import ROOT


def event(kind: str, event_id: int = 1, task: str | None = "t", **data: object) -> EventRow:
    return EventRow(event_id, 1_700_000_000.0, task, kind, f"{kind} happened", data or None)


@pytest.mark.parametrize(
    ("row", "name"),
    [
        (event("exit", outcome="failed"), "failed"),
        (event("exit", outcome="timeout"), "failed"),
        (event("exit", exit_code=0), None),
        (event("spawn_failed"), "failed"),
        (event("verify_failed"), "failed"),
        (event("stop", outcome="timeout"), "failed"),
        (event("stop", outcome="stopped"), None),
        (event("rejected"), "rejected"),
        (event("exhausted"), "exhausted"),
        (event("merge"), "merged"),
        (event("converged", task=None), "converged"),
        (event("budget_exceeded"), "budget"),
        (event("rate_limited"), "rate_limited"),
        (event("spawn"), None),
    ],
)
def test_which_events_notify(row: EventRow, name: str | None) -> None:
    assert notification(row) == name


def writer(path: Path) -> list[str]:
    code = f"import sys; open({str(path)!r}, 'a').write(sys.stdin.read())"
    return [sys.executable, "-c", code]


def wait_for(predicate: object, timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.02)
    return False


def test_the_event_reaches_stdin_as_json(tmp_path: Path) -> None:
    got = tmp_path / "got.jsonl"
    n = Notifier()
    spec = Notify.model_validate({"command": writer(got), "on": ["exhausted"]})
    events = [event("spawn", 1), event("exhausted", 2, attempt=3, reason="exit 1")]
    assert n.poll(spec, events, "specs/o.yaml", tmp_path) == 1
    assert wait_for(lambda: got.exists() and got.read_text().endswith("\n"))
    (line,) = got.read_text().splitlines()
    body = json.loads(line)
    assert body["notification"] == body["kind"] == "exhausted"
    assert (body["task"], body["id"], body["data"]) == ("t", 2, {"attempt": 3, "reason": "exit 1"})
    assert body["spec"] == "specs/o.yaml" and body["repo"] == str(tmp_path)
    assert n.last_id == 2
    n.close(5)
    assert n.sent == 1 and n.drain_failures() == []


def test_a_hanging_command_never_blocks_and_is_killed_at_its_timeout(tmp_path: Path) -> None:
    started = tmp_path / "started"
    code = f"import time; open({str(started)!r}, 'w').write('x'); time.sleep(60)"
    spec = Notify.model_validate(
        {"command": [sys.executable, "-c", code], "on": ["failed"], "timeout": 0.3}
    )
    n = Notifier()
    n.poll(spec, [event("spawn_failed", 1), event("spawn_failed", 2)], "s", tmp_path)
    # poll handed both over and returned while the first was still to be killed
    assert n.drain_failures() == []
    assert wait_for(started.exists)
    pids = [p.pid for p in psutil.process_iter(["cmdline"]) if code in (p.info["cmdline"] or [])]
    assert pids, "the notify command should be running"
    failures: list[tuple[object, str]] = []
    assert wait_for(lambda: len(failures.extend(n.drain_failures()) or failures) == 2)
    assert [error for _, error in failures] == ["still running after 0.3s: killed"] * 2
    assert not any(psutil.pid_exists(p) and psutil.Process(p).status() != "zombie" for p in pids)
    n.close(3)


def test_a_failing_or_missing_command_is_reported_not_raised(tmp_path: Path) -> None:
    n = Notifier()
    fails = Notify.model_validate(
        {"command": [sys.executable, "-c", "import sys; sys.exit('no route')"], "on": ["merged"]}
    )
    missing = Notify.model_validate({"command": [str(tmp_path / "nope")], "on": ["merged"]})
    n.poll(fails, [event("merge", 1)], "s", tmp_path)
    n.poll(missing, [event("merge", 2)], "s", tmp_path)
    n.close(10)
    errors = [error for _, error in n.drain_failures()]
    assert errors[0] == "exit 1: no route"
    assert errors[1].startswith("cannot run ")


def test_without_notify_events_are_only_counted_as_seen(tmp_path: Path) -> None:
    n = Notifier()
    n.start_after(7)
    assert n.poll(None, [event("exhausted", 8)], "s", tmp_path) == 0
    assert n.last_id == 8 and n._thread is None


# --------------------------------------------------------------------------- the docs' examples

GUIDE = ROOT / "docs" / "guide.md"


def documented(program: str) -> list[str]:
    """The `notify.command` of the yaml example in docs/guide.md that runs `program`."""
    text = GUIDE.read_text(encoding="utf-8")
    for block in re.findall(r"```yaml\n(.*?)```", text, flags=re.DOTALL):
        data = YAML(typ="safe").load(block)
        command = (data or {}).get("notify", {}).get("command")
        if isinstance(command, list) and command[0] == program:
            Notify.model_validate(data["notify"])  # a valid spec section as written
            return [str(arg) for arg in command]
    raise AssertionError(f"docs/guide.md has no notify example running {program}")


def test_the_desktop_example_calls_notify_send(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls = tmp_path / "calls"
    fake = tmp_path / "bin" / "notify-send"
    fake.parent.mkdir()
    fake.write_text(
        f"#!{sys.executable}\nimport sys\nopen({str(calls)!r}, 'a').write(repr(sys.argv[1:]))\n"
    )
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{fake.parent}{os.pathsep}{os.environ['PATH']}")
    command = documented("python3")
    n = Notifier()
    n.poll(Notify.model_validate({"command": command, "on": ["exhausted"]}),
           [event("exhausted", 5)], "s", tmp_path)  # fmt: skip
    n.close(20)
    assert n.drain_failures() == []
    assert calls.read_text() == repr(["orchestrator: exhausted", "t exhausted happened"])


def test_the_webhook_example_posts_the_json(tmp_path: Path) -> None:
    if shutil.which("curl") is None:
        pytest.fail("curl is not installed: the documented webhook example needs it")
    got: list[tuple[str, bytes]] = []

    class Hook(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (the http.server API)
            body = self.rfile.read(int(self.headers["Content-Length"]))
            got.append((self.headers["Content-Type"], body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = HTTPServer(("127.0.0.1", 0), Hook)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        command = documented("curl")
        url = f"http://127.0.0.1:{server.server_port}/orchestrator"
        command = [url if arg.startswith("https://") else arg for arg in command]
        n = Notifier()
        n.poll(Notify.model_validate({"command": command, "on": ["failed"]}),
               [event("exit", 9, outcome="failed")], "s", tmp_path)  # fmt: skip
        n.close(20)
        assert n.drain_failures() == []
    finally:
        server.shutdown()
    ((content_type, body),) = got
    assert content_type == "application/json"
    assert json.loads(body)["notification"] == "failed" and json.loads(body)["id"] == 9
