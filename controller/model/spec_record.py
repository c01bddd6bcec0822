"""The spec a controller runs on, as a record it keeps in its store.

A running controller keeps acting on the last valid spec when the file is edited into an
invalid one. `status` then shows the world as the controller sees it, so the controller
stores that spec (its validated values, where its paths resolved to, the roadmap items
already complete) at start and at every reload, and `status` rebuilds it from the record
when the file does not load. Pure: JSON text in and out.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from controller.model.spec import Locations, Spec

VERSION = 1


def spec_record(spec: Spec) -> str:
    """`spec` as JSON text, with its resolved locations."""
    loc = spec.locations
    return json.dumps(
        {
            "version": VERSION,
            "spec": spec.model_dump(mode="json", by_alias=True),
            "locations": {
                "source": os.path.abspath(loc.source),  # whatever folder `status` runs in
                "base_dir": str(loc.base_dir),
                "repo": str(loc.repo),
                "state": str(loc.state),
                "worktree_root": str(loc.worktree_root),
            },
            "completed": sorted(spec.completed),
        }
    )


def spec_from_record(text: str) -> Spec | None:
    """The spec a record holds; None when it is not one this release can read."""
    try:
        data = json.loads(text)
        if not isinstance(data, dict) or data.get("version") != VERSION:
            return None
        spec = Spec.model_validate(data["spec"])
        loc = {k: Path(v) for k, v in data["locations"].items()}
        spec.with_locations(Locations(**loc))
        spec._completed = frozenset(str(t) for t in data.get("completed", ()))
    except (ValueError, KeyError, TypeError):  # pydantic's ValidationError is a ValueError
        return None
    return spec
