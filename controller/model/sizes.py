"""Human sizes (`50MB`, `512KB`, `1GB`, or a number of bytes) to bytes and back.

Units are binary, as file sizes are in most tools: 1KB = 1024 bytes, 1MB = 1024 KB. The
spellings `KiB`, `MiB`, `GiB` and `B` are accepted too, in any letter case.
"""

from __future__ import annotations

import math
import re

_UNITS = {"": 1, "b": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40}
_SIZE = re.compile(r"(\d+(?:\.\d+)?)\s*(?:([kmgt])i?b?|(b))?", re.IGNORECASE)
SIZE_PATTERN = r"^\s*\d+(\.\d+)?\s*([kKmMgGtT][iI]?[bB]?|[bB])?\s*$"


def parse_size(value: object) -> int:
    """Bytes in `value`: an integer (bytes) or a string such as `50MB`, `512KB`, `1.5GB`."""
    if isinstance(value, bool):
        raise ValueError("expected a size such as 50MB or 512KB, not a boolean")
    if isinstance(value, int):
        if value < 0:
            raise ValueError("a size cannot be negative")
        return value
    if isinstance(value, float):
        if not math.isfinite(value) or value < 0:
            raise ValueError(f"a size must be a finite number of bytes, got {value!r}")
        return int(value)
    if not isinstance(value, str):
        raise ValueError("expected a size such as 50MB or 512KB")
    match = _SIZE.fullmatch(value.strip())
    if match is None:
        raise ValueError(f"invalid size {value!r}: use a number with a unit, e.g. 50MB, 512KB")
    unit = (match.group(2) or match.group(3) or "").lower()
    return int(float(match.group(1)) * _UNITS[unit])


def format_size(n: int) -> str:
    """Compact rendering: 512B, 64KB, 50MB, 1.5GB."""
    for suffix, scale in (("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10)):
        if n >= scale:
            value = n / scale
            return f"{value:.0f}{suffix}" if value == int(value) else f"{value:.1f}{suffix}"
    return f"{n}B"
