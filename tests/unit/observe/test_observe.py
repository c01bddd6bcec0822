"""Readers of the world: git, runs directory, processes, resources, and their assembly."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil
import pytest

from controller import git as gitobs
from controller.git import runner as git_runner
from controller.git.refs import parse_trailer_values
from controller.git.worktrees import parse_worktrees
from controller.model.observed import BranchObs, Observed, ResourcesObs, WorktreeObs
from controller.observe import observe
from controller.observe.assemble import (
    agent_durations,
    assemble,
    integration_checkout_of,
    task_worktrees,
)
from controller.observe.procs import is_alive
from controller.observe.resources import ResourceSampler, ewma
from controller.observe.runs import (
    ExitRecord,
    RunRecord,
    StartRecord,
    parse_progress,
    read_progress,
    read_runs,
)
from controller.state.paths import StatePaths
from controller.state.store import AttemptRow, Store
from tests.support.repo import git, init_repo

# --- a real repository with task branches and worktrees ----------------------------------


def _commit_on(repo: Path, branch: str, name: str, message: str) -> str:
    """Commit file `name` on `branch` without touching the checkout (plumbing only)."""
    parent = git(repo, "rev-parse", branch)
    blob = (
        subprocess.run(
            ["git", "-C", str(repo), "hash-object", "-w", "--stdin"],
            input=name.encode(),
            capture_output=True,
            check=True,
        )
        .stdout.decode()
        .strip()
    )
    git(repo, "read-tree", "--index-output=.git/tmp-index", parent)
    env_index = {"GIT_INDEX_FILE": str(repo / ".git" / "tmp-index")}
    subprocess.run(
        ["git", "-C", str(repo), "update-index", "--add", "--cacheinfo", f"100644,{blob},{name}"],
        check=True,
        env={**os.environ, **env_index},
    )
    tree = subprocess.run(
        ["git", "-C", str(repo), "write-tree"],
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **env_index},
    ).stdout.strip()
    sha = git(repo, "commit-tree", tree, "-p", parent, "-m", message)
    git(repo, "update-ref", f"refs/heads/{branch}", sha)
    return sha


@dataclass(frozen=True)
class World:
    repo: Path
    root: Path  # the worktree root
    initial: str  # sha of the first commit


@pytest.fixture
def world(git_repo: Path, tmp_path: Path) -> World:
    repo = git_repo
    root = tmp_path / "worktrees"
    root.mkdir()
    initial = git(repo, "rev-parse", "HEAD")
    for t in ("t-merged", "t-plain", "t-open", "t-gone", "t-outside", "t-fresh"):
        git(repo, "branch", f"orchestrator/{t}", initial)
    git(repo, "branch", "orchestrator/BAD_ID", initial)
    git(repo, "branch", "feature/x", initial)

    # t-merged: merged by a real two-parent merge commit carrying the trailer (commit-tree).
    # Its own commit carries a trailer too, but only on the second parent's history.
    branch_sha = _commit_on(
        repo, "orchestrator/t-merged", "a.txt", "work\n\nOrchestrator-Task: t-sneaky"
    )
    tree = git(repo, "rev-parse", f"{branch_sha}^{{tree}}")
    merge = git(
        repo,
        "commit-tree",
        tree,
        "-p",
        initial,
        "-p",
        branch_sha,
        "-m",
        "Merge t-merged\n\nOrchestrator-Task: t-merged",
    )
    git(repo, "merge", "-q", "--ff-only", merge)

    # t-plain: merged without trailer
    _commit_on(repo, "orchestrator/t-plain", "b.txt", "plain work")
    git(repo, "merge", "-q", "--no-ff", "-m", "plain merge", "orchestrator/t-plain")

    # t-open: unmerged, in a locked worktree under the root
    _commit_on(repo, "orchestrator/t-open", "c.txt", "open work")
    git(repo, "worktree", "add", "-q", str(root / "t-open"), "orchestrator/t-open")
    git(repo, "worktree", "lock", "--reason", "busy", str(root / "t-open"))

    # t-gone: worktree directory deleted by hand -> prunable
    git(repo, "worktree", "add", "-q", str(root / "t-gone"), "orchestrator/t-gone")
    shutil.rmtree(root / "t-gone")

    # a detached worktree under the root, and a task worktree outside the root
    git(repo, "worktree", "add", "-q", "--detach", str(root / "det"), initial)
    outside = tmp_path / "elsewhere" / "t-outside"
    git(repo, "worktree", "add", "-q", str(outside), "orchestrator/t-outside")

    # a tag named like the integration branch must not shadow it
    git(repo, "tag", "main", initial)
    return World(repo=repo, root=root, initial=initial)


def test_list_worktrees_kinds(world: World) -> None:
    repo, root = world.repo, world.root
    wts = {Path(w.path).name: w for w in gitobs.list_worktrees(repo)}
    assert wts["repo"].branch == "main" and not wts["repo"].prunable
    assert wts["t-open"].branch == "orchestrator/t-open" and wts["t-open"].locked
    assert wts["t-gone"].prunable and wts["t-gone"].branch == "orchestrator/t-gone"
    assert wts["det"].branch is None and wts["det"].head == world.initial
    assert not any(w.bare for w in wts.values())
    assert wts["t-open"].path == str((root / "t-open").resolve())


def test_list_worktrees_bare(tmp_path: Path, git_repo: Path) -> None:
    bare = tmp_path / "bare.git"
    subprocess.run(["git", "clone", "-q", "--bare", str(git_repo), str(bare)], check=True)
    git(bare, "worktree", "add", "-q", str(tmp_path / "wt"), "main")
    first, second = gitobs.list_worktrees(bare)
    assert first.bare and first.head is None and first.branch is None
    assert second.branch == "main" and not second.bare


def test_parse_worktrees_porcelain() -> None:
    text = (
        "worktree /r\0HEAD aaa\0branch refs/heads/main\0\0"
        "worktree /w/x\0HEAD bbb\0detached\0locked\0\0"
        "worktree /w/y z\0HEAD ccc\0branch refs/heads/orchestrator/y\0prunable gone\0\0"
    )
    a, b, c = parse_worktrees(text)
    assert (a.path, a.head, a.branch) == ("/r", "aaa", "main")
    assert b.branch is None and b.locked and not b.prunable
    assert c.path == "/w/y z" and c.prunable and c.branch == "orchestrator/y"


def test_task_branches_and_merged(world: World) -> None:
    repo = world.repo
    branches = gitobs.task_branches(repo, "refs/heads/main")
    assert set(branches) == {"t-merged", "t-plain", "t-open", "t-gone", "t-outside", "t-fresh"}
    merged = {t for t, b in branches.items() if b.merged}
    assert merged == {"t-merged", "t-plain", "t-gone", "t-outside", "t-fresh"}
    assert branches["t-open"].sha == git(repo, "rev-parse", "orchestrator/t-open")
    assert not any(b.merged for b in gitobs.task_branches(repo, None).values())


def test_merged_tasks_first_parent_trailers(world: World) -> None:
    repo = world.repo
    assert gitobs.merged_tasks(repo, "refs/heads/main") == frozenset({"t-merged"})
    assert gitobs.merged_tasks(repo, "refs/heads/no-such-branch") == frozenset()


def test_parse_trailer_values() -> None:
    text = "t1\x1ft2\0\0  t3 \0Bad Id\0"
    assert parse_trailer_values(text) == frozenset({"t1", "t2", "t3"})


def test_rev_and_is_dirty(world: World) -> None:
    repo = world.repo
    head = git(repo, "rev-parse", "HEAD")
    assert gitobs.rev_parse(repo, "refs/heads/main") == head
    assert gitobs.rev_parse(repo, "refs/tags/main") == world.initial
    assert gitobs.rev_parse(repo, "nope") is None
    place = gitobs.open_repo(repo).place
    assert not gitobs.is_dirty(place)
    (repo / "untracked.txt").write_text("x")
    assert not gitobs.is_dirty(place)  # untracked files never block a fast-forward
    (repo / "untracked.txt").unlink()
    (repo / "README.md").write_text("changed\n")
    assert gitobs.is_dirty(gitobs.open_repo(repo).place)


# --- observe() end to end ----------------------------------------------------------------


def _write(path: Path, data: object | str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(data if isinstance(data, str) else json.dumps(data))


@pytest.mark.timeout(30)
def test_observe_end_to_end(world: World, tmp_path: Path) -> None:
    repo, root = world.repo, world.root
    state = StatePaths(tmp_path / "state")
    store = Store.open(state.db)
    proc = subprocess.Popen(["sleep", "30"])
    try:
        ct = psutil.Process(proc.pid).create_time()
        store.begin_attempt("t-open", 1, "dev", "base", now=1.0)
        store.set_launched("t-open", 1, 1, 2.0, 2.0)
        store.finish_attempt(
            "t-open", 1, outcome="failed", reason="exit 3", retry_at=50.0, exit_code=3, ended_at=9.0
        )
        store.begin_attempt("t-open", 2, "dev", "base", now=60.0)
        store.set_launched("t-open", 2, proc.pid, ct, 61.0)  # from the controller's Popen
        _write(state.start_record("t-open", 1), {"pid": 1, "create_time": 2.0, "started_at": 2})
        _write(state.exit_record("t-open", 1), {"exit_code": 3, "ended_at": 9.0})
        # the runs folder names another process: the store's pid still wins
        _write(state.start_record("t-open", 2), {"pid": os.getpid(), "create_time": 1.0})
        _write(state.start_record("t-gone", 1), '{"pid": 12')  # half-written
        (repo / "README.md").write_text("edited by a person\n")

        obs = observe(
            repo=repo,
            integration="main",
            worktree_root=root,
            state=state,
            store=store,
            sampler=None,
            draining=True,
            now=100.0,
        )
    finally:
        proc.kill()
        proc.wait()
        store.close()

    assert obs.integration_sha == git(repo, "rev-parse", "refs/heads/main")
    assert obs.integration_checkout is not None
    assert obs.integration_checkout.dirty is True
    assert Path(obs.integration_checkout.path) == repo.resolve()
    assert set(obs.worktrees) == {"t-open", "t-gone"}  # not det (detached), not t-outside
    assert obs.worktrees["t-gone"].prunable
    assert obs.merged_tasks == frozenset({"t-merged"})
    assert obs.branches["t-plain"] == BranchObs(
        "t-plain", git(repo, "rev-parse", "orchestrator/t-plain"), True
    )
    assert not obs.branches["t-open"].merged
    a1, a2 = obs.attempts["t-open"]
    assert (a1.exit_code, a1.ended_at, a1.outcome, a1.retry_at, a1.alive) == (
        3,
        9.0,
        "failed",
        50.0,
        False,
    )
    assert a2.pid == proc.pid and a2.alive and a2.outcome is None and a2.agent == "dev"
    assert "t-gone" not in obs.attempts  # corrupt start record counts as missing
    assert obs.resources == ResourcesObs() and obs.draining


def test_observe_clean_checkout_and_no_store(world: World, tmp_path: Path) -> None:
    state = StatePaths(tmp_path / "state")
    _write(state.start_record("t-open", 1), {"pid": 1, "create_time": 1.0, "started_at": 5.0})
    obs = observe(
        repo=world.repo,
        integration="main",
        worktree_root=world.root,
        state=state,
        store=None,
        sampler=None,
        now=0.0,
    )
    assert obs.integration_checkout is not None and obs.integration_checkout.dirty is False
    (a,) = obs.attempts["t-open"]
    # pid 1 is no shim of this attempt: a start record alone never names a process
    assert (a.pid, a.started_at, a.alive, a.outcome) == (None, 5.0, False, None)


def test_observe_missing_integration_branch(world: World, tmp_path: Path) -> None:
    obs = observe(
        repo=world.repo,
        integration="roadmap",
        worktree_root=world.root,
        state=StatePaths(tmp_path / "state"),
        store=None,
        sampler=None,
        now=0.0,
    )
    assert obs.integration_sha is None and obs.integration_checkout is None
    assert obs.merged_tasks == frozenset()
    assert not any(b.merged for b in obs.branches.values())


def _scaled_world(tmp_path: Path, n: int) -> tuple[Path, Path, StatePaths, Store]:
    repo = init_repo(tmp_path / f"repo{n}")
    root = tmp_path / f"wt{n}"
    head = git(repo, "rev-parse", "HEAD")
    state = StatePaths(tmp_path / f"state{n}")
    store = Store.open(state.db)
    refs = "".join(f"create refs/heads/orchestrator/t{i} {head}\n" for i in range(n))
    subprocess.run(
        ["git", "-C", str(repo), "update-ref", "--stdin"], input=refs.encode(), check=True
    )
    for i in range(n):
        git(
            repo,
            "worktree",
            "add",
            "-q",
            "--no-checkout",
            str(root / f"t{i}"),
            f"orchestrator/t{i}",
        )
        store.begin_attempt(f"t{i}", 1, "dev", head, now=1.0)
        _write(state.start_record(f"t{i}", 1), {"pid": 999999, "create_time": 1.0})
    return repo, root, state, store


@pytest.mark.timeout(60)
def test_git_calls_constant_in_number_of_tasks(tmp_path: Path) -> None:
    counts, first = {}, {}
    for n in (2, 40):
        repo, root, state, store = _scaled_world(tmp_path, n)
        with store:

            def one_pass(repo: Path = repo, root: Path = root) -> Observed:
                return observe(
                    repo=repo,
                    integration="main",
                    worktree_root=root,
                    state=state,  # noqa: B023 (called within this iteration only)
                    store=store,  # noqa: B023
                    sampler=None,
                    now=0.0,
                )

            before = git_runner.calls
            one_pass()
            first[n] = git_runner.calls - before
            before = git_runner.calls
            t0 = time.perf_counter()
            obs = one_pass()
            elapsed = time.perf_counter() - t0
            counts[n] = git_runner.calls - before
        assert len(obs.worktrees) == n and len(obs.branches) == n and len(obs.attempts) == n
        print(f"observe with {n} tasks: {counts[n]} git calls, {elapsed * 1000:.1f} ms")
    assert counts[2] == counts[40] == 6
    # the first pass in a process also resolves the repository and reads its config once
    assert first[2] == first[40] == 8


# --- runs directory ------------------------------------------------------------------------


def test_read_runs(tmp_path: Path) -> None:
    state = StatePaths(tmp_path / "state")
    assert read_runs(state) == {}  # no runs dir yet
    _write(state.start_record("a", 1), {"pid": 10, "create_time": 1.5, "started_at": 2})
    _write(state.exit_record("a", 1), {"exit_code": 0, "ended_at": 3.0, "timed_out": False})
    _write(state.exit_record("a", 2), {"exit_code": None, "signal": 9, "timed_out": True})
    _write(state.start_record("a", 3), "{not json")
    _write(state.start_record("b", 1), "[1, 2]")  # valid JSON, not an object
    _write(state.start_record("a", 4), {"pid": "12", "create_time": True})  # wrong types
    _write(state.runs / "Not-A-Task" / "1.start.json", {"pid": 1})
    _write(state.task_runs("a") / "notes.txt", "ignored")
    runs = read_runs(state)
    assert set(runs) == {"a"}
    assert set(runs["a"]) == {1, 2, 4}
    assert runs["a"][1] == RunRecord(
        "a", 1, StartRecord(10, 1.5, 2.0), ExitRecord(0, 3.0, False, None)
    )
    assert runs["a"][2].start is None and runs["a"][2].exit == ExitRecord(None, None, True, 9)
    assert runs["a"][4].start == StartRecord(None, None, None)


def test_progress(tmp_path: Path) -> None:
    assert parse_progress("42") == 42.0
    assert parse_progress(" 42.5% \n") == 42.5
    assert parse_progress("10\n20\n\n") == 20.0
    assert parse_progress("150") == 100.0
    assert parse_progress("-3") == 0.0
    assert parse_progress("nan") is None
    assert parse_progress("half") is None
    assert parse_progress("") is None
    path = tmp_path / "p"
    assert read_progress(tmp_path, path) is None
    path.write_text("7%")
    assert read_progress(tmp_path, path) == 7.0
    path.write_text("1\n" * 100_000 + "64\n")  # long: only its end is read
    assert read_progress(tmp_path, path) == 64.0


# --- processes -----------------------------------------------------------------------------


@pytest.mark.timeout(30)
def test_is_alive_real_process() -> None:
    proc = subprocess.Popen(["sleep", "30"])
    try:
        ct = psutil.Process(proc.pid).create_time()
        assert is_alive(proc.pid, ct)
        assert is_alive(proc.pid, ct + 0.01)
        assert not is_alive(proc.pid, ct - 10.0)  # pid reused by someone else
        assert not is_alive(proc.pid, None)
        proc.kill()
        deadline = time.monotonic() + 10
        while psutil.Process(proc.pid).status() != psutil.STATUS_ZOMBIE:
            assert time.monotonic() < deadline
            time.sleep(0.01)
        assert not is_alive(proc.pid, ct)  # zombie: exited, not reaped
    finally:
        proc.kill()
        proc.wait()
    assert not is_alive(proc.pid, ct)  # reaped: gone
    assert not is_alive(None, ct) and not is_alive(0, ct)


@pytest.mark.timeout(30)
def test_is_alive_detached_child_of_other_process(tmp_path: Path) -> None:
    """A process we did not start (like an agent after a controller restart)."""
    code = (
        "import subprocess; p = subprocess.Popen(['sleep', '30'], stdout=subprocess.DEVNULL,"
        " stderr=subprocess.DEVNULL, start_new_session=True); print(p.pid)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    pid = int(out.stdout)
    try:
        ct = psutil.Process(pid).create_time()
        assert is_alive(pid, ct)
    finally:
        psutil.Process(pid).kill()
    deadline = time.monotonic() + 10
    while is_alive(pid, ct):
        assert time.monotonic() < deadline
        time.sleep(0.01)


# --- resources -----------------------------------------------------------------------------


def test_ewma_math() -> None:
    assert ewma(None, 80.0, 5.0, 20.0) == 80.0
    assert ewma(10.0, 90.0, 0.0, 20.0) == 10.0
    assert ewma(10.0, 90.0, -5.0, 20.0) == 10.0
    assert ewma(10.0, 90.0, 5.0, 0.0) == 90.0
    one_tau = ewma(0.0, 100.0, 20.0, 20.0)
    assert one_tau == pytest.approx(100 * (1 - 2.718281828**-1))
    # a one-poll spike moves the average only a little ...
    assert ewma(30.0, 100.0, 2.0, 20.0) < 37.0
    # ... and the result does not depend on how the interval is sliced
    stepwise = 0.0
    for _ in range(10):
        stepwise = ewma(stepwise, 100.0, 2.0, 20.0)
    assert stepwise == pytest.approx(ewma(0.0, 100.0, 20.0, 20.0))


def test_resource_sampler(tmp_path: Path) -> None:
    sampler = ResourceSampler(disk_path=tmp_path)
    first = sampler.sample(100.0)
    assert 0.0 <= first.cpu_percent <= 100.0 and 0.0 < first.memory_percent <= 100.0
    assert first.disk_free_bytes is not None and first.disk_free_bytes > 0
    same = sampler.sample(100.0)  # no time passed: average unchanged
    assert (same.cpu_percent, same.memory_percent) == (first.cpu_percent, first.memory_percent)
    later = sampler.sample(101.0)
    assert 0.0 <= later.cpu_percent <= 100.0
    assert ResourceSampler(disk_path=tmp_path / "missing").sample(0.0).disk_free_bytes is None


def test_a_cpu_window_leaves_out_this_process_and_the_git_calls_it_waited_for() -> None:
    """A command's own CPU (its git calls: children it waits for) is not host load."""
    from controller.observe import resources

    before = resources._own_cpu_s()
    burn = "import time\nt = time.process_time()\nwhile time.process_time() - t < 0.3: pass"
    subprocess.run([sys.executable, "-c", burn], check=True)
    assert resources._own_cpu_s() - before >= 0.25  # the waited child's CPU counts as ours
    window = resources.CpuWindow()
    subprocess.run([sys.executable, "-c", burn], check=True)
    busy, total = resources._host_cpu_s()
    host = (busy - window._host[0]) / (total - window._host[1]) * 100
    assert window.percent() <= host  # never more than the host's busy share ...
    assert 0.0 <= window.percent() <= 100.0


def test_the_watch_loops_load_is_measured_only_between_passes(tmp_path: Path) -> None:
    from controller.observe.resources import CpuWindow, IdleLoad

    load = IdleLoad(disk_path=tmp_path)
    first = load.sample(100.0)  # primed once, before any pass
    assert 0.0 <= first.cpu_percent <= 100.0 and first.memory_percent > 0
    again = load.sample(130.0)  # a pass reads the average; it measures nothing
    assert (again.cpu_percent, again.memory_percent) == (first.cpu_percent, first.memory_percent)
    window = CpuWindow()
    time.sleep(0.25)
    load.add(window, 131.0)  # an idle wait between passes moves it
    assert load._last == 131.0
    short = CpuWindow()
    load.add(short, 132.0)  # too short a wait: ignored
    assert load._last == 131.0


# --- pure assembly -------------------------------------------------------------------------


def test_assemble_union_of_store_and_runs() -> None:
    rows = {
        "a": [
            AttemptRow("a", 1, created_at=1.0, outcome="failed", reason="exit 1", retry_at=9.0),
            AttemptRow("a", 2, created_at=10.0, pid=5, create_time=11.0, exit_code=7),
        ],
        "s": [AttemptRow("s", 1, created_at=1.0, conflicts=("x.py",), outcome="conflict")],
    }
    runs = {
        "a": {
            1: RunRecord("a", 1, StartRecord(4, 2.0, 2.5), ExitRecord(1, 3.0)),
            2: RunRecord("a", 2, StartRecord(6, 12.0, 12.5), None),
            3: RunRecord("a", 3, None, ExitRecord(None, 20.0, True, 15)),
        },
        "r": {1: RunRecord("r", 1, StartRecord(8, 8.0, 8.5), None)},
    }
    checked: list[tuple[int, float | None]] = []
    vouched: list[tuple[str, int, int]] = []

    def alive(pid: int, ct: float | None, start: str | None) -> bool:
        checked.append((pid, ct))
        return pid == 8

    def vouch(task: str, n: int, pid: int, ct: float | None, start: str | None) -> bool:
        vouched.append((task, n, pid))
        return (task, n, pid) == ("r", 1, 8)  # r's record names its own shim

    obs = assemble(
        integration="main",
        integration_sha="abc",
        worktrees=[],
        integration_dirty=None,
        worktree_root=Path("/w"),
        branches={},
        merged_tasks=frozenset(),
        store_rows=rows,
        runs=runs,
        alive=alive,
        vouch=vouch,
    )
    assert list(obs.attempts) == ["a", "r", "s"]
    a1, a2, a3 = obs.attempts["a"]
    # the store has no pid for a1 and its record is not vouched for: no process
    assert (a1.pid, a1.exit_code, a1.ended_at, a1.outcome, a1.retry_at, a1.created_at) == (
        None,
        1,
        3.0,
        "failed",
        9.0,
        1.0,
    )
    # the store wins for pid/create_time (its own Popen); the record adds started_at; without
    # an exit record the store's exit code stays
    assert (a2.pid, a2.create_time, a2.started_at, a2.exit_code, a2.alive) == (
        5,
        11.0,
        12.5,
        7,
        False,
    )
    assert (a3.exit_code, a3.timed_out, a3.signal, a3.created_at) == (-15, True, 15, None)
    (r1,) = obs.attempts["r"]
    assert r1.alive and r1.outcome is None and r1.pid == 8
    (s1,) = obs.attempts["s"]
    assert s1.conflicts == ("x.py",) and s1.pid is None and not s1.alive
    # liveness asked only of a task's latest attempt, when it has a pid and no exit record;
    # a record's pid is vouched for only when the store has none, for the latest attempt
    assert sorted(checked) == [(8, 8.0)]
    assert vouched == [("r", 1, 8)]


def test_assemble_store_less_and_worktree_selection() -> None:
    wts = [
        WorktreeObs("/repo", "s0", "main"),
        WorktreeObs("/w/a", "s1", "orchestrator/a"),
        WorktreeObs("/w/det", "s2", None),
        WorktreeObs("/w/misc", "s3", "feature/x"),
        WorktreeObs("/elsewhere/b", "s4", "orchestrator/b"),
        WorktreeObs("/w/deep/c", "s5", "orchestrator/c", prunable=True),
    ]
    obs = assemble(
        integration="main",
        integration_sha="s0",
        worktrees=wts,
        integration_dirty=True,
        worktree_root=Path("/w"),
        branches={"a": BranchObs("a", "s1", False)},
        merged_tasks=frozenset({"z"}),
        store_rows={},
        runs={"a": {1: RunRecord("a", 1, StartRecord(3, 1.0, 1.0), None)}},
        resources=ResourcesObs(10.0, 20.0, 30),
    )
    assert obs.integration_checkout == WorktreeObs("/repo", "s0", "main", dirty=True)
    assert set(obs.worktrees) == {"a", "c"} and obs.worktrees["c"].prunable
    # without a store and without `vouch`, a start record names no process
    assert obs.attempts["a"][0].pid is None and not obs.attempts["a"][0].alive
    assert obs.resources.disk_free_bytes == 30 and obs.merged_tasks == {"z"}
    assert integration_checkout_of(wts, "refs/heads/main") == wts[0]
    assert integration_checkout_of(wts, "roadmap") is None
    assert task_worktrees(wts, Path("/nowhere")) == {}


def test_agent_durations_are_medians_of_attempts_that_did_their_work() -> None:
    rows = {
        "a": [
            AttemptRow("a", 1, agent="dev", started_at=0.0, ended_at=10.0, exit_code=0),
            AttemptRow("a", 2, agent="dev", started_at=0.0, ended_at=99.0, exit_code=1),
        ],
        "b": [AttemptRow("b", 1, agent="dev", started_at=0.0, ended_at=30.0, exit_code=0)],
        "c": [AttemptRow("c", 1, agent="docs", started_at=5.0, ended_at=None, exit_code=None)],
    }
    assert agent_durations(rows) == {"dev": 20.0}
