"""ROADMAP items -> backlog: the task dicts `backlogFrom` adds and the YAML `import-roadmap`
prints. Complete items are not tasks; dependencies on them are already satisfied.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from io import StringIO
from typing import Any

from controller.specfile.roadmap.estimates import format_estimate
from controller.specfile.roadmap.model import ItemStatus, RoadmapItem


def completed_ids(items: Iterable[RoadmapItem]) -> frozenset[str]:
    """Ids of complete items: dependencies on them are already satisfied."""
    return frozenset(i.id for i in items if i.status is ItemStatus.COMPLETE)


def backlog_entries(items: Sequence[RoadmapItem], agent: str) -> list[dict[str, object]]:
    """Planned, in-progress and blocked items (blocked ones `paused`) as backlog task dicts.

    Dependencies on complete items are dropped (already satisfied); dependencies on ids that
    are not in `items` are kept, so that a spec check reports them instead of the task
    running too early.
    """
    done = completed_ids(items)
    entries: list[dict[str, object]] = []
    for it in items:
        if it.status is ItemStatus.COMPLETE:
            continue
        entry: dict[str, object] = {"id": it.id}
        if it.title:
            entry["title"] = it.title
        entry["agent"] = agent
        if it.status is ItemStatus.BLOCKED:
            entry["paused"] = True
        deps = [d for d in it.depends_on if d not in done]
        if deps:
            entry["dependsOn"] = deps
        if it.paths:
            entry["paths"] = list(it.paths)
        if it.estimate_s is not None:
            entry["estimate"] = format_estimate(it.estimate_s)
        entry["prompt"] = it.prompt
        entries.append(entry)
    return entries


# what a YAML block may hold: the printable characters (no BOM), tab and line feed
_NOT_PRINTABLE = re.compile(
    "[^\t\n\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufefe\uff00-\ufffd\U00010000-\U0010ffff]"
)


def _block(text: str, indent: int) -> str | None:
    """`text` as the literal block (`|`) of a key in a list entry's mapping (`- key: |`, the
    mapping indented by 2, the block by `indent`), or None when a block cannot hold it exactly
    (control characters, a carriage return)."""
    if not text or _NOT_PRINTABLE.search(text):
        return None
    body = text[:-1] if text.endswith("\n") else text
    chomp = "+" if text.endswith("\n\n") else ("" if text.endswith("\n") else "-")
    first = next((ln for ln in body.split("\n") if ln.strip()), "")
    lead = str(indent - 2) if first[:1] == " " or body.startswith(" ") else ""
    pad = " " * indent
    lines = "\n".join(pad + ln if ln else "" for ln in body.split("\n"))
    return f"|{lead}{chomp}\n{lines}\n"


def _reads_back(loader: Any, block: str, text: str) -> bool:
    try:
        return bool(loader.load("- p: " + block) == [{"p": text}])
    except Exception:  # the C scanner rejects what a block cannot hold (e.g. tab indents)
        return False


def to_backlog_yaml(items: Sequence[RoadmapItem], agent: str) -> str:
    """`backlog:` YAML of `backlog_entries` (block style, multi-line prompts as `|` blocks).

    The fields of an entry are written by the C emitter of the safe dumper, each multi-line
    prompt as a literal block here (checked by reading it back; quoted where a block cannot
    hold it): ruamel's round-trip emitter took ~0.35 s for the 36 items of a 33,000-line
    ROADMAP, this takes ~20 ms.
    """
    from ruamel.yaml import YAML

    dumper = YAML(typ="safe", pure=False)
    dumper.default_flow_style = False
    dumper.width = 4096
    dumper.allow_unicode = True
    dumper.sort_base_mapping_type_on_output = False  # keep each entry's key order
    loader = YAML(typ="safe", pure=False)
    entries = backlog_entries(items, agent)
    if not entries:
        return "backlog: []\n"
    out = StringIO()
    out.write("backlog:\n")
    for entry in entries:
        fields = dict(entry)
        prompt = str(fields.pop("prompt", ""))
        head = StringIO()
        dumper.dump([fields], head)
        out.write(head.getvalue())
        block = _block(prompt, 4) if "\n" in prompt else None
        if block is None or not _reads_back(loader, block, prompt):
            quoted = StringIO()
            dumper.dump({"prompt": prompt}, quoted)
            out.write("  " + quoted.getvalue().replace("\n", "\n  ").rstrip(" "))
        else:
            out.write("  prompt: " + block)
    return out.getvalue()
