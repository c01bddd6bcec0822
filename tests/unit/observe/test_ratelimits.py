"""What the observation adds for the rate limiter: a failed command agent's log line that
matches its `rateLimit.patterns` (read from the end of the real log file, never through a
symlink), and the report's time of the latest 429."""

from __future__ import annotations

import os
from pathlib import Path

from controller.model.ratelimit import LogHint
from controller.observe.ratelimits import with_log_hints
from controller.observe.reports import parse_report
from controller.state.paths import StatePaths
from tests.support.planning import exited, make_spec, observed, running, task

AGENTS = {
    "cmd": {
        "command": ["agent"],
        "rateLimit": {"patterns": [r"Too Many Requests; retry in (?P<seconds>\d+)s"]},
    },
    "plain": {"command": ["agent"]},
}


def test_a_failed_attempt_s_log_tells_its_rate_limit(tmp_path: Path) -> None:
    spec = make_spec([task("a", "cmd"), task("b", "cmd"), task("c", "plain")], agents=AGENTS)
    paths = StatePaths(tmp_path / "state")
    for name in "abc":
        log = paths.task_log(name, 1)
        log.parent.mkdir(parents=True, exist_ok=True)
        log.write_text("x" * 40_000 + "\nHTTP 429 Too Many Requests; retry in 12s\nbye\n")
    obs = observed(
        [exited("a", 1, 1, agent="cmd"), exited("b", 1, 0, agent="cmd"), exited("c", 1, 1)]
    )
    seen = with_log_hints(spec, obs, paths).attempts
    assert seen["a"][0].log_hint == LogHint("HTTP 429 Too Many Requests; retry in 12s", 12.0)
    assert seen["b"][0].log_hint is None  # exit 0: done, whatever it printed
    assert seen["c"][0].log_hint is None  # its agent has no patterns
    live = observed([running("a")])
    assert with_log_hints(spec, live, paths) is live  # nothing to read while it runs


def test_a_planted_symlink_is_not_followed(tmp_path: Path) -> None:
    spec = make_spec([task("a", "cmd")], agents=AGENTS)
    paths = StatePaths(tmp_path / "state")
    secret = tmp_path / "elsewhere.txt"
    secret.write_text("Too Many Requests; retry in 5s\n")
    log = paths.task_log("a", 1)
    log.parent.mkdir(parents=True, exist_ok=True)
    os.symlink(secret, log)
    obs = observed([exited("a", 1, 1, agent="cmd")])
    assert with_log_hints(spec, obs, paths).attempts["a"][0].log_hint is None


def test_the_time_of_a_429_is_read_and_checked() -> None:
    report = parse_report({"rate_limited_at": 1_700_000_000.5, "retry_delay_s": 3.2})
    assert report is not None and report.rate_limited_at == 1_700_000_000.5
    for bad in (-1, 0, float("nan"), float("inf"), 1e12, "soon", True):
        forged = parse_report({"rate_limited_at": bad})
        assert forged is not None and forged.rate_limited_at is None
