"""ROADMAP items -> backlog: the task dicts `backlogFrom` adds and the YAML `import-roadmap`
prints. Complete items are not tasks; dependencies on them are already satisfied.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from io import StringIO

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


def to_backlog_yaml(items: Sequence[RoadmapItem], agent: str) -> str:
    """`backlog:` YAML of `backlog_entries` (block style, multi-line prompts as `|` blocks)."""
    from ruamel.yaml import YAML
    from ruamel.yaml.comments import CommentedMap, CommentedSeq
    from ruamel.yaml.scalarstring import LiteralScalarString

    seq = CommentedSeq()
    for entry in backlog_entries(items, agent):
        cm = CommentedMap()
        for key, value in entry.items():
            if isinstance(value, list):
                value = CommentedSeq(value)
            elif isinstance(value, str) and "\n" in value:
                value = LiteralScalarString(value)
            cm[key] = value
        seq.append(cm)
    yaml = YAML()
    yaml.default_flow_style = False
    yaml.width = 4096
    yaml.indent(mapping=2, sequence=4, offset=2)
    out = StringIO()
    yaml.dump({"backlog": seq}, out)
    return out.getvalue()
