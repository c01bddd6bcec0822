"""Carrying out a plan's actions against the world, and recording what happened.

Each action is idempotent: its names are deterministic (branch, worktree, attempt number),
and its intent is written to the store before it touches anything, so a controller killed
half-way recognises on restart what it was doing. The decisions were made by the pure
planner; nothing here decides anything beyond how to carry one action out.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass, field
from pathlib import Path

from loguru import logger

from controller.act.merge import MergeOutcome, land_task
from controller.act.records import finish, record_event
from controller.act.runners.base import LaunchRequest, Runner
from controller.core.lifecycle import backoff_delay
from controller.core.plan import MERGE, PRUNE, RETRY, SPAWN, STOP, Action
from controller.git import ops as gitops
from controller.model.names import branch_for
from controller.model.observed import Observed
from controller.model.spec import Spec, Task
from controller.state.paths import StatePaths
from controller.state.store import Store


@dataclass(frozen=True)
class MergeJob:
    """Everything a merge needs, so it can run on a worker thread without the store."""

    action: Action
    repo: Path
    integration: str
    title: str
    worktree: Path | None
    scope: list[str]
    verify: list[str] | None
    verify_timeout_s: float
    verify_log: Path
    scratch_root: Path

    def run(self) -> MergeOutcome:
        try:
            return land_task(
                self.repo,
                integration=self.integration,
                task=self.action.task,
                title=self.title,
                attempt=self.action.attempt or 0,
                worktree=self.worktree,
                scope=self.scope,
                verify=self.verify,
                verify_timeout_s=self.verify_timeout_s,
                verify_log=self.verify_log,
                scratch_root=self.scratch_root,
            )
        except (gitops.GitError, OSError) as exc:
            return MergeOutcome("error", message=f"merge failed, will retry: {exc}")


@dataclass
class Executor:
    spec: Spec
    store: Store
    runner: Runner
    paths: StatePaths
    echo: list[str] = field(default_factory=list)  # human lines of what was done, for the CLI

    def _task(self, task_id: str) -> Task | None:
        return next((t for t in self.spec.backlog if t.id == task_id), None)

    def _say(self, line: str) -> None:
        self.echo.append(line)
        logger.info(line)

    # -- dispatch --------------------------------------------------------------------------
    def apply(self, action: Action, observed: Observed) -> None:
        """Carry out a non-merge action now (merges go through `merge_job`)."""
        if action.kind in (SPAWN, RETRY):
            self.spawn(action, observed)
        elif action.kind == STOP:
            self.stop(action, observed)
        elif action.kind == PRUNE:
            self.prune(action, observed)
        elif action.kind == MERGE:
            self.record_merge(action, self.merge_job(action, observed).run())

    # -- spawn / retry ---------------------------------------------------------------------
    def spawn(self, action: Action, observed: Observed) -> None:
        task = self._task(action.task)
        base = observed.integration_sha
        if task is None or base is None or action.attempt is None:
            return
        spec, n, now = self.spec, action.attempt, time.time()
        repo, root = spec.repo_path, spec.worktree_root_path
        self.store.begin_attempt(task.id, n, task.agent, base, now)
        previous = observed.attempts.get(task.id, ())
        conflicts = previous[-1].conflicts if previous else ()
        try:
            if not self.runner.local_worktrees:  # the runner builds the branch remotely
                if action.fresh:
                    gitops.archive_branch_tip(repo, task.id, max(1, n - 1))
                worktree = repo
            else:
                if action.fresh:
                    gitops.reset_task_branch(repo, root, task.id, base, max(1, n - 1))
                worktree = gitops.ensure_worktree(repo, root, task.id, base)
            request = self.launch_request(task, n, worktree, conflicts, base, action.fresh)
            launched = self.runner.start(request)
        except (gitops.GitError, gitops.WorktreeError, OSError, ValueError) as exc:
            reason = f"could not start: {exc}"
            retry = now + backoff_delay(task.id, n, spec.backoff.initial, spec.backoff.max)
            finish(self.store, task.id, n, "failed", reason, ended_at=now, retry_at=retry)
            record_event(self.store, "spawn_failed", reason, task.id, {"attempt": n})
            self._say(f"! {action.kind} {task.id}: {reason}")
            return
        self.store.set_launched(
            task.id, n, launched.pid, launched.create_time, launched.started_at, launched.handle
        )
        record_event(
            self.store,
            action.kind,
            f"attempt {n} started: {action.reason}",
            task.id,
            {"attempt": n, "pid": launched.pid, "base": base, "fresh": action.fresh},
        )
        sym = "+" if action.kind == SPAWN else "~"
        ident = f"pid {launched.pid}" if launched.pid else launched.handle
        self._say(f"{sym} {action.kind} {task.id} attempt {n} ({ident})")

    def launch_request(
        self,
        task: Task,
        n: int,
        worktree: Path,
        conflicts: tuple[str, ...],
        base: str | None = None,
        fresh: bool = False,
    ) -> LaunchRequest:
        agent = self.spec.agents[task.agent]
        resources = agent.resources
        values = {
            "task": task.id,
            "title": task.display_title,
            "prompt": task.prompt,
            "worktree": str(worktree),
            "branch": branch_for(task.id),
            "attempt": str(n),
        }
        argv = tuple(arg.format_map(values) for arg in agent.command)
        progress = self.paths.progress_file(task.id, n)
        env = {
            **agent.env,
            "ORCHESTRATOR_TASK": task.id,
            "ORCHESTRATOR_TITLE": task.display_title,
            "ORCHESTRATOR_PROMPT": task.prompt,
            "ORCHESTRATOR_ATTEMPT": str(n),
            "ORCHESTRATOR_WORKTREE": str(worktree),
            "ORCHESTRATOR_BRANCH": branch_for(task.id),
            "ORCHESTRATOR_PROGRESS_FILE": str(progress),
            "ORCHESTRATOR_CONFLICTS": "\n".join(conflicts),
        }
        return LaunchRequest(
            task=task.id,
            number=n,
            argv=argv,
            cwd=worktree,
            env=env,
            log_path=self.paths.task_log(task.id, n),
            start_record=self.paths.start_record(task.id, n),
            exit_record=self.paths.exit_record(task.id, n),
            progress_file=progress,
            timeout_s=self.spec.timeout_of(task),
            branch=branch_for(task.id),
            base_sha=base,
            fresh=fresh,
            cpus=resources.cpus if resources else None,
            memory_mb=resources.memory_mb if resources else None,
        )

    # -- stop ------------------------------------------------------------------------------
    def stop(self, action: Action, observed: Observed) -> None:
        attempts = observed.attempts.get(action.task, ())
        if not attempts or (attempts[-1].pid is None and attempts[-1].handle is None):
            return
        last, now = attempts[-1], time.time()
        was_alive = self.runner.stop(last.pid, last.create_time, handle=last.handle)
        outcome = action.outcome or "stopped"
        retry = None
        if outcome == "timeout":
            retry = now + backoff_delay(
                action.task, last.number, self.spec.backoff.initial, self.spec.backoff.max
            )
        finish(
            self.store,
            action.task,
            last.number,
            outcome,
            action.reason,
            ended_at=now,
            retry_at=retry,
        )
        record_event(
            self.store,
            "stop",
            action.reason,
            action.task,
            {"attempt": last.number, "alive": was_alive},
        )
        self._say(f"! stop   {action.task} attempt {last.number}: {action.reason}")

    # -- prune -----------------------------------------------------------------------------
    def prune(self, action: Action, observed: Observed) -> None:
        attempts = observed.attempts.get(action.task, ())
        number = attempts[-1].number if attempts else 0
        try:
            ref = gitops.remove_worktree(
                self.spec.repo_path, self.spec.worktree_root_path, action.task, number
            )
        except (gitops.GitError, gitops.WorktreeError, ValueError) as exc:
            record_event(self.store, "prune_failed", str(exc), action.task)
            self._say(f"! prune  {action.task}: {exc}")
            return
        kept = f"; uncommitted work kept in {ref}" if ref else ""
        record_event(self.store, "prune", f"{action.reason}{kept}", action.task, {"archive": ref})
        self._say(f"- prune  {action.task}: {action.reason}{kept}")

    # -- merge -----------------------------------------------------------------------------
    def merge_job(self, action: Action, observed: Observed) -> MergeJob:
        task = self._task(action.task)
        wt = observed.worktrees.get(action.task)
        n = action.attempt or 0
        return MergeJob(
            action=action,
            repo=self.spec.repo_path,
            integration=self.spec.integration_branch,
            title=task.display_title if task else action.task,
            worktree=Path(wt.path) if wt and os.path.isdir(wt.path) else None,
            scope=list(self.spec.scope_of(task)) if task else [],
            verify=list(self.spec.verify) if self.spec.verify else None,
            verify_timeout_s=self.spec.verify_timeout,
            verify_log=self.paths.verify_log(action.task, n),
            scratch_root=self.paths.scratch,
        )

    def record_merge(self, action: Action, outcome: MergeOutcome) -> None:
        task, n, now = action.task, action.attempt or 0, time.time()
        kind = outcome.kind
        if kind == "merged":
            finish(self.store, task, n, "merged", "")
            record_event(
                self.store,
                "merge",
                f"merged as {outcome.sha}",
                task,
                {"attempt": n, "sha": outcome.sha},
            )
            self._say(
                f"> merge  {task} -> {self.spec.integration_branch} ({(outcome.sha or '')[:10]})"
            )
        elif kind == "conflict":
            files = ", ".join(outcome.conflicts) or "unknown files"
            reason = f"merge conflict in {files}"
            finish(
                self.store, task, n, "conflict", reason, retry_at=now, conflicts=outcome.conflicts
            )
            record_event(
                self.store,
                "conflict",
                reason,
                task,
                {"attempt": n, "files": list(outcome.conflicts)},
            )
            self._say(f"! merge  {task}: {reason}; a fresh attempt will start on the new tip")
        elif kind == "verify_failed":
            retry = now + backoff_delay(task, n, self.spec.backoff.initial, self.spec.backoff.max)
            reason = f"verify failed: {outcome.message}"
            finish(self.store, task, n, "verify_failed", reason, retry_at=retry)
            record_event(self.store, "verify_failed", reason, task, {"attempt": n})
            self._say(f"! merge  {task}: {reason}")
        elif kind == "rejected":
            paths = ", ".join(outcome.offending)
            reason = f"wrote outside its scope: {paths}" if paths else outcome.message
            finish(self.store, task, n, "rejected", reason)
            record_event(
                self.store,
                "rejected",
                reason,
                task,
                {"attempt": n, "paths": list(outcome.offending)},
            )
            self._say(f"! merge  {task}: rejected, {reason} (branch kept)")
        else:  # raced / blocked / error: nothing recorded, the next pass decides again
            record_event(self.store, f"merge_{kind}", outcome.message, task, {"attempt": n})
            self._say(f". merge  {task}: {outcome.message}")
