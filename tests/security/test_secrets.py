"""Secrets stay where they are: out of Ray job listings, out of error text, out of verify.

Finding 7 of the review (docs/security.md): with the Ray runner an agent's `env:` travelled
inside the job's entrypoint (base64 JSON) where anyone who can list jobs reads it; a remote
URL with credentials appeared verbatim in events, `controller.log` and `status`; `verify`
ran agent-written code with the controller's full environment.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from controller.act.runners.ray_entry import decode_payload
from tests.security.hostile import HostileProject, hostile_project, job, passes, phase
from tests.support import HOSTILE_AGENT
from tests.support.project import stop_process, wait_until
from tests.support.raycluster import RAY_ENV, free_port, local_ray_cluster

# one local Ray cluster at a time: these modules run on the same xdist worker
pytestmark = [pytest.mark.timeout(240), pytest.mark.xdist_group("ray")]

WORKER_SECRET = "sk-worker-only-5f0c1d9e"  # set on the cluster only, never on the controller
URL_TOKEN = "ghp-url-token-77a1b2c3"


@pytest.fixture(scope="module")
def ray_address() -> Iterator[str]:
    with local_ray_cluster(cpus=2, env={"ORCH_TEST_API_KEY": WORKER_SECRET}) as address:
        yield address


def ray_project(
    tmp_path: Path, address: str, remote: str, backlog: list[dict], *, settings: bool = True
) -> HostileProject:
    """A hostile project on the Ray runner; with `settings`, its agent has a plain `env:`
    value and passes the worker's API key through by name."""
    p = hostile_project(tmp_path, backlog=[])
    p.extra_env.update(RAY_ENV)
    agent: dict[str, object] = {
        "command": [sys.executable, HOSTILE_AGENT],
        "owns": ["src/**"],
        "resources": {"cpus": 0.5, "memoryMB": 64},
    }
    if settings:
        agent |= {"env": {"AGENT_MODE": "visible-mode"}, "passEnv": ["ORCH_TEST_API_KEY"]}
    runner = {"kind": "ray", "address": address, "remote": remote, "python": sys.executable}
    p.write_spec(runner=runner, agents={"dev": agent}, backlog=backlog)
    return p


def test_a_ray_job_carries_no_secret(tmp_path: Path, ray_address: str) -> None:
    """The agent gets its API key from the worker (`passEnv`) and its plain settings from
    `env:`; the job the Jobs API lists afterwards holds neither value in its entrypoint or
    metadata, and not the key anywhere."""
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    seen = tmp_path / "agent-env.json"
    work = job("sec", f"dump-env {seen} ORCH_TEST_API_KEY AGENT_MODE", "write src/s.py: s")
    p = ray_project(tmp_path, ray_address, str(remote), [work])
    assert "ORCH_TEST_API_KEY" not in p.env()
    proc = p.watch()
    try:
        ok = wait_until(lambda: "sec" in p.merges(), timeout=150)
    finally:
        out = stop_process(proc)
    assert ok, out
    assert json.loads(seen.read_text()) == {
        "ORCH_TEST_API_KEY": WORKER_SECRET,
        "AGENT_MODE": "visible-mode",
    }
    from ray.job_submission import JobSubmissionClient

    jobs = [
        j
        for j in JobSubmissionClient(ray_address).list_jobs()
        if (j.metadata or {}).get("task") == "sec" and "ray_entry" in (j.entrypoint or "")
    ]
    assert len(jobs) == 1
    listed = json.dumps(jobs[0].model_dump(), default=str)
    assert WORKER_SECRET not in listed
    payload = decode_payload(shlex.split(jobs[0].entrypoint)[-1])
    assert WORKER_SECRET not in json.dumps(payload) and "visible-mode" not in json.dumps(payload)
    assert payload["pass_env"] == ["ORCH_TEST_API_KEY"]
    assert jobs[0].runtime_env["env_vars"]["AGENT_MODE"] == "visible-mode"  # documented


def test_validate_warns_of_a_secret_in_a_ray_agents_env(tmp_path: Path) -> None:
    p = ray_project(tmp_path, "http://127.0.0.1:8265", "unused", [])
    spec = json.loads(p.spec_file.read_text())
    spec["agents"]["dev"]["env"]["OPENAI_API_KEY"] = "sk-in-the-spec"
    p.spec_file.write_text(json.dumps(spec))
    result = p.cli("validate")
    assert result.returncode == 0, result.stderr
    warning = next(ln for ln in result.stderr.splitlines() if "OPENAI_API_KEY" in ln)
    assert "agents.dev.env.OPENAI_API_KEY" in warning and "passEnv" in warning
    assert "sk-in-the-spec" not in result.stderr


def test_credentials_in_a_remote_url_never_reach_people(tmp_path: Path, ray_address: str) -> None:
    """A push to `http://user:TOKEN@host/...` fails: the error is recorded and shown in
    events, controller.log, status, diff and the reconcile output, never with the token."""
    remote = f"http://bot:{URL_TOKEN}@127.0.0.1:{free_port()}/nothing.git"
    p = ray_project(
        tmp_path, ray_address, remote, [job("push", "write src/p.py: p")], settings=False
    )
    first = p.cli("reconcile")
    passes(p, n=3, until=lambda: phase(p, "push")[0] in ("retrying", "failed"))
    shown = {
        "reconcile": first.stdout + first.stderr,
        "events": p.cli("events").stdout,
        "events -o json": p.cli("events", "-o", "json").stdout,
        "status": p.cli("status").stdout,
        "status -o json": p.cli("status", "-o", "json").stdout,
        "diff": p.cli("diff").stdout,
        "controller.log": (p.state / "logs" / "controller.log").read_text(),
    }
    leaks = [name for name, text in shown.items() if URL_TOKEN in text]
    assert leaks == [], {name: shown[name] for name in leaks}
    assert "http://***@127.0.0.1" in shown["events"], shown["events"]
    assert "could not start" in shown["status"], shown["status"]


# --- verify runs agent-written code: it gets a scrubbed environment ---------------------------


def _verify_project(tmp_path: Path, **spec: object) -> tuple[HostileProject, Path]:
    leak = tmp_path / "verify-env.json"
    dump = "json.dumps(dict(os.environ))"
    script = f"import json,os,pathlib; pathlib.Path({str(leak)!r}).write_text({dump})"
    p = hostile_project(
        tmp_path,
        verify=[sys.executable, "src/check.py"],
        backlog=[job("v", f"write src/check.py: {script}")],
        **spec,
    )
    p.extra_env.update({"CONTROLLER_API_TOKEN": "tok-controller-only", "PASSED_ON": "yes"})
    return p, leak


def test_verify_does_not_see_the_controllers_secrets(tmp_path: Path) -> None:
    """The agent's own check script, run as the verify gate, dumps its environment."""
    p, leak = _verify_project(tmp_path)
    passes(p, until=lambda: "v" in p.merges())
    assert "v" in p.merges()
    env = json.loads(leak.read_text())
    assert "CONTROLLER_API_TOKEN" not in env and "PASSED_ON" not in env
    assert "FAKE_AGENT_LOG" not in env and "GIT_AUTHOR_EMAIL" not in env
    assert env["PATH"] == p.env()["PATH"] and env["HOME"] == p.env()["HOME"]


def test_verify_gets_what_the_spec_passes_and_sets(tmp_path: Path) -> None:
    p, leak = _verify_project(
        tmp_path, verifyPassEnv=["PASSED_ON"], verifyEnv={"VERIFY_MODE": "ci"}
    )
    passes(p, until=lambda: "v" in p.merges())
    env = json.loads(leak.read_text())
    assert env["PASSED_ON"] == "yes" and env["VERIFY_MODE"] == "ci"
    assert "CONTROLLER_API_TOKEN" not in env
