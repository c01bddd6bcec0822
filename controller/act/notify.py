"""Notifications: the spec's `notify.command` told about the events that need a person.

After each pass the loop hands the events recorded since the last call to `Notifier.poll`;
those whose kind (`notification`) is in `notify.on` are queued, and one background thread runs
the command for each, the event as JSON on stdin, killed (its whole process group) after
`notify.timeout`. Nothing here waits for the command: the loop's pass never slows down, even
when the command hangs; a queue that fills up (a command slower than the events) drops the
oldest notification, with a log line. A failing command is logged (and the loop records a
`notify_failed` event: the store is only written from the loop's thread), never fatal. The
command is an argv list (no shell), run in the repository's folder with the controller's
environment.
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from loguru import logger

from controller.model.safe_text import redact
from controller.model.spec import Notify
from controller.state.store import EventRow

QUEUE_MAX = 200
FAILED_OUTCOMES = frozenset({"failed", "timeout", "lost"})


def notification(e: EventRow) -> str | None:
    """Which `notify.on` name an event is, if any."""
    data = e.data if isinstance(e.data, dict) else {}
    if e.kind == "exit" and data.get("outcome") in FAILED_OUTCOMES:
        return "failed"
    if e.kind in ("spawn_failed", "verify_failed"):
        return "failed"
    if e.kind == "stop" and data.get("outcome") == "timeout":
        return "failed"
    if e.kind in ("rejected", "exhausted", "converged"):
        return e.kind
    if e.kind == "merge":
        return "merged"
    if e.kind.startswith("budget"):
        return "budget"
    if e.kind.startswith("rate_limit"):
        return "rate_limited"
    return None


def event_json(e: EventRow, name: str, spec_file: str, repo: str) -> str:
    """The JSON a notify command reads on stdin (one object, then a newline)."""
    iso = time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(e.ts))
    body: dict[str, Any] = {
        "notification": name,
        "kind": e.kind,
        "task": e.task,
        "message": redact(e.message),
        "data": e.data,
        "id": e.id,
        "ts": e.ts,
        "time": iso,
        "spec": spec_file,
        "repo": repo,
    }
    return json.dumps(body, default=str) + "\n"


@dataclass(frozen=True)
class Job:
    argv: tuple[str, ...]
    payload: str
    timeout: float
    cwd: Path
    name: str
    event_id: int


class Notifier:
    """Runs notifications in the background, one at a time, in event order."""

    def __init__(self) -> None:
        self.jobs: queue.Queue[Job | None] = queue.Queue(maxsize=QUEUE_MAX)
        # (job, what went wrong): drained by the loop's thread, which records them
        self.failures: queue.SimpleQueue[tuple[Job, str]] = queue.SimpleQueue()
        self.last_id: int | None = None  # the newest event already considered
        self.sent = 0
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._current: subprocess.Popen[bytes] | None = None
        self._closing = False

    def start_after(self, event_id: int) -> None:
        """Consider only events after `event_id` (the history before the controller started
        was notified, or not, by an earlier controller)."""
        self.last_id = event_id

    def poll(
        self, notify: Notify | None, events: list[EventRow], spec_file: str, repo: Path
    ) -> int:
        """Queue the notifications among `events` (newer than the last poll); how many."""
        if events:
            self.last_id = max(self.last_id or 0, events[-1].id)
        if notify is None:
            return 0
        queued = 0
        for e in events:
            name = notification(e)
            if name is None or name not in notify.on:
                continue
            payload = event_json(e, name, spec_file, str(repo))
            self._put(Job(tuple(notify.command), payload, notify.timeout, repo, name, e.id))
            queued += 1
        return queued

    def _put(self, job: Job) -> None:
        self._ensure_thread()
        while True:
            try:
                self.jobs.put_nowait(job)
                return
            except queue.Full:
                with contextlib.suppress(queue.Empty):
                    dropped = self.jobs.get_nowait()
                    if dropped is not None:
                        logger.warning(f"notify: queue full, dropped event {dropped.event_id}")

    def _ensure_thread(self) -> None:
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name="notify", daemon=True)
                self._thread.start()

    def _work(self) -> None:
        while True:
            job = self.jobs.get()
            if job is None:
                return
            error = self._run(job)
            if error is None:
                self.sent += 1
                continue
            logger.warning(f"notification {job.name!r} of event {job.event_id} not sent: {error}")
            self.failures.put((job, error))

    def drain_failures(self) -> list[tuple[Job, str]]:
        """The notifications that failed since the last call (for the loop to record)."""
        out = []
        while True:
            try:
                out.append(self.failures.get_nowait())
            except queue.Empty:
                return out

    def _run(self, job: Job) -> str | None:
        """Run one notification; None when it exited 0, else what went wrong."""
        try:
            proc = subprocess.Popen(
                list(job.argv),
                stdin=subprocess.PIPE,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.PIPE,
                cwd=job.cwd,
                start_new_session=True,  # its own process group: a timeout kills it all
            )
        except OSError as exc:
            return f"cannot run {job.argv[0]}: {exc.strerror or exc}"
        self._current = proc
        try:
            _, stderr = proc.communicate(job.payload.encode(), timeout=job.timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            return f"still running after {job.timeout:g}s: killed"
        finally:
            self._current = None
        if proc.returncode != 0 and self._closing:
            return "killed: the controller stopped"
        if proc.returncode != 0:
            tail = stderr.decode(errors="replace").strip().splitlines()[-1:] if stderr else []
            return f"exit {proc.returncode}" + (f": {tail[0][:200]}" if tail else "")
        return None

    def close(self, wait: float) -> None:
        """Let queued notifications run for up to `wait` seconds, then stop the worker: what
        is still queued is dropped (and logged), a command still running is killed."""
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        with contextlib.suppress(queue.Full):
            self.jobs.put_nowait(None)
        thread.join(wait)
        if not thread.is_alive():
            return
        dropped = 0
        while True:
            try:
                job = self.jobs.get_nowait()
            except queue.Empty:
                break
            dropped += job is not None
        if dropped:
            logger.warning(f"notify: {dropped} notification(s) not sent: the controller stopped")
        self._closing = True
        self.jobs.put(None)
        proc = self._current
        if proc is not None:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(proc.pid, signal.SIGKILL)
        thread.join(2.0)
