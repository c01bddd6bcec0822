"""The merge train against real repositories: one verify run for a clean batch, bisection
with one culprit and with two, a conflict inside a batch, predicted conflicts, two probes
side by side. The verify command is real: it fails when a file named BROKEN is in the tree,
and notes every run (the commit it verified) in a file outside the repository."""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from controller import git as gitops
from controller.act.merge import MergeJob
from controller.act.train import TrainJob, outcomes_of
from controller.model.outcomes import MergeOutcome
from tests.support.repo import git

pytestmark = pytest.mark.timeout(60)

VERIFY = """
import os, subprocess, sys
sha = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True).stdout
broken = os.path.exists("BROKEN")
with open(sys.argv[1], "a") as runs:
    runs.write(f"{sha.strip()} {'fail' if broken else 'pass'}\\n")
sys.exit(1 if broken else 0)
"""


@dataclass
class Train:
    repo: Path
    tmp: Path

    @property
    def runs_file(self) -> Path:
        return self.tmp / "runs.txt"

    def runs(self) -> list[tuple[str, str]]:
        if not self.runs_file.exists():
            return []
        return [tuple(line.split()) for line in self.runs_file.read_text().splitlines()]  # type: ignore[misc]

    def task(self, task: str, files: dict[str, str]) -> MergeJob:
        """A finished task: its branch on main's tip with `files` committed."""
        base = gitops.rev_parse(self.repo, "main")
        assert base
        wt = gitops.ensure_worktree(self.repo, self.tmp / "worktrees", task, base)
        for rel, text in files.items():
            (wt / rel).write_text(text)
        git(wt, "add", "-A")
        git(wt, "commit", "-q", "-m", f"{task} work")
        return MergeJob(
            task=task,
            attempt=1,
            repo=self.repo,
            integration="main",
            title=task,
            worktree=wt,
            scope=["**"],
            verify=[sys.executable, "-c", VERIFY, str(self.runs_file)],
            verify_timeout_s=30,
            verify_log=self.tmp / "logs" / f"{task}.verify.log",
            scratch_root=self.tmp / "scratch",
        )

    def tasks(
        self, n: int, culprits: frozenset[int] = frozenset(), name: str = "t"
    ) -> list[MergeJob]:
        jobs = []
        for i in range(1, n + 1):
            files = {f"{name}{i}.txt": f"{i}\n"}
            if i in culprits:
                files["BROKEN"] = "broken\n"  # the same content: culprits do not conflict
            jobs.append(self.task(f"{name}{i}", files))
        return jobs

    def positions(self) -> list[str]:
        """Every commit main pointed at, oldest first (its reflog)."""
        return git(self.repo, "reflog", "show", "--format=%H", "refs/heads/main").split()[::-1]

    def first_parent_tasks(self) -> list[str]:
        out = git(
            self.repo,
            "log",
            "--first-parent",
            "--reverse",
            "--format=%(trailers:key=Orchestrator-Task,valueonly)",
            "main",
        )
        return [line.strip() for line in out.splitlines() if line.strip()]


@pytest.fixture
def train(git_repo: Path, tmp_path: Path) -> Train:
    git(git_repo, "checkout", "-q", "--detach")  # main is not checked out: landing is a CAS
    return Train(git_repo, tmp_path)


def every_position_passes(t: Train) -> bool:
    return all(
        "BROKEN" not in git(t.repo, "ls-tree", "--name-only", sha).split() for sha in t.positions()
    )


def kinds(outcomes: dict[str, MergeOutcome]) -> dict[str, str]:
    return {task: o.kind for task, o in sorted(outcomes.items())}


def run(jobs: list[MergeJob], batch: int, parallel: int = 1, **extra: object) -> dict:
    return dict(outcomes_of(TrainJob(tuple(jobs), batch=batch, parallel=parallel, **extra)))  # type: ignore[arg-type]


def test_a_clean_batch_lands_with_one_verify_run_and_one_swap(train: Train) -> None:
    before = train.positions()
    outcomes = run(train.tasks(4), batch=8)
    assert kinds(outcomes) == {f"t{i}": "merged" for i in range(1, 5)}
    assert len(train.runs()) == 1
    assert train.positions() == [*before, outcomes["t4"].sha]  # one move, to M4
    assert train.first_parent_tasks() == ["t1", "t2", "t3", "t4"]
    shas = [outcomes[f"t{i}"].sha for i in range(1, 5)]
    assert len(set(shas)) == 4  # each task its own merge commit
    for prev, sha in zip(shas, shas[1:], strict=False):
        assert git(train.repo, "rev-parse", f"{sha}^1") == prev
    assert not list((train.tmp / "scratch").glob("verify-*"))


def test_bisection_with_one_culprit(train: Train) -> None:
    jobs = train.tasks(8, culprits=frozenset({6}))
    outcomes = run(jobs, batch=8)
    assert kinds(outcomes) == {
        **{f"t{i}": "merged" for i in range(1, 6)},
        "t6": "verify_failed",
        "t7": "requeued",
        "t8": "requeued",
    }
    # M8 fails, M4 passes (lands), M6 fails, M5 passes (lands): t6 is the culprit
    assert [r[1] for r in train.runs()] == ["fail", "pass", "fail", "pass"]
    log = jobs[5].verify_log
    assert str(log) in outcomes["t6"].message and "links 1-6" in log.read_text()
    assert every_position_passes(train)
    rest = run(jobs[6:], batch=8)  # the next train, on the new tip
    assert kinds(rest) == {"t7": "merged", "t8": "merged"}
    assert train.first_parent_tasks() == ["t1", "t2", "t3", "t4", "t5", "t7", "t8"]
    assert every_position_passes(train)


def test_bisection_with_two_culprits(train: Train) -> None:
    jobs = train.tasks(8, culprits=frozenset({3, 6}))
    first = run(jobs, batch=8)
    assert kinds(first) == {
        "t1": "merged",
        "t2": "merged",
        "t3": "verify_failed",
        **{f"t{i}": "requeued" for i in range(4, 9)},
    }
    second = run(jobs[3:], batch=8)
    assert kinds(second) == {
        "t4": "merged",
        "t5": "merged",
        "t6": "verify_failed",
        "t7": "requeued",
        "t8": "requeued",
    }
    third = run(jobs[6:], batch=8)
    assert kinds(third) == {"t7": "merged", "t8": "merged"}
    failed = {t for o in (first, second, third) for t, x in o.items() if x.kind == "verify_failed"}
    assert failed == {"t3", "t6"}  # exactly the culprits; every other task merged
    assert train.first_parent_tasks() == ["t1", "t2", "t4", "t5", "t7", "t8"]
    assert every_position_passes(train)
    # M8 F, M4 F, M2 P, M3 F | M5 F, M3 F, M2 P | M2 P
    assert [r[1] for r in train.runs()] == ["fail", "fail", "pass", "fail"] + [
        "fail",
        "fail",
        "pass",
    ] + ["pass"]


def test_a_conflict_inside_a_batch_leaves_it_and_the_rest_lands(train: Train) -> None:
    jobs = [
        train.task("t1", {"shared.txt": "from t1\n"}),
        train.task("t2", {"shared.txt": "from t2\n"}),
        train.task("t3", {"t3.txt": "3\n"}),
    ]
    outcomes = run(jobs, batch=8)
    assert kinds(outcomes) == {"t1": "merged", "t2": "conflict", "t3": "merged"}
    assert outcomes["t2"].conflicts == ("shared.txt",)
    assert "t1" in outcomes["t2"].message  # it conflicts with the train, not with main
    assert len(train.runs()) == 1
    assert train.first_parent_tasks() == ["t1", "t3"]


def test_a_predicted_conflict_takes_no_place_and_no_verify_run(train: Train) -> None:
    clash = train.task("clash", {"README.md": "rewritten by the agent\n"})
    (train.tmp / "human").mkdir()
    git(train.repo, "worktree", "add", "-q", str(train.tmp / "human"), "main")
    (train.tmp / "human" / "README.md").write_text("rewritten by a human\n")
    git(train.tmp / "human", "commit", "-q", "-am", "human edit")
    jobs = train.tasks(2)
    outcomes = run(jobs, batch=8, conflict_checks=(clash,))
    assert kinds(outcomes) == {"clash": "conflict", "t1": "merged", "t2": "merged"}
    assert len(train.runs()) == 1


def test_two_probes_side_by_side(train: Train) -> None:
    jobs = train.tasks(6)
    outcomes = run(jobs, batch=3, parallel=2)  # M3 and M6 verified at once
    assert kinds(outcomes) == {f"t{i}": "merged" for i in range(1, 7)}
    assert len(train.runs()) == 2
    culprit = train.tasks(6, culprits=frozenset({2}), name="u")
    found = run(culprit, batch=3, parallel=2)  # M3 and M6 fail; then M1 passes, M2 fails
    assert found["u2"].kind == "verify_failed" and found["u1"].kind == "merged"
    assert sorted(r[1] for r in train.runs()[2:]) == ["fail", "fail", "fail", "pass"]
    assert every_position_passes(train)
