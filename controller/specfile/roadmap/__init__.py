"""Markdown ROADMAP -> backlog items: the public names of the parser package.

One reason to change per module: `model` (items and the parse), `problems` (what is reported
and how it is worded), `status` (status vocabulary), `masking` (code and comments),
`headings` (which headings are items, their ids and titles), `fields` (a section's fields and
prompt), `dependencies` (references, resolution, cycles), `estimates` (effort units),
`parse` (the steps stitched together) and `export` (backlog entries and YAML).
"""

from controller.specfile.roadmap.estimates import format_estimate, parse_estimate
from controller.specfile.roadmap.export import backlog_entries, completed_ids, to_backlog_yaml
from controller.specfile.roadmap.model import ItemStatus, RoadmapItem, RoadmapParse
from controller.specfile.roadmap.parse import parse_roadmap, parse_roadmap_file
from controller.specfile.roadmap.problems import RoadmapProblem
from controller.specfile.roadmap.status import classify_status

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
