"""Commits on the integration branch that bypassed the controller (see `core.attribution`).

Read for `status` with one bounded `git log` from the integration tip down to where the
controller started (`integration_base`, recorded in the store the first time a controller
ran), plus the user's identity (read once per process).
"""

from __future__ import annotations

from dataclasses import dataclass

from controller import git
from controller.core.attribution import unattributed
from controller.model.observed import CommitInfo
from controller.model.spec import Spec

SCAN_LIMIT = 200  # commits of first-parent history looked at, newest first


@dataclass(frozen=True)
class ForeignCommits:
    commits: tuple[CommitInfo, ...] = ()
    since: str | None = None  # the integration tip when the controller first ran
    truncated: bool = False  # more than SCAN_LIMIT commits since then: only the newest seen

    def as_dict(self) -> dict[str, object]:
        return {
            "since": self.since,
            "truncated": self.truncated,
            "commits": [
                {
                    "sha": c.sha,
                    "subject": c.subject,
                    "author": {"name": c.author_name, "email": c.author_email},
                    "committer": {"name": c.committer_name, "email": c.committer_email},
                }
                for c in self.commits
            ],
        }


def foreign_commits(spec: Spec, since: str | None) -> ForeignCommits:
    """The unattributed commits on the integration branch since `since` (none without it)."""
    if not since:
        return ForeignCommits()
    try:
        repo = git.open_repo(spec.repo_path)
        seen = git.first_parent_commits(repo, spec.integration_branch, since, SCAN_LIMIT + 1)
        known = git.user_emails(repo) | {e.lower() for e in spec.trusted_authors}
    except git.GitError:
        return ForeignCommits(since=since)
    found = unattributed(seen[:SCAN_LIMIT], known)
    return ForeignCommits(tuple(found), since, len(seen) > SCAN_LIMIT)
