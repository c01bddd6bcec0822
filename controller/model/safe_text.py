"""Text that is safe to show: credentials cut out of URLs, control characters made visible.

Agents choose file names, commit messages and error text; the user's remotes may carry a
token. Whatever reaches a person (the terminal, `controller.log`, the event log shown by
`events`) goes through these two functions (`shown` applies both):

- `redact` replaces the user-information part of every URL (`https://user:token@host/...`
  -> `https://***@host/...`). Applied where errors are recorded (events, attempt reasons,
  `controller.log`, `GitError` messages) and again where text is rendered.
- `terminal_safe` turns every character a terminal could act on into a visible escape:
  C0 controls (ESC, BEL, CR, backspace, ...; newline and tab too unless `multiline`), DEL,
  C1 controls (U+0080-U+009F, which some terminals read as 8-bit CSI/OSC), the Unicode bidi
  overrides and isolates (they reorder what is shown, "Trojan Source"), the line and
  paragraph separators, and lone surrogates (undecodable bytes of a file name, shown as the
  byte they stand for). Everything else, including non-ASCII letters, is kept. JSON output
  is not passed through it: scripts get the exact text.
"""

from __future__ import annotations

import re

# scheme://userinfo@ : greedy up to the last '@' before the host's '/', so a password with
# a raw '@' in it is cut whole
_URL_USERINFO = re.compile(r"\b([A-Za-z][A-Za-z0-9+.-]*://)[^/\s'\"<>@]*(?:@[^/\s'\"<>@]*)*@")

_BIDI = "\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069"
_SEPARATORS = "\u2028\u2029"
_ALWAYS = f"\x00-\x08\x0b-\x1f\x7f-\x9f{_BIDI}{_SEPARATORS}\udc80-\udcff"
_UNSAFE_LINE = re.compile(f"[\t\n{_ALWAYS}]")
_UNSAFE_BLOCK = re.compile(f"[{_ALWAYS}]")
_NAMED = {"\n": "\\n", "\t": "\\t", "\r": "\\r"}


def redact(text: str) -> str:
    """`text` with the credentials of every URL in it replaced by `***`."""
    if "://" not in text:
        return text
    return _URL_USERINFO.sub(r"\1***@", text)


def _escape(match: re.Match[str]) -> str:
    ch = match.group()
    named = _NAMED.get(ch)
    if named is not None:
        return named
    code = ord(ch)
    if 0xDC80 <= code <= 0xDCFF:  # an undecodable byte (surrogateescape): show the byte
        return f"\\x{code - 0xDC00:02x}"
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


def terminal_safe(text: str, *, multiline: bool = False) -> str:
    """`text` with every character a terminal could interpret shown as an escape
    (`\\x1b`, `\\x07`, `\\u202e`, ...); newlines and tabs kept only when `multiline`."""
    if text.isascii() and text.isprintable():  # the common case, decided in C
        return text
    pattern = _UNSAFE_BLOCK if multiline else _UNSAFE_LINE
    return pattern.sub(_escape, text)


def shown(text: str, *, multiline: bool = False) -> str:
    """What a person may be shown of `text`: credentials redacted, controls escaped."""
    return terminal_safe(redact(text), multiline=multiline)
