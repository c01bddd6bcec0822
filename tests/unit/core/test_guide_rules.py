"""The original guide's rules in the planner: spawn-parallel requests go first (within every
start rule), the spec backlog (generated spec tasks, at most `ahead` specs ahead), and the
command-line settings (`--max-parallel`, ...) as overrides of the spec."""

from __future__ import annotations

from typing import Any

import pytest

from controller.core.order import requested_first
from controller.core.specbacklog import expand, spec_paths
from controller.model.overrides import Overrides, describe, settings
from tests.support.planning import (
    NOW,
    action_of,
    exited,
    failed,
    make_spec,
    observed,
    run,
    running,
    started,
    task,
    wait_of,
)

# --------------------------------------------------------------------------- spawn-parallel


def test_requested_tasks_are_asked_first_oldest_request_first() -> None:
    spec = make_spec(["a", "b", "c", "d"], maxParallel=2)
    obs = observed(requested={"d": NOW - 5, "c": NOW - 1})
    plan = run(spec, obs)
    assert started(plan) == ["d", "c"]
    assert action_of(plan, "d").reason.startswith("requested at ")  # type: ignore[union-attr]
    waiting = wait_of(plan, "a")
    assert waiting is not None and waiting.reason.startswith("no slot")


def test_a_request_passes_every_start_rule() -> None:
    spec = make_spec(
        ["a", task("b", deps=["a"], paths=["src/b/**"]), task("c", paths=["src/a/**"])],
        maxParallel=4,
    )
    obs = observed([running("a")], requested={"b": NOW - 5, "c": NOW - 4})
    plan = run(spec, obs)
    assert started(plan) == []
    b, c = wait_of(plan, "b"), wait_of(plan, "c")
    assert b is not None and "(spawn-parallel); blocked by a (running)" in b.reason
    assert c is not None and "scope held by a" in c.reason
    assert plan.requested == {"b": NOW - 5, "c": NOW - 4}


def test_a_request_waits_out_the_backoff() -> None:
    spec = make_spec(["a"])
    obs = observed([failed("a", ended=NOW - 1)], requested={"a": NOW})
    waiting = wait_of(run(spec, obs), "a")
    assert waiting is not None and waiting.phase == "retrying"
    assert "backoff until" in waiting.reason


def test_requested_first_is_a_stable_partition() -> None:
    spec = make_spec(["a", "b", "c", "d"])
    tasks = list(spec.backlog)
    assert [t.id for t in requested_first(tasks, {})] == ["a", "b", "c", "d"]
    ordered = requested_first(tasks, {"c": 2.0, "a": 3.0, "zzz": 1.0})
    assert [t.id for t in ordered] == ["c", "a", "b", "d"]


# --------------------------------------------------------------------------- spec backlog

AGENTS: dict[str, dict[str, Any]] = {
    "dev": {"command": ["dev", "{prompt}"], "owns": ["src/**"]},
    "architect": {"command": ["arch", "{prompt}"], "owns": ["docs/**"]},
}
SB = {"agent": "architect", "ahead": 2, "path": "docs/specs/SPEC-{id}.md"}


def backlog_spec(n: int = 4, **extra: Any) -> Any:
    tasks = [task(f"t{i}", paths=[f"src/t{i}/**"], title=f"Item {i}") for i in range(1, n + 1)]
    return make_spec(tasks, AGENTS, specBacklog={**SB, **extra}, maxParallel=8)


def test_each_task_gets_a_spec_task_before_it() -> None:
    spec = expand(backlog_spec(2), observed())
    assert [t.id for t in spec.backlog] == ["t1-spec", "t1", "t2-spec", "t2"]
    assert spec.generated == {"t1-spec": "t1", "t2-spec": "t2"}
    s1, t1 = spec.backlog[0], spec.backlog[1]
    assert (s1.agent, s1.paths, s1.title) == (
        "architect",
        ["docs/specs/SPEC-t1.md"],
        "Specification of Item 1",
    )
    assert "docs/specs/SPEC-t1.md" in s1.prompt and "Item 1" in s1.prompt
    assert t1.depends_on == ["t1-spec"]
    assert t1.prompt.endswith("Specification: docs/specs/SPEC-t1.md")


def test_no_spec_task_for_a_spec_on_the_branch_or_a_started_task() -> None:
    spec = backlog_spec(3)
    obs = observed(
        [running("t2")],
        present_paths=frozenset({"docs/specs/SPEC-t1.md"}),
    )
    expanded = expand(spec, obs)
    assert [t.id for t in expanded.backlog] == ["t1", "t2", "t3-spec", "t3"]
    assert expanded.backlog[0].depends_on == []


def test_a_spec_task_with_history_stays_and_its_file_frees_the_task() -> None:
    spec = backlog_spec(1)
    merged = observed(merged=["t1-spec"], present_paths=frozenset({"docs/specs/SPEC-t1.md"}))
    expanded = expand(spec, merged)
    assert [t.id for t in expanded.backlog] == ["t1-spec", "t1"]  # shown, and pruned as usual
    assert expanded.backlog[1].depends_on == []
    # exhausted, then a person wrote the spec: the task no longer waits for the spec task
    gave_up = observed(
        [failed("t1-spec", n) for n in (1, 2, 3, 4)],
        present_paths=frozenset({"docs/specs/SPEC-t1.md"}),
    )
    assert expand(spec, gave_up).backlog[1].depends_on == []


def test_paused_merged_and_other_agents_get_no_spec() -> None:
    tasks = [
        task("p", paths=["src/p/**"], paused=True),
        task("m", paths=["src/m/**"]),
        task("d", agent="architect", paths=["docs/d/**"]),
    ]
    spec = make_spec(tasks, AGENTS, specBacklog=SB)
    expanded = expand(spec, observed(merged=["m"]))
    assert expanded.generated == {}
    assert spec_paths(spec) == ["docs/specs/SPEC-p.md", "docs/specs/SPEC-m.md"]


def test_the_spec_agent_stays_at_most_ahead_specs_ahead() -> None:
    spec = backlog_spec(5)
    plan = run(expand(spec, observed()), observed())
    assert started(plan) == ["t1-spec", "t2-spec"]
    full = wait_of(plan, "t3-spec")
    assert full is not None and full.reason == (
        "spec backlog full: 2/2 specifications ahead (t1-spec, t2-spec)"
    )
    # t1's spec merged and t1 runs: still two ahead (merged counts until t1 is merged)
    obs = observed([exited("t2-spec"), running("t1")], merged=["t1-spec"])
    plan = run(expand(spec, obs), obs)
    assert "t3-spec" not in started(plan)
    # t1 merged: one place frees up
    obs = observed([running("t2")], merged=["t1-spec", "t1", "t2-spec"])
    plan = run(expand(spec, obs), obs)
    assert started(plan) == ["t3-spec"]


def test_a_retrying_spec_counts_and_an_exhausted_one_does_not() -> None:
    spec = backlog_spec(3, ahead=1)
    retrying = observed([failed("t1-spec", ended=NOW - 1)])
    assert started(run(expand(spec, retrying), retrying)) == []
    exhausted = observed([failed("t1-spec", n) for n in (1, 2, 3, 4)])
    assert started(run(expand(spec, exhausted), exhausted)) == ["t2-spec"]


# --------------------------------------------------------------------------- overrides


def test_overrides_replace_the_spec_values_and_keep_the_rest() -> None:
    spec = backlog_spec(1)
    o = Overrides(max_parallel=2, poll_interval=60.0, retries=5, spec_backlog=4)
    applied = o.apply(spec)
    assert (applied.max_parallel, applied.poll_interval, applied.retries) == (2, 60.0, 5)
    assert applied.spec_backlog is not None and applied.spec_backlog.ahead == 4
    assert applied.spec_backlog.path == SB["path"]
    assert applied.locations == spec.locations  # where things are stays resolved
    assert describe(spec, o) == (
        "maxParallel 2 (command line; spec says 8), pollInterval 60s (command line; spec "
        "says 30s), retries 5 (command line; spec says 3), specBacklog 4 ahead (command "
        "line; spec says 2 ahead)"
    )


def test_overrides_round_trip_through_the_store_and_combine() -> None:
    o = Overrides(max_parallel=2, spec_backlog=3)
    assert Overrides.from_json(o.to_json()) == o
    assert Overrides.from_json(None) == Overrides() == Overrides.from_json("not json")
    assert Overrides.from_json('{"maxParallel": true, "retries": -1}') == Overrides()
    assert Overrides.from_json(Overrides(retries=0).to_json()) == Overrides(retries=0)
    assert Overrides(retries=1).over(o) == Overrides(max_parallel=2, retries=1, spec_backlog=3)
    assert not Overrides() and o


def test_spec_backlog_override_needs_a_spec_backlog() -> None:
    spec = make_spec(["a"])
    problem = Overrides(spec_backlog=5).problem(spec)
    assert problem is not None and "needs a `specBacklog:`" in problem
    assert Overrides(max_parallel=1).problem(spec) is None
    shown = {s.key: s.text() for s in settings(spec, Overrides(max_parallel=1))}
    assert shown["specBacklog"] == "specBacklog off"
    assert shown["maxParallel"] == "maxParallel 1 (command line; spec says 4)"


@pytest.mark.parametrize("max_parallel", [1, 3])
def test_max_parallel_override_bounds_the_plan(max_parallel: int) -> None:
    spec = Overrides(max_parallel=max_parallel).apply(make_spec(["a", "b", "c", "d"]))
    assert len(started(run(spec))) == max_parallel
