"""Runner that runs each attempt as one Ray job, through the Ray Jobs API.

The controller stays the one authority: it plans, holds the lock and merges centrally. Ray
only runs agents. Each attempt is one job with a deterministic submission id derived from the
state directory's instance id, the task and the attempt number, so a restarted controller
finds the job it already submitted instead of submitting a second one (Ray refuses duplicate
ids anyway). Ray never retries a job's entrypoint; retries belong to the controller.

The contract with the rest of the controller is the same as the local runner's: a start
record and an exit record in `state/runs/<task>/<n>.*`, the agent's output in
`state/logs/<task>/<n>.log`, and the task branch `orchestrator/<task>` in the local repo.
`poll()` keeps them current each pass: when a job ends it fetches the pushed branch from the
remote (archiving a local tip it would replace), copies the job's logs, then writes the exit
record; the planner then scope-checks, verifies and merges exactly as for local agents. An
unreachable cluster is reported as the reason nothing new starts, never as a crash.

Secrets: anyone who can list the cluster's jobs sees each job's entrypoint, metadata and
`runtime_env`. The entrypoint carries only the controller's own variables (task, prompt,
branch); the spec's `env:` values go into the job's `runtime_env` env_vars (visible to job
listers: `validate` warns when a name looks like a secret); `passEnv:` travels as names
only, and the job takes their values from the worker's own environment.
"""

from __future__ import annotations

import json
import shlex
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

from controller import git
from controller.act.records import record_event
from controller.act.runners.base import Launched, LaunchRequest
from controller.act.runners.ray_entry import KEPT_MARKER, encode_payload
from controller.model import names
from controller.model.safe_text import redact
from controller.state import files
from controller.state.paths import StatePaths
from controller.state.store import Store

HANDLE_PREFIX = "ray:"
TERMINAL = {"SUCCEEDED", "FAILED", "STOPPED"}
MISSING_GRACE_S = 30.0  # a submitted job the cluster does not list yet is not lost before this
KEPT_FIELDS = ("host", "path", "reason")


def _read_json(root: Path, path: Path) -> dict[str, Any]:
    """A record in the state folder, read safely (`state.files`); {} when unreadable."""
    try:
        data = json.loads(files.read_bytes(root, path, files.RECORD_LIMIT))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _write_json(path: Path, data: dict[str, Any]) -> None:
    files.write_atomic(path.parent, path, json.dumps(data).encode())  # never via a symlink


def kept_work(logs: str) -> list[dict[str, str]]:
    """The `KEPT_MARKER` lines of a job's log: work the job kept on its worker."""
    found = []
    for line in logs.splitlines():
        if line.startswith(KEPT_MARKER):
            try:
                data = json.loads(line[len(KEPT_MARKER) :])
            except ValueError:
                continue
            if isinstance(data, dict):
                found.append({k: str(v) for k, v in data.items() if k in KEPT_FIELDS})
    return found


def job_exit_code(status: str, driver_exit_code: int | None) -> int:
    """The exit code an ended job stands for (a stopped job counts as SIGTERM)."""
    if status == "SUCCEEDED":
        return 0
    if status == "STOPPED":
        return 143
    return driver_exit_code if driver_exit_code not in (None, 0) else 1


# environment variables naming files on this machine: the job gets its own (`ray_entry`)
LOCAL_FILES = frozenset(
    {"ORCHESTRATOR_PROGRESS_FILE", "ORCHESTRATOR_PROMPT_FILE", "ORCHESTRATOR_USAGE_FILE"}
)


class RayRunner:
    """See the module docstring."""

    local_worktrees = False
    # no file event announces a job's end: while jobs run, the loop polls this often
    poll_interval_s = 0.5

    def __init__(
        self,
        address: str,
        remote: str,
        repo: Path,
        python: str = "python",
        log_limit: int | None = None,
    ):
        self.address, self.remote, self.repo, self.python = address, remote, repo, python
        self.log_limit = log_limit  # a job's log is kept to its last `log_limit` bytes
        self._client: Any = None
        self._instance: str | None = None
        self._jobs: dict[str, Any] = {}

    # -- the Jobs API ----------------------------------------------------------------------
    def client(self) -> Any:
        if self._client is None:
            from ray.job_submission import JobSubmissionClient

            self._client = JobSubmissionClient(self.address)
        return self._client

    def submission_id(self, task: str, number: int) -> str:
        if self._instance is None:
            raise RuntimeError("poll() must run before start(): the instance id is unknown")
        return f"orchestrator-{self._instance}-{task}-{number}"

    def _job(self, sid: str) -> Any:
        job = self._jobs.get(sid)
        if job is None:
            try:
                job = self.client().get_job_info(sid)
            except Exception:  # the Jobs API raises a bare RuntimeError for unknown ids
                return None
            self._jobs[sid] = job
        return job

    # -- Runner ----------------------------------------------------------------------------
    def start(self, req: LaunchRequest) -> Launched:
        sid = self.submission_id(req.task, req.number)
        base_ref = f"refs/orchestrator/base/{req.task}/{req.number}"
        now = time.time()
        if self._job(sid) is None:  # adopt a job submitted before a crash, never resubmit
            place = git.open_repo(self.repo).place
            git.run(place, "push", "-q", self.remote, f"+{req.base_sha}:{base_ref}")
            payload = {
                "task": req.task,
                "number": req.number,
                "branch": req.branch or names.branch_for(req.task),
                "base_ref": base_ref,
                "fresh": req.fresh,
                "remote": self.remote,
                # placeholders are filled on the worker: `{worktree}` is its checkout there
                "command": list(req.command) or list(req.argv),
                "values": dict(req.placeholders),
                "env": {k: v for k, v in req.env.items() if k not in LOCAL_FILES},
                "pass_env": list(req.pass_env),
                "timeout_s": req.timeout_s,
                "grace_s": req.kill_grace_s,
                "stdin": req.stdin_path.read_text(encoding="utf-8") if req.stdin_path else "",
            }
            entrypoint = shlex.join(
                [self.python, "-m", "controller.act.runners.ray_entry", encode_payload(payload)]
            )
            kwargs: dict[str, Any] = {}
            if req.agent_env:
                kwargs["runtime_env"] = {"env_vars": dict(req.agent_env)}
            if req.cpus is not None:
                kwargs["entrypoint_num_cpus"] = req.cpus
            if req.memory_mb is not None:
                kwargs["entrypoint_memory"] = req.memory_mb * 1024 * 1024
            self.client().submit_job(
                entrypoint=entrypoint,
                submission_id=sid,
                metadata={"task": req.task, "attempt": str(req.number)},
                **kwargs,
            )
        handle = HANDLE_PREFIX + sid
        _write_json(req.start_record, {"pid": None, "started_at": now, "handle": handle})
        return Launched(pid=None, create_time=None, started_at=now, handle=handle)

    def alive(
        self, pid: int | None, create_time: float | None, start_id: str | None = None
    ) -> bool:
        return False  # Ray attempts have no local process; `poll` writes their exit records

    def stop(
        self,
        pid: int | None,
        create_time: float | None,
        grace_s: float = 5.0,
        handle: str | None = None,
        start_id: str | None = None,
    ) -> bool:
        if not handle or not handle.startswith(HANDLE_PREFIX):
            return False
        sid = handle[len(HANDLE_PREFIX) :]
        try:
            return bool(self.client().stop_job(sid))
        except Exception:
            return False

    def reap(self) -> None:
        return None

    def notify_exits(self, callback: Callable[[], None]) -> None:
        """Exits are learnt by polling the cluster (`poll`): nothing to hook."""

    def poll(self, paths: StatePaths, store: Store) -> str | None:
        if self._instance is None:
            self._instance = store.get_meta("instance_id")
            if not self._instance:
                self._instance = uuid.uuid4().hex[:8]
                store.set_meta("instance_id", self._instance)
        try:
            self._jobs = {j.submission_id: j for j in self.client().list_jobs()}
        except Exception as exc:
            self._client = None
            where = redact(self.address)
            return f"cannot reach the Ray cluster at {where} ({type(exc).__name__})"
        now = time.time()
        for task, rows in store.attempts_by_task().items():
            if rows:
                self._sync_attempt(paths, store, task, rows[-1], now)
        return None

    # -- keeping the runs directory current ------------------------------------------------
    def _sync_attempt(
        self, paths: StatePaths, store: Store, task: str, row: Any, now: float
    ) -> None:
        n = row.number
        sid = self.submission_id(task, n)
        job = self._jobs.get(sid)
        if row.outcome is not None:
            if row.handle is not None and row.exit_code is None:
                self._judged_job_ended(paths, store, task, n, sid, job, now)
            return
        if paths.exit_record(task, n).exists():
            return
        if row.handle is None:
            if job is not None:  # submitted, but the controller died before recording it
                handle = HANDLE_PREFIX + sid
                started = (job.start_time or now * 1000) / 1000
                _write_json(
                    paths.start_record(task, n),
                    {"pid": None, "started_at": started, "handle": handle},
                )
                store.set_launched(task, n, None, None, started, handle)
            return
        if job is None:
            if now - (row.started_at or row.created_at or now) > MISSING_GRACE_S:
                self._finish(paths, task, n, 255, now, "the cluster no longer knows this job\n")
            return
        if job.status not in TERMINAL:
            return
        self._collect(paths, store, task, n, sid, job, now)

    def _judged_job_ended(
        self, paths: StatePaths, store: Store, task: str, n: int, sid: str, job: Any, now: float
    ) -> None:
        """An attempt judged while its job ran (stopped, timed out) counts as running until
        the job has ended: then its work is fetched and its exit is stored."""
        record = _read_json(paths.root, paths.exit_record(task, n))
        if isinstance(record.get("exit_code"), int):
            store.record_exit(task, n, record["exit_code"], float(record.get("ended_at") or now))
        elif job is not None and job.status in TERMINAL:
            code, ended = self._collect(paths, store, task, n, sid, job, now)
            store.record_exit(task, n, code, ended)
        elif job is None:
            store.record_exit(task, n, 255, now)  # the cluster no longer knows it

    def _collect(
        self, paths: StatePaths, store: Store, task: str, n: int, sid: str, job: Any, now: float
    ) -> tuple[int, float]:
        """An ended job: its pushed branch, its log (and where it kept work it could not
        push, as an event), then its exit record; (exit code, end time)."""
        self._fetch_branch(task)
        try:
            logs = self.client().get_job_logs(sid)
        except Exception:
            logs = ""
        for kept in kept_work(logs):
            message = (
                f"attempt {n} could not push its work ({kept.get('reason', '?')}); "
                f"it is kept on {kept.get('host', '?')} in {kept.get('path', '?')}"
            )
            record_event(store, "work_kept_on_worker", message, task, {"attempt": n, **kept})
        ended = (job.end_time or now * 1000) / 1000
        code = job_exit_code(str(job.status), getattr(job, "driver_exit_code", None))
        self._finish(paths, task, n, code, ended, logs, paths.task_log(task, n))
        return code, ended

    def _finish(
        self,
        paths: StatePaths,
        task: str,
        n: int,
        code: int,
        ended: float,
        logs: str,
        log_path: Path | None = None,
    ) -> None:
        log = log_path or paths.task_log(task, n)
        data = logs.encode(errors="replace")
        if self.log_limit is not None and len(data) > self.log_limit:
            data = data[-self.log_limit :]
        files.write_atomic(paths.root, log, data)
        record = {"exit_code": code, "ended_at": ended, "timed_out": False, "signal": None}
        _write_json(paths.exit_record(task, n), record)

    def _fetch_branch(self, task: str) -> None:
        """Bring the job's pushed branch into the local repo (archiving a tip it replaces)."""
        branch = names.branch_for(task)
        fetched = f"refs/orchestrator/fetched/{task}"
        place = git.open_repo(self.repo).place
        try:
            git.run(place, "fetch", "-q", self.remote, f"+refs/heads/{branch}:{fetched}")
        except git.GitError:
            return  # the job pushed nothing (it failed before its checkout)
        new = git.rev_parse(self.repo, fetched)
        old = git.rev_parse(self.repo, f"refs/heads/{branch}")
        if new is not None and new != old:
            if old is not None and not git.is_ancestor(self.repo, old, new):
                git.archive_branch_tip(self.repo, task, 0)
            git.run(place, "update-ref", f"refs/heads/{branch}", new)
        git.run(place, "update-ref", "-d", fetched, check=False)
