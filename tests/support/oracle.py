"""An independent reader of the repositories tests check: GitPython's object model, not the
controller's own git layer.

Assertions about what landed read through here, so a bug in how the controller calls git
(its argv, pins or parsing) cannot make a test see what it expects.
"""

from __future__ import annotations

from pathlib import Path

from git import Repo


def _repo(path: Path) -> Repo:
    return Repo(str(path))


def blob_text(repo: Path, ref: str, path: str) -> str | None:
    """The content of `path` at `ref` (a branch, tag or sha), or None when absent."""
    with _repo(repo) as r:
        tree = r.commit(ref).tree
        try:
            blob = tree / path
        except KeyError:
            return None
        return blob.data_stream.read().decode("utf-8", errors="replace")


def first_parent_subjects(repo: Path, ref: str) -> list[str]:
    """Commit subjects along `ref`'s first-parent history, newest first."""
    with _repo(repo) as r:
        out = []
        commit = r.commit(ref)
        while True:
            out.append(str(commit.summary))
            if not commit.parents:
                return out
            commit = commit.parents[0]
