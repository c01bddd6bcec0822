"""Status vocabulary of a ROADMAP: which emoji and words mean planned, in progress, complete
or blocked. Used for both `**Status**:` lines and status markers on headings.
"""

from __future__ import annotations

import re

from controller.specfile.roadmap.model import ItemStatus

_STATUS_EMOJI = {
    "📝": ItemStatus.PLANNED,
    "🔄": ItemStatus.IN_PROGRESS,
    "🚧": ItemStatus.IN_PROGRESS,
    "🧪": ItemStatus.IN_PROGRESS,
    "⏳": ItemStatus.IN_PROGRESS,
    "✅": ItemStatus.COMPLETE,
    "✔": ItemStatus.COMPLETE,
    "☑": ItemStatus.COMPLETE,
    "⏸": ItemStatus.BLOCKED,
    "⛔": ItemStatus.BLOCKED,
    "🚫": ItemStatus.BLOCKED,
    "❌": ItemStatus.BLOCKED,
    "🛑": ItemStatus.BLOCKED,
}
# Longer phrases first: at one position the regex takes the first alternative that matches.
_STATUS_WORDS: tuple[tuple[str, ItemStatus], ...] = (
    (r"ready\s+for\s+(?:user\s+)?(?:testing|review|qa)", ItemStatus.IN_PROGRESS),
    (r"(?:partially|mostly|partly)\s+(?:complete|completed|done)", ItemStatus.IN_PROGRESS),
    (r"not\s+(?:yet\s+)?started", ItemStatus.PLANNED),
    (
        r"in[\s-]+progress|wip|ongoing|underway|started|on\s+track|in\s+review",
        ItemStatus.IN_PROGRESS,
    ),
    (
        r"in\s+planning|planned|planning|to[\s-]?do|backlog|ready(?:\s+to\s+\w+)?",
        ItemStatus.PLANNED,
    ),
    (r"proposed|pending|not\s+done", ItemStatus.PLANNED),
    (r"production[\s-]+ready", ItemStatus.COMPLETE),
    (
        r"on[\s-]hold|blocked|deferred|paused|postponed|waiting|failed|cancell?ed",
        ItemStatus.BLOCKED,
    ),
    (r"abandoned|won'?t\s+(?:do|fix)|wontfix|parked|suspended", ItemStatus.BLOCKED),
    (r"complete|completed|done|finished|implemented|shipped|merged|delivered", ItemStatus.COMPLETE),
)
_STATUS_RE = re.compile(
    "|".join(
        [f"(?P<e{i}>{re.escape(e)})" for i, e in enumerate(_STATUS_EMOJI)]
        + [rf"(?P<w{i}>\b(?:{w})\b)" for i, (w, _) in enumerate(_STATUS_WORDS)]
    ),
    re.IGNORECASE,
)
_STATUS_BY_GROUP = {f"e{i}": s for i, s in enumerate(_STATUS_EMOJI.values())} | {
    f"w{i}": s for i, (_, s) in enumerate(_STATUS_WORDS)
}


def classify_status(text: str) -> ItemStatus | None:
    """The status named first in `text` (emoji or word), or None when it names none."""
    m = _STATUS_RE.search(text)
    return _STATUS_BY_GROUP[m.lastgroup] if m and m.lastgroup else None
