"""Human sizes: 50MB, 512KB, bytes; binary units; bad input refused with a hint."""

from __future__ import annotations

import pytest

from controller.model.sizes import format_size, parse_size


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("50MB", 50 << 20),
        ("512KB", 512 << 10),
        ("512kb", 512 << 10),
        ("1GiB", 1 << 30),
        ("1.5MB", 3 << 19),
        ("2 m", 2 << 20),
        ("100", 100),
        ("100B", 100),
        (4096, 4096),
    ],
)
def test_parse(text: object, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("bad", ["", "MB", "50 XB", "-1MB", "1e3", True, -5, None, [1]])
def test_bad_sizes_are_refused(bad: object) -> None:
    with pytest.raises(ValueError):
        parse_size(bad)


def test_format() -> None:
    assert [format_size(n) for n in (512, 64 << 10, 50 << 20, 3 << 29)] == [
        "512B",
        "64KB",
        "50MB",
        "1.5GB",
    ]
