"""A real Ray head on this machine, bound to 127.0.0.1, for tests and benchmarks."""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.support.repo import GIT_ENV

RAY_ENV = {
    # keep every Ray component on the loopback address (no cluster beyond this machine)
    "RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER": "0",
    "RAY_USAGE_STATS_ENABLED": "0",
    **GIT_ENV,
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def local_ray_cluster(cpus: int = 2, env: dict[str, str] | None = None) -> Iterator[str]:
    """Start `ray start --head` on loopback; yields the Jobs API address; stops it after.

    `env` is added to the cluster's environment (what its workers, and so jobs, inherit).
    """
    ray_bin = str(Path(sys.executable).parent / "ray")
    env = {**os.environ, **RAY_ENV, **(env or {})}
    dashboard = free_port()
    temp = tempfile.mkdtemp(prefix="ray-", dir="/tmp")
    argv = [
        ray_bin,
        "start",
        "--head",
        f"--port={free_port()}",
        f"--num-cpus={cpus}",
        "--node-ip-address=127.0.0.1",
        "--dashboard-host=127.0.0.1",
        f"--dashboard-port={dashboard}",
        # every port chosen free, not Ray's fixed defaults (52365 for the job agent, 10001,
        # ...): another cluster on this machine (a parallel test run) must not take them
        f"--dashboard-agent-listen-port={free_port()}",
        f"--dashboard-agent-grpc-port={free_port()}",
        f"--ray-client-server-port={free_port()}",
        f"--metrics-export-port={free_port()}",
        f"--runtime-env-agent-port={free_port()}",
        "--include-dashboard=true",
        f"--temp-dir={temp}",
        "--disable-usage-stats",
    ]
    subprocess.run(argv, check=True, env=env, timeout=180, capture_output=True)
    address = f"http://127.0.0.1:{dashboard}"
    try:
        wait_accepting_jobs(address)
        yield address
    finally:
        stop_cluster(temp)


def wait_accepting_jobs(address: str, timeout_s: float = 90.0) -> None:
    """`ray start` returns before the head's job agent is up ("No available agent to submit
    job"): submit a no-op job until one is accepted and has run."""
    import time

    from ray.job_submission import JobStatus, JobSubmissionClient

    deadline = time.monotonic() + timeout_s
    sid = None
    while time.monotonic() < deadline:
        try:
            client = JobSubmissionClient(address)
            sid = sid or client.submit_job(entrypoint="true", metadata={"probe": "1"})
            if client.get_job_status(sid) in (JobStatus.SUCCEEDED, JobStatus.FAILED):
                return
        except Exception:  # not up yet: the Jobs API raises plain RuntimeErrors
            pass
        time.sleep(0.5)
    raise RuntimeError(f"the local Ray cluster at {address} never accepted a job")


def stop_cluster(temp: str, grace_s: float = 3.0) -> None:
    """Stop the cluster whose processes name the temp folder `temp`, and their children.

    Not `ray stop --force`: that stops every Ray process of this user on the machine,
    other tests' and other people's clusters included.
    """
    import psutil

    procs: dict[int, psutil.Process] = {}
    for proc in psutil.process_iter(["cmdline"]):
        try:
            if any(temp in arg for arg in proc.info["cmdline"] or ()):
                procs[proc.pid] = proc
                procs.update({c.pid: c for c in proc.children(recursive=True)})
        except psutil.Error:
            continue
    for proc in procs.values():
        with contextlib.suppress(psutil.Error):
            proc.terminate()
    _, alive = psutil.wait_procs(list(procs.values()), timeout=grace_s)
    for proc in alive:
        with contextlib.suppress(psutil.Error):
            proc.kill()
