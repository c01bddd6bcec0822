"""What a person may be shown: credentials cut from URLs, terminal controls escaped."""

from __future__ import annotations

import pytest

from controller.model.safe_text import redact, shown, terminal_safe


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("https://user:tok@host/x.git", "https://***@host/x.git"),
        ("https://ghp_abc@github.com/o/r", "https://***@github.com/o/r"),
        ("push http://u:p@ss@127.0.0.1:1/r.git +a:b", "push http://***@127.0.0.1:1/r.git +a:b"),
        ("fatal: 'ssh://git@host:22/r' x", "fatal: 'ssh://***@host:22/r' x"),
        ("git@github.com:o/r.git", "git@github.com:o/r.git"),  # scp form: no secret
        ("https://host/path@v1", "https://host/path@v1"),  # '@' after the host is no userinfo
        ("a@b and c", "a@b and c"),
    ],
)
def test_redact(text: str, expected: str) -> None:
    assert redact(text) == expected


def test_terminal_controls_become_visible_escapes() -> None:
    name = "a\x1b]0;pwned\x07\x1b[2K\rb\x00\x7f\x9b\u202eZ\u2028\udc9b"
    assert (
        terminal_safe(name) == "a\\x1b]0;pwned\\x07\\x1b[2K\\rb\\x00\\x7f\\x9b\\u202eZ\\u2028\\x9b"
    )


def test_newlines_and_tabs_only_where_lines_allow_them() -> None:
    assert terminal_safe("a\nb\tc") == "a\\nb\\tc"
    assert terminal_safe("a\nb\tc\x1b", multiline=True) == "a\nb\tc\\x1b"


def test_ordinary_text_is_untouched() -> None:
    text = "naïve café — 東京 ✓ [bold]not markup[/] \\x1b"
    assert terminal_safe(text) == text and shown(text) == text


def test_shown_does_both() -> None:
    assert shown("http://u:t@h/\x1b[2K") == "http://***@h/\\x1b[2K"
