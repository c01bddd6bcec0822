"""The machine's clock and time zone, read at the edge and handed to the pure core."""

from __future__ import annotations

from datetime import datetime, tzinfo


def local_timezone() -> tzinfo:
    """The local time zone now (its current UTC offset), for clock times in messages."""
    tz = datetime.now().astimezone().tzinfo
    assert tz is not None
    return tz
