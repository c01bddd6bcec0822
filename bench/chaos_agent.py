"""A misbehaving fake coding agent for the chaos harness (`bench/chaos.py`).

Run as `python chaos_agent.py TASK ATTEMPT`; the directives come in $ORCHESTRATOR_PROMPT,
one per line, executed in order (relative paths are inside the worktree, the agent's cwd):

    sleep SECONDS             sleep
    write PATH: TEXT          write TEXT to PATH
    commit MESSAGE            `git add -A && git commit` on whatever HEAD is
    exit CODE                 exit now with CODE
    fail-first CODE           on the task's first run, exit CODE
    sigkill-first             on the first run, SIGKILL itself
    hang-first                on the first run, sleep forever (SIGTERM ends it)
    hard-hang-first           on the first run, sleep forever ignoring SIGTERM (needs SIGKILL)
    break-first PATH          on the first run, write the verify gate's marker file PATH;
                              on later runs delete it again (the agent fixes the build)
    flood MEGABYTES           print that much output
    index-lock                leave an `index.lock` in the worktree's git dir
    delete-tracked            delete every tracked file of the worktree (not `.git`)
    delete-everything         delete everything in the worktree, `.git` included
    side-branch PATH          switch to a new branch, write PATH there and commit
    detach PATH               detach HEAD, write PATH and commit (reachable from no branch)

"First run" is counted per task and directive with a marker file in $CHAOS_DIR/faulted/,
not by attempt number, so a fault fires exactly once however many attempts a controller
crash costs, and the harness can see that it fired.

Why the side file: the harness audits the run independently of the controller's records.
Every start, every end (when the agent can still say so), every file written (with the git
blob id of its content, logged before any commit), every file deleted and every commit sha
is appended to $CHAOS_DIR/agents.log, which lives outside the repository:

    start TASK ATTEMPT PID TS
    end TASK ATTEMPT PID TS HOW
    write TASK ATTEMPT BLOB PATH
    delete TASK ATTEMPT PATH          (PATH `*`: everything the task wrote so far)
    commit TASK ATTEMPT SHA REF
    duplicate TASK ATTEMPT PID HOLDER

Duplicates are caught by the agents themselves, not only by sampling the process table: each
takes `$CHAOS_DIR/running/TASK` with O_EXCL for its whole life. Finding it taken by a live
agent of the same task is a duplicate (logged, the agent carries on); a holder that is gone
(killed with SIGKILL, so it could not release it) is moved aside and the lock taken again.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType

TASK = sys.argv[1] if len(sys.argv) > 1 else os.environ.get("ORCHESTRATOR_TASK", "?")
ATTEMPT = int(sys.argv[2] if len(sys.argv) > 2 else os.environ.get("ORCHESTRATOR_ATTEMPT", "1"))


def side_log(line: str) -> None:
    """Append one line to the side log (O_APPEND: concurrent agents never interleave)."""
    folder = os.environ.get("CHAOS_DIR")
    if not folder:
        return
    fd = os.open(os.path.join(folder, "agents.log"), os.O_WRONLY | os.O_APPEND | os.O_CREAT)
    try:
        os.write(fd, (line + "\n").encode())
    finally:
        os.close(fd)


def end(how: str) -> None:
    release_task_lock()
    side_log(f"end {TASK} {ATTEMPT} {os.getpid()} {time.time():.6f} {how}")


def on_sigterm(signum: int, _frame: FrameType | None) -> None:
    end(f"signal-{signum}")
    os._exit(128 + signum)


# --- the O_EXCL lock of the task: two live agents of one task are a duplicate ---------------


def _lock_path() -> Path:
    return Path(os.environ.get("CHAOS_DIR", "."), "running", TASK)


def _start_ticks(pid: int) -> str | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            return fh.read().rpartition(b")")[2].split()[19].decode()
    except (OSError, IndexError):
        return None


def _holder_alive(text: str) -> bool:
    """The lock's holder (`PID TICKS`) is still a live chaos agent of this task."""
    try:
        pid_text, ticks = text.split()
        pid = int(pid_text)
    except ValueError:
        return False
    if _start_ticks(pid) != ticks:
        return False
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as fh:
            argv = fh.read().decode(errors="replace").split("\0")
    except OSError:
        return False
    return len(argv) > 2 and argv[1] == __file__ and argv[2] == TASK


def take_task_lock() -> None:
    path = _lock_path()
    path.parent.mkdir(parents=True, exist_ok=True)
    mine = f"{os.getpid()} {_start_ticks(os.getpid())}"
    for _ in range(50):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            try:
                holder = path.read_text()
            except FileNotFoundError:
                continue
            if _holder_alive(holder):
                side_log(f"duplicate {TASK} {ATTEMPT} {os.getpid()} {holder.split()[0]}")
                return
            with contextlib.suppress(FileNotFoundError):  # a dead holder's: move it aside
                os.rename(path, path.with_name(f"{TASK}.stale.{os.getpid()}"))
            continue
        os.write(fd, mine.encode())
        os.close(fd)
        return


def release_task_lock() -> None:
    path = _lock_path()
    with contextlib.suppress(OSError):
        if path.read_text().split()[0] == str(os.getpid()):
            path.unlink()


def git(*args: str) -> str:
    proc = subprocess.run(["git", *args], capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def commit(message: str) -> None:
    git("add", "-A")
    if subprocess.run(["git", "diff", "--cached", "--quiet"]).returncode == 0:
        return
    git("commit", "-q", "--no-verify", "-m", message or f"{TASK} attempt {ATTEMPT}")
    sha = git("rev-parse", "HEAD")
    ref = subprocess.run(["git", "symbolic-ref", "-q", "HEAD"], capture_output=True, text=True)
    side_log(f"commit {TASK} {ATTEMPT} {sha} {ref.stdout.strip() or 'DETACHED'}")


def blob_id(data: bytes) -> str:
    """git's object id of a blob with this content."""
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def write(spec: str) -> None:
    path, _, text = spec.partition(": ")
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    data = (text + "\n").encode()
    side_log(f"write {TASK} {ATTEMPT} {blob_id(data)} {path}")  # before it exists
    target.write_bytes(data)


def delete(path: str) -> None:
    side_log(f"delete {TASK} {ATTEMPT} {path}")
    if path != "*":
        Path(path).unlink(missing_ok=True)


def sleep_forever() -> None:
    while True:
        time.sleep(1)


def delete_tracked() -> None:
    for name in git("ls-files", "-z").split("\0"):
        if name:
            delete(name)


def delete_everything() -> None:
    delete("*")
    for entry in Path(".").iterdir():
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            entry.unlink(missing_ok=True)


def first_run(verb: str) -> bool:
    """True exactly once per task and directive (an O_EXCL marker in $CHAOS_DIR/faulted/)."""
    folder = Path(os.environ.get("CHAOS_DIR", "."), "faulted")
    folder.mkdir(parents=True, exist_ok=True)
    try:
        os.close(os.open(folder / f"{TASK}.{verb}", os.O_WRONLY | os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        return False
    return True


def run(line: str) -> int | None:
    """Carry out one directive; an exit code ends the agent."""
    verb, _, rest = line.partition(" ")
    args = rest.split()
    once = verb.endswith("-first") and first_run(verb)
    if verb == "sleep":
        time.sleep(float(rest))
    elif verb == "write":
        write(rest)
    elif verb == "commit":
        commit(rest)
    elif verb == "exit":
        return int(rest)
    elif verb == "fail-first" and once:
        print(f"{TASK}: failing attempt {ATTEMPT}", file=sys.stderr)
        return int(args[0])
    elif verb == "sigkill-first" and once:
        end("sigkill-self")
        os.kill(os.getpid(), signal.SIGKILL)
    elif verb == "hang-first" and once:
        sleep_forever()
    elif verb == "hard-hang-first" and once:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        sleep_forever()
    elif verb == "break-first":
        if once:
            write(f"{args[0]}: broken by attempt {ATTEMPT}")
        elif Path(args[0]).exists():
            delete(args[0])
    elif verb == "flood":
        chunk = ("x" * 1023 + "\n").encode()
        for _ in range(int(float(rest) * 1024)):
            sys.stdout.buffer.write(chunk)
        sys.stdout.flush()
    elif verb == "index-lock":
        Path(git("rev-parse", "--absolute-git-dir"), "index.lock").write_text("")
    elif verb == "delete-tracked":
        delete_tracked()
    elif verb == "delete-everything":
        delete_everything()
    elif verb == "side-branch":
        git("switch", "-q", "-c", f"chaos-side/{TASK}-{ATTEMPT}")
        write(f"{rest}: side work of attempt {ATTEMPT}")
        commit(f"{TASK}: side work")
    elif verb == "detach":
        git("checkout", "-q", "--detach")
        write(f"{rest}: detached work of attempt {ATTEMPT}")
        commit(f"{TASK}: detached work")
    return None


def main() -> int:
    signal.signal(signal.SIGTERM, on_sigterm)
    side_log(f"start {TASK} {ATTEMPT} {os.getpid()} {time.time():.6f}")
    take_task_lock()
    lines = [ln.strip() for ln in os.environ.get("ORCHESTRATOR_PROMPT", "").splitlines()]
    code = 0
    try:
        for line in (ln for ln in lines if ln):
            result = run(line)
            if result is not None:
                code = result
                break
    except Exception as exc:  # a failed directive is a failed attempt, said in the log
        print(f"{TASK}: {type(exc).__name__}: {exc}", file=sys.stderr)
        code = 70
    end(f"exit-{code}")
    return code


if __name__ == "__main__":
    sys.exit(main())
