"""The chaos harness in short (`bench/chaos.py --quick`): every scenario, audited.

Each scenario runs real `reconcile --watch` controllers on a fresh repository with the chaos
agent, injects its faults (controller SIGKILLs, agent faults, world faults, bad input,
concurrent controllers and stops) and audits the end state from git, the process table and
the agents' side log. The full run and its published figures: docs/reliability.md.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos import run_scenario

SEED = 7


def check(outcome_findings: list[str]) -> None:
    assert outcome_findings == [], "\n".join(outcome_findings)


@pytest.mark.timeout(90)
def test_controller_crashes_and_agent_faults(tmp_path: Path) -> None:
    outcome = run_scenario("crashes", tmp_path, SEED, quick=True)
    check(outcome.audit.findings)
    assert outcome.crashes_injected == outcome.crashes_survived >= 6
    assert len(outcome.faults) >= 15  # every kind of agent fault, each handled
    assert all(injected == handled for injected, handled in outcome.faults.values())
    audit = outcome.audit
    assert audit.commits_made > 0 and audit.commits_lost == 0
    assert audit.duplicate_agents == 0 and audit.orphans == 0 and audit.reflog_unverified == 0


@pytest.mark.timeout(60)
def test_world_faults(tmp_path: Path) -> None:
    outcome = run_scenario("world", tmp_path, SEED, quick=True)
    check(outcome.audit.findings)
    assert {"database-removed", "human-commit-on-main", "worktree-deleted-while-running"} <= set(
        outcome.faults
    )
    assert all(injected == handled for injected, handled in outcome.faults.values())


@pytest.mark.timeout(60)
def test_bad_input_is_rejected_with_locations_while_work_goes_on(tmp_path: Path) -> None:
    outcome = run_scenario("bad-input", tmp_path, SEED, quick=True)
    check(outcome.audit.findings)
    assert outcome.bad_tried >= 10 and outcome.bad_rejected == outcome.bad_tried


@pytest.mark.timeout(60)
def test_two_controllers_and_stops(tmp_path: Path) -> None:
    outcome = run_scenario("concurrency", tmp_path, SEED, quick=True)
    check(outcome.audit.findings)
    assert outcome.faults["two-controllers-at-once"][0] >= 2
    assert all(injected == handled for injected, handled in outcome.faults.values())
