"""Identical log lines are rate-limited (`loop.log_limit`): a failure repeating five times a
second once grew controller.log to 1.2 MB in three minutes (issue 14)."""

from __future__ import annotations

from loguru import logger

from controller.loop.log_limit import RepeatFilter


def test_the_same_line_is_written_once_a_window_and_says_how_often_it_came() -> None:
    now = [0.0]
    lines: list[str] = []
    sink = logger.add(lines.append, format="{message}", filter=RepeatFilter(60.0, lambda: now[0]))
    try:
        for _ in range(300):  # a minute of a pass failing five times a second
            logger.error("prune t01 failed: index.lock exists")
            logger.info("a different line")
            now[0] += 0.2
        now[0] += 1.0
        logger.error("prune t01 failed: index.lock exists")
        try:
            raise ValueError("boom")
        except ValueError:
            logger.exception("with a traceback")
            logger.exception("with a traceback")
    finally:
        logger.remove(sink)
    failed = [ln for ln in lines if ln.startswith("prune t01")]
    assert len(failed) == 2  # at 0 s, then once the minute is over
    assert failed[0] == "prune t01 failed: index.lock exists\n"
    assert failed[1].endswith("(same line 299 more times in the last 60s)\n")
    assert sum(ln.startswith("a different line") for ln in lines) == 1
    assert sum(ln.startswith("with a traceback") for ln in lines) == 2  # never dropped
