"""Command-line settings that override the spec for one controller's lifetime.

The original guide starts its orchestrator with `--max-parallel 2 --poll-interval 60
--max-retries 3 --spec-backlog 5`. `start`, `reconcile` and `diff` take the same options; the
running controller records them in the store (`controller.overrides`), so `status` and `diff`
plan with what the controller acts on, and say where each value comes from:
`maxParallel 2 (command line; spec says 4)`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any

from controller.model.durations import format_duration
from controller.model.spec import Spec

# field -> (the spec's key, the command-line option)
NAMES = {
    "max_parallel": ("maxParallel", "--max-parallel"),
    "poll_interval": ("pollInterval", "--poll-interval"),
    "retries": ("retries", "--max-retries"),
    "spec_backlog": ("specBacklog", "--spec-backlog"),
}


@dataclass(frozen=True)
class Overrides:
    max_parallel: int | None = None
    poll_interval: float | None = None  # seconds
    retries: int | None = None  # the spec-wide `retries` (a task's own `retries` still wins)
    spec_backlog: int | None = None  # `specBacklog.ahead`

    def __bool__(self) -> bool:
        return any(getattr(self, f.name) is not None for f in fields(self))

    def problem(self, spec: Spec) -> str | None:
        """Why these cannot apply to `spec`, or None."""
        if self.spec_backlog is not None and spec.spec_backlog is None:
            return (
                "--spec-backlog needs a `specBacklog:` in the spec (which agent writes the "
                "specifications, and where): e.g. specBacklog: {agent: architect, path: "
                "docs/architecture/specs/SPEC-{id}.md}"
            )
        return None

    def apply(self, spec: Spec) -> Spec:
        """`spec` with these values in place (its resolved locations and roadmap kept)."""
        if not self:
            return spec
        update: dict[str, Any] = {}
        if self.max_parallel is not None:
            update["max_parallel"] = self.max_parallel
        if self.poll_interval is not None:
            update["poll_interval"] = self.poll_interval
        if self.retries is not None:
            update["retries"] = self.retries
        if self.spec_backlog is not None and spec.spec_backlog is not None:
            update["spec_backlog"] = spec.spec_backlog.model_copy(
                update={"ahead": self.spec_backlog}
            )
        return spec.model_copy(update=update)

    def over(self, other: Overrides) -> Overrides:
        """These values, and `other`'s where these have none."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for f in fields(other):
            if values[f.name] is None:
                values[f.name] = getattr(other, f.name)
        return Overrides(**values)

    # -- stored as JSON in the store's controller facts --------------------------------------
    def to_json(self) -> str:
        data = {NAMES[f.name][0]: getattr(self, f.name) for f in fields(self)}
        return json.dumps({k: v for k, v in data.items() if v is not None})

    @classmethod
    def from_json(cls, text: str | None) -> Overrides:
        """The overrides a controller recorded; none for a missing or unreadable value."""
        try:
            data = json.loads(text) if text else {}
        except ValueError:
            return cls()
        if not isinstance(data, dict):
            return cls()
        values: dict[str, Any] = {}
        for name, (key, _) in NAMES.items():
            value = data.get(key)
            if not isinstance(value, int | float) or isinstance(value, bool):
                continue
            if value > 0 or (name == "retries" and value == 0):  # --max-retries 0: no retry
                values[name] = float(value) if name == "poll_interval" else int(value)
        return cls(**values)


@dataclass(frozen=True)
class Setting:
    """One setting as the controller uses it, and where the value comes from."""

    key: str  # the spec's name: maxParallel, pollInterval, retries, specBacklog
    value: Any
    source: str  # "command line" or "spec"
    spec_value: Any  # what the spec file says

    def text(self) -> str:
        shown = _shown(self.key, self.value)
        if self.source == "spec":
            return f"{self.key} {shown}"
        return f"{self.key} {shown} (command line; spec says {_shown(self.key, self.spec_value)})"

    def as_dict(self) -> dict[str, Any]:
        return {"value": self.value, "source": self.source, "spec": self.spec_value}


def _shown(key: str, value: Any) -> str:
    if value is None:
        return "off" if key == "specBacklog" else "unset"
    if key == "pollInterval":
        return f"{float(value):g}s" if float(value) < 600 else format_duration(float(value))
    if key == "specBacklog":
        return f"{value} ahead"
    return str(value)


def settings(spec: Spec, overrides: Overrides) -> list[Setting]:
    """The four settings of the guide, for the spec file `spec` run with `overrides`."""
    ahead = spec.spec_backlog.ahead if spec.spec_backlog is not None else None
    from_spec = {
        "max_parallel": spec.max_parallel,
        "poll_interval": spec.poll_interval,
        "retries": spec.retries,
        "spec_backlog": ahead,
    }
    out = []
    for name, (key, _) in NAMES.items():
        given = getattr(overrides, name)
        if name == "spec_backlog" and ahead is None:
            given = None  # nothing to override: the spec has no specBacklog
        if given is None:
            out.append(Setting(key, from_spec[name], "spec", from_spec[name]))
        else:
            out.append(Setting(key, given, "command line", from_spec[name]))
    return out


def describe(spec: Spec, overrides: Overrides) -> str:
    """`maxParallel 2 (command line; spec says 4), pollInterval 30s, retries 3, ...`."""
    return ", ".join(s.text() for s in settings(spec, overrides))
