"""The chaos harness in short (`bench/chaos.py --quick`): every scenario, audited, over three
fixed seeds.

Each scenario runs real `reconcile --watch` controllers on a fresh repository with the chaos
agent, injects its faults (controller SIGKILLs, kills inside the controller's git mutations,
agent faults, world faults, hostile agents, bad input, concurrent controllers and stops)
and audits the end state from git, the process table, a canary folder and the agents' side
log. To keep the suite short, each scenario runs with one of the three seeds (the hostile
one, which picks two attacks at random per seed, with all three). The full runs and their
published figures: docs/reliability.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos import run_scenario
from bench.chaos_gitkills import KINDS

SEEDS = (7, 11, 23)


def check(outcome_findings: list[str]) -> None:
    assert outcome_findings == [], "\n".join(outcome_findings)


def handled_all(faults: dict[str, list[int]]) -> bool:
    return all(injected == handled for injected, handled in faults.values())


@pytest.mark.timeout(150)
def test_controller_crashes_and_agent_faults(tmp_path: Path) -> None:
    outcome = run_scenario("crashes", tmp_path, SEEDS[0], quick=True)
    check(outcome.audit.findings)
    assert outcome.crashes_injected == outcome.crashes_survived >= 6
    assert len(outcome.faults) >= 15 and handled_all(outcome.faults)  # every agent fault
    audit = outcome.audit
    assert audit.commits_made > 0 and audit.commits_lost == 0
    assert audit.files_checked > 0 and audit.files_lost == 0
    assert audit.merged_files_checked > 0 and audit.merged_files_wrong == 0
    assert audit.duplicate_agents == 0 and audit.orphans == 0 and audit.reflog_unverified == 0


@pytest.mark.timeout(150)
def test_kills_inside_the_controllers_git_mutations(tmp_path: Path) -> None:
    outcome = run_scenario("git-kills", tmp_path, SEEDS[1], quick=True)
    check(outcome.audit.findings)
    assert all(outcome.git_kills.get(kind, 0) >= 1 for kind in KINDS), outcome.git_kills
    assert outcome.crashes_survived == outcome.crashes_injected >= 5
    assert outcome.audit.files_lost == 0 and outcome.audit.commits_lost == 0


@pytest.mark.timeout(120)
def test_world_faults(tmp_path: Path) -> None:
    outcome = run_scenario("world", tmp_path, SEEDS[2], quick=True)
    check(outcome.audit.findings)
    assert {"database-removed", "human-commit-on-main", "worktree-deleted-while-running"} <= set(
        outcome.faults
    )
    assert handled_all(outcome.faults)


@pytest.mark.timeout(120)
@pytest.mark.parametrize("seed", SEEDS)
def test_hostile_agents_change_nothing_outside(tmp_path: Path, seed: int) -> None:
    outcome = run_scenario("hostile", tmp_path, seed, quick=True)
    check(outcome.audit.findings)  # the canary folder unchanged among them
    assert len(outcome.faults) >= 2 and handled_all(outcome.faults)


@pytest.mark.timeout(120)
def test_bad_input_is_rejected_with_locations_while_work_goes_on(tmp_path: Path) -> None:
    outcome = run_scenario("bad-input", tmp_path, SEEDS[0], quick=True)
    check(outcome.audit.findings)
    assert outcome.bad_tried >= 10 and outcome.bad_rejected == outcome.bad_tried


@pytest.mark.timeout(120)
def test_two_controllers_and_stops(tmp_path: Path) -> None:
    outcome = run_scenario("concurrency", tmp_path, SEEDS[1], quick=True)
    check(outcome.audit.findings)
    assert outcome.faults["two-controllers-at-once"][0] >= 2
    assert handled_all(outcome.faults)
