"""Markdown ROADMAP -> backlog items (see `parse`): the public names of the package."""

from controller.specfile.roadmap.parse import (
    ItemStatus,
    RoadmapItem,
    RoadmapParse,
    RoadmapProblem,
    backlog_entries,
    classify_status,
    completed_ids,
    format_estimate,
    parse_estimate,
    parse_roadmap,
    parse_roadmap_file,
    to_backlog_yaml,
)

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
