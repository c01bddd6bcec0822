"""Moving the integration branch where it is checked out: a fast-forward as safe as the
compare-and-swap.

`git merge --ff-only NEW` reads HEAD itself, so a check "HEAD is still OLD" made before it
is not atomic with it: a checkout reset to an ancestor in between would be fast-forwarded
from there. Here the move is made under the checkout's own index lock (`index.lock`, which
every git command that writes the index or commits must take, and fails on while we hold
it), in the order git itself uses:

1. take `index.lock` (another git process at work there: refused, nothing moved);
2. check the checkout is on the branch, the branch is at OLD, and no tracked file changed;
3. bring the files and a copy of the index from OLD to NEW (`read-tree -m -u OLD NEW`,
   which refuses to overwrite an untracked file or a local change);
4. move the branch by compare-and-swap from OLD (`update-ref NEW OLD`); if it moved
   meanwhile (a ref-only update, which takes no index lock), put the files back
   (`read-tree -m -u NEW OLD`) and report the race;
5. install the new index and release the lock.

The lock file names the controller's pid and the move, so a controller killed half-way
leaves a move `recover_checkout` can finish or undo at the next start (the branch says
which: at NEW, the move happened; at OLD, it did not).
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import psutil

from controller.git.command import out, run
from controller.git.merging import is_dirty
from controller.git.runner import GitError, Place

LOCK_MARK = "orchestrator-move"
TEMP_PREFIX = "index.orchestrator-"


class CheckoutRefused(GitError):
    """The checkout cannot be fast-forwarded now; nothing was moved. `raced`: the branch
    is no longer at the expected commit (or not checked out there any more)."""

    def __init__(self, message: str, *, raced: bool = False) -> None:
        super().__init__(["fast-forward"], 1, message)
        self.raced = raced
        self.reason = message


def _index(place: Place) -> Path:
    return place.git_dir / "index"


@contextlib.contextmanager
def _index_lock(place: Place, note: dict[str, str]) -> Iterator[Path]:
    lock = place.git_dir / "index.lock"
    try:
        fd = os.open(lock, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
    except FileExistsError:
        raise CheckoutRefused(
            f"another git process is at work in {place.work_tree} (its index is locked)"
        ) from None
    try:
        os.write(fd, json.dumps({"mark": LOCK_MARK, **_own_process(), **note}).encode())
    finally:
        os.close(fd)
    try:
        yield lock
    finally:
        lock.unlink(missing_ok=True)


def _sha(place: Place, ref: str) -> str | None:
    proc = run(place, "rev-parse", "--verify", "--quiet", "--end-of-options", ref, check=False)
    return (proc.stdout.strip() or None) if proc.ok else None


def _at(place: Place, branch: str) -> str | None:
    """The commit `branch` is at, when it is the branch checked out at `place` (one call)."""
    ref = f"refs/heads/{branch}"
    args = ("rev-parse", ref, "--symbolic-full-name", "HEAD")
    proc = run(place, *args, check=False)
    lines = proc.stdout.split()
    return lines[0] if proc.ok and lines[1:] == [ref] else None


def _own_process() -> dict[str, object]:
    try:
        created = psutil.Process().create_time()
    except psutil.Error:
        created = 0.0
    return {"pid": os.getpid(), "create_time": created}


def fast_forward_checkout(
    place: Place, branch: str, new: str, old: str, *, descends: bool = False
) -> None:
    """Move `branch`, checked out at `place`, and its files from `old` to `new` (a
    descendant of `old`: checked unless the caller made `new` on `old`, `descends`) -- see
    the module docstring; raises CheckoutRefused when it cannot, having moved nothing."""
    ref = f"refs/heads/{branch}"
    temp = place.git_dir / f"{TEMP_PREFIX}{uuid.uuid4().hex[:12]}"
    env = {"GIT_INDEX_FILE": str(temp)}
    with _index_lock(place, {"old": old, "new": new, "branch": branch, "temp": temp.name}):
        if _at(place, branch) != old:
            raise CheckoutRefused(f"{branch} moved in {place.work_tree}", raced=True)
        if not descends and not run(place, "merge-base", "--is-ancestor", old, new, check=False).ok:
            raise CheckoutRefused(f"{new[:12]} does not descend from {branch} ({old[:12]})")
        if is_dirty(place):
            raise CheckoutRefused(
                f"{branch} is checked out at {place.work_tree} with uncommitted changes; "
                "commit or stash them so it can be fast-forwarded"
            )
        swapped = False
        try:
            _copy_index(place, temp)
            step = run(place, "read-tree", "-m", "-u", old, new, env=env, check=False)
            if not step.ok:
                raise CheckoutRefused(
                    f"cannot fast-forward {place.work_tree}: {step.stderr.strip()}"
                )
            run(place, "update-ref", "-m", f"orchestrator: land {new[:12]}", ref, new, old)
            swapped = True
        except CheckoutRefused:
            raise
        except GitError as exc:
            swapped = _sha(place, ref) == new
            if not swapped:  # the swap failed: put the files back
                run(place, "read-tree", "-m", "-u", new, old, env=env, check=False)
                raise CheckoutRefused(f"{branch} moved in {place.work_tree}", raced=True) from exc
            raise
        finally:
            if swapped and temp.exists():
                os.replace(temp, _index(place))
            temp.unlink(missing_ok=True)


def _copy_index(place: Place, temp: Path) -> None:
    index = _index(place)
    if index.exists():
        temp.write_bytes(index.read_bytes())


def _still_running(note: dict[str, object]) -> bool:
    pid, created = note.get("pid"), note.get("create_time")
    if not isinstance(pid, int) or not isinstance(created, int | float) or pid == os.getpid():
        return False
    try:
        return abs(psutil.Process(pid).create_time() - created) < 0.05
    except psutil.Error:
        return False


def recover_checkout(place: Place) -> str | None:
    """Finish or undo a move a killed controller left half-done in the checkout at `place`
    (its lock file names the move); what was done, or None when there was nothing to do.
    A lock that is not ours, or whose writer still runs, is left alone."""
    lock = place.git_dir / "index.lock"
    try:
        note = json.loads(lock.read_text())
    except (OSError, ValueError):
        return None
    if not isinstance(note, dict) or note.get("mark") != LOCK_MARK or _still_running(note):
        return None
    old, new, temp_name = str(note.get("old")), str(note.get("new")), str(note.get("temp"))
    temp = place.git_dir / temp_name
    done = "removed its index lock; the checkout had not moved"
    if temp_name.startswith(TEMP_PREFIX) and temp.is_file():
        env = {"GIT_INDEX_FILE": str(temp)}
        if _sha(place, f"refs/heads/{note.get('branch')}") == new:
            os.replace(temp, _index(place))
            done = "finished moving the checkout"
        else:
            tree = out(place, "write-tree", env=env).strip()
            if tree == _sha(place, f"{new}^{{tree}}"):
                run(place, "read-tree", "-m", "-u", new, old, env=env)
                done = "put the checkout's files back (the branch had not moved)"
            temp.unlink(missing_ok=True)
    lock.unlink(missing_ok=True)
    return done
