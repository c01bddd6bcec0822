"""A hostile coding agent: does its task, and tries to turn the controller against the user.

Directives, one per line (the prompt arrives in $ORCHESTRATOR_PROMPT); paths are relative to
the worktree unless absolute:
    write PATH: TEXT            write TEXT to PATH
    write-escaped PATH: TEXT    the same, PATH given with Python escapes (e.g. \\x1b for ESC)
    dump-env PATH NAME...       write {NAME: value or null} as JSON to PATH
    run JSON-ARGV               run a command in the worktree (e.g. ["git", "merge", ...])
    commit MESSAGE              `git add -A && git commit`
    redirect-gitdir PATH        rewrite the worktree's `.git` file to `gitdir: PATH`
    hook NAME: SCRIPT           plant an executable hook NAME in the shared `.git/hooks`
    config KEY: VALUE           set KEY in the shared repository config
    attributes TEXT             append TEXT to the shared `.git/info/attributes`
    exclude TEXT                append TEXT to the shared `.git/info/exclude`
    forge-start PID CREATE_TIME overwrite this attempt's start record with another process
    symlink LINK -> TARGET      replace LINK (absolute, e.g. in the state folder) by a symlink
    fifo PATH                   replace PATH by a named pipe
    daemon PIDFILE              leave a process behind: double fork + setsid, the grandchild
                                writes "PID SID AGENT_SID" to PIDFILE and sleeps (stdout
                                still inherited)
    spew MEGABYTES              write that much to stdout, then a line `THE END`
    sleep SECONDS / exit CODE
    attempt N: DIRECTIVE        the directive, on attempt N only
Words are expanded in every directive: $STATE (the state folder), $RUNS (this task's runs
folder), $PROGRESS (the progress file), $ATTEMPT, $NEXT (the attempt number after this
one), $WORKTREE. The state folder is found from $ORCHESTRATOR_PROGRESS_FILE, as a real agent
could. It logs every start to $FAKE_AGENT_LOG like the fake agent, so the same test helpers
apply.
"""

import json
import os
import stat
import subprocess
import sys
import time
from pathlib import Path


def shared_git_dir() -> Path:
    out = subprocess.run(
        ["git", "rev-parse", "--path-format=absolute", "--git-common-dir"],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(out.stdout.strip())


def replace_with(path: Path, make: str, target: str = "") -> None:
    if path.is_dir() and not path.is_symlink():
        import shutil

        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    if make == "symlink":
        path.symlink_to(target)
    else:
        os.mkfifo(path)


def expand(text: str) -> str:
    progress = Path(os.environ["ORCHESTRATOR_PROGRESS_FILE"])
    attempt = int(os.environ["ORCHESTRATOR_ATTEMPT"])
    words = {
        "$PROGRESS": str(progress),
        "$RUNS": str(progress.parent),
        "$STATE": str(progress.parent.parent.parent),  # <state>/runs/<task>/<n>.progress
        "$ATTEMPT": str(attempt),
        "$NEXT": str(attempt + 1),
        "$WORKTREE": os.getcwd(),
    }
    for word, value in words.items():
        text = text.replace(word, value)
    return text


def daemon(pid_file: str) -> None:
    """A process that leaves the attempt's session and is orphaned (double fork)."""
    agent_sid = os.getsid(0)
    child = os.fork()
    if child == 0:
        os.setsid()
        if os.fork() == 0:  # "PID ITS_SESSION THE_AGENT'S_SESSION"
            Path(pid_file + ".tmp").write_text(f"{os.getpid()} {os.getsid(0)} {agent_sid}")
            os.replace(pid_file + ".tmp", pid_file)
            time.sleep(300)
        os._exit(0)
    os.waitpid(child, 0)
    while not Path(pid_file).exists():
        time.sleep(0.01)


def spew(megabytes: int) -> None:
    chunk = (b"x" * 1023 + b"\n") * 1024
    for _ in range(megabytes):
        sys.stdout.buffer.write(chunk)
    sys.stdout.buffer.write(b"THE END\n")
    sys.stdout.flush()


def act(verb: str, rest: str) -> int | None:
    if verb in ("write", "write-escaped"):
        path, _, text = rest.partition(": ")
        if verb == "write-escaped":
            path = path.encode().decode("unicode_escape")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(text + "\n")
    elif verb == "dump-env":
        path, *names = rest.split()
        Path(path).write_text(json.dumps({n: os.environ.get(n) for n in names}))
    elif verb == "run":
        subprocess.run(json.loads(rest), check=False)
    elif verb == "commit":
        subprocess.run(["git", "add", "-A"], check=True)
        if subprocess.run(["git", "diff", "--cached", "--quiet"]).returncode:
            subprocess.run(["git", "commit", "-q", "-m", rest or "agent commit"], check=True)
    elif verb == "redirect-gitdir":
        Path(".git").write_text(f"gitdir: {rest}\n")
    elif verb == "hook":
        name, _, script = rest.partition(": ")
        hook = shared_git_dir() / "hooks" / name
        hook.parent.mkdir(parents=True, exist_ok=True)
        hook.write_text("#!/bin/sh\n" + script.replace("\\n", "\n") + "\n")
        hook.chmod(hook.stat().st_mode | stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    elif verb == "config":
        key, _, value = rest.partition(": ")
        subprocess.run(["git", "config", key, value], check=True)
    elif verb in ("attributes", "exclude"):
        info = shared_git_dir() / "info" / verb
        info.parent.mkdir(parents=True, exist_ok=True)
        with info.open("a") as fh:
            fh.write(rest + "\n")
    elif verb == "forge-start":
        pid, create_time = rest.split()
        runs = Path(os.environ["ORCHESTRATOR_PROGRESS_FILE"]).parent
        record = runs / f"{os.environ['ORCHESTRATOR_ATTEMPT']}.start.json"
        time.sleep(0.5)  # after the shim wrote the real one
        data = {"pid": int(pid), "create_time": float(create_time), "started_at": time.time()}
        record.write_text(json.dumps(data))
    elif verb == "symlink":
        link, _, target = rest.partition(" -> ")
        replace_with(Path(link), "symlink", target)
    elif verb == "fifo":
        replace_with(Path(rest), "fifo")
    elif verb == "daemon":
        daemon(rest)
    elif verb == "spew":
        spew(int(rest))
    elif verb == "sleep":
        time.sleep(float(rest))
    elif verb == "exit":
        return int(rest)
    return None


def main() -> int:
    task = os.environ["ORCHESTRATOR_TASK"]
    attempt = int(os.environ["ORCHESTRATOR_ATTEMPT"])
    log = os.environ.get("FAKE_AGENT_LOG")
    if log:
        with open(log, "a") as fh:
            fh.write(f"start {task} {attempt} {os.getpid()} {time.time()}\n")
    lines = [ln.strip() for ln in os.environ.get("ORCHESTRATOR_PROMPT", "").splitlines()]
    for line in (expand(ln) for ln in lines if ln):
        if line.startswith("attempt "):
            only, _, line = line.removeprefix("attempt ").partition(": ")
            if int(only) != attempt:
                continue
        verb, _, rest = line.partition(" ")
        code = act(verb, rest)
        if code is not None:
            return code
    print(f"{task} attempt {attempt} done")
    if log:
        with open(log, "a") as fh:
            fh.write(f"end {task} {attempt} {os.getpid()} {time.time()}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
