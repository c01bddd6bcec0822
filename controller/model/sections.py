"""Small sections of the spec: admission thresholds (`resources`), `backoff`, `backlogFrom`
and `runner`. Part of the spec format like `spec` (which uses them, and re-exports them);
kept apart only to keep each model module readable. Every field carries the description
editors show on hover (`specs/schema.json`).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, field_validator, model_validator

from controller.model.fields import Duration, SpecModel


class Threshold(SpecModel):
    """Above `below` percent (or always, for the last entry without `below`), allow `parallel`."""

    below: Annotated[float, Field(gt=0, le=100)] | None = Field(
        None,
        description="This rule applies while use is under this percent; the last rule leaves "
        "it out and applies above the others.",
    )
    parallel: Annotated[int, Field(ge=1, le=1024)] = Field(
        description="How many agents may run while this rule applies."
    )


def _check_thresholds(rules: list[Threshold]) -> list[Threshold]:
    if not rules:
        raise ValueError("needs at least one rule")
    for i, rule in enumerate(rules):
        if rule.below is None and i != len(rules) - 1:
            raise ValueError(f"rule {i} has no 'below': only the last rule may omit it")
    belows = [r.below for r in rules if r.below is not None]
    if belows != sorted(belows) or len(set(belows)) != len(belows):
        raise ValueError(f"'below' values must increase strictly, got {belows}")
    parallels = [r.parallel for r in rules]
    if parallels != sorted(parallels, reverse=True):
        raise ValueError(f"'parallel' must not increase as load grows, got {parallels}")
    return rules


class Resources(SpecModel):
    cpu: list[Threshold] = Field(
        default_factory=lambda: [
            Threshold(below=50, parallel=4),
            Threshold(below=70, parallel=3),
            Threshold(below=80, parallel=2),
            Threshold(parallel=1),
        ],
        description="Agents allowed by the machine's CPU use (percent, smoothed over ~20 s), "
        "first matching rule wins. Default: under 50% 4, under 70% 3, under 80% 2, else 1.",
    )
    memory: list[Threshold] = Field(
        default_factory=lambda: [
            Threshold(below=50, parallel=4),
            Threshold(below=80, parallel=3),
            Threshold(parallel=1),
        ],
        description="Agents allowed by the machine's memory use (percent), like `cpu`. "
        "Default: under 50% 4, under 80% 3, else 1.",
    )
    disk: list[Threshold] | None = Field(
        default=None,
        description="Agents allowed by how full the filesystem of the repository is (percent "
        "used, as `df` shows it), like `cpu` and `memory`: e.g. [{below: 90, parallel: 4}, "
        "{below: 95, parallel: 2}, {parallel: 1}]. Unset: disk use limits nothing (`status` "
        "still shows it).",
    )

    @field_validator("cpu", "memory", "disk")
    @classmethod
    def _ordered(cls, rules: list[Threshold] | None) -> list[Threshold] | None:
        return None if rules is None else _check_thresholds(rules)


class Backoff(SpecModel):
    initial: Duration = Field(
        10.0, description="The wait before the first retry; it doubles with each attempt."
    )
    max: Duration = Field(300.0, description="The longest wait between two attempts.")

    @model_validator(mode="after")
    def _ordered(self) -> Backoff:
        if self.initial > self.max:
            raise ValueError(f"initial ({self.initial:g}s) must not exceed max ({self.max:g}s)")
        return self


class RoadmapSource(SpecModel):
    """`backlogFrom`: planned items of a markdown ROADMAP become backlog tasks."""

    roadmap: str = Field(
        description="The markdown ROADMAP, relative to this file (docs/roadmap.md says which "
        "items and dependencies are read)."
    )
    agent: str = Field(description="The agent that runs the tasks made from its items.")


class LocalRunnerSpec(SpecModel):
    """Agents run as detached processes on this machine (the default)."""

    kind: Literal["local"] = Field("local", description="Agents run on this machine.")


class RayRunnerSpec(SpecModel):
    """Agents run as Ray jobs on a cluster; the controller stays the one authority.

    `address` is the Ray dashboard (Jobs API) URL; `remote` a git URL that both this
    machine and the cluster's workers can fetch from and push to.
    """

    kind: Literal["ray"] = Field(description="Agents run as Ray jobs on a cluster (docs/ray.md).")
    address: Annotated[str, Field(pattern=r"^https?://[^\s/]+(:\d+)?/?$")] = Field(
        description="The Ray dashboard's URL (its Jobs API), e.g. http://head:8265."
    )
    remote: Annotated[str, Field(min_length=1)] = Field(
        description="A git URL this machine and the cluster's workers can both fetch from and "
        "push to; task branches travel through it."
    )
    python: Annotated[str, Field(min_length=1)] = Field(
        "python3",
        description="The interpreter on the workers that has this package installed.",
    )


Runner = Annotated[LocalRunnerSpec | RayRunnerSpec, Field(discriminator="kind")]


class MergeQueue(SpecModel):
    """`mergeQueue`: how finished branches are verified and landed (the merge train)."""

    batch: Annotated[int, Field(ge=1, le=64)] = Field(
        default=1,
        description="How many finished branches one verify run may cover. The train chains "
        "their merge commits, each on the previous one, verifies the last and lands them all "
        "by one compare-and-swap; when that run fails it bisects to find the culprit, landing "
        "the prefixes that pass. 1: every branch is verified on its own.",
    )
    parallel_verify: Annotated[int, Field(ge=1, le=4)] = Field(
        default=1,
        description="How many verify runs of the train may run at once. With 2, the train "
        "verifies the next batch (built on top of the current one) while the current one "
        "runs, and bisects with two probes at a time. Each run is a full verify command: "
        "worth it only when the machine has a core to spare for it.",
    )
