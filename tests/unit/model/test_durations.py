"""Human durations: parsing (`30s`, `1h30m`, plain seconds) and compact rendering."""

from __future__ import annotations

import math
import re

import pytest

from controller.model.durations import DURATION_PATTERN, format_duration, parse_duration


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("30s", 30.0),
        ("5m", 300.0),
        ("2h", 7200.0),
        ("1d", 86400.0),
        ("1w", 604800.0),
        ("500ms", 0.5),
        ("1h30m", 5400.0),
        ("1m30s", 90.0),
        ("2h5m10s", 7510.0),
        ("1.5h", 5400.0),
        ("0.25s", 0.25),
        ("0s", 0.0),
        ("90", 90.0),
        ("2.5", 2.5),
        (" 10m ", 600.0),
        ("10M", 600.0),  # units are case-insensitive
        (45, 45.0),
        (0, 0.0),
        (1.5, 1.5),
    ],
)
def test_parse(value: object, seconds: float) -> None:
    assert parse_duration(value) == seconds


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("2 hours", "invalid duration '2 hours'"),
        ("-5s", "invalid duration '-5s'"),
        ("5x", "invalid duration '5x'"),
        ("", "invalid duration ''"),
        ("   ", "invalid duration"),
        ("s", "invalid duration 's'"),
        ("h1", "invalid duration 'h1'"),
        ("1h 30m", "invalid duration '1h 30m'"),
        ("1..5s", "invalid duration"),
        ("5s trailing", "invalid duration"),
        (-1, "cannot be negative"),
        (-0.5, "cannot be negative"),
        (True, "not a boolean"),
        (False, "not a boolean"),
        (None, "expected a duration"),
        ([30], "expected a duration"),
        (math.nan, "finite"),
        (math.inf, "finite"),
        (-math.inf, "finite"),
    ],
)
def test_parse_rejects(value: object, message: str) -> None:
    with pytest.raises(ValueError, match=re.escape(message)):
        parse_duration(value)


@pytest.mark.parametrize(
    "text", ["30s", "5m", "1h30m", "500ms", "1.5h", "90", "2.5", " 10m ", "1w2d3h4m5s6ms"]
)
def test_schema_pattern_accepts_what_the_parser_accepts(text: str) -> None:
    parse_duration(text)
    assert re.search(DURATION_PATTERN, text)


@pytest.mark.parametrize("text", ["2 hours", "-5s", "5x", "", "s", "1h 30m"])
def test_schema_pattern_rejects_what_the_parser_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        parse_duration(text)
    assert not re.search(DURATION_PATTERN, text)


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (0, "0.0s"),
        (0.4, "0.4s"),
        (9.94, "9.9s"),
        (10, "10s"),
        (45, "45s"),
        (59.4, "59s"),
        (60, "1m00s"),
        (185, "3m05s"),
        (3599, "59m59s"),
        (3600, "1h00m"),
        (7800, "2h10m"),
        (90000, "25h00m"),
    ],
)
def test_format(seconds: float, text: str) -> None:
    assert format_duration(seconds) == text


@pytest.mark.parametrize("seconds", [1, 45, 60, 185, 3600, 5400, 7800])
def test_format_round_trips_whole_seconds_and_minutes(seconds: int) -> None:
    text = format_duration(seconds)
    assert parse_duration(text) == seconds
