"""What a running controller holds for its lifetime: the singleton locks, the log file, the
store, and a state folder made ready (kept out of git's view, leftovers of a killed
controller cleared).

Entering a session takes the locks first -- the repository's, in its git folder (one
controller per repository, whatever the spec and state folder: `observe.running`), then the
state folder's -- so the clean-ups that follow (what a killed controller left: half-written
worktree registrations, a half-done move of the integration checkout, stale git lock files,
interrupted worktree removals, verify runs and their worktrees) can never race another
controller.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from loguru import logger

from controller import git
from controller.act import leftovers
from controller.act.records import record_event
from controller.act.verify import kill_orphans
from controller.loop.log_format import log_line
from controller.loop.log_limit import RepeatFilter
from controller.model.overrides import Overrides, describe
from controller.model.spec import Spec, spec_generation
from controller.model.spec_record import spec_record
from controller.observe.running import lock_path
from controller.state import files
from controller.state.lock import ControllerLock
from controller.state.paths import StatePaths
from controller.state.store import Store

# written into the state folder wherever it is (inside the repository, or inside another
# one), and into the worktree root when it lies inside the repository: git then leaves them
# out of `git status`, without a pattern in the shared `.git/info/exclude` (which every
# worktree honours, so a pattern there could hide an agent's own files)
HIDE_FROM_GIT = "# created by orchestrator: keep this folder out of git's view\n*\n"


def setup_logging(paths: StatePaths) -> int:
    files.ensure_dirs(paths.root, paths.logs)
    return logger.add(
        paths.controller_log,
        rotation="20 MB",
        retention=5,
        enqueue=False,
        format=log_line,
        filter=RepeatFilter(),  # the same line again within a minute: counted, not written
        opener=files.opener(paths.logs),  # 0600, and never through a planted symlink
    )


def hide_from_git(folder: Path, inside: Path | None = None) -> None:
    """Keep `folder` out of `git status` of any repository it lies in (only when it lies
    inside `inside`, if given)."""
    if inside is not None and not folder.resolve().is_relative_to(inside.resolve()):
        return
    marker = folder / ".gitignore"
    try:
        if files.read_bytes(folder, marker, files.RECORD_LIMIT) == HIDE_FROM_GIT.encode():
            return
    except (OSError, ValueError):
        pass  # missing, or planted (a symlink or pipe): written anew below
    files.write_atomic(folder, marker, HIDE_FROM_GIT.encode())


class Session:
    """`with Session(spec_file, spec) as session:` -- see the module docstring."""

    def __init__(self, spec_file: Path, spec: Spec, overrides: Overrides | None = None) -> None:
        self.spec_file = spec_file
        self.spec = spec  # as the file says (its generation is what `status` compares)
        self.overrides = overrides or Overrides()
        self.paths = StatePaths(spec.state_path)
        self.paths.ensure()
        self.store = Store.open(self.paths.db)
        holder = {"spec": str(spec_file.resolve()), "state": str(self.paths.root)}
        self.repo_lock = ControllerLock(lock_path(spec.repo_path), holder)
        self.lock = ControllerLock(self.paths.lock, holder)
        self.log_sink: int | None = None

    def __enter__(self) -> Session:
        self.repo_lock.acquire()
        try:
            self.lock.acquire()
        except BaseException:
            self.repo_lock.release()
            raise
        self.log_sink = setup_logging(self.paths)
        places = {self.paths.root: None, self.spec.worktree_root_path: self.spec.repo_path}
        for folder, inside in places.items():
            try:
                hide_from_git(folder, inside)
            except OSError as exc:
                logger.warning(f"could not hide {folder} from git: {exc}")
        self.clear_leftovers()
        self.record_integration_base()
        meta = {
            "pid": str(os.getpid()),
            "started_at": str(time.time()),
            "spec_file": str(self.spec_file.resolve()),
            "spec_generation": spec_generation(self.spec),
            "spec_record": spec_record(self.spec),  # what `status` shows if the file breaks
            "overrides": self.overrides.to_json() if self.overrides else "",
        }
        for key, value in meta.items():
            self.store.set_meta(key, value)
        record_event(self.store, "controller_start", f"controller started (pid {os.getpid()})")
        if self.overrides:
            shown = describe(self.spec, self.overrides)
            data = {"overrides": json.loads(self.overrides.to_json())}
            record_event(self.store, "settings", f"command-line settings: {shown}", data=data)
        self.paths.stop_request.unlink(missing_ok=True)
        return self

    def __exit__(self, *exc: object) -> None:
        record_event(self.store, "controller_stop", "controller stopped")
        self.store.set_meta("pid", "")
        self.store.set_meta("overrides", "")  # they lived as long as this controller
        self.paths.stop_request.unlink(missing_ok=True)
        if self.log_sink is not None:
            logger.remove(self.log_sink)
        self.store.close()
        self.lock.release()
        self.repo_lock.release()

    def record_integration_base(self) -> None:
        """The integration tip when a controller first ran here: `status` lists the commits
        since then that bypassed the controller (`views.foreign`)."""
        if self.store.get_meta("integration_base"):
            return
        try:
            tip = git.rev_parse(self.spec.repo_path, f"refs/heads/{self.spec.integration_branch}")
        except git.GitError as exc:
            logger.warning(f"could not read the integration branch: {exc}")
            return
        if tip:
            self.store.set_meta("integration_base", tip)

    def clear_leftovers(self) -> None:
        """What a killed controller left (`act.leftovers`): registrations half-written by
        `git worktree add`; a half-done move of the integration checkout; stale git locks;
        interrupted worktree removals; verify runs still going and their scratch worktrees.
        No git call of ours runs yet, and no other controller can (the lock is held)."""
        self.repair_registrations()
        self.recover_checkout()  # before the lock clean-up: its index lock is its evidence
        leftovers.clear_stale_locks(self.spec, self.paths, self.store)
        leftovers.clear_removed_worktrees(self.spec, self.store)
        self.clear_scratch()  # its verify runs first, then their worktrees

    def repair_registrations(self) -> None:
        """Worktree registrations a controller killed inside `git worktree add` left broken."""
        try:
            repaired = git.repair_worktree_registrations(self.spec.repo_path)
        except (git.GitError, OSError) as exc:
            logger.warning(f"could not check worktree registrations: {exc}")
            return
        if repaired:
            record_event(self.store, "worktrees_repaired", f"half-written: {', '.join(repaired)}")

    def recover_checkout(self) -> None:
        """A fast-forward of the integration checkout a killed controller left half-done."""
        try:
            repo = git.open_repo(self.spec.repo_path)
            checkout = git.worktree_for_branch(repo, self.spec.integration_branch)
            if checkout is None:
                return
            done = git.recover_checkout(git.worktree_place(repo, checkout, allow_main=True))
        except (git.GitError, git.WorktreeError, OSError) as exc:
            logger.warning(f"could not check the integration checkout: {exc}")
            return
        if done:
            record_event(self.store, "checkout_recovered", f"{checkout}: {done}")

    def clear_scratch(self) -> None:
        """Verify runs and worktrees of a controller killed mid-merge: no merge of ours runs
        yet. The runs are stopped first, so none outlives the worktree it verifies."""
        for pid in kill_orphans(self.paths.scratch):
            message = f"stopped the verify command (pid {pid}) a killed controller left running"
            record_event(self.store, "verify_stopped", message, data={"pid": pid})
        try:
            n = git.clear_scratch(self.spec.repo_path, self.paths.scratch)
        except (git.GitError, git.WorktreeError, OSError) as exc:
            logger.warning(f"could not clear {self.paths.scratch}: {exc}")
            return
        if n:
            record_event(self.store, "scratch_cleared", f"{n} leftover verify worktree(s) removed")
