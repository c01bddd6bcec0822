"""A real Ray head on this machine, bound to 127.0.0.1, for tests and benchmarks."""

from __future__ import annotations

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
def local_ray_cluster(cpus: int = 2) -> Iterator[str]:
    """Start `ray start --head` on loopback; yields the Jobs API address; stops it after."""
    ray_bin = str(Path(sys.executable).parent / "ray")
    env = {**os.environ, **RAY_ENV}
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
        "--include-dashboard=true",
        f"--temp-dir={temp}",
        "--disable-usage-stats",
    ]
    subprocess.run(argv, check=True, env=env, timeout=180, capture_output=True)
    try:
        yield f"http://127.0.0.1:{dashboard}"
    finally:
        subprocess.run([ray_bin, "stop", "--force"], env=env, timeout=120, capture_output=True)
