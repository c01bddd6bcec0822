"""A fake coding agent for end-to-end tests: does what its prompt's directives say.

Directives, one per line (the prompt arrives in $ORCHESTRATOR_PROMPT):
    write PATH: TEXT          write TEXT to PATH (relative to the worktree)
    remove PATH               delete PATH if it exists
    sleep SECONDS             sleep
    sleep-until EPOCH         sleep until that time.time() (no wait once it has passed)
    on-attempt N DIRECTIVE    run DIRECTIVE only when $ORCHESTRATOR_ATTEMPT is N
    exit CODE                 exit now with CODE
    fail-until ATTEMPT CODE   exit CODE while $ORCHESTRATOR_ATTEMPT < ATTEMPT
    commit MESSAGE            `git add -A && git commit` (the agent commits its own work)
    hang                      sleep forever (ignores nothing: a timeout must kill it)
    progress PERCENT          write PERCENT to $ORCHESTRATOR_PROGRESS_FILE
    noop                      change nothing (an attempt with no changes fails to merge)
    usage JSON                write JSON to $ORCHESTRATOR_USAGE_FILE (tokens and cost)
Unless a `write` or `noop` directive says otherwise, it writes `<task>.txt` at the end (an
attempt that changes nothing is not merged). It records every start in $FAKE_AGENT_LOG (if set)
(and every normal end) so tests and benchmarks can check that no attempt ran twice at once
and measure what happens around the agent.
"""

import os
import subprocess
import sys
import time
from pathlib import Path


def main() -> int:
    task = os.environ["ORCHESTRATOR_TASK"]
    attempt = int(os.environ["ORCHESTRATOR_ATTEMPT"])
    log = os.environ.get("FAKE_AGENT_LOG")
    if log:
        with open(log, "a") as fh:
            fh.write(f"start {task} {attempt} {os.getpid()} {time.time()}\n")
    lines = [ln.strip() for ln in os.environ.get("ORCHESTRATOR_PROMPT", "").splitlines()]
    lines = [ln for ln in lines if ln]
    if not any(ln.split(" ", 1)[0] in ("write", "noop") for ln in lines):
        lines.append(f"write {task}.txt: {task}")
    for line in lines:
        verb, _, rest = line.partition(" ")
        if verb == "on-attempt":
            number, _, line = rest.partition(" ")
            if int(number) != attempt:
                continue
            verb, _, rest = line.partition(" ")
        if verb == "remove":
            Path(rest).unlink(missing_ok=True)
        elif verb == "sleep-until":
            time.sleep(max(0.0, float(rest) - time.time()))
        elif verb == "write":
            path, _, text = rest.partition(": ")
            target = Path(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text + "\n")
        elif verb == "sleep":
            time.sleep(float(rest))
        elif verb == "exit":
            return int(rest)
        elif verb == "fail-until":
            until, code = rest.split()
            if attempt < int(until):
                print(f"failing attempt {attempt}", file=sys.stderr)
                return int(code)
        elif verb == "commit":
            subprocess.run(["git", "add", "-A"], check=True)
            if subprocess.run(["git", "diff", "--cached", "--quiet"]).returncode:
                subprocess.run(["git", "commit", "-q", "-m", rest or "agent commit"], check=True)
        elif verb == "hang":
            while True:
                time.sleep(1)
        elif verb == "progress":
            Path(os.environ["ORCHESTRATOR_PROGRESS_FILE"]).write_text(rest)
        elif verb == "usage":
            Path(os.environ["ORCHESTRATOR_USAGE_FILE"]).write_text(rest)
    print(f"{task} attempt {attempt} done")
    if log:
        with open(log, "a") as fh:
            fh.write(f"end {task} {attempt} {os.getpid()} {time.time()}\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
