"""Scheduling rules as plain functions: admission limit, dependency readiness, scope holders."""

from __future__ import annotations

import random

import pytest

from controller.core.schedule import ScopeHolders, admission, rule_limit, unmet_dependencies
from controller.model.globs import literal_heads, scopes_overlap
from controller.model.observed import ResourcesObs
from controller.model.spec import Threshold
from tests.support.planning import make_spec, task

CPU = [
    Threshold(below=50, parallel=4),
    Threshold(below=70, parallel=3),
    Threshold(below=80, parallel=2),
    Threshold(parallel=1),
]


@pytest.mark.parametrize(
    ("percent", "limit"),
    [(0, 4), (49.9, 4), (50, 3), (69.99, 3), (70, 2), (79, 2), (80, 1), (100, 1)],
)
def test_rule_limit_takes_the_first_rule_below(percent: float, limit: int) -> None:
    assert rule_limit(CPU, percent) == limit


def test_rule_limit_without_catch_all_uses_the_last_rule() -> None:
    rules = [Threshold(below=50, parallel=8), Threshold(below=90, parallel=2)]
    assert rule_limit(rules, 95) == 2


@pytest.mark.parametrize(
    ("max_parallel", "cpu", "memory", "limit", "bound_by"),
    [
        (4, 0, 0, 4, "maxParallel"),
        (2, 0, 0, 2, "maxParallel"),
        (8, 0, 0, 4, "cpu 0%"),  # the cpu rule (4) is the tightest of 8/4/4
        (4, 75, 0, 2, "cpu 75%"),
        (4, 85, 0, 1, "cpu 85%"),
        (4, 0, 60, 3, "memory 60%"),
        (4, 55, 85, 1, "memory 85%"),
        (1, 90, 90, 1, "maxParallel"),  # ties name maxParallel
    ],
)
def test_admission_is_the_minimum_of_the_three_rules(
    max_parallel: int, cpu: float, memory: float, limit: int, bound_by: str
) -> None:
    spec = make_spec(maxParallel=max_parallel)
    adm = admission(spec, ResourcesObs(cpu_percent=cpu, memory_percent=memory))
    assert adm.limit == limit == min(max_parallel, adm.cpu_limit, adm.memory_limit)
    assert adm.bound_by == bound_by


def test_admission_uses_the_spec_rules() -> None:
    spec = make_spec(
        maxParallel=16,
        resources={
            "cpu": [{"below": 90, "parallel": 12}, {"parallel": 6}],
            "memory": [{"parallel": 10}],
        },
    )
    assert admission(spec, ResourcesObs(cpu_percent=10)).limit == 10
    assert admission(spec, ResourcesObs(cpu_percent=95)).limit == 6


DISK = {"disk": [{"below": 90, "parallel": 4}, {"below": 95, "parallel": 2}, {"parallel": 1}]}


@pytest.mark.parametrize(
    ("disk", "limit", "bound_by"),
    [
        (50.0, 4, "maxParallel"),
        (91.0, 2, "disk 91% used"),
        (97.5, 1, "disk 98% used"),
        (None, 4, "maxParallel"),  # use unknown: the rule cannot apply
    ],
)
def test_the_disk_rule_is_a_fourth_bound(disk: float | None, limit: int, bound_by: str) -> None:
    rules = {"cpu": [{"parallel": 8}], "memory": [{"parallel": 8}], **DISK}
    spec = make_spec(maxParallel=4, resources=rules)
    adm = admission(spec, ResourcesObs(disk_percent=disk))
    assert (adm.limit, adm.bound_by) == (limit, bound_by)
    assert adm.disk_limit == (None if disk is None else limit)


def test_without_a_disk_rule_disk_use_limits_nothing() -> None:
    spec = make_spec(maxParallel=4, resources={"cpu": [{"parallel": 8}]})
    adm = admission(spec, ResourcesObs(disk_percent=99.9))
    assert (adm.limit, adm.disk_limit, adm.disk_percent) == (4, None, 99.9)


def test_unmet_dependencies_keeps_order_and_ignores_done() -> None:
    spec = make_spec([task("a"), task("b"), task("c", deps=["b", "a", "x"])])
    c = spec.backlog[2]
    assert unmet_dependencies(c, set()) == ["b", "a", "x"]
    assert unmet_dependencies(c, {"a", "x"}) == ["b"]
    assert unmet_dependencies(c, frozenset({"a", "b", "x"})) == []


def test_scope_holders() -> None:
    holders = ScopeHolders()
    holders.add("a", ("src/a/**",))
    holders.add("empty", ())  # holds nothing
    holders.add("docs", ("docs/*.md", "README.md"))
    assert holders.conflict("b", ("src/b/**",)) is None
    assert holders.conflict("b", ("src/**",)) == "a"
    assert holders.conflict("b", ("src/a/x.py",)) == "a"
    assert holders.conflict("b", ("docs/guide.md",)) == "docs"
    assert holders.conflict("b", ("README.md",)) == "docs"
    assert holders.conflict("b", ("docs/sub/x.md",)) is None  # `*` stays within a segment
    assert holders.conflict("a", ("src/a/**",)) is None  # a task never conflicts with itself
    assert holders.conflict("b", ()) is None  # an empty scope touches nothing


def test_scope_holders_report_the_first_holder() -> None:
    holders = ScopeHolders()
    holders.add("first", ("**",))
    holders.add("second", ("src/**",))
    assert holders.conflict("x", ("src/x.py",)) == "first"


GLOB_PARTS = ["src", "docs", "a", "b", "*", "**", "*.py", "x.py", "te?t", "[ab]", "lib/"]


def _random_glob(rng: random.Random) -> str:
    return "/".join(rng.choice(GLOB_PARTS) for _ in range(rng.randint(1, 4)))


def test_literal_heads_prefilter_never_hides_an_overlap() -> None:
    rng = random.Random(7)
    pruned = 0
    for _ in range(3000):
        a = tuple(_random_glob(rng) for _ in range(rng.randint(1, 3)))
        b = tuple(_random_glob(rng) for _ in range(rng.randint(1, 3)))
        ha, hb = literal_heads(a), literal_heads(b)
        if ha is not None and hb is not None and ha.isdisjoint(hb):
            pruned += 1
            assert not scopes_overlap(a, b), (a, b)
        holders = ScopeHolders()
        holders.add("h", b)
        expected = "h" if scopes_overlap(a, b) else None
        assert holders.conflict("q", a) == expected, (a, b)
    assert pruned > 100  # the prefilter is exercised
