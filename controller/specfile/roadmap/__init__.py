"""Markdown ROADMAP -> backlog items: the public names of the parser package.

One reason to change per module: `model` (items and the parse), `problems` (what is reported
and how it is worded), `status` (status vocabulary), `masking` (code and comments),
`headings` (which headings are items, their ids and titles), `fields` (a section's fields and
prompt), `dependencies` (references, resolution, cycles), `estimates` (effort units),
`parse` (the steps stitched together) and `export` (backlog entries and YAML).
"""

from importlib import import_module
from typing import Any

# name -> the module that defines it; loaded on first use, so that importing one module of the
# package (e.g. `problems` for its kinds) does not load the whole parser (~15 ms of start-up)
_HOMES = {
    "format_estimate": "estimates",
    "parse_estimate": "estimates",
    "backlog_entries": "export",
    "completed_ids": "export",
    "to_backlog_yaml": "export",
    "ItemStatus": "model",
    "RoadmapItem": "model",
    "RoadmapParse": "model",
    "parse_roadmap": "parse",
    "parse_roadmap_file": "parse",
    "RoadmapProblem": "problems",
    "classify_status": "status",
}


def __getattr__(name: str) -> Any:
    home = _HOMES.get(name)
    if home is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(import_module(f"{__name__}.{home}"), name)


__all__ = [
    "ItemStatus",
    "RoadmapItem",
    "RoadmapParse",
    "RoadmapProblem",
    "backlog_entries",
    "classify_status",
    "completed_ids",
    "format_estimate",
    "parse_estimate",
    "parse_roadmap",
    "parse_roadmap_file",
    "to_backlog_yaml",
]
