"""Reading Claude Code's stream-json: real captured runs (tests/support/data/claude, from
Claude Code 2.1.332 against the scripted server) and hostile input."""

from __future__ import annotations

import json

from controller.act.runners.agent_stream import MAX_LINE, ClaudeStream, CodexStream, Lines, clean
from tests.support import DATA

SAMPLES = DATA / "claude"


def parsed(name: str) -> dict:
    stream = ClaudeStream()
    for line in (SAMPLES / name).read_bytes().splitlines():
        stream.line(line)
    return stream.record()


def test_a_successful_run_reports_usage_cost_turns_and_the_last_action() -> None:
    record = parsed("stream_success_acceptedits.jsonl")
    result = json.loads((SAMPLES / "stream_success_acceptedits.jsonl").read_text().splitlines()[-1])
    assert record["usage"] == {
        "input_tokens": 4000,
        "output_tokens": 800,
        "cache_read_tokens": 1600,
        "cache_write_tokens": 1200,
        "cost_usd": result["total_cost_usd"],
    }
    assert record["turns"] == result["num_turns"] == 5
    assert record["last_action"] == "Bash cat a.txt b.txt > c.txt"
    assert record["denials"] == [] and record["error"] is None and record["finished"] is True


def test_a_refused_write_is_a_denial_with_its_file() -> None:
    record = parsed("stream_denied_default.jsonl")
    assert record["denials"] == ["Write denied.txt"]  # relative to the CLI's cwd
    assert record["error"] is None  # the CLI itself calls this run a success (exit 0)


def test_rate_limited_runs_count_their_429_retries() -> None:
    exhausted = parsed("stream_429_exhausted.jsonl")
    assert exhausted["api_retries"] == exhausted["rate_limit_retries"] == 2
    assert exhausted["api_error_status"] == 429
    assert exhausted["error"].startswith("API Error: Request rejected (429)")
    assert exhausted["usage"]["cost_usd"] == 0
    recovered = parsed("stream_429_retry_then_success.jsonl")
    assert recovered["rate_limit_retries"] >= 1 and recovered["error"] is None
    assert recovered["api_error_status"] is None and recovered["retry_delay_s"] > 0


def test_live_progress_before_the_result() -> None:
    lines = (SAMPLES / "stream_success_acceptedits.jsonl").read_bytes().splitlines()
    stream = ClaudeStream()
    for line in lines[:3]:
        stream.line(line)
    record = stream.record()
    assert record["turns"] == 1 and record["last_action"] == "Write a.txt"
    assert record["usage"] is None and record["finished"] is False


def test_hostile_lines_are_ignored_or_bounded() -> None:
    stream = ClaudeStream("/w")
    junk = [
        b"not json",
        b"[1, 2]",
        b'{"type": "assistant", "message": "nope"}',
        b'{"type": "result", "usage": {"input_tokens": -5, "output_tokens": true},'
        b' "total_cost_usd": 1e300, "num_turns": "7", "permission_denials": [3, {"x": 1}]}',
        b"[" * 100000 + b"]" * 100000,
    ]
    for line in junk:
        stream.line(line)
    record = stream.record()
    assert record["usage"] == {
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "cost_usd": None,
    }
    assert record["turns"] is None and record["denials"] == ["tool"]
    evil = {
        "type": "tool_use",
        "name": "Bash",
        "input": {"command": "rm\n-rf\x00 " + "x" * 500},
    }
    stream.line(
        json.dumps({"type": "assistant", "message": {"id": "m", "content": [evil]}}).encode()
    )
    action = stream.record()["last_action"]
    assert action.startswith("Bash rm -rf x") and len(action) <= 120
    assert all(ch.isprintable() for ch in action)
    assert stream.action("Edit\x1b[2J", {"file_path": "/w/src/x.py"}) == "Edit[2J"
    assert stream.action("Edit", {"file_path": "/w/src/x.py"}) == "Edit src/x.py"


def test_lines_are_split_across_reads_and_over_long_ones_dropped_whole() -> None:
    lines = Lines()
    assert lines.feed(b'{"a":') == []
    assert lines.feed(b"1}\nnext") == [b'{"a":1}']
    assert lines.feed(b"x" * (MAX_LINE + 10)) == []  # over the bound: skipped...
    assert lines.feed(b"tail of it\nok\n") == [b"ok"]  # ...up to its end, never parsed
    assert clean("a\tb\x07c", 10) == "a bc"


def test_the_time_of_the_latest_429_is_kept_for_the_fleet() -> None:
    clock = iter([100.0, 105.5])
    stream = ClaudeStream(clock=lambda: next(clock))
    retry = {"type": "system", "subtype": "api_retry", "error_status": 429}
    other = {"type": "system", "subtype": "api_retry", "error_status": 529, "retry_delay_ms": 9}
    stream.line(json.dumps({**retry, "retry_delay_ms": 1200}).encode())
    stream.line(json.dumps(other).encode())  # overloaded: a retry, not a rate limit
    assert (stream.rate_limited_at, stream.retry_delay_s) == (100.0, 0.009)
    stream.line(json.dumps({**retry, "retry_delay_ms": 3300}).encode())
    record = stream.record()
    assert (record["rate_limited_at"], record["retry_delay_s"]) == (105.5, 3.3)
    assert (record["api_retries"], record["rate_limit_retries"]) == (3, 2)


def codex(name: str) -> dict:
    stream = CodexStream("/work/repo", clock=lambda: 42.0)
    for line in (DATA / "codex" / name).read_bytes().splitlines():
        stream.line(line)
    return stream.record()


def test_a_codex_run_reports_tokens_without_cost_and_its_commands() -> None:
    record = codex("exec_success.jsonl")  # Codex 0.171.0 against the scripted server
    assert record["kind"] == "codex" and record["finished"] and record["error"] is None
    assert record["usage"] == {
        "input_tokens": 2500, "cache_read_tokens": 600, "output_tokens": 60,
        "cache_write_tokens": 0, "cost_usd": None,
    }  # fmt: skip
    assert record["turns"] == 2  # the command and the final message
    assert record["last_action"] == "exec printf 'x = 1\\\\n' > x.py"


def test_codex_429s_are_counted_and_an_exhausted_run_names_its_status() -> None:
    recovered = codex("exec_429_retry_then_success.jsonl")
    assert (recovered["api_retries"], recovered["rate_limit_retries"]) == (2, 2)
    assert recovered["rate_limited_at"] == 42.0 and recovered["retry_delay_s"] is None
    assert recovered["api_error_status"] is None and recovered["error"] is None
    exhausted = codex("exec_429_exhausted.jsonl")
    assert exhausted["rate_limit_retries"] == 5 and exhausted["api_error_status"] == 429
    assert exhausted["error"] == "exceeded retry limit, last status: 429 Too Many Requests"
    assert exhausted["usage"] is None  # no turn completed


def test_codex_events_are_hostile_input_too() -> None:
    stream = CodexStream()
    for raw in [
        b'{"type":"turn.completed","usage":{"input_tokens":-5,"cached_input_tokens":99}}',
        b'{"type":"item.completed","item":{"type":"command_execution","command":["rm"]}}',
        b'{"type":"error","message":"Reconnecting... 1/5 (last status: 429 \\u001b[31m)"}',
        b'{"type":"turn.failed","error":"not a mapping"}',
        b"[1, 2]",
    ]:
        stream.line(raw)
    record = stream.record()
    assert record["usage"]["input_tokens"] == 0 and record["usage"]["cache_read_tokens"] == 0
    assert record["last_action"] is None and record["rate_limit_retries"] == 1
    assert record["error"] == "turn failed" and record["api_error_status"] is None
