"""The one git layer: every git process the controller starts is started here.

- `runner`: the process (argv with pinned settings, scrubbed environment, timeout, errors);
- `config_guard`: overrides for programs a repository's own config could make git run;
- `command`: one git command at a `Place` (`run`, `out`);
- `places`: the user's repository and task worktrees, checked before they are trusted;
- `refs`: commits by name, task branches, merged tasks, compare-and-swap, archive refs;
- `snapshots`: saving an agent's uncommitted work, committing what it left;
- `worktrees`: creating, resetting, removing task worktrees;
- `scratch`: throw-away worktrees for verify runs;
- `locks`: lock files a killed git process left, proven stale and removed;
- `merging`: in-memory merges, what a merge lands, whether a checkout is dirty;
- `checkout`: fast-forwarding the checkout of the integration branch, under its index lock;
- `history`: tree entries of a commit, first-parent commits and who made them.

The names below are the layer's public API; callers import them from `controller.git`.
"""

from controller.git.checkout import CheckoutRefused, fast_forward_checkout, recover_checkout
from controller.git.command import Result, out, run
from controller.git.history import (
    existing_paths,
    first_parent_commits,
    user_emails,
    user_identity,
)
from controller.git.locks import LockReport, clear_stale_locks
from controller.git.merging import (
    Change,
    MergeTreeResult,
    blob_texts,
    is_dirty,
    landed_changes,
    merge_tree,
)
from controller.git.places import (
    Repo,
    WorktreeError,
    WorktreeRedirected,
    open_repo,
    redirection,
    registered_place,
    worktree_place,
)
from controller.git.refs import (
    TASK_REFS,
    ArchiveRef,
    archive_branch_tip,
    archive_refs,
    cas_update_ref,
    create_archive_ref,
    delete_ref,
    is_ancestor,
    merge_base,
    merged_tasks,
    rev_parse,
    task_branches,
)
from controller.git.runner import GitError, Place
from controller.git.scratch import clear_scratch, scratch_worktree
from controller.git.snapshots import (
    ORCHESTRATOR_IDENTITY,
    authored_by,
    commit_leftovers,
    commit_tree,
    has_uncommitted,
    snapshot,
)
from controller.git.worktrees import (
    clear_removed,
    ensure_worktree,
    list_worktrees,
    remove_worktree,
    repair_worktree_registrations,
    reset_task_branch,
    task_place,
    worktree_for_branch,
)

__all__ = [
    "ORCHESTRATOR_IDENTITY",
    "CheckoutRefused",
    "TASK_REFS",
    "ArchiveRef",
    "Change",
    "GitError",
    "LockReport",
    "MergeTreeResult",
    "Place",
    "Repo",
    "Result",
    "WorktreeError",
    "WorktreeRedirected",
    "archive_branch_tip",
    "archive_refs",
    "authored_by",
    "blob_texts",
    "cas_update_ref",
    "clear_removed",
    "clear_scratch",
    "clear_stale_locks",
    "commit_leftovers",
    "commit_tree",
    "create_archive_ref",
    "delete_ref",
    "ensure_worktree",
    "existing_paths",
    "first_parent_commits",
    "fast_forward_checkout",
    "has_uncommitted",
    "is_ancestor",
    "is_dirty",
    "landed_changes",
    "list_worktrees",
    "merge_base",
    "merge_tree",
    "merged_tasks",
    "open_repo",
    "out",
    "redirection",
    "registered_place",
    "remove_worktree",
    "repair_worktree_registrations",
    "reset_task_branch",
    "recover_checkout",
    "rev_parse",
    "run",
    "scratch_worktree",
    "snapshot",
    "task_branches",
    "task_place",
    "user_emails",
    "user_identity",
    "worktree_for_branch",
    "worktree_place",
]
