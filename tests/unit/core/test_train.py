"""Table tests of the merge train's decisions (`core.train`), the early conflict checks
(`core.conflicts`), critical-path order (`core.order`) and what the planner makes of them."""

from __future__ import annotations

import itertools
import math

import pytest

from controller.core.conflicts import checks_due, conflict_note, predicted_conflicts
from controller.core.order import remaining_path
from controller.core.train import (
    Batch,
    Bisection,
    Candidate,
    after_probes,
    group_testing_bound,
    next_probes,
    queue_order,
    select_batch,
)
from controller.model.observed import BranchObs, ConflictCheck
from tests.support.planning import (
    NOW,
    SHA,
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

# -- the queue and the batch -----------------------------------------------------------------


def test_queue_is_first_finished_first_then_backlog_order() -> None:
    queue = [
        Candidate("late", 30.0, 0),
        Candidate("b", 10.0, 2),
        Candidate("a", 10.0, 1),
        Candidate("unknown", None, 3),
    ]
    assert [c.task for c in queue_order(queue)] == ["a", "b", "late", "unknown"]


@pytest.mark.parametrize(
    ("batch", "parallel", "links"),
    [(1, 1, ("t0",)), (3, 1, ("t0", "t1", "t3")), (2, 2, ("t0", "t1", "t3", "t4")), (9, 1, None)],
)
def test_select_batch_leaves_predicted_conflicts_out(
    batch: int, parallel: int, links: tuple[str, ...] | None
) -> None:
    queue = [Candidate(f"t{i}", float(i), i, ("x.txt",) if i == 2 else ()) for i in range(5)]
    chosen = select_batch(queue, batch, parallel)
    assert chosen.conflict_checks == ("t2",)
    assert chosen.links == (links if links is not None else ("t0", "t1", "t3", "t4"))


def test_select_batch_of_nothing() -> None:
    assert select_batch([], 8) == Batch(())


# -- bisection -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("state", "batch", "parallel", "probes"),
    [
        (Bisection(5), 8, 1, (5,)),  # it fits one batch: verify the whole chain
        (Bisection(12), 8, 2, (8, 12)),  # the next batch, speculatively, on top
        (Bisection(16), 8, 2, (8, 16)),
        (Bisection(8, bad=8), 8, 1, (4,)),  # halves
        (Bisection(8, good=4, bad=8), 8, 1, (6,)),  # the known-good prefix is kept
        (Bisection(8, good=4, bad=6), 8, 1, (5,)),
        (Bisection(8, good=4, bad=7), 8, 1, (6,)),  # odd: the later point lands more on a pass
        (Bisection(8, bad=8), 8, 2, (3, 6)),  # thirds
        (Bisection(8, good=2, bad=4), 8, 2, (3,)),  # only one point left to split at
        (Bisection(8, good=4, bad=5), 8, 1, ()),  # culprit known
        (Bisection(8, good=8), 8, 1, ()),  # all landed
    ],
)
def test_next_probes(state: Bisection, batch: int, parallel: int, probes: tuple[int, ...]) -> None:
    assert next_probes(state, batch, parallel) == probes


@pytest.mark.parametrize(
    ("state", "results", "after"),
    [
        (Bisection(8), {8: True}, Bisection(8, 8, None)),
        (Bisection(8), {8: False}, Bisection(8, 0, 8)),
        (Bisection(8, 0, 8), {4: True}, Bisection(8, 4, 8)),
        (Bisection(8, 4, 8), {6: False}, Bisection(8, 4, 6)),
        (Bisection(16), {8: True, 16: False}, Bisection(16, 8, 16)),
        (Bisection(16), {8: False, 16: False}, Bisection(16, 0, 8)),
        # a pass beyond the first failure holds the culprit: not landed
        (Bisection(16), {8: False, 16: True}, Bisection(16, 0, 8)),
    ],
)
def test_after_probes(state: Bisection, results: dict[int, bool], after: Bisection) -> None:
    assert after_probes(state, results) == after


def test_culprit_and_done() -> None:
    assert Bisection(8, 4, 5).culprit == 4 and Bisection(8, 4, 5).done
    assert Bisection(8, 0, 1).culprit == 0
    assert Bisection(8, 4, 6).culprit is None and not Bisection(8, 4, 6).done


def _runs(culprits: set[int], n: int = 16, batch: int = 8, parallel: int = 1) -> int:
    """Verify runs to land every good link and find every culprit (the retries aside)."""
    queue, runs = list(range(n)), 0
    while queue:
        links = queue[: batch * parallel]
        state = Bisection(len(links))
        while not state.done:
            probes = next_probes(state, batch, parallel)
            runs += len(probes)
            passed = {p: not culprits.intersection(links[:p]) for p in probes}
            state = after_probes(state, passed)
        cut = state.culprit + 1 if state.culprit is not None else state.good
        queue = links[cut:] + queue[len(links) :]
    return runs


@pytest.mark.parametrize(("k", "mean_at_most"), [(0, 2.0), (1, 6.0), (2, 9.5)])
def test_bisection_beats_plain_bisection(k: int, mean_at_most: float) -> None:
    """16 branches, batch 8, k culprits in every possible place: the mean number of runs.
    Plain bisection (verify the first half, land it, start over with the rest) needs about
    7.9 for one culprit and 12.6 for two; every culprit is found, every other link lands."""
    cases = [_runs(set(c)) for c in itertools.combinations(range(16), k)]
    assert sum(cases) / len(cases) <= mean_at_most


def test_group_testing_bound() -> None:
    assert group_testing_bound(16, 0) == 0
    assert group_testing_bound(16, 1) == 4
    assert group_testing_bound(16, 2) == math.ceil(math.log2(120)) == 7


# -- conflicts seen early --------------------------------------------------------------------

OTHER = "f" * 40


def _obs(check: ConflictCheck | None, *, branch: str = "b" * 40, **kw: object) -> object:
    checks = {"t1": check} if check else {}
    return observed(
        branches={"t1": BranchObs("t1", branch, merged=False)}, conflict_checks=checks, **kw
    )


def test_a_prediction_holds_only_for_the_commits_it_merged() -> None:
    check = ConflictCheck("t1", "b" * 40, SHA, NOW - 5, ("a.txt",))
    assert predicted_conflicts(_obs(check), "t1") == ("a.txt",)  # type: ignore[arg-type]
    assert predicted_conflicts(_obs(check, branch=OTHER), "t1") == ()  # type: ignore[arg-type]
    assert predicted_conflicts(_obs(check, integration_sha=OTHER), "t1") == ()  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("check", "phase", "due"),
    [
        (None, "running", True),
        (None, "merging", True),
        (None, "queued", False),  # nothing to check before it starts
        (ConflictCheck("t1", "b" * 40, SHA, NOW - 100), "running", False),  # still current
        (ConflictCheck("t1", OTHER, SHA, NOW - 100), "running", True),  # branch moved
        (ConflictCheck("t1", OTHER, SHA, NOW - 10), "running", False),  # checked recently
    ],
)
def test_checks_due(check: ConflictCheck | None, phase: str, due: bool) -> None:
    found = checks_due(_obs(check), {"t1": phase}, NOW, interval=30)  # type: ignore[arg-type]
    assert found == ([("t1", "b" * 40)] if due else [])


def test_checks_due_are_bounded_oldest_first() -> None:
    branches = {f"t{i}": BranchObs(f"t{i}", f"{i:040d}", merged=False) for i in range(10)}
    checks = {f"t{i}": ConflictCheck(f"t{i}", "e" * 40, SHA, NOW - 100 - i) for i in range(10)}
    obs = observed(branches=branches, conflict_checks=checks)
    due = checks_due(obs, dict.fromkeys(branches, "running"), NOW, 30, limit=3)
    assert [t for t, _ in due] == ["t9", "t8", "t7"]


def test_conflict_note() -> None:
    assert conflict_note(("a", "b"), "main") == "will conflict with main in a, b"
    assert conflict_note(tuple("abcde"), "main", shown=2) == (
        "will conflict with main in a, b (+3 more)"
    )


def test_plan_shows_a_predicted_conflict_of_a_running_and_a_finished_task() -> None:
    spec = make_spec(["t1", "t2"])
    checks = {t: ConflictCheck(t, "b" * 40, SHA, NOW - 5, ("src/x.py",)) for t in ("t1", "t2")}
    branches = {t: BranchObs(t, "b" * 40, merged=False) for t in ("t1", "t2")}
    obs = observed([running("t1"), exited("t2")], branches=branches, conflict_checks=checks)
    p = run(spec, obs)
    wait = wait_of(p, "t1")
    merge = action_of(p, "t2")
    assert wait and wait.reason.endswith("will conflict with main in src/x.py")
    assert merge and merge.kind == "merge" and "will conflict with main" in merge.reason


# -- the planner and the train ---------------------------------------------------------------


def test_finished_tasks_queue_behind_the_train_under_way() -> None:
    spec = make_spec(["t1", "t2"])
    p = run(spec, observed([exited("t1"), exited("t2")], merging=frozenset({"t1"})))
    assert action_of(p, "t2") is None
    wait = wait_of(p, "t2")
    assert wait and wait.phase == "merging" and "queued for the merge train" in wait.reason
    assert wait_of(p, "t1").phase == "verifying"  # type: ignore[union-attr]


def test_a_fresh_start_after_a_conflict_waits_for_the_train() -> None:
    spec = make_spec(["t1", "t2"])
    conflict = failed("t1", outcome="conflict", retry_at=NOW - 1, exit_code=0)
    busy = run(spec, observed([conflict, exited("t2")], merging=frozenset({"t2"})))
    assert started(busy) == []
    assert "waits for the merge train" in wait_of(busy, "t1").reason  # type: ignore[union-attr]
    idle = run(spec, observed([conflict]))
    assert "t1" in started(idle) and action_of(idle, "t1").fresh  # type: ignore[union-attr]


# -- critical-path order ---------------------------------------------------------------------


def test_remaining_path_uses_durations_and_skips_what_is_done() -> None:
    spec = make_spec(
        [task("a"), task("b", deps=["a"]), task("c", deps=["b"]), task("d"), task("e", deps=["a"])]
    )
    level = remaining_path(spec.backlog, {"a": 1, "b": 2, "c": 3, "d": 10, "e": 1}, set())
    assert level == {"a": 6, "b": 5, "c": 3, "d": 10, "e": 1}
    assert remaining_path(spec.backlog, {"a": 1, "b": 2, "c": 3, "d": 10, "e": 1}, {"a"}) == {
        "b": 5,
        "c": 3,
        "d": 10,
        "e": 1,
    }


def _chain_and_loner(order: str) -> list[str]:
    tasks = [
        task("loner", paths=["src/l/**"], estimate="10s"),
        task("head", paths=["src/h/**"], estimate="2s"),
        task("mid", deps=["head"], paths=["src/m/**"], estimate="5s"),
        task("tail", deps=["mid"], paths=["src/t/**"], estimate="5s"),
    ]
    spec = make_spec(tasks, maxParallel=1, order=order)
    return started(run(spec))


def test_critical_path_order_starts_the_long_chain_first() -> None:
    assert _chain_and_loner("backlog") == ["loner"]
    assert _chain_and_loner("critical-path") == ["head"]  # 2 + 5 + 5 > 10


def test_critical_path_falls_back_to_measured_durations_then_backlog_order() -> None:
    tasks = [
        task("quick", agent="docs", paths=["docs/q/**"]),
        task("slow", paths=["src/s/**"]),
    ]
    spec = make_spec(tasks, maxParallel=1, order="critical-path")
    assert started(run(spec)) == ["quick"]  # no estimates, nothing measured: backlog order
    measured = observed(agent_durations={"dev": 600.0, "docs": 30.0})
    assert started(run(spec, measured)) == ["slow"]
