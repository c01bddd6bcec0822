"""Scripted fake of the Anthropic Messages API, for driving real agent CLIs offline (tests).

Standard library only. Point a client at it with ``ANTHROPIC_BASE_URL=http://127.0.0.1:PORT``.

Scripts
    A script is a list of :class:`Turn`. Each turn answers one main-loop request: either text
    (stop_reason ``end_turn``) or one or more tool calls, optionally preceded by text
    (stop_reason ``tool_use``). The step a request is on is derived from the request itself:
    the number of user messages that carry ``tool_result`` blocks. The server therefore keeps
    no per-conversation state, and a retried request (after a 429) gets the same answer. Past
    the end of a script the server answers :attr:`AnthropicServer.final_text`.

    The script is chosen per request by a ``[script:NAME]`` marker in the messages (normally
    in the prompt); with several, the last known one wins (so text the orchestrator appends
    to a prompt, e.g. a failed verify's output, can choose the script of a retry); without
    one (or with only unknown names) the default script is used.
    Strings in tool inputs may contain ``{cwd}``, replaced by the working directory the client
    reports in its prompt (Claude Code's "Primary working directory: ..." line).

    Requests without ``tools`` (side requests such as title generation) are answered with
    :attr:`AnthropicServer.side_text` and never consume script steps.

Rate limiting
    ``set_rate_limit(n, window)`` allows ``n`` ``POST /v1/messages`` requests per window across
    all clients (fixed or sliding window); beyond that it answers HTTP 429 with an
    Anthropic-style error body and ``retry-after`` / ``anthropic-ratelimit-*`` headers.
    ``fail_next(k)`` answers the next ``k`` message requests with 429 regardless.

Stats
    :meth:`AnthropicServer.stats` and ``GET /_stats``: counters and a log of every request.

CLI
    ``python anthropic_server.py --port 8787 --script scripts.json --rate-limit 5/60``

    Script file format::

        {"default": "hello",
         "scripts": {"hello": [
             {"text": "Creating it.",
              "tool_calls": [{"name": "Write",
                              "input": {"file_path": "{cwd}/x.txt", "content": "hi\\n"}}]},
             {"text": "Done.", "usage": {"input_tokens": 10, "output_tokens": 5}}]}}
"""

from __future__ import annotations

import argparse
import collections
import json
import math
import re
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

SCRIPT_MARKER = re.compile(r"\[script:([A-Za-z0-9_.\-]+)\]")
CWD_PATTERN = re.compile(r"(?:Primary working directory|Working directory): *(\S+)")
DEFAULT_MODEL = "claude-sonnet-4-5-20250929"
RATE_LIMIT_MESSAGE = "Number of requests has exceeded your per-minute rate limit"


@dataclass(frozen=True)
class Usage:
    """Token usage reported for one response (in ``message_start`` and ``message_delta``)."""

    input_tokens: int = 100
    output_tokens: int = 50
    cache_creation_input_tokens: int = 0
    cache_read_input_tokens: int = 0

    def as_dict(self) -> dict[str, int]:
        return {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cache_creation_input_tokens": self.cache_creation_input_tokens,
            "cache_read_input_tokens": self.cache_read_input_tokens,
        }


@dataclass(frozen=True)
class ToolCall:
    name: str
    input: dict[str, Any]


@dataclass(frozen=True)
class Turn:
    """One assistant response: optional text, then zero or more tool calls."""

    text: str = ""
    tool_calls: tuple[ToolCall, ...] = ()
    usage: Usage | None = None  # None: the server's default usage
    delay: float = 0.0  # seconds to wait before answering

    @property
    def stop_reason(self) -> str:
        return "tool_use" if self.tool_calls else "end_turn"

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Turn:
        calls = tuple(ToolCall(c["name"], dict(c["input"])) for c in data.get("tool_calls", []))
        usage = Usage(**data["usage"]) if data.get("usage") else None
        return cls(data.get("text", ""), calls, usage, float(data.get("delay", 0.0)))


Script = list[Turn]


def say(message: str, **kwargs: Any) -> Turn:
    """A final text turn."""
    return Turn(text=message, **kwargs)


def call(*calls: ToolCall, text: str = "", **kwargs: Any) -> Turn:
    """A turn of one or more (parallel) tool calls."""
    return Turn(text=text, tool_calls=calls, **kwargs)


def write(file_path: str, content: str) -> ToolCall:
    return ToolCall("Write", {"file_path": file_path, "content": content})


def edit(file_path: str, old: str, new: str) -> ToolCall:
    return ToolCall("Edit", {"file_path": file_path, "old_string": old, "new_string": new})


def bash(command: str, description: str = "Run a command") -> ToolCall:
    return ToolCall("Bash", {"command": command, "description": description})


def read(file_path: str) -> ToolCall:
    return ToolCall("Read", {"file_path": file_path})


def load_scripts(path: str | Path) -> tuple[dict[str, Script], str | None]:
    """Reads a script file; returns (scripts by name, name of the default script or None)."""
    data = json.loads(Path(path).read_text())
    scripts = {name: [Turn.from_json(t) for t in turns] for name, turns in data["scripts"].items()}
    return scripts, data.get("default")


class RateLimiter:
    """Allows ``limit`` hits per ``window`` seconds (fixed or sliding), plus forced failures."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.limit: int | None = None
        self.window = 60.0
        self.sliding = False
        self.retry_after: float | None = None  # None: seconds until a slot frees up
        self._hits: collections.deque[float] = collections.deque()
        self._window_start = 0.0
        self._window_count = 0
        self._forced = 0
        self._forced_retry_after = 1.0

    def configure(
        self, limit: int | None, window: float, sliding: bool, retry_after: float | None
    ) -> None:
        with self._lock:
            self.limit, self.window, self.sliding = limit, window, sliding
            self.retry_after = retry_after
            self._hits.clear()
            self._window_start, self._window_count = time.monotonic(), 0

    def fail_next(self, count: int, retry_after: float) -> None:
        with self._lock:
            self._forced, self._forced_retry_after = count, retry_after

    def check(self) -> tuple[bool, float]:
        """Counts one hit; returns (allowed, seconds until the client may retry)."""
        now = time.monotonic()
        with self._lock:
            if self._forced > 0:
                self._forced -= 1
                return False, self._forced_retry_after
            if self.limit is None:
                return True, 0.0
            if self.sliding:
                while self._hits and self._hits[0] <= now - self.window:
                    self._hits.popleft()
                if len(self._hits) < self.limit:
                    self._hits.append(now)
                    return True, 0.0
                wait = self._hits[0] + self.window - now
            else:
                if now - self._window_start >= self.window:
                    self._window_start, self._window_count = now, 0
                if self._window_count < self.limit:
                    self._window_count += 1
                    return True, 0.0
                wait = self._window_start + self.window - now
            return False, wait if self.retry_after is None else self.retry_after


@dataclass
class Stats:
    requests: int = 0  # every HTTP request
    message_requests: int = 0  # POST /v1/messages, whatever the answer
    served: int = 0  # message requests answered 200
    rate_limited: int = 0  # message requests answered 429
    paths: collections.Counter[str] = field(default_factory=collections.Counter)
    log: list[dict[str, Any]] = field(default_factory=list)


class AnthropicServer:
    """The scripted server. ``start()`` serves from a daemon thread; also a context manager."""

    def __init__(
        self,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        model: str | None = None,
        usage: Usage | None = None,
        default_script: Script | None = None,
        side_text: str = "Scripted task",
        final_text: str = "Done (script exhausted).",
        log_bodies: bool = False,
    ) -> None:
        self.model = model  # model name to report; None: echo the request's model
        self.usage = usage or Usage()
        self.scripts: dict[str, Script] = {}
        self.default_script: Script = default_script or [say("Hello from the scripted server.")]
        self.side_text = side_text
        self.final_text = final_text
        self.log_bodies = log_bodies  # keep request headers and bodies in the log
        self.retry_after_header = True  # False: 429s carry no retry-after header
        self.limiter = RateLimiter()
        self._stats = Stats()
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer((host, port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.app = self  # type: ignore[attr-defined]
        self._thread: threading.Thread | None = None

    # -- Python API ----------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def add_script(self, name: str, turns: Script) -> None:
        with self._lock:
            self.scripts[name] = list(turns)

    def load_script_file(self, path: str | Path) -> None:
        scripts, default = load_scripts(path)
        with self._lock:
            self.scripts.update(scripts)
            if default is not None:
                self.default_script = self.scripts[default]

    def set_rate_limit(
        self,
        limit: int | None,
        window: float = 60.0,
        *,
        sliding: bool = False,
        retry_after: float | None = None,
    ) -> None:
        """Allows ``limit`` message requests per ``window`` seconds; ``None`` turns it off.

        ``retry_after`` fixes the retry-after header; by default it is the time until the
        window frees a slot, rounded up to whole seconds.
        """
        self.limiter.configure(limit, window, sliding, retry_after)

    def fail_next(self, count: int, retry_after: float = 1.0) -> None:
        """Answers the next ``count`` message requests with 429."""
        self.limiter.fail_next(count, retry_after)

    def stats(self) -> dict[str, Any]:
        with self._lock:
            s = self._stats
            return {
                "requests": s.requests,
                "message_requests": s.message_requests,
                "served": s.served,
                "rate_limited": s.rate_limited,
                "paths": dict(s.paths),
                "log": list(s.log),
            }

    def reset_stats(self) -> None:
        with self._lock:
            self._stats = Stats()

    def start(self) -> AnthropicServer:
        self._thread = threading.Thread(target=self._httpd.serve_forever, daemon=True)
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._httpd.serve_forever()

    def stop(self) -> None:
        if self._thread:
            self._httpd.shutdown()
            self._thread.join(timeout=5)
        self._httpd.server_close()

    def __enter__(self) -> AnthropicServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- internals used by the handler ---------------------------------------------------------

    def _count(self, method: str, path: str) -> None:
        with self._lock:
            self._stats.requests += 1
            self._stats.paths[f"{method} {path}"] += 1

    def _record(self, entry: dict[str, Any], **counters: int) -> None:
        with self._lock:
            self._stats.log.append(entry)
            for name, delta in counters.items():
                setattr(self._stats, name, getattr(self._stats, name) + delta)

    def _pick(self, messages: list[dict[str, Any]]) -> tuple[str, Turn, int]:
        named = SCRIPT_MARKER.findall(_all_text(messages))
        with self._lock:
            known = [n for n in named if n in self.scripts]
            name = known[-1] if known else "default"
            script = self.scripts.get(name, self.default_script)
        step = _count_tool_results(messages)
        return name, script[step] if step < len(script) else say(self.final_text), step

    def _respond(self, body: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
        """Returns the assistant message for one ``POST /v1/messages`` and log details."""
        messages = body.get("messages") or []
        if body.get("tools"):
            name, turn, step = self._pick(messages)
            info: dict[str, Any] = {"kind": "main", "script": name, "step": step}
        else:
            turn, info = say(self.side_text), {"kind": "side"}
        cwd_match = CWD_PATTERN.search(_all_text([body.get("system"), messages]))
        cwd = cwd_match.group(1) if cwd_match else None
        content: list[dict[str, Any]] = [{"type": "text", "text": turn.text}] if turn.text else []
        for tool in turn.tool_calls:
            content.append(
                {
                    "type": "tool_use",
                    "id": f"toolu_{uuid.uuid4().hex[:24]}",
                    "name": tool.name,
                    "input": _substitute(tool.input, cwd),
                }
            )
        if turn.delay:
            time.sleep(turn.delay)
        message = {
            "id": f"msg_{uuid.uuid4().hex[:24]}",
            "type": "message",
            "role": "assistant",
            "model": self.model or body.get("model") or DEFAULT_MODEL,
            "content": content,
            "stop_reason": turn.stop_reason,
            "stop_sequence": None,
            "usage": (turn.usage or self.usage).as_dict(),
        }
        return message, info


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive; every response has a content-length

    @property
    def app(self) -> AnthropicServer:
        return self.server.app  # type: ignore[attr-defined,no-any-return]

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def do_GET(self) -> None:  # noqa: N802
        path = self._path()
        if path == "/_stats":
            self._json(200, self.app.stats())
            return
        self.app._record(self._entry(200))
        if path == "/v1/models":
            model = {"type": "model", "id": self.app.model or DEFAULT_MODEL}
            self._json(200, {"data": [model], "has_more": False})
        else:  # connectivity probes, e.g. HEAD /api/hello
            self._json(200, {})

    do_HEAD = do_GET  # noqa: N815

    def do_POST(self) -> None:  # noqa: N802
        path = self._path()
        body = self._body()
        extra = {"headers": dict(self.headers), "body": body} if self.app.log_bodies else {}
        if path == "/v1/messages/count_tokens":
            self.app._record(self._entry(200, **extra))
            self._json(200, {"input_tokens": len(json.dumps(body)) // 4})
            return
        if path != "/v1/messages":
            self.app._record(self._entry(404, **extra))
            self._json(404, _error("not_found_error", f"Not found: {path}"))
            return
        allowed, wait = self.app.limiter.check()
        if not allowed:
            self._rate_limited(wait, extra)
            return
        message, info = self.app._respond(body)
        stream = bool(body.get("stream"))
        entry = self._entry(200, stream=stream, **info, **extra)
        self.app._record(entry, message_requests=1, served=1)
        if stream:
            self._send(200, _sse_stream(message), "text/event-stream")
        else:
            self._json(200, message)

    def _rate_limited(self, wait: float, extra: dict[str, Any]) -> None:
        retry_after = max(0, math.ceil(wait))
        reset = (datetime.now(UTC) + timedelta(seconds=max(wait, 0.0))).strftime(
            "%Y-%m-%dT%H:%M:%SZ"
        )
        headers = {
            "x-should-retry": "true",
            "anthropic-ratelimit-requests-limit": str(self.app.limiter.limit or 0),
            "anthropic-ratelimit-requests-remaining": "0",
            "anthropic-ratelimit-requests-reset": reset,
            "anthropic-ratelimit-tokens-reset": reset,
            "anthropic-ratelimit-input-tokens-reset": reset,
            "anthropic-ratelimit-output-tokens-reset": reset,
        }
        if self.app.retry_after_header:
            headers["retry-after"] = str(retry_after)
        entry = self._entry(429, retry_after=retry_after, **extra)
        self.app._record(entry, message_requests=1, rate_limited=1)
        self._json(429, _error("rate_limit_error", RATE_LIMIT_MESSAGE), headers)

    def _path(self) -> str:
        path = self.path.split("?", 1)[0]
        self.app._count(self.command, path)
        return path

    def _body(self) -> dict[str, Any]:
        length = int(self.headers.get("content-length") or 0)
        try:
            data = json.loads(self.rfile.read(length) or b"{}")
        except (json.JSONDecodeError, UnicodeDecodeError):
            return {}
        return data if isinstance(data, dict) else {}

    def _entry(self, status: int, **extra: Any) -> dict[str, Any]:
        entry = {"time": time.time(), "method": self.command, "path": self.path}
        return entry | {"status": status, **extra}

    def _send(
        self,
        status: int,
        payload: bytes,
        content_type: str = "application/json",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.send_response(status)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(payload)))
        self.send_header("request-id", f"req_{uuid.uuid4().hex[:24]}")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _json(self, status: int, data: Any, headers: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(data).encode(), headers=headers)


def _sse_stream(message: dict[str, Any]) -> bytes:
    """Renders a complete message as the Messages API's SSE event sequence."""
    events: list[tuple[str, dict[str, Any]]] = []
    start = dict(message, content=[], stop_reason=None)
    start["usage"] = dict(message["usage"], output_tokens=1)
    events.append(("message_start", {"message": start}))
    for index, block in enumerate(message["content"]):
        if block["type"] == "text":
            first: dict[str, Any] = {"type": "text", "text": ""}
            delta = {"type": "text_delta", "text": block["text"]}
        else:
            first = dict(block, input={})
            delta = {"type": "input_json_delta", "partial_json": json.dumps(block["input"])}
        events.append(("content_block_start", {"index": index, "content_block": first}))
        events.append(("content_block_delta", {"index": index, "delta": delta}))
        events.append(("content_block_stop", {"index": index}))
    stop = {"stop_reason": message["stop_reason"], "stop_sequence": None}
    events.append(("message_delta", {"delta": stop, "usage": message["usage"]}))
    events.append(("message_stop", {}))
    return b"".join(
        f"event: {name}\ndata: {json.dumps({'type': name, **data})}\n\n".encode()
        for name, data in events
    )


def _error(kind: str, message: str) -> dict[str, Any]:
    return {"type": "error", "error": {"type": kind, "message": message}}


def _substitute(value: Any, cwd: str | None) -> Any:
    if isinstance(value, str):
        return value.replace("{cwd}", cwd) if cwd else value
    if isinstance(value, dict):
        return {k: _substitute(v, cwd) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, cwd) for v in value]
    return value


def _all_text(node: Any) -> str:
    """Concatenates the text of a messages/system structure (strings, text and content)."""
    if isinstance(node, str):
        return node
    if isinstance(node, list):
        return "\n".join(_all_text(n) for n in node)
    if isinstance(node, dict):
        return "\n".join(_all_text(node.get(k)) for k in ("text", "content"))
    return ""


def _count_tool_results(messages: list[dict[str, Any]]) -> int:
    return sum(
        1
        for m in messages
        if m.get("role") == "user"
        and isinstance(m.get("content"), list)
        and any(isinstance(b, dict) and b.get("type") == "tool_result" for b in m["content"])
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Scripted Anthropic Messages API server.")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: pick a free port")
    parser.add_argument("--script", help="JSON script file (see the module docstring)")
    parser.add_argument("--rate-limit", metavar="N/SECONDS", help="e.g. 5/60")
    parser.add_argument("--sliding", action="store_true", help="sliding instead of fixed window")
    parser.add_argument("--retry-after", type=float, help="fixed retry-after seconds on 429")
    parser.add_argument("--fail-next", type=int, default=0, help="answer the first K with 429")
    parser.add_argument("--model", help="model name to report (default: echo the request)")
    parser.add_argument("--usage", metavar="IN,OUT[,CACHE_WRITE,CACHE_READ]")
    parser.add_argument("--log-bodies", action="store_true", help="log headers+bodies (/_stats)")
    args = parser.parse_args(argv)

    usage = Usage(*(int(x) for x in args.usage.split(","))) if args.usage else None
    server = AnthropicServer(
        args.host, args.port, model=args.model, usage=usage, log_bodies=args.log_bodies
    )
    if args.script:
        server.load_script_file(args.script)
    if args.rate_limit:
        limit, window = args.rate_limit.split("/")
        server.set_rate_limit(
            int(limit), float(window), sliding=args.sliding, retry_after=args.retry_after
        )
    if args.fail_next:
        server.fail_next(args.fail_next, args.retry_after or 1.0)
    print(f"listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()


if __name__ == "__main__":
    main()
