"""What the integration branch holds and who made it: tree entries, first-parent commits,
the user's own identity.

`existing_paths` answers "is this folder tracked content?" for the spec's path checks;
`first_parent_commits` and `user_emails` feed `status`'s list of commits on the integration
branch that neither the controller nor a known person made (`core.attribution`);
`user_identity` is who the controller's merges are authored by unless the spec says. Each is
one bounded git call.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from controller.git.command import run
from controller.git.places import Repo, as_repo
from controller.model.names import MERGE_TRAILER
from controller.model.observed import CommitInfo

# one commit: NUL-separated fields (no field can hold a NUL), the message-derived ones last
_TRAILERS = f"%(trailers:key={MERGE_TRAILER},valueonly,separator=%x2C)"
_FIELDS = ("%H", "%ae", "%ce", "%an", "%cn", _TRAILERS, "%s")


def existing_paths(repo: Path | Repo, rev: str, paths: list[str]) -> list[str]:
    """Which of `paths` (repository-relative, '/'-separated) name a file or folder in the
    tree of `rev`; in the order given."""
    repo = as_repo(repo)
    wanted = [p for p in paths if p and "\n" not in p]
    if not wanted:
        return []
    query = "".join(f"{rev}:{p}\n" for p in wanted)
    proc = run(repo.place, "cat-file", "--batch-check", input=query)
    answers = proc.stdout.splitlines()
    return [p for p, a in zip(wanted, answers, strict=False) if not a.endswith(" missing")]


def first_parent_commits(
    repo: Path | Repo, branch: str, since: str | None, limit: int
) -> list[CommitInfo]:
    """Commits on `branch`'s first-parent history, newest first, not reachable from `since`
    (all of them when None), at most `limit`."""
    repo = as_repo(repo)
    args = ["log", "--first-parent", f"--max-count={int(limit)}", "--no-color"]
    args.append("--format=" + "%x00".join(_FIELDS) + "%x00")
    args += ["--end-of-options", f"refs/heads/{branch}"]
    if since:
        args.append(f"^{since}")
    proc = run(repo.place, *args, "--", check=False)
    if not proc.ok:
        return []
    fields = proc.stdout.split("\0")
    commits = []
    for i in range(0, len(fields) - len(_FIELDS) + 1, len(_FIELDS)):
        sha, ae, ce, an, cn, tasks, subject = fields[i : i + len(_FIELDS)]
        commits.append(
            CommitInfo(
                sha=sha.strip(),
                author_email=ae,
                committer_email=ce,
                author_name=an,
                committer_name=cn,
                tasks=tuple(t.strip() for t in tasks.split(",") if t.strip()),
                subject=subject,
            )
        )
    return commits


@lru_cache(maxsize=8)
def _identity_emails(repo: Repo) -> frozenset[str]:
    proc = run(repo.place, "var", "-l", check=False)
    emails = set()
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        if key in ("GIT_AUTHOR_IDENT", "GIT_COMMITTER_IDENT") and "<" in value:
            emails.add(value.split("<", 1)[1].split(">", 1)[0].strip().lower())
    return frozenset(e for e in emails if e)


def user_emails(repo: Path | Repo) -> frozenset[str]:
    """The email(s) of the user's own git identity as git would use it here (config and the
    GIT_AUTHOR_*/GIT_COMMITTER_* variables; empty when none is set)."""
    return _identity_emails(as_repo(repo))


def user_identity(repo: Path | Repo) -> tuple[str, str] | None:
    """(name, email) of the user's git identity as a commit here would get it (config and
    the GIT_AUTHOR_* variables), or None when git has none it would use."""
    proc = run(as_repo(repo).place, "var", "GIT_AUTHOR_IDENT", check=False)
    ident = proc.stdout.strip()
    if not proc.ok or "<" not in ident or ">" not in ident:
        return None
    name, _, rest = ident.partition("<")
    email = rest.split(">", 1)[0].strip()
    return (name.strip(), email) if name.strip() and email else None
