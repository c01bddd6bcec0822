"""The bundled scripted agent used by `orchestrator demo` (and handy in tests).

It stands in for a real coding agent: it reads the edits its prompt describes, one per line,

    write PATH: TEXT       replace the file with TEXT (a literal `\\n` becomes a newline)
    append PATH: TEXT      add TEXT as a line at the end of the file
    fail-once              exit 1 half-way through the first attempt (shows a retry)

applies them in its worktree (the current directory), reports progress to
$ORCHESTRATOR_PROGRESS_FILE, sleeps a little between steps, and leaves committing to the
controller.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path


def edits(prompt: str) -> list[tuple[str, str, str]]:
    out = []
    for line in prompt.splitlines():
        verb, _, rest = line.strip().partition(" ")
        if verb not in ("write", "append") or ": " not in rest:
            continue
        path, _, text = rest.partition(": ")
        out.append((verb, path.strip(), text.replace("\\n", "\n")))
    return out


def report(progress: str | None, percent: float) -> None:
    if not progress:
        return
    tmp = f"{progress}.tmp"
    Path(tmp).write_text(f"{percent:.0f}\n")
    os.replace(tmp, progress)


def apply(verb: str, rel: str, text: str) -> None:
    path = Path(rel)
    if path.is_absolute() or ".." in path.parts:
        raise SystemExit(f"refusing to write outside the worktree: {rel}")
    path.parent.mkdir(parents=True, exist_ok=True)
    if verb == "write":
        path.write_text(text if text.endswith("\n") else text + "\n")
    else:
        with path.open("a") as fh:
            fh.write(text + "\n")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=1.0, help="total time to take")
    parser.add_argument("--fail-once", action="store_true", help="fail the first attempt")
    args = parser.parse_args(argv)
    prompt = os.environ.get("ORCHESTRATOR_PROMPT", "")
    fail_once = args.fail_once or any(ln.strip() == "fail-once" for ln in prompt.splitlines())
    attempt = int(os.environ.get("ORCHESTRATOR_ATTEMPT", "1"))
    progress = os.environ.get("ORCHESTRATOR_PROGRESS_FILE")
    conflicts = os.environ.get("ORCHESTRATOR_CONFLICTS", "")
    task = os.environ.get("ORCHESTRATOR_TASK", "?")
    steps = edits(prompt) or [("append", "NOTES.md", f"{task} was here")]
    print(f"[{task}] attempt {attempt}: {len(steps)} edit(s)", flush=True)
    if conflicts:
        print(f"[{task}] redoing on the new tip; previous conflicts: {conflicts}", flush=True)
    pause = args.seconds / (len(steps) + 1)
    for i, (verb, path, text) in enumerate(steps, start=1):
        time.sleep(pause)
        if fail_once and attempt == 1 and i > len(steps) / 2:
            print(f"[{task}] simulated crash half-way", file=sys.stderr, flush=True)
            return 1
        apply(verb, path, text)
        print(f"[{task}] {verb} {path}", flush=True)
        report(progress, 100.0 * i / (len(steps) + 1))
    time.sleep(pause)
    report(progress, 100.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
