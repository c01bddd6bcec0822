"""The spec to show when the file does not load: the last valid one a controller recorded.

A controller keeps running on the last valid spec when its file is edited into an invalid
one, and keeps that spec in its store (`model.spec_record`). `status` and the dashboard then
show the world as the controller sees it, with the file's problems in a banner. The store is
looked for, read-only, where the controller of this spec file would keep it: the state
folder of the controller running on the repository (when it runs on this very file), the
`stateDir` the broken file still names (when that much of it reads), and the default
location beside the spec. Only a record of this same spec file is taken.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterator
from pathlib import Path

from ruamel.yaml import YAML

from controller import git
from controller.model.spec import Spec
from controller.model.spec_record import spec_from_record
from controller.observe.running import running_controller
from controller.state import files
from controller.state.paths import StatePaths
from controller.state.store import Store, StoreError

READ_LIMIT = 16 * files.MIB


def _named_state_dir(spec_file: Path) -> Path | None:
    """`stateDir` as the broken file gives it, if the file reads as YAML that far."""
    try:
        data = YAML(typ="safe").load(files.read_regular(spec_file, READ_LIMIT))
    except Exception:  # any unreadable or unparsable file: nothing to salvage
        return None
    named = data.get("stateDir") if isinstance(data, dict) else None
    if not isinstance(named, str) or not named:
        return None
    return Path(os.path.normpath(spec_file.parent / os.path.expanduser(named)))


def _candidates(spec_file: Path) -> Iterator[Path]:
    real = os.path.realpath(spec_file)
    try:
        top = git.open_repo(spec_file.parent).top
    except git.GitError:
        top = None
    holder = running_controller(top) if top is not None else None
    if holder is not None and holder.state and holder.spec_file == real:
        yield Path(holder.state)
    named = _named_state_dir(spec_file)
    if named is not None:
        yield named
    base = spec_file.parent
    yield (base.parent if base.name == "specs" else base) / "state"


def _recorded(state: Path) -> Spec | None:
    try:
        store = Store.open_readonly(StatePaths(state).db)
    except (StoreError, sqlite3.Error, OSError):
        return None
    if store is None:
        return None
    try:
        text = store.get_meta("spec_record")
    except sqlite3.Error:
        return None
    finally:
        store.close()
    return spec_from_record(text) if text else None


def last_valid_spec(spec_file: Path) -> Spec | None:
    """The last valid spec a controller recorded for `spec_file`, or None."""
    real = os.path.realpath(spec_file)
    seen: set[str] = set()
    for state in _candidates(spec_file):
        key = os.path.realpath(state)
        if key in seen:
            continue
        seen.add(key)
        spec = _recorded(state)
        if spec is not None and os.path.realpath(spec.source) == real:
            return spec
    return None
