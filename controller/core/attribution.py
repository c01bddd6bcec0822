"""Who put a commit on the integration branch: the controller, a known person, or neither.

The integration branch should only move by the controller's merges (verified, in scope)
or by the people who own the repository. A commit on its first-parent history that is
neither -- typically an agent that committed straight onto the branch from its worktree
(`git update-ref`, a push to the shared repository) -- bypassed the gate; the next merge
sits on top of it and makes it look like gated work. `status` lists such commits.

The rule, on what `git log` says about each commit:
- the controller's merge: it carries an `Orchestrator-Task` trailer and was committed by
  the controller's identity (`names.CONTROLLER_EMAIL`);
- a known person's commit: its author and its committer are both known emails (the user's
  own git identity, plus the spec's `trustedAuthors`).
Agents commit under their own committer identity by default (`names.agent_committer`), so
an agent's commit is not a known person's. Identities are labels, not proof: an agent
that sets its committer to the user's email is not caught (docs/security.md).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from controller.model.names import CONTROLLER_EMAIL
from controller.model.observed import CommitInfo


def is_controller_merge(commit: CommitInfo) -> bool:
    return bool(commit.tasks) and commit.committer_email.lower() == CONTROLLER_EMAIL


def unattributed(commits: Sequence[CommitInfo], known_emails: Iterable[str]) -> list[CommitInfo]:
    """The commits made neither by the controller nor by a known person, in the given order."""
    known = {e.lower() for e in known_emails}
    return [
        c
        for c in commits
        if not is_controller_merge(c)
        and not (c.author_email.lower() in known and c.committer_email.lower() in known)
    ]
