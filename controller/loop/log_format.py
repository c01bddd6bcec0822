"""How a line of `controller.log` is written: credentials redacted, control characters escaped.

The log holds error text from git (remote URLs with tokens), agents' file names and
exceptions; people read it with `tail` and `less`, so it gets what the terminal gets
(`model.safe_text.shown`), tracebacks included. Newlines and tabs are kept: a traceback
stays readable.
"""

from __future__ import annotations

import traceback
from typing import Any

from controller.model.safe_text import shown

STAMP = "{time:YYYY-MM-DD HH:mm:ss.SSS} {level:<7} "


def log_line(record: Any) -> str:
    """loguru format callable: the template of one record, its text made safe first."""
    extra = record["extra"]
    extra["safe_message"] = shown(record["message"], multiline=True)
    exc = record["exception"]
    if exc is None or exc.type is None:
        return STAMP + "{extra[safe_message]}\n"
    text = "".join(traceback.format_exception(exc.type, exc.value, exc.traceback))
    extra["safe_exception"] = shown(text, multiline=True)
    return STAMP + "{extra[safe_message]}\n{extra[safe_exception]}"
