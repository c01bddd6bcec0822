"""Where a symlink in the repository points: inside the repository, or out of it.

A merged symlink to `/home/you/.ssh/id_rsa` or `../../secrets` makes every later reader of
the checkout (a verify run, an editor, the next agent) read or write outside the
repository. The rule is lexical, on the link as committed, so it can be decided from the
merge result's tree alone: a target is outside when it is absolute, or when, joined to
the link's own folder and normalised, it climbs above the repository root. It does not
follow other links (a link to an in-repository link that itself points out is caught when
that other link is merged).
"""

from __future__ import annotations

import posixpath


def link_escapes(link_path: str, target: str) -> bool:
    """True when the symlink at `link_path` (repository-relative, '/'-separated) with
    content `target` points outside the repository."""
    if not target:
        return False  # points nowhere
    if target.startswith("/") or "\0" in target:
        return True  # absolute (a NUL cannot be in a path: refuse it too)
    joined = posixpath.normpath(posixpath.join(posixpath.dirname(link_path), target))
    return joined == ".." or joined.startswith("../")


def escaping_links(links: dict[str, str]) -> dict[str, str]:
    """The links (path -> target) of `links` that point outside the repository."""
    return {path: target for path, target in links.items() if link_escapes(path, target)}
