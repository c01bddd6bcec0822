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
(its command's placeholders filled here, so `{worktree}` is this checkout, never a path of
the controller's machine); commit what it left uncommitted; push the task branch (also after
a failure, so a retry continues from the work); exit with the agent's exit code.

Nothing the agent did is deleted before it is pushed:
- a push that fails is tried `PUSH_TRIES` times; then the checkout is moved to a named
  folder on the worker (`$ORCHESTRATOR_KEEP_DIR`, else `~/.local/share/orchestrator/kept`),
  the job's log says where and why (a line starting with `KEPT_MARKER`, which the controller
  turns into an event), and the job exits `PUSH_FAILED_EXIT` (so the attempt is not taken
  for a success whose work is missing);
- a timeout stops the agent's process group with SIGTERM, then SIGKILL after the grace
  period, and then saves the work as above;
- a job stop (`stop --force`, the controller's timeout) reaches the agent the same way.
  Ray sends SIGTERM to the entrypoint and its processes and SIGKILLs them a few seconds
  later (`RAY_JOB_STOP_WAIT_TIME_S`, default 3 s). So on SIGTERM the saving is handed to a
  process forked into a session of its own -- out of reach of that SIGKILL -- which stops the
  agent (SIGTERM, grace, SIGKILL), commits and pushes (or keeps) the work. The entrypoint
  waits for it while Ray lets it, so normally the push has landed when the job is reported
  stopped; if it takes longer it still lands, and the next attempt continues from it.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from types import FrameType
from typing import Any

from controller.git.command import Result, run_in
from controller.git.runner import GitError

IDENTITY = {
    "GIT_AUTHOR_NAME": "orchestrator",
    "GIT_AUTHOR_EMAIL": "orchestrator@localhost",
    "GIT_COMMITTER_NAME": "orchestrator",
    "GIT_COMMITTER_EMAIL": "orchestrator@localhost",
}
PUSH_TRIES = 3
PUSH_PAUSE_S = 1.0  # before the second try; doubles
PUSH_FAILED_EXIT = 75  # EX_TEMPFAIL: the work is kept on the worker, not pushed
KEPT_MARKER = "ORCHESTRATOR_KEPT "  # + JSON {host, path, reason}: read by `ray.RayRunner`
STOP_WAIT_S = 2.5  # how long the entrypoint waits for the saver after a stop (Ray: 3 s)
DEFAULT_GRACE_S = 5.0


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


def say(line: str) -> None:
    print(f"[orchestrator] {line}", file=sys.stderr, flush=True)


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


def agent_argv(work: Path, p: dict[str, Any]) -> list[str]:
    """The agent's argv: its command's placeholders filled, `{worktree}` with this checkout
    (payloads of older controllers carry a ready `argv`)."""
    if "command" not in p:
        return [str(a) for a in p["argv"]]
    values = {**p.get("values", {}), "worktree": str(work)}
    return [str(arg).format_map(values) for arg in p["command"]]


def start_agent(work: Path, p: dict[str, Any]) -> subprocess.Popen[bytes] | None:
    missing = [name for name in p.get("pass_env", []) if name not in os.environ]
    if missing:
        say(f"passEnv not set on this worker: {', '.join(missing)}")
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
            argv = agent_argv(work, p)
            return subprocess.Popen(argv, cwd=work, env=env, stdin=stdin, start_new_session=True)
    except OSError as exc:
        say(f"cannot start the agent: {exc}")
        return None


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def stop_group(pgid: int, grace_s: float, reap: subprocess.Popen[bytes] | None = None) -> None:
    """SIGTERM to the agent's process group, SIGKILL after `grace_s` if any is left."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 2.0)):
        try:
            os.killpg(pgid, sig)
        except ProcessLookupError:
            return
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            if reap is not None:
                reap.poll()
            if not _group_alive(pgid):
                return
            time.sleep(0.05)


class StopRequest:
    """SIGTERM/SIGINT from Ray (a job stop): remembered, and forwarded to the agent."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.agent: subprocess.Popen[bytes] | None = None

    def __call__(self, signum: int, _frame: FrameType | None) -> None:
        self.signum = signum
        if self.agent is not None and self.agent.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.agent.pid, signal.SIGTERM)


def wait_agent(proc: subprocess.Popen[bytes], p: dict[str, Any], stop: StopRequest) -> int | None:
    """The agent's exit code; 124 after a timeout (stopped, then saved); None on a stop."""
    timeout = p.get("timeout_s")
    deadline = None if timeout is None else time.monotonic() + float(timeout)
    while proc.poll() is None:
        if stop.signum is not None:
            return None
        if deadline is not None and time.monotonic() > deadline:
            say("agent timed out; stopping it (SIGTERM, then SIGKILL after the grace period)")
            stop_group(proc.pid, float(p.get("grace_s") or DEFAULT_GRACE_S), proc)
            proc.wait()
            return 124
        time.sleep(0.05)
    return proc.returncode


def keep_root() -> Path:
    configured = os.environ.get("ORCHESTRATOR_KEEP_DIR")
    if configured:
        return Path(configured).expanduser()
    data = os.environ.get("XDG_DATA_HOME") or os.path.expanduser("~/.local/share")
    return Path(data) / "orchestrator" / "kept"


def keep(work: Path, p: dict[str, Any], reason: str) -> Path:
    """Move the checkout to a named folder on this worker; say where and why."""
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    target = keep_root() / f"{p['task']}-{p['number']}-{stamp}-{os.getpid()}"
    target.parent.mkdir(parents=True, exist_ok=True)
    shutil.move(str(work), str(target))
    host = socket.gethostname()
    say(f"the work could not be pushed ({reason}); it is kept on {host} in {target}")
    print(KEPT_MARKER + json.dumps({"host": host, "path": str(target), "reason": reason}))
    sys.stdout.flush()
    return target


def push(work: Path, p: dict[str, Any]) -> str | None:
    """Push the task branch, trying `PUSH_TRIES` times; None when it landed, else why not."""
    pause, why = PUSH_PAUSE_S, ""
    for attempt in range(1, PUSH_TRIES + 1):
        try:
            git(work, "push", "-q", "origin", f"+HEAD:refs/heads/{p['branch']}")
            return None
        except GitError as exc:
            why = exc.brief
            say(f"push {attempt} of {PUSH_TRIES} failed: {why}")
        if attempt < PUSH_TRIES:
            time.sleep(pause)
            pause *= 2
    return why


def save_work(work: Path, p: dict[str, Any], code: int) -> int:
    """Commit what the agent left, push it (or keep it); the job's exit code. The checkout
    is deleted only once its work is pushed."""
    try:
        git(work, "add", "-A")
        if git(work, "diff", "--cached", "--quiet", check=False).returncode != 0:
            message = f"{p['task']}: uncommitted work left by attempt {p['number']} (exit {code})"
            git(work, "commit", "-q", "--no-verify", "-m", message)
        failure = push(work, p)
    except GitError as exc:
        failure = exc.brief
    if failure is not None:
        keep(work, p, failure)
        return PUSH_FAILED_EXIT
    shutil.rmtree(work, ignore_errors=True)
    return code


def hand_over(work: Path, p: dict[str, Any], agent: subprocess.Popen[bytes] | None) -> int:
    """A job stop: save the work from a forked process in a session of its own (out of
    reach of Ray's SIGKILL, see the module docstring); wait for it while Ray lets us."""
    pid = os.fork()
    if pid == 0:  # the saver
        code = 1
        try:
            os.setsid()
            signal.signal(signal.SIGTERM, signal.SIG_IGN)
            if agent is not None:
                stop_group(agent.pid, float(p.get("grace_s") or DEFAULT_GRACE_S))
            code = save_work(work, p, 143)
        finally:
            os._exit(code)
    deadline = time.monotonic() + STOP_WAIT_S
    while time.monotonic() < deadline:
        if agent is not None:
            agent.poll()  # reap it: the saver sees the agent's group gone only then
        if os.waitpid(pid, os.WNOHANG) != (0, 0):
            break
        time.sleep(0.05)
    return 143


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m controller.act.runners.ray_entry PAYLOAD", file=sys.stderr)
        return 2
    p = decode_payload(args[0])
    stop = StopRequest()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)
    work = Path(tempfile.mkdtemp(prefix=f"orchestrator-{p['task']}-{p['number']}-"))
    try:
        checkout(work, p)
    except GitError as exc:
        say(f"git failed: {exc.brief}")
        shutil.rmtree(work, ignore_errors=True)  # nothing of the agent's is in it yet
        return 128
    if stop.signum is not None:  # stopped before the agent started: nothing to save
        shutil.rmtree(work, ignore_errors=True)
        return 143
    print(f"[orchestrator] {p['task']} attempt {p['number']} in {work}", flush=True)
    agent = start_agent(work, p)
    stop.agent = agent
    code = 127 if agent is None else wait_agent(agent, p, stop)
    if code is None or stop.signum is not None:
        return hand_over(work, p, agent)
    return save_work(work, p, code)


if __name__ == "__main__":
    sys.exit(main())
