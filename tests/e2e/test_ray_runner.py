"""The Ray runner against a real local Ray cluster (bound to 127.0.0.1, 2 CPUs).

The cluster is started once for this module and stopped at the end. A bare repository
stands in for the shared git remote the workers push to.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.project import FAKE_AGENT, Project, stop_process, wait_until
from tests.support.raycluster import RAY_ENV, free_port, local_ray_cluster
from tests.support.repo import git

# one local Ray cluster at a time: these modules run on the same xdist worker
pytestmark = [pytest.mark.timeout(240), pytest.mark.xdist_group("ray")]


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    with local_ray_cluster(cpus=2) as address:
        yield address


def ray_project(tmp_path: Path, address: str, backlog: list[dict]) -> Project:
    p = Project(tmp_path)
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    p.write_spec(
        maxParallel=3,
        backoff={"initial": "1s", "max": "2s"},
        runner={"kind": "ray", "address": address, "remote": str(remote), "python": sys.executable},
        agents={
            "dev": {
                "command": [sys.executable, FAKE_AGENT],
                "owns": ["**"],
                "resources": {"cpus": 0.5, "memoryMB": 64},
            }
        },
        backlog=backlog,
    )
    return p


def rows(p: Project, sql: str) -> list[tuple]:
    con = sqlite3.connect(p.state / "orchestrator.db")
    try:
        return list(con.execute(sql))
    finally:
        con.close()


def jobs_of(address: str, instance: str) -> list:
    from ray.job_submission import JobSubmissionClient

    client = JobSubmissionClient(address)
    return [
        j for j in client.list_jobs() if j.submission_id.startswith(f"orchestrator-{instance}-")
    ]


def test_backlog_converges_on_ray_through_a_controller_crash(
    tmp_path: Path, ray_address: str
) -> None:
    def t(task_id: str, deps: list[str] | None = None, extra: str = "") -> dict:
        prompt = f"sleep 1.5\nwrite {task_id}.txt: {task_id}{extra}"
        return {
            "id": task_id,
            "agent": "dev",
            "prompt": prompt,
            "paths": [f"{task_id}.txt"],
            "dependsOn": deps or [],
        }

    backlog = [
        t("a"),
        t("b", ["a"]),
        t("c"),
        t("d", ["c"]),
        {**t("e"), "prompt": "fail-until 2 5\nwrite e.txt: e"},  # fails once on the cluster
        t("f", ["b", "d"]),
    ]
    p = ray_project(tmp_path, ray_address, backlog)
    p_env = {**p.env(), **RAY_ENV}

    def watch() -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "controller", "reconcile", "--watch", "-f", str(p.spec_file)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            cwd=p.tmp,
            env=p_env,
            start_new_session=True,
        )

    first = watch()
    try:
        # wait until jobs are running on the cluster, then kill the controller outright
        assert wait_until(
            lambda: (
                (p.state / "orchestrator.db").exists()
                and len(rows(p, "SELECT handle FROM attempts WHERE handle IS NOT NULL")) >= 3
            ),
            timeout=60,
        ), stop_process(first)
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
        running_at_kill = rows(p, "SELECT task, number, handle FROM attempts WHERE outcome IS NULL")
        second = watch()
        try:
            ok = wait_until(lambda: set("abcdef") <= set(p.merges()), timeout=150)
        finally:
            out = stop_process(second)
        assert ok, f"merged {p.merges()}\n{out}"
    finally:
        if first.poll() is None:
            stop_process(first)
    merges = p.merges()
    assert sorted(merges) == list("abcdef")  # each exactly once
    assert merges.index("a") < merges.index("b") and merges.index("d") < merges.index("f")
    assert p.file_on_main("f.txt") == "f"
    assert running_at_kill, "the crash should have caught jobs in flight"

    instance = rows(p, "SELECT value FROM controller WHERE key = 'instance_id'")[0][0]
    jobs = jobs_of(ray_address, instance)
    attempts = rows(p, "SELECT task, number, handle, outcome FROM attempts ORDER BY task, number")
    # one job per attempt: the restarted controller adopted its jobs instead of resubmitting
    assert len(jobs) == len(attempts)
    assert sorted(j.submission_id for j in jobs) == sorted(
        h[len("ray:") :] for _, _, h, _ in attempts
    )
    assert [(t_, n, o) for t_, n, _, o in attempts if t_ == "e"] == [
        ("e", 1, "failed"),
        ("e", 2, "merged"),
    ]
    events = rows(p, "SELECT kind FROM events WHERE kind IN ('spawn_failed', 'action_error')")
    assert events == []
    log = (p.state / "logs" / "a" / "1.log").read_text()
    assert "a attempt 1 done" in log  # the job's output was copied into the local log
    meta = {j.submission_id: j.metadata for j in jobs}
    assert all(m["task"] in "abcdef" for m in meta.values())
    assert json.loads(json.dumps(meta))  # metadata is plain strings


def test_unreachable_cluster_is_a_wait_reason_not_a_crash(tmp_path: Path) -> None:
    p = ray_project(tmp_path, f"http://127.0.0.1:{free_port()}", [{"id": "x", "agent": "dev"}])
    result = p.cli("reconcile")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert rows(p, "SELECT * FROM attempts") == []  # nothing was started
    proc = p.watch()
    time.sleep(3)
    out = stop_process(proc)
    assert "Traceback" not in out
    diff_out = p.cli("diff").stdout
    assert "x" in diff_out
    assert git(p.repo, "branch", "--list", "orchestrator/*") == ""


# --- issue 14: the Ray runner's lost-work paths ----------------------------------------------

WRITE_AT_WORKTREE = (
    "import pathlib, sys; pathlib.Path(sys.argv[1], 'w.txt').write_text(sys.argv[1])"
)


def agent_processes(task_id: str) -> list[int]:
    """Live fake agents of `task_id` on this machine (the local cluster's workers too)."""
    import psutil

    found = []
    for proc in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if proc.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if (proc.info["cmdline"] or [])[1:2] != [FAKE_AGENT]:
                continue
            if proc.environ().get("ORCHESTRATOR_TASK") == task_id:
                found.append(proc.info["pid"])
        except psutil.Error:
            continue
    return found


def remote_file(remote: Path, branch: str, path: str) -> str | None:
    proc = subprocess.run(
        ["git", "-C", str(remote), "show", f"refs/heads/{branch}:{path}"],
        capture_output=True,
        text=True,
    )
    return proc.stdout.strip() if proc.returncode == 0 else None


def test_worktree_placeholder_timeout_and_stop_on_ray(tmp_path: Path, ray_address: str) -> None:
    """`{worktree}` is the worker's checkout (it was the controller's own repository); an
    agent that outlives its timeout, and one stopped by `stop --force`, are stopped for real
    (the job's SIGTERM reaches them: they ran in a session of their own) and their work is
    pushed to the task branch, not deleted with the job's checkout."""
    backlog = [
        {"id": "w", "agent": "place", "paths": ["w.txt"]},
        {"id": "tmo", "agent": "dev", "prompt": "write tmo.txt: half\nhang", "timeout": "8s"},
        {"id": "stp", "agent": "dev", "prompt": "write stp.txt: half done\nhang"},
    ]
    for entry in backlog[1:]:
        entry["paths"] = [f"{entry['id']}.txt"]
    p = ray_project(tmp_path, ray_address, backlog)
    spec = json.loads(p.spec_file.read_text())
    spec["retries"] = 0
    spec["agents"]["dev"]["env"] = {"FAKE_AGENT_LOG": str(p.agent_log)}
    spec["agents"]["place"] = {
        "command": [sys.executable, "-c", WRITE_AT_WORKTREE, "{worktree}"],
        "owns": ["**"],
        "resources": {"cpus": 0.5, "memoryMB": 64},
    }
    p.spec_file.write_text(json.dumps(spec))
    remote = tmp_path / "remote.git"
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller", "reconcile", "--watch", "-f", str(p.spec_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=p.tmp,
        env={**p.env(), **RAY_ENV},
        start_new_session=True,
    )
    try:
        assert wait_until(lambda: "w" in p.merges(), timeout=90), stop_process(proc)
        written = p.file_on_main("w.txt") or ""  # the agent wrote its {worktree} there
        assert Path(written).name.startswith("orchestrator-w-1-"), written
        assert written != str(p.repo)  # (it was the controller's own repository)
        assert wait_until(lambda: remote_file(remote, "orchestrator/tmo", "tmo.txt"), 60)
        assert wait_until(lambda: not agent_processes("tmo"), timeout=15)
        assert wait_until(lambda: "stp" in {t for t, *_ in p.agent_starts()}, timeout=60)
        stopped = p.cli("stop", "--force", "--wait", "30")
        assert stopped.returncode == 0, stopped.stdout + stopped.stderr
        proc.wait(timeout=10)
    finally:
        out = stop_process(proc)
    assert "Traceback" not in out
    assert remote_file(remote, "orchestrator/tmo", "tmo.txt") == "half"
    assert wait_until(lambda: remote_file(remote, "orchestrator/stp", "stp.txt"), 15)
    assert remote_file(remote, "orchestrator/stp", "stp.txt") == "half done"
    assert wait_until(lambda: not agent_processes("stp"), timeout=15), "the agent still runs"
    outcomes = dict(rows(p, "SELECT task, outcome FROM attempts WHERE task IN ('tmo', 'stp')"))
    assert outcomes["stp"] == "stopped" and outcomes["tmo"] in ("timeout", "failed"), outcomes


def test_a_failed_push_keeps_the_work_on_the_worker(tmp_path: Path, ray_address: str) -> None:
    """The remote goes away while the agent works: the push is retried, then the checkout
    is kept in a named folder on the worker (never deleted), the attempt fails with the
    reason, and an event says where the work is."""
    kept = tmp_path / "kept"
    backlog = [{"id": "psh", "agent": "dev", "prompt": "write psh.txt: precious\nsleep 3"}]
    p = ray_project(tmp_path, ray_address, backlog)
    spec = json.loads(p.spec_file.read_text())
    spec["retries"] = 0
    spec["agents"]["dev"]["env"] = {
        "FAKE_AGENT_LOG": str(p.agent_log),
        "ORCHESTRATOR_KEEP_DIR": str(kept),
    }
    p.spec_file.write_text(json.dumps(spec))
    remote, away = tmp_path / "remote.git", tmp_path / "remote-away.git"
    proc = subprocess.Popen(
        [sys.executable, "-m", "controller", "reconcile", "--watch", "-f", str(p.spec_file)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        cwd=p.tmp,
        env={**p.env(), **RAY_ENV},
        start_new_session=True,
    )
    try:
        assert wait_until(lambda: bool(p.agent_starts()), timeout=60), stop_process(proc)
        remote.rename(away)  # the agent has its checkout; its push will find nothing
        assert wait_until(
            lambda: rows(p, "SELECT outcome FROM attempts WHERE task = 'psh'")[0][0] == "failed",
            timeout=60,
        )
    finally:
        out = stop_process(proc)
        if away.exists():
            away.rename(remote)
    folders = list(kept.iterdir()) if kept.exists() else []
    assert len(folders) == 1 and folders[0].name.startswith("psh-1-"), (folders, out)
    assert (folders[0] / "psh.txt").read_text() == "precious\n"
    committed = git(folders[0], "show", "HEAD:psh.txt")  # committed there, ready to push
    assert committed == "precious"
    attempt = rows(p, "SELECT exit_code, reason FROM attempts WHERE task = 'psh'")[0]
    assert attempt[0] == 75, attempt
    events = rows(p, "SELECT message FROM events WHERE kind = 'work_kept_on_worker'")
    assert events and str(folders[0]) in events[0][0], events
