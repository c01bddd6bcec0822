"""The entrypoint of one Ray job: build the task branch, run the agent, push the work.

Runs on a cluster worker as `python -m controller.act.runners.ray_entry PAYLOAD`, where PAYLOAD
is base64 JSON written by the controller (`ray.RayRunner`). All task fields travel inside
the payload and reach the agent only as argv elements and environment variables: the job's
entrypoint string that Ray hands to a shell contains nothing but the interpreter, this module
and base64 text. The worker needs git, this package and the agent's CLI; nothing else.
The payload holds no secret: the spec's `env:` values arrive through the job's runtime_env,
and `passEnv:` names are looked up in the worker's own environment (a missing one is said in
the job's log).

Steps: fetch the base commit the controller chose (`refs/orchestrator/base/<task>/<n>` on the
remote) and, for a retry that continues, the task branch; run the agent in that checkout
with the same placeholders and environment as a local run; commit what it left uncommitted;
push the task branch (also after a failure, so a retry continues from the work); exit with
the agent's exit code.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from controller.git.command import Result, run_in
from controller.git.runner import GitError

IDENTITY = {
    "GIT_AUTHOR_NAME": "orchestrator",
    "GIT_AUTHOR_EMAIL": "orchestrator@localhost",
    "GIT_COMMITTER_NAME": "orchestrator",
    "GIT_COMMITTER_EMAIL": "orchestrator@localhost",
}


def encode_payload(payload: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload).encode()).decode()


def decode_payload(text: str) -> dict[str, Any]:
    data = json.loads(base64.urlsafe_b64decode(text.encode()))
    if not isinstance(data, dict):
        raise ValueError("payload must be a JSON object")
    return data


def git(cwd: Path, *args: str, check: bool = True) -> Result:
    """git in the job's own checkout, through the controller's one git runner."""
    return run_in(cwd, *args, env=IDENTITY, check=check)


def checkout(work: Path, p: dict[str, Any]) -> None:
    branch, base_ref = p["branch"], p["base_ref"]
    git(work, "init", "-q")
    git(work, "remote", "add", "origin", p["remote"])
    git(work, "fetch", "-q", "origin", f"+{base_ref}:refs/orchestrator/base")
    has_branch = (
        git(
            work, "ls-remote", "--exit-code", "origin", f"refs/heads/{branch}", check=False
        ).returncode
        == 0
    )
    if has_branch and not p.get("fresh"):
        git(work, "fetch", "-q", "origin", f"+refs/heads/{branch}:refs/orchestrator/previous")
        git(work, "checkout", "-q", "-B", branch, "refs/orchestrator/previous")
    else:
        git(work, "checkout", "-q", "-B", branch, "refs/orchestrator/base")


def run_agent(work: Path, p: dict[str, Any]) -> int:
    missing = [name for name in p.get("pass_env", []) if name not in os.environ]
    if missing:
        print(f"passEnv not set on this worker: {', '.join(missing)}", file=sys.stderr, flush=True)
    prompt = work / ".git" / "orchestrator-prompt"
    prompt.write_text(p.get("stdin", ""), encoding="utf-8")
    prompt.chmod(0o600)
    env = {
        **os.environ,
        **p.get("env", {}),
        "ORCHESTRATOR_WORKTREE": str(work),
        "ORCHESTRATOR_PROGRESS_FILE": str(work / ".git" / "orchestrator-progress"),
        "ORCHESTRATOR_PROMPT_FILE": str(prompt),
    }
    try:
        with prompt.open("rb") as stdin:
            proc = subprocess.Popen(
                p["argv"], cwd=work, env=env, stdin=stdin, start_new_session=True
            )
    except OSError as exc:
        print(f"cannot start the agent: {exc}", file=sys.stderr, flush=True)
        return 127
    try:
        return proc.wait(timeout=p.get("timeout_s"))
    except subprocess.TimeoutExpired:
        print("agent timed out; stopping it", file=sys.stderr, flush=True)
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
        return 124


def save_work(work: Path, p: dict[str, Any], code: int) -> None:
    git(work, "add", "-A")
    if git(work, "diff", "--cached", "--quiet", check=False).returncode != 0:
        message = f"{p['task']}: uncommitted work left by attempt {p['number']} (exit {code})"
        git(work, "commit", "-q", "--no-verify", "-m", message)
    git(work, "push", "-q", "origin", f"+HEAD:refs/heads/{p['branch']}")


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m controller.act.runners.ray_entry PAYLOAD", file=sys.stderr)
        return 2
    p = decode_payload(args[0])
    work = Path(tempfile.mkdtemp(prefix=f"orchestrator-{p['task']}-{p['number']}-"))
    try:
        checkout(work, p)
        print(f"[orchestrator] {p['task']} attempt {p['number']} in {work}", flush=True)
        code = run_agent(work, p)
        save_work(work, p, code)
        return code
    except GitError as exc:
        print(f"git failed: {exc}", file=sys.stderr, flush=True)
        return 128
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
