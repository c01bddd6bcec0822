"""Start-up stays cheap, and the shortcuts that keep it cheap change nothing visible.

Light commands (`--help`, `version`) must not load pydantic, rich, loguru or the spec;
`status` into a pipe must not load rich or loguru. Each shortcut is checked against what
it replaces: the lazy rich console and `stdout_is_plain` against rich's own terminal
detection (on a pipe and on a real pseudo-terminal), the loguru import hook against an
eager `logger.remove()`, and the `--help` default against typer's help without it. Every
check runs a fresh interpreter, since what matters is what a new process imports. How fast
start-up is gets measured by `bench/startup.py`, not here.
"""

from __future__ import annotations

import json
import os
import pty
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from controller import __version__
from tests.support.repo import GIT_ENV, init_repo

ROOT = Path(__file__).resolve().parent.parent
HEAVY = ("pydantic", "rich", "loguru", "ruamel", "controller.model.spec", "psutil")
COLOUR_VARS = ("FORCE_COLOR", "TTY_COMPATIBLE", "NO_COLOR", "TERM")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in COLOUR_VARS}
    env.update(GIT_ENV)
    env["PYTHONPATH"] = str(ROOT)
    env["COLUMNS"] = "100"
    env.update(extra)
    return env


def python(code: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        cwd=cwd,
        env=clean_env(**env),
        capture_output=True,
        text=True,
        timeout=60,
    )


# Runs the console script's entry point with ARGS and reports, on the last stderr line,
# the exit code and which heavy modules the process loaded.
ENTRY = """
import json, sys
sys.argv = ["orchestrator", *{args!r}]
from controller.cli.app import main
try:
    main()
except SystemExit as exc:
    code = exc.code
loaded = [m for m in {heavy!r} if m in sys.modules]
sys.stderr.write("\\n" + json.dumps({{"code": code, "loaded": loaded}}))
"""


def run_entry(args: list[str], cwd: Path) -> tuple[int, list[str], str, str]:
    done = python(ENTRY.format(args=args, heavy=HEAVY), cwd)
    *err, last = done.stderr.split("\n")
    report = json.loads(last)
    return report["code"], report["loaded"], done.stdout, "\n".join(err)


@pytest.mark.parametrize(
    "args", [["--help"], ["-h"], ["version"], ["version", "--help"], ["status", "--help"]]
)
def test_light_commands_load_no_heavy_library(args: list[str], tmp_path: Path) -> None:
    code, loaded, out, err = run_entry(args, tmp_path)
    assert code == 0, err
    assert loaded == [], f"`orchestrator {' '.join(args)}` loaded {loaded}"
    if args == ["version"]:
        assert out == f"orchestrator {__version__}\n"
    else:
        assert out.startswith("Usage: orchestrator"), out


SPEC = """\
apiVersion: orchestrator/v1
repo: ../repo
agents:
  dev:
    command: [agent, "{prompt}"]
backlog:
  - id: a
    agent: dev
"""


def test_status_into_a_pipe_loads_neither_rich_nor_loguru(tmp_path: Path) -> None:
    init_repo(tmp_path / "repo")
    spec = tmp_path / "specs" / "orchestrator.yaml"
    spec.parent.mkdir()
    spec.write_text(SPEC)
    code, loaded, out, err = run_entry(["status", "-f", str(spec)], tmp_path)
    assert code == 0, err
    assert "rich" not in loaded and "loguru" not in loaded, loaded
    assert "pydantic" in loaded  # the check is not vacuous: status did load the spec
    assert any(line.split()[:2] == ["TASK", "PHASE"] for line in out.splitlines()), out
    assert any(line.split()[:1] == ["a"] for line in out.splitlines()), out


def test_help_is_the_same_with_and_without_the_help_default(tmp_path: Path) -> None:
    """`main` gives --help an explicit default (a click default_map); the text is typer's."""
    code = """
    import sys, typer
    from controller.cli.app import _help_defaults, app
    command = typer.main.get_command(app)
    extra = {"default_map": _help_defaults(command)} if sys.argv[1] == "with" else {}
    for args in (["--help"], *([name, "--help"] for name in command.commands)):
        try:
            command.main(args, prog_name="orchestrator", standalone_mode=False, **extra)
        except SystemExit:
            pass
        print("=" * 20)
    print(f"commands: {len(command.commands)}")
    """
    outputs = []
    for mode in ("with", "without"):
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(code), mode],
            cwd=tmp_path,
            env=clean_env(),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr
        outputs.append(done.stdout)
    assert outputs[0] == outputs[1]
    commands = int(outputs[0].rsplit("commands: ", 1)[1])
    assert commands >= 12
    assert outputs[0].count("Usage: orchestrator") == 1 + commands  # the app and each command


LOGURU = """
import sys
from controller.cli.lazy import silence_loguru, _SilenceOnImport
if {before}:
    from loguru import logger
silence_loguru()
silence_loguru()
from loguru import logger
logger.info("to the default sink")
logger.add(sys.stdout, format="{{message}}")
logger.info("to an added sink")
print(sum(isinstance(f, _SilenceOnImport) for f in sys.meta_path))
"""


@pytest.mark.parametrize("before", [False, True], ids=["imported-later", "already-imported"])
def test_loguru_default_sink_is_removed(before: bool, tmp_path: Path) -> None:
    done = python(LOGURU.format(before=before), tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # nothing reached the terminal through loguru's stderr sink
    assert done.stdout == "to an added sink\n0\n"  # logging works; no hook left behind


PLAIN = """
import sys
from controller.cli.lazy import stdout_is_plain
plain = stdout_is_plain()
from rich.console import Console
sys.stderr.write(f"{plain} {Console().is_terminal}")
"""

ENVS = [
    {},
    {"FORCE_COLOR": "1"},
    {"FORCE_COLOR": ""},
    {"TTY_COMPATIBLE": "1"},
    {"TTY_COMPATIBLE": "0"},
    {"TTY_COMPATIBLE": "0", "FORCE_COLOR": "1"},
]


def plain_and_rich(env: dict[str, str], cwd: Path, tty: bool) -> tuple[bool, bool]:
    """(stdout_is_plain(), rich's Console().is_terminal) in a fresh process whose stdout is
    a pipe, or a real pseudo-terminal."""
    if not tty:
        done = python(PLAIN, cwd, **env)
        assert done.returncode == 0, done.stderr
        plain, rich = done.stderr.split()
        return plain == "True", rich == "True"
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(PLAIN)],
            cwd=cwd,
            env=clean_env(**env),
            stdout=follower,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    finally:
        os.close(follower)
        os.close(leader)
    assert done.returncode == 0, done.stderr
    plain, rich = done.stderr.split()
    return plain == "True", rich == "True"


@pytest.mark.parametrize("tty", [False, True], ids=["pipe", "pty"])
@pytest.mark.parametrize("env", ENVS, ids=lambda e: ",".join(f"{k}={v}" for k, v in e.items()))
def test_stdout_is_plain_only_when_rich_sees_no_terminal(
    env: dict[str, str], tty: bool, tmp_path: Path
) -> None:
    plain, rich_terminal = plain_and_rich(env, tmp_path, tty)
    assert not (plain and rich_terminal), "plain text where rich would have coloured"
    if not env:  # the cases that matter: a pipe skips rich, a terminal gets colours
        assert plain is not tty
        assert rich_terminal is tty


FINALIZE = """
import gc, sys
sys.argv = ["orchestrator", "version"]
from controller.cli.app import main
try:
    main()
except SystemExit:
    pass
class Flush:
    def __del__(self):
        with open({path!r}, "w") as f:
            f.write("finalized")
garbage = Flush()
garbage.cycle = garbage  # only the garbage collector can free it
del garbage
gc.disable()  # so that only a collection at exit can
"""


def test_garbage_left_at_exit_is_still_finalized(tmp_path: Path) -> None:
    """main() freezes the heap at exit to spare the shutdown's collections; it collects the
    garbage first, so the finalizers that a normal shutdown runs still run."""
    marker = tmp_path / "finalized"
    done = python(FINALIZE.format(path=str(marker)), tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"orchestrator {__version__}\n"
    assert marker.read_text() == "finalized"
