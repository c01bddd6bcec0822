"""Scripted fake of the OpenAI Responses API, for driving the real Codex CLI offline (tests).

Standard library only, the sibling of `anthropic_server` (whose scripts, `Turn`, `say`,
`call` and `RateLimiter` it shares). Point Codex at it with a model provider whose
`base_url` is ``http://127.0.0.1:PORT/v1`` and ``wire_api = "responses"`` (see
`tests.support.codex.agent`).

A request ``POST /v1/responses`` is answered with a server-sent event stream:
``response.created``, for each output item ``response.output_item.added`` and
``response.output_item.done`` (a ``message`` with ``output_text``, or a ``function_call`` of
Codex's ``exec_command`` tool: `shell`), then ``response.completed`` with the usage. The
script is chosen by a ``[script:NAME]`` marker in the request's input (the last known one
wins); the step is the number of ``function_call_output`` items in it, so the server keeps no
conversation state and a retried request gets the same answer. Past the end of a script it
answers `final_text`.

Rate limiting: `set_rate_limit(n, window)` and `fail_next(k)` as in `anthropic_server`; a
429 carries ``retry-after`` and OpenAI's ``x-ratelimit-*`` headers and an error body with
``code: rate_limit_exceeded``. `stats()` counts requests, answers and 429s.
"""

from __future__ import annotations

import json
import math
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from tests.support.anthropic_server import (
    SCRIPT_MARKER,
    RateLimiter,
    Script,
    ToolCall,
    Turn,
    Usage,
    say,
)

RATE_LIMIT_MESSAGE = "Rate limit reached for requests per min. Please try again in 1s."


def shell(command: str) -> ToolCall:
    """A call of Codex's `exec_command` tool: `command` runs in the agent's working dir."""
    return ToolCall("exec_command", {"cmd": command})


class OpenAIServer:
    """The scripted server. ``start()`` serves from a daemon thread; also a context manager."""

    def __init__(self, *, usage: Usage | None = None, final_text: str = "Done.") -> None:
        self.usage = usage or Usage()
        self.final_text = final_text
        self.scripts: dict[str, Script] = {}
        self.default_script: Script = [say("Hello from the scripted server.")]
        self.limiter = RateLimiter()
        self.counts = {"requests": 0, "served": 0, "rate_limited": 0}
        self.log: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.app = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._httpd.server_address[1]}/v1"

    def add_script(self, name: str, turns: Script) -> None:
        with self._lock:
            self.scripts[name] = list(turns)

    def set_rate_limit(
        self, limit: int | None, window: float = 60.0, *, retry_after: float | None = None
    ) -> None:
        self.limiter.configure(limit, window, False, retry_after)

    def fail_next(self, count: int, retry_after: float = 1.0) -> None:
        self.limiter.fail_next(count, retry_after)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            return {**self.counts, "log": list(self.log)}

    def start(self) -> OpenAIServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._thread:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    def __enter__(self) -> OpenAIServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- used by the handler -------------------------------------------------------------------

    def _record(self, entry: dict[str, Any], **counters: int) -> None:
        with self._lock:
            self.log.append(entry)
            for name, delta in counters.items():
                self.counts[name] += delta

    def _turn(self, items: list[Any]) -> tuple[str, Turn, int]:
        text = json.dumps(items)
        with self._lock:
            known = [n for n in SCRIPT_MARKER.findall(text) if n in self.scripts]
            name = known[-1] if known else "default"
            script = self.scripts.get(name, self.default_script)
        step = sum(
            1 for i in items if isinstance(i, dict) and i.get("type") == "function_call_output"
        )
        return name, script[step] if step < len(script) else say(self.final_text), step

    def _events(self, body: dict[str, Any]) -> tuple[bytes, dict[str, Any]]:
        items = body.get("input") if isinstance(body.get("input"), list) else []
        name, turn, step = self._turn(items)
        output: list[dict[str, Any]] = []
        if turn.text:
            output.append(
                {
                    "type": "message",
                    "id": f"msg_{uuid.uuid4().hex[:16]}",
                    "role": "assistant",
                    "status": "completed",
                    "content": [{"type": "output_text", "text": turn.text, "annotations": []}],
                }
            )
        for call in turn.tool_calls:
            output.append(
                {
                    "type": "function_call",
                    "id": f"fc_{uuid.uuid4().hex[:16]}",
                    "call_id": f"call_{uuid.uuid4().hex[:16]}",
                    "name": call.name,
                    "arguments": json.dumps(call.input),
                    "status": "completed",
                }
            )
        if turn.delay:
            time.sleep(turn.delay)
        usage = (turn.usage or self.usage).as_dict()
        response_id = f"resp_{uuid.uuid4().hex[:16]}"
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": {"id": response_id, "status": "in_progress"}}
        ]
        for i, item in enumerate(output):
            events.append({"type": "response.output_item.added", "output_index": i, "item": item})
            events.append({"type": "response.output_item.done", "output_index": i, "item": item})
        cached = usage["cache_read_input_tokens"]
        events.append(
            {
                "type": "response.completed",
                "response": {
                    "id": response_id,
                    "status": "completed",
                    "output": output,
                    "usage": {
                        "input_tokens": usage["input_tokens"] + cached,
                        "input_tokens_details": {"cached_tokens": cached},
                        "output_tokens": usage["output_tokens"],
                        "output_tokens_details": {"reasoning_tokens": 0},
                        "total_tokens": usage["input_tokens"] + cached + usage["output_tokens"],
                    },
                },
            }
        )
        data = b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)
        return data, {"script": name, "step": step}


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    @property
    def app(self) -> OpenAIServer:
        return self.server.app  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        self._send(200, b'{"object": "list", "data": []}', "application/json")

    def do_POST(self) -> None:  # noqa: N802
        length = int(self.headers.get("content-length") or 0)
        try:
            body = json.loads(self.rfile.read(length) or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            body = {}
        path = self.path.split("?", 1)[0]
        entry: dict[str, Any] = {"time": time.time(), "path": path}
        if path != "/v1/responses" or not isinstance(body, dict):
            self.app._record({**entry, "status": 404}, requests=1)
            self._send(404, b'{"error": {"message": "not found"}}', "application/json")
            return
        allowed, wait = self.app.limiter.check()
        if not allowed:
            seconds = max(0, math.ceil(wait))
            self.app._record({**entry, "status": 429}, requests=1, rate_limited=1)
            error = {
                "message": RATE_LIMIT_MESSAGE,
                "type": "requests",
                "code": "rate_limit_exceeded",
            }
            headers = {
                "retry-after": str(seconds),
                "x-ratelimit-limit-requests": str(self.app.limiter.limit or 0),
                "x-ratelimit-remaining-requests": "0",
                "x-ratelimit-reset-requests": f"{seconds}s",
            }
            self._send(429, json.dumps({"error": error}).encode(), "application/json", headers)
            return
        data, info = self.app._events(body)
        self.app._record({**entry, "status": 200, **info}, requests=1, served=1)
        self._send(200, data, "text/event-stream")

    def _send(
        self, status: int, payload: bytes, kind: str, headers: dict[str, str] | None = None
    ) -> None:
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(payload)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(payload)
