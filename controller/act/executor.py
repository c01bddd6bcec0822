"""Carrying out a plan's actions against the world, and recording what happened.

Each action is idempotent: its names are deterministic (branch, worktree, attempt number),
and its intent is written to the store before it touches anything, so a controller killed
half-way recognises on restart what it was doing. The decisions were made by the pure
planner, and the verdicts on what happened by `core.outcomes`; nothing here decides
anything beyond how to carry one action out.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from loguru import logger

from controller import git
from controller.act.ignored import IgnoredKept, keep_ignored
from controller.act.launch import launch_request, prepare_files, read_tail
from controller.act.merge import MergeJob
from controller.act.records import apply_verdict, record_event
from controller.act.runners.base import Runner
from controller.act.train import TrainJob
from controller.act.verify import verify_environment
from controller.act.worktree_setup import SetupError, copy_missing
from controller.core.conflicts import predicted_conflicts
from controller.core.lifecycle import attempts_allowed, visible_attempts
from controller.core.outcomes import merge_verdict, spawn_failure_verdict, stop_verdict
from controller.core.plan import MERGE, PRUNE, RETRY, SPAWN, STOP, Action
from controller.core.prompt import PromptFacts, compose_prompt
from controller.core.train import Candidate, select_batch
from controller.model.observed import AttemptObs, Observed, TaskOrders
from controller.model.outcomes import MergeOutcome, Verdict
from controller.model.spec import Spec, Task
from controller.state.paths import StatePaths
from controller.state.store import Store

SPAWN_THREADS = 4  # worktrees created side by side when several spawns are due
Prepared = tuple[Path, list[str]] | Exception  # (worktree, files copied into it), or why not


def brief(exc: BaseException) -> str:
    """What went wrong, in one line for people (a git error without its pinned argv)."""
    return exc.brief if isinstance(exc, git.GitError) else str(exc)


class ActionFailed(RuntimeError):
    """An action failed in a way already recorded (event, log line): the caller holds it
    off (`state.holdoffs`) and looks for stale git locks, without a traceback."""


@dataclass
class Executor:
    spec: Spec
    store: Store
    runner: Runner
    paths: StatePaths
    echo: list[str] = field(default_factory=list)  # human lines of what was done, for the CLI
    launched: list[str] = field(default_factory=list)  # tasks whose agent started
    failed: list[str] = field(default_factory=list)  # actions that could not be carried out

    def _task(self, task_id: str) -> Task | None:
        return next((t for t in self.spec.backlog if t.id == task_id), None)

    def _say(self, line: str) -> None:
        self.echo.append(line)
        logger.info(line)

    # -- dispatch --------------------------------------------------------------------------
    def apply(self, action: Action, observed: Observed) -> None:
        """Carry out an action now (a merge too: `merge_job` hands it to a worker instead)."""
        if action.kind in (SPAWN, RETRY):
            self.spawn(action, observed)
        elif action.kind == STOP:
            self.stop(action, observed)
        elif action.kind == PRUNE:
            self.prune(action, observed)
        elif action.kind == MERGE:
            self.record_merge(action, self.merge_job(action, observed).run())

    # -- spawn / retry ---------------------------------------------------------------------
    def _prepare_worktree(
        self, task: Task, n: int, base: str, fresh: bool, new: bool
    ) -> tuple[Path, list[str]]:
        """The attempt's worktree and the files copied into it. Runs on a worker thread when
        several spawns are due: it writes nothing to the store."""
        repo, root = self.spec.repo_path, self.spec.worktree_root_path
        if not self.runner.local_worktrees:  # the runner builds the branch remotely
            if fresh:
                git.archive_branch_tip(repo, task.id, max(1, n - 1))
            return repo, []
        if fresh:
            git.reset_task_branch(repo, root, task.id, base, max(1, n - 1))
        worktree = git.ensure_worktree(repo, root, task.id, base, new=new and not fresh)
        files = self.spec.agents[task.agent].copy_files
        return worktree, (copy_missing(repo, worktree, files) if files else [])

    def spawn(self, action: Action, observed: Observed) -> None:
        self.spawn_many([action], observed)

    def spawn_many(self, actions: Sequence[Action], observed: Observed) -> None:
        """Start attempts: intents first, then their worktrees side by side (git runs as
        separate processes), then the launches, one by one, in the planner's order."""
        base = observed.integration_sha
        due = [(a, t) for a in actions if (t := self._task(a.task)) and a.attempt is not None]
        if base is None or not due:
            return
        now = time.time()
        for action, task in due:
            n = action.attempt or 0
            self.store.begin_attempt(task.id, n, task.agent, base, now, port=action.port)

        def prepare(item: tuple[Action, Task]) -> Prepared:
            action, task = item
            new = task.id not in observed.branches and task.id not in observed.worktrees
            try:
                return self._prepare_worktree(task, action.attempt or 0, base, action.fresh, new)
            except (git.GitError, git.WorktreeError, SetupError, OSError, ValueError) as exc:
                return exc

        if len(due) == 1:
            prepared = [prepare(due[0])]
        else:
            with ThreadPoolExecutor(min(len(due), SPAWN_THREADS), "worktree") as pool:
                prepared = list(pool.map(prepare, due))
        for (action, task), ready in zip(due, prepared, strict=True):
            self._launch(action, task, ready, base, observed, now)

    def _launch(
        self,
        action: Action,
        task: Task,
        ready: Prepared,
        base: str,
        observed: Observed,
        now: float,
    ) -> None:
        n = action.attempt or 0
        orders = observed.orders.get(task.id)
        previous = visible_attempts(observed.attempts.get(task.id, ()), orders)
        conflicts = previous[-1].conflicts if previous else ()
        try:
            if isinstance(ready, Exception):
                raise ready
            worktree, copied = ready
            if copied:
                record_event(self.store, "copy", f"copied {', '.join(copied)}", task.id)
            prompt, header = self._prompt(task, n, previous, orders)
            request = launch_request(
                self.spec, self.paths, task, n, worktree, conflicts, base, action.fresh,
                prompt=prompt, port=action.port,
            )  # fmt: skip
            prepare_files(request, prompt, self.paths, header)
            launched = self.runner.start(request)
        except (git.GitError, git.WorktreeError, SetupError, OSError, ValueError) as exc:
            self._spawn_failed(action, task, n, exc, now)
            return
        self.store.set_launched(
            task.id,
            n,
            launched.pid,
            launched.create_time,
            launched.started_at,
            launched.handle,
            launched.start_id,
        )
        data = {"attempt": n, "pid": launched.pid, "base": base, "fresh": action.fresh}
        data["launched_at"] = launched.started_at  # the runner's start (the shim's is later)
        if action.port is not None:
            data["port"] = action.port
        self.launched.append(task.id)
        record_event(
            self.store, action.kind, f"attempt {n} started: {action.reason}", task.id, data
        )
        ident = f"pid {launched.pid}" if launched.pid else launched.handle
        port = f", port {action.port}" if action.port is not None else ""
        if action.kind == SPAWN:
            self._say(f"+ spawn  {task.id} attempt {n} ({ident}{port})")
        else:  # a retry says why: `attempt 2 of 4: exit 1, backoff over`
            self._say(f"~ retry  {task.id} ({ident}{port}): {action.reason}")

    def _spawn_failed(self, action: Action, task: Task, n: int, exc: Exception, now: float) -> None:
        if isinstance(exc, SetupError):
            verdict = spawn_failure_verdict(
                self.spec, task.id, n, f"copy {exc}", now, what="setup failed"
            )
        else:
            verdict = spawn_failure_verdict(self.spec, task.id, n, str(exc), now)
        apply_verdict(self.store, task.id, n, verdict)
        self._say(f"! {action.kind} {task.id}: {verdict.reason}")
        self.failed.append(f"{action.kind} {task.id}: {verdict.reason}")

    def _prompt(
        self, task: Task, n: int, previous: tuple[AttemptObs, ...], orders: TaskOrders | None
    ) -> tuple[str, str]:
        """The composed prompt of attempt `n` (with what the act layer read about the last
        attempt) and the line that introduces it in the attempt's log."""
        last = previous[-1] if previous else None
        facts = PromptFacts()
        root = self.paths.root
        if last is not None and last.outcome == "verify_failed":
            log = self.paths.verify_log(task.id, last.number)
            facts = PromptFacts(verify_tail=read_tail(root, log))
        elif last is not None and last.reason.startswith("setup failed"):
            log = self.paths.setup_log(task.id, last.number)
            facts = PromptFacts(setup_tail=read_tail(root, log))
        total = attempts_allowed(self.spec, task, previous, orders)
        prompt = compose_prompt(self.spec, task, n, total, last, facts)
        return prompt, f"task {task.id}, attempt {n} of {total}, agent {task.agent}"

    # -- stop ------------------------------------------------------------------------------
    def stop(self, action: Action, observed: Observed) -> None:
        attempts = observed.attempts.get(action.task, ())
        if not attempts or (attempts[-1].pid is None and attempts[-1].handle is None):
            return
        last = attempts[-1]
        was_alive = self.runner.stop(
            last.pid, last.create_time, handle=last.handle, start_id=last.start_id
        )
        if last.outcome in ("stopped", "timeout"):
            # stopped before and still alive (a remote job ends a few seconds after its
            # stop): signalled again, but its first verdict stands
            return
        outcome = action.outcome or "stopped"
        verdict = stop_verdict(
            self.spec,
            action.task,
            last.number,
            outcome,
            action.reason,
            alive=was_alive,
            now=time.time(),
        )
        apply_verdict(self.store, action.task, last.number, verdict)
        self._say(f"! stop   {action.task} attempt {last.number}: {action.reason}")
        worktree = observed.worktrees.get(action.task)
        if action.snapshot and worktree is not None:
            self.snapshot(action.task, last.number, Path(worktree.path))

    def snapshot(self, task: str, number: int, worktree: Path) -> None:
        """Keep a stopped attempt's uncommitted work in an archive ref (stop --force)."""
        repo = git.open_repo(self.spec.repo_path)
        try:
            ref = git.snapshot(repo, git.registered_place(repo, worktree), task, number)
        except (git.GitError, git.WorktreeError) as exc:
            record_event(self.store, "snapshot_failed", str(exc), task)
            self._say(f"! stop   {task}: could not snapshot its work: {exc}")
            return
        if ref:
            record_event(self.store, "snapshot", f"work kept in {ref}", task)

    # -- prune -----------------------------------------------------------------------------
    def prune(self, action: Action, observed: Observed) -> None:
        attempts = observed.attempts.get(action.task, ())
        number = attempts[-1].number if attempts else 0
        ignored = IgnoredKept()

        def keep(worktree: Path, names: list[str]) -> None:
            nonlocal ignored
            ignored = keep_ignored(self.paths, action.task, number, worktree, names)

        try:
            ref = git.remove_worktree(
                self.spec.repo_path, self.spec.worktree_root_path, action.task, number, keep
            )
        except (git.GitError, git.WorktreeError, ValueError, OSError) as exc:
            record_event(self.store, "prune_failed", str(exc), action.task)
            self._say(f"! prune  {action.task}: {exc}")
            self.failed.append(f"prune {action.task}: {exc}")
            raise ActionFailed(brief(exc)) from exc
        kept = f"; uncommitted work kept in {ref}" if ref else ""
        if ignored.archive is not None:
            kept += f"; {ignored.describe()}"
        data = {"archive": ref, "ignored_archive": str(ignored.archive or "") or None}
        record_event(self.store, "prune", f"{action.reason}{kept}", action.task, data)
        self._say(f"- prune  {action.task}: {action.reason}{kept}")

    # -- merge -----------------------------------------------------------------------------
    def merge_job(self, action: Action, observed: Observed) -> MergeJob:
        task = self._task(action.task)
        wt = observed.worktrees.get(action.task)
        n = action.attempt or 0
        return MergeJob(
            task=action.task,
            attempt=n,
            repo=self.spec.repo_path,
            integration=self.spec.integration_branch,
            title=task.display_title if task else action.task,
            worktree=Path(wt.path) if wt and os.path.isdir(wt.path) else None,
            scope=list(self.spec.scope_of(task)) if task else [],
            verify=list(self.spec.verify) if self.spec.verify else None,
            verify_timeout_s=self.spec.verify_timeout,
            verify_log=self.paths.verify_log(action.task, n),
            scratch_root=self.paths.scratch,
            verify_env=verify_environment(self.spec.verify_pass_env, self.spec.verify_env),
            allow_external_symlinks=self.spec.allow_external_symlinks,
            state_root=self.paths.root,
            log_limit=self.spec.log_limit,
            allow_empty=self.spec.allow_empty(task) if task else False,
            author=self.merge_author(),
        )

    def train_job(
        self, actions: Sequence[Action], observed: Observed, *, predictions: bool = True
    ) -> TrainJob:
        """The next merge train for the tasks of `actions` (`core.train.select_batch`);
        `predictions`: leave branches predicted to conflict out of the chain."""
        position = {t.id: i for i, t in enumerate(self.spec.backlog)}
        queue = []
        for a in actions:
            attempts = observed.attempts.get(a.task, ())
            ended = attempts[-1].ended_at if attempts else None
            files = predicted_conflicts(observed, a.task) if predictions else ()
            queue.append(Candidate(a.task, ended, position.get(a.task, len(position)), files))
        mq = self.spec.merge_queue
        batch = select_batch(queue, mq.batch, mq.parallel_verify)
        jobs = {a.task: self.merge_job(a, observed) for a in actions}
        return TrainJob(
            links=tuple(jobs[t] for t in batch.links),
            conflict_checks=tuple(jobs[t] for t in batch.conflict_checks),
            batch=mq.batch,
            parallel=mq.parallel_verify,
        )

    def merge_author(self) -> tuple[str, str] | None:
        """The spec's `mergeAuthor`, else the user's git identity (None: the controller's)."""
        author = self.spec.merge_author
        if author is not None:
            return author.name, author.email
        try:
            return git.user_identity(self.spec.repo_path)
        except git.GitError:
            return None

    def record_merge(self, action: Action, outcome: MergeOutcome) -> Verdict | None:
        """Record a merge's outcome; the verdict stored on the attempt (None: none)."""
        task, n = action.task, action.attempt or 0
        verdict = merge_verdict(self.spec, task, n, outcome, time.time())
        if verdict is None:  # raced / blocked / error / requeued: the next pass decides
            record_event(self.store, f"merge_{outcome.kind}", outcome.message, task, {"attempt": n})
            self._say(f". merge  {task}: {outcome.message}")
            self.failed.append(f"merge {task}: {outcome.message}")
            return None
        apply_verdict(self.store, task, n, verdict)
        if verdict.outcome == "merged":
            branch = self.spec.integration_branch
            self._say(f"> merge  {task} -> {branch} ({(outcome.sha or '')[:10]})")
            for path, target in outcome.external_links:  # accepted: allowExternalSymlinks
                message = f"merged a symlink pointing outside the repository: {path} -> {target}"
                record_event(self.store, "external_symlink", message, task, {"path": path})
                self._say(f"! merge  {task}: {message}")
        elif verdict.outcome == "conflict":
            self._say(
                f"! merge  {task}: {verdict.reason}; a fresh attempt will start on the new tip"
            )
        elif verdict.outcome == "rejected":
            self._say(f"! merge  {task}: rejected, {verdict.reason} (branch kept)")
        elif verdict.event == "no_changes":
            self._say(f"! merge  {task}: not merged, attempt {n} made no changes")
        else:
            self._say(f"! merge  {task}: {verdict.reason}")
        return verdict
