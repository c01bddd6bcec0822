"""Where the spec puts the state folder and the worktree root: checked before anything runs.

The controller creates, writes and removes files under both (worktrees are force-removed,
the scratch folder is cleared), so a spec must not aim them at a place that holds other
things. Refused, with the spec field located:

- a system folder (`/`, `/etc`, `/usr`, `/var`, `/home`, ...; anything under `/etc`,
  `/usr`, `/bin`, `/sbin`, `/lib*`, `/boot`, `/dev`, `/proc`, `/sys`), or the user's home
  folder itself;
- the repository's work tree itself, or a folder containing it;
- the repository's git directory, or anything inside it;
- tracked content: a folder that is tracked on the integration branch, that lies inside a
  tracked folder, or where a tracked file stands (asked of git: one `cat-file` call);
- the worktree root and the state folder on top of each other (a task named `logs` would
  be the state folder's `logs`).

A state folder or worktree root in an untracked folder of the repository is fine: the
controller writes a `.gitignore` of `*` inside it (`loop.session.hide_from_git`), which
hides nothing else. Paths are compared after `~` is expanded and symlinks are resolved
(`load.resolve_locations`).
"""

from __future__ import annotations

import os
from pathlib import Path

from controller import git
from controller.model.problems import Loc, Problem
from controller.model.spec import Spec
from controller.specfile.yaml_tree import Locator

SYSTEM_FOLDERS = frozenset(
    {
        *("/", "/bin", "/boot", "/dev", "/etc", "/home", "/lib", "/lib32", "/lib64", "/libx32"),
        *("/media", "/mnt", "/opt", "/proc", "/root", "/run", "/sbin", "/srv", "/sys", "/tmp"),
        *("/usr", "/var", "/var/tmp", "/var/lib", "/var/log"),
        *("/Applications", "/Library", "/System", "/Users", "/Volumes"),
        *("/private", "/private/tmp", "/private/var"),
    }
)
NOTHING_UNDER = ("/bin", "/boot", "/dev", "/etc", "/lib", "/lib32", "/lib64", "/libx32")
NOTHING_UNDER += ("/proc", "/sbin", "/sys", "/usr", "/System")


def _system_problem(path: Path) -> str | None:
    text = str(path)
    if text in SYSTEM_FOLDERS:
        return f"{path} is a system folder"
    for root in NOTHING_UNDER:
        if path.is_relative_to(root):
            return f"{path} is inside the system folder {root}"
    home = Path(os.path.realpath(os.path.expanduser("~")))
    if path == home:
        return f"{path} is your home folder itself"
    return None


def _repository_problem(path: Path, repo: git.Repo, top: Path) -> str | None:
    if path == top:
        return f"{path} is the repository itself"
    if top.is_relative_to(path):
        return f"{path} contains the repository {top}"
    for git_dir in {repo.git_dir, repo.common_dir}:
        if path.is_relative_to(git_dir):
            return f"{path} is inside the repository's git directory {git_dir}"
    return None


def _tracked_problem(path: Path, repo: git.Repo, top: Path, branch: str) -> str | None:
    """Whether `path`, inside the work tree, overlaps what `branch` tracks."""
    if not path.is_relative_to(top):
        return None
    parts = path.relative_to(top).parts
    prefixes = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    found = git.existing_paths(repo, f"refs/heads/{branch}", prefixes)
    if not found:
        return None
    where = found[0]
    what = "is" if where == prefixes[-1] else "is inside"
    return f"{path} {what} tracked content ('{where}' is tracked on {branch})"


def _place_problem(path: Path, repo: git.Repo, branch: str) -> str | None:
    top = repo.top or repo.git_dir
    return (
        _system_problem(path)
        or _repository_problem(path, repo, top)
        or _tracked_problem(path, repo, top, branch)
    )


def location_problems(spec: Spec, locator: Locator, source: str) -> list[Problem]:
    """Problems with where the spec puts the state folder and the worktree root."""
    try:
        repo = git.open_repo(spec.repo_path)
    except git.GitError:
        return []  # reported as a problem with `repo`
    state, root = spec.state_path, spec.worktree_root_path
    found: list[tuple[str, bool, str]] = []
    for field, given, path, what in (
        ("stateDir", spec.state_dir is not None, state, "state folder"),
        ("worktreeRoot", spec.worktree_root is not None, root, "worktree root"),
    ):
        if found and not given and path.is_relative_to(state):
            continue  # the default root inside a refused state folder: one problem is enough
        problem = _place_problem(path, repo, spec.integration_branch)
        if problem:
            found.append((field, given, f"the {what} must not be here: {problem}"))
    if root == state or state.is_relative_to(root):
        found.append(
            ("worktreeRoot", spec.worktree_root is not None, "must not hold the state folder")
        )
    problems = []
    for field, given, message in found:
        loc: Loc = (field,) if given else ()
        if not given:
            message += f" (the default; set {field} to choose another folder)"
        line, col = locator.locate(loc)
        problems.append(Problem(source, line, col, field, message))
    return problems
