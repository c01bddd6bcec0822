"""Where backlog tasks come from besides the spec's own `backlog`: a markdown ROADMAP.

`backlogFrom: {roadmap: PATH, agent: NAME}` adds the roadmap's planned items to the backlog.
Tasks that came from the roadmap remember their heading line, so problems found in them are
reported against the markdown file rather than the YAML.
"""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import ValidationError

from controller.model.problems import Loc, Problem, SpecError
from controller.model.sizes import format_size
from controller.model.spec import Spec, Task
from controller.specfile.roadmap.problems import FATAL_KINDS
from controller.state import files

__all__ = ["FATAL_KINDS", "locate_task_finding", "roadmap_path", "with_roadmap"]
ROADMAP_LIMIT = 16 * files.MIB  # reading stops here: a roadmap is a markdown file


def roadmap_path(spec: Spec) -> Path | None:
    if spec.backlog_from is None:
        return None
    return (spec.repo_path / spec.backlog_from.roadmap).resolve()


def read_roadmap_text(path: Path, shown: Path | None = None) -> str:
    """The roadmap's text: a regular file of at most `ROADMAP_LIMIT` bytes (a roadmap
    committed as a symlink to /dev/zero, or a pipe, is refused), else SpecError located at
    `shown` (the path as the spec names it; default `path`)."""
    source, field = str(shown or path), "backlogFrom.roadmap"
    try:
        return files.read_regular(path, ROADMAP_LIMIT).decode("utf-8")
    except FileNotFoundError:
        message = "roadmap file not found"
    except files.FileTooLarge:
        message = f"roadmap larger than {format_size(ROADMAP_LIMIT)}; not read"
    except files.UnsafeFile as exc:
        message = f"roadmap {exc.reason}; not read"
    except (OSError, UnicodeDecodeError) as exc:
        message = f"cannot read: {exc}"
    raise SpecError([Problem(source, 1, 1, field, message)])


def with_roadmap(spec: Spec) -> Spec:
    """`spec` with the roadmap's planned items appended to its backlog (or SpecError)."""
    path = roadmap_path(spec)
    if path is None or spec.backlog_from is None:
        return spec
    # the roadmap parser loads only for specs that use it (~15 ms of start-up otherwise)
    from controller.specfile.roadmap import backlog_entries, completed_ids, parse_roadmap

    # the path as the spec names it, without `..` (not resolved: a symlink stays named)
    named = Path(os.path.normpath(spec.repo_path / spec.backlog_from.roadmap))
    source, text = str(path), read_roadmap_text(path, named)
    parsed = parse_roadmap(text, source)
    errors = [p for p in parsed.problems if p.kind in FATAL_KINDS]
    if errors:
        raise SpecError([Problem(source, p.line, p.column, "", p.message) for p in errors])
    warnings = [
        Problem(source, p.line, p.column, "", p.message)
        for p in parsed.problems
        if p.kind not in FATAL_KINDS
    ]
    lines = {item.id: item.line for item in parsed.items}
    origins = dict(spec._origins)
    tasks = list(spec.backlog)
    for entry in backlog_entries(parsed.items, spec.backlog_from.agent):
        try:
            task = Task.model_validate(entry)
        except ValidationError as exc:
            err = exc.errors(include_url=False)[0]
            line = lines.get(str(entry.get("id")), 1)
            raise SpecError([Problem(source, line, 1, "", err["msg"])]) from None
        origins[len(tasks)] = (source, lines.get(task.id, 1))
        tasks.append(task)
    merged = spec.model_copy(update={"backlog": tasks})
    merged._origins = origins
    merged._completed = completed_ids(parsed.items)
    merged._warnings = [*spec._warnings, *warnings]
    return merged


def locate_task_finding(spec: Spec, loc: Loc) -> tuple[str, int, int] | None:
    """(file, line, column) for a finding about a roadmap task, else None."""
    if len(loc) >= 2 and loc[0] == "backlog" and isinstance(loc[1], int):
        origin = spec._origins.get(loc[1])
        if origin:
            return origin[0], origin[1], 1
    return None
