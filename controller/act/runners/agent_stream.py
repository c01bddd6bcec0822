"""Reading an agent's output stream while it runs: the shim's side (standard library only).

Claude Code with `--output-format stream-json --verbose` prints one JSON object per line:
an `init` line, an `assistant` line per content block (text or a tool call), `user` lines
with tool results, `system` lines for API retries (`api_retry`, with the HTTP status, e.g.
429, and the delay before the retry; the record keeps when the latest 429 was read, for the
fleet's rate limiter) and permission refusals (`permission_denied`), and a final `result`
line with the run's usage, cost (`total_cost_usd`), `num_turns`, `permission_denials` and,
when it ended on an API error, `is_error` and `api_error_status`. The shim tails the
attempt's log (where the agent's stdout goes) and keeps a small record of what matters,
which it writes to `state/runs/<task>/<n>.stream.json` for the controller and the views.

`CodexStream` reads the Codex CLI's `codex exec --json` events into a record of the same
shape (tokens without cost; a 429 it retries is an `error` event naming the status).

The stream is hostile input: lines longer than `MAX_LINE` bytes are skipped whole, anything
that is not a JSON object of the expected shape is ignored, numbers are checked, and the
strings kept are shortened and stripped of control characters.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from typing import Any

MAX_LINE = 1 << 20  # bytes: a longer line (e.g. a huge tool result) is skipped, not parsed
MAX_TEXT = 120  # characters kept of an action or an error
MAX_DENIALS = 20
READ_CHUNK = 1 << 20  # bytes read from the log per poll
MAX_COUNT = 10**9  # tokens, turns, retries: anything above is not believed
MAX_COST_USD = 1e6
# tool name -> the input key that best says what the call does
_SUBJECT = {
    "Write": "file_path",
    "Edit": "file_path",
    "MultiEdit": "file_path",
    "Read": "file_path",
    "NotebookEdit": "notebook_path",
    "Bash": "command",
    "Grep": "pattern",
    "Glob": "pattern",
    "WebFetch": "url",
    "WebSearch": "query",
    "Task": "description",
    "Agent": "description",
}


def clean(text: object, limit: int = MAX_TEXT) -> str:
    """A printable one-line version of `text`, at most `limit` characters."""
    flat = " ".join(str(text).split())
    flat = "".join(ch for ch in flat if ch.isprintable())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"


def count(value: object) -> int | None:
    """A non-negative integer below `MAX_COUNT`, or None."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value < MAX_COUNT:
        return None
    return value


def cost(value: object) -> float | None:
    """A finite non-negative amount of USD below `MAX_COST_USD`, or None."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value) if math.isfinite(value) and 0 <= value < MAX_COST_USD else None


def json_object(raw: bytes) -> dict[str, Any] | None:
    """One line of an agent's JSON stream as an object; None when it is not one."""
    try:
        event = json.loads(raw)
    except (ValueError, RecursionError):
        return None
    return event if isinstance(event, dict) else None


class Lines:
    """Bytes in, complete lines out; a line over `MAX_LINE` bytes is dropped whole."""

    def __init__(self) -> None:
        self.buffer = b""
        self.skipping = False  # inside an over-long line: drop until its newline

    def feed(self, data: bytes) -> list[bytes]:
        out: list[bytes] = []
        self.buffer += data
        while True:
            end = self.buffer.find(b"\n")
            if end < 0:
                break
            line, self.buffer = self.buffer[:end], self.buffer[end + 1 :]
            if self.skipping:
                self.skipping = False
            elif len(line) <= MAX_LINE:
                out.append(line)
        if len(self.buffer) > MAX_LINE:
            self.buffer, self.skipping = b"", True
        return out


def _relative(path: str, cwd: str) -> str:
    prefix = cwd.rstrip("/") + "/"
    return path[len(prefix) :] if cwd and path.startswith(prefix) else path


class ClaudeStream:
    """What a Claude Code stream-json run has said so far (see the module docstring)."""

    def __init__(self, cwd: str = "", clock: Callable[[], float] = time.time) -> None:
        self.cwd = cwd
        self.clock = clock  # when a line was read: the time of a 429 the fleet backs off from
        self.messages: set[str] = set()  # assistant message ids: one per model turn
        self.turns: int | None = None
        self.last_action: str | None = None
        self.denials: list[str] = []
        self.api_retries = 0
        self.rate_limit_retries = 0
        self.retry_delay_s: float | None = None
        self.rate_limited_at: float | None = None
        self.usage: dict[str, Any] | None = None
        self.error: str | None = None
        self.api_error_status: int | None = None
        self.finished = False

    def line(self, raw: bytes) -> bool:
        """Take one line of the stream; True when the record changed."""
        event = json_object(raw)
        if event is None:
            return False
        kind = event.get("type")
        if kind == "assistant":
            return self._assistant(event.get("message"))
        if kind == "system":
            return self._system(event)
        if kind == "result":
            return self._result(event)
        return False

    def _assistant(self, message: object) -> bool:
        if not isinstance(message, dict):
            return False
        ident = message.get("id")
        if isinstance(ident, str) and len(self.messages) < MAX_COUNT:
            self.messages.add(ident[:64])
            self.turns = len(self.messages)
        content = message.get("content")
        for block in content if isinstance(content, list) else ():
            if isinstance(block, dict) and block.get("type") == "tool_use":
                self.last_action = self.action(block.get("name"), block.get("input"))
        return True

    def action(self, name: object, tool_input: object) -> str:
        """`Edit src/x.py`, `Bash pytest -q`: a tool call in a few words."""
        tool = clean(name, 40) if isinstance(name, str) and name else "tool"
        key = _SUBJECT.get(tool)
        subject = tool_input.get(key) if key and isinstance(tool_input, dict) else None
        if not isinstance(subject, str) or not subject:
            return tool
        return clean(f"{tool} {_relative(subject, self.cwd)}")

    def _system(self, event: dict[str, Any]) -> bool:
        subtype = event.get("subtype")
        if subtype == "init" and isinstance(event.get("cwd"), str):
            self.cwd = event["cwd"]
            return False
        if subtype == "api_retry":
            self.api_retries += 1
            delay = count(event.get("retry_delay_ms"))
            self.retry_delay_s = None if delay is None else delay / 1000.0
            if count(event.get("error_status")) == 429:
                self.rate_limit_retries += 1
                self.rate_limited_at = self.clock()
            return True
        if subtype == "permission_denied":
            self._deny(event.get("tool_name"), None)
            return True
        return False

    def _deny(self, tool: object, tool_input: object) -> None:
        what = self.action(tool, tool_input)
        name = what.split(" ", 1)[0]
        # the stream names the tool first, the result adds its input: keep the fuller one
        self.denials = [d for d in self.denials if d != name]
        if what not in self.denials and len(self.denials) < MAX_DENIALS:
            self.denials.append(what)

    def _result(self, event: dict[str, Any]) -> bool:
        self.finished = True
        usage = event.get("usage") if isinstance(event.get("usage"), dict) else {}
        self.usage = {
            "input_tokens": count(usage.get("input_tokens")) or 0,
            "output_tokens": count(usage.get("output_tokens")) or 0,
            "cache_read_tokens": count(usage.get("cache_read_input_tokens")) or 0,
            "cache_write_tokens": count(usage.get("cache_creation_input_tokens")) or 0,
            "cost_usd": cost(event.get("total_cost_usd")),
        }
        self.turns = count(event.get("num_turns")) or self.turns
        denials = event.get("permission_denials")
        for denial in denials[:MAX_DENIALS] if isinstance(denials, list) else ():
            if isinstance(denial, dict):
                self._deny(denial.get("tool_name"), denial.get("tool_input"))
        status = count(event.get("api_error_status"))
        self.api_error_status = status
        if event.get("is_error") is True:
            self.error = clean(event.get("result") or "error", MAX_TEXT)
        return True

    def record(self) -> dict[str, Any]:
        """The record the shim writes (the keys of `model.observed.AgentReport`)."""
        return {
            "kind": "claude-code",
            "usage": self.usage,
            "turns": self.turns,
            "last_action": self.last_action,
            "denials": list(self.denials),
            "error": self.error,
            "api_error_status": self.api_error_status,
            "api_retries": self.api_retries,
            "rate_limit_retries": self.rate_limit_retries,
            "retry_delay_s": self.retry_delay_s,
            "rate_limited_at": self.rate_limited_at,
            "finished": self.finished,
        }


# "Reconnecting... 2/5 (exceeded retry limit, last status: 429 Too Many Requests)"
_STATUS = re.compile(r"status:? (\d{3})\b")
_SHELL = re.compile(r"""^/bin/(?:ba|z)?sh -lc (['"])(.*)\1$""", re.DOTALL)


class CodexStream(ClaudeStream):
    """What a `codex exec --json` run has said so far (the Codex CLI's JSONL events).

    `thread.started`, `turn.started`, `item.started` / `item.completed` (an `agent_message`, a
    `command_execution` with its command, a `file_change` with its paths, an `error`), then
    `turn.completed` with the usage (tokens only: Codex reports no cost) or `turn.failed`
    with an error. An API error it retries is an `error` event "Reconnecting... n/N (...,
    last status: 429 ...)"; it names no delay. The record has the same keys as Claude
    Code's (`ClaudeStream.record`); `turns` counts the items it completed.
    """

    def __init__(self, cwd: str = "", clock: Callable[[], float] = time.time) -> None:
        super().__init__(cwd, clock)
        self.items = 0
        self.tokens = {"input_tokens": 0, "output_tokens": 0, "cache_read_tokens": 0}
        self.tokens["cache_write_tokens"] = 0

    def line(self, raw: bytes) -> bool:
        event = json_object(raw)
        if event is None:
            return False
        kind = event.get("type")
        if kind in ("item.started", "item.completed") and isinstance(event.get("item"), dict):
            return self._item(event["item"], done=kind == "item.completed")
        if kind == "error":
            return self._retry(event.get("message"))
        if kind == "turn.completed":
            return self._turn(event.get("usage"))
        if kind == "turn.failed":
            error = event.get("error")
            message = error.get("message") if isinstance(error, dict) else None
            self.finished = True
            self.error = clean(message or "turn failed", MAX_TEXT)
            found = _STATUS.search(self.error)
            self.api_error_status = count(int(found.group(1))) if found else None
            return True
        return False

    def _item(self, item: dict[str, Any], *, done: bool) -> bool:
        kind = item.get("type")
        if kind == "command_execution" and isinstance(item.get("command"), str):
            inner = _SHELL.match(item["command"])
            self.last_action = clean("exec " + (inner.group(2) if inner else item["command"]))
        elif kind == "file_change" and isinstance(item.get("changes"), list):
            paths = [c.get("path") for c in item["changes"] if isinstance(c, dict)]
            shown = [_relative(p, self.cwd) for p in paths if isinstance(p, str)]
            if shown:
                self.last_action = clean("Edit " + ", ".join(shown))
        if done and kind in ("agent_message", "command_execution", "file_change", "mcp_tool_call"):
            self.items = min(self.items + 1, MAX_COUNT - 1)
            self.turns = self.items
        return True

    def _retry(self, message: object) -> bool:
        if not isinstance(message, str) or not message.startswith("Reconnecting"):
            return False
        self.api_retries += 1
        found = _STATUS.search(message)
        if found and found.group(1) == "429":
            self.rate_limit_retries += 1
            self.rate_limited_at = self.clock()
        return True

    def _turn(self, usage: object) -> bool:
        self.finished = True
        if isinstance(usage, dict):
            total = count(usage.get("input_tokens")) or 0
            cached = min(count(usage.get("cached_input_tokens")) or 0, total)
            for key, value in (
                ("input_tokens", total - cached),
                ("cache_read_tokens", cached),
                ("output_tokens", count(usage.get("output_tokens")) or 0),
                ("cache_write_tokens", count(usage.get("cache_write_input_tokens")) or 0),
            ):
                self.tokens[key] = min(self.tokens[key] + value, MAX_COUNT - 1)
        self.usage = {**self.tokens, "cost_usd": None}
        return True

    def record(self) -> dict[str, Any]:
        return {**super().record(), "kind": "codex"}


STREAMS: dict[str, type[ClaudeStream]] = {"claude-code": ClaudeStream, "codex": CodexStream}
