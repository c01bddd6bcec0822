"""The verify gate: run the user's verify command in a scratch checkout of a merge result.

The command leads its own session, so a timeout (or the end of the run) can stop every
process it started; its output goes to the attempt's verify log.

Verify runs code an agent wrote, so it does not get the controller's environment (API keys,
cloud credentials, tokens): only `SESSION_ENV` (what a shell session needs to find programs,
speak the locale and find a temp folder), the names the spec passes (`verifyPassEnv`) and
the values it sets (`verifyEnv`). `VIRTUAL_ENV` and `CONDA_PREFIX` are kept because tools
that pick an environment (uv, poetry, pip, conda run) read them rather than PATH; no
secret lives in them. `PYTHONPATH` is withheld on purpose: pointing at the user's checkout,
it would make the verify run import that code instead of the merge result being verified.
"""

from __future__ import annotations

import contextlib
import os
import shlex
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import BinaryIO

VERIFY_KILL_GRACE_S = 5.0
SESSION_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "LANGUAGE",
    "TERM",
    "TMPDIR",
    "TZ",
    "USER",
    "LOGNAME",
    "SHELL",
    "VIRTUAL_ENV",
    "CONDA_PREFIX",
)


def verify_environment(
    pass_names: Sequence[str] = (),
    values: Mapping[str, str] | None = None,
    source: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The verify command's environment: the session variables and `LC_*` of `source`
    (default: the controller's environment), the `pass_names` found there, then `values`."""
    source = os.environ if source is None else source
    keep = set(SESSION_ENV) | set(pass_names)
    env = {k: v for k, v in source.items() if k in keep or k.startswith("LC_")}
    env.update(values or {})
    return env


def _kill_group(proc: subprocess.Popen[bytes]) -> None:
    """Terminate the verify command's process group (it leads its own session)."""
    for sig, wait_s in ((signal.SIGTERM, VERIFY_KILL_GRACE_S), (signal.SIGKILL, 1.0)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=wait_s)
            return
        except subprocess.TimeoutExpired:
            continue


def _run_logged(
    argv: list[str], cwd: Path, log: BinaryIO, timeout_s: float, env: Mapping[str, str]
) -> int | None:
    """Run `argv` with output to `log`; its exit code, or None on timeout."""
    proc = subprocess.Popen(
        argv,
        cwd=cwd,
        env=dict(env),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        code = proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        _kill_group(proc)
        return None
    with contextlib.suppress(ProcessLookupError):  # leftovers must not outlive the command
        os.killpg(proc.pid, signal.SIGKILL)
    return code


def run_verify(
    verify: list[str],
    cwd: Path,
    log_path: Path,
    timeout_s: float,
    env: Mapping[str, str] | None = None,
) -> str | None:
    """Run the verify gate in `cwd` with `env` (default: `verify_environment()`, the
    scrubbed one); None when it passed, else why it failed."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with log_path.open("wb") as log:
        log.write(f"$ {shlex.join(verify)}\n".encode())
        log.flush()
        try:
            code = _run_logged(
                verify, cwd, log, timeout_s, verify_environment() if env is None else env
            )
        except OSError as exc:
            log.write(f"orchestrator: cannot run verify command: {exc}\n".encode())
            return f"verify command could not start ({exc}); log: {log_path}"
    if code is None:
        return f"verify timed out after {timeout_s:g}s; log: {log_path}"
    if code != 0:
        return f"verify exited with code {code}; log: {log_path}"
    return None
