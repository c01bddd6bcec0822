"""The bad-spec corpus (`data/bad_specs/`): its files, their expectations, the check.

Each file is one mistake a user can make. Its first line states what `orchestrator validate`
must report:

    # expect: LINE:COL substring of the message [&& LINE:COL another problem ...]

A representative file of each kind runs through the real CLI in a subprocess (the end-to-end
half, `tests/e2e/test_spec_corpus.py`), the others through the console script's entry point
in-process (`tests/unit/specfile/test_spec_corpus.py`). Set `ORCHESTRATOR_CORPUS_SUBPROCESS=all`
to run every corpus file in a subprocess.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from tests.support import DATA

CORPUS_DIR = DATA / "bad_specs"
CORPUS = sorted(CORPUS_DIR.glob("*.yaml"))

# one file per kind of mistake runs through a real subprocess by default
SUBPROCESS_SAMPLE = {
    "yaml_unclosed_flow_sequence",
    "max_parallel_string",
    "unknown_key_resources_rule",
    "missing_task_id",
    "duration_words",
    "cycle_of_three",
    "task_id_command_substitution",
    "paths_outside_owns",
    "command_unknown_placeholder",
    "top_level_list",
}
ALL_IN_SUBPROCESS = os.environ.get("ORCHESTRATOR_CORPUS_SUBPROCESS") == "all"
IN_SUBPROCESS = [p for p in CORPUS if ALL_IN_SUBPROCESS or p.stem in SUBPROCESS_SAMPLE]
IN_PROCESS = [p for p in CORPUS if p not in IN_SUBPROCESS]


@dataclass(frozen=True)
class Expect:
    line: int
    column: int
    text: str


@dataclass(frozen=True)
class Result:
    code: int | None
    stdout: str
    stderr: str


def parse_expectations(first_line: str) -> list[Expect]:
    """`# expect: 5:9 text && 5:21 other` -> [Expect(5, 9, 'text'), Expect(5, 21, 'other')]."""
    prefix = "# expect: "
    if not first_line.startswith(prefix):
        raise ValueError(f"corpus file must start with {prefix!r}, got {first_line!r}")
    expects = []
    for part in first_line[len(prefix) :].split(" && "):
        where, _, text = part.strip().partition(" ")
        line, col = where.split(":")
        expects.append(Expect(int(line), int(col), text))
    return expects


def expectations_of(path: Path) -> list[Expect]:
    return parse_expectations(path.read_text(encoding="utf-8").split("\n", 1)[0])


def assert_rejected(result: Result, file: str, expects: list[Expect]) -> None:
    """Exit 1, every expected `file:line:col: ...text` on stderr, no traceback anywhere."""
    where = f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}"
    assert result.code == 1, f"expected exit 1, got {result.code}\n{where}"
    assert "Traceback" not in result.stdout + result.stderr, where
    lines = result.stderr.splitlines()
    for e in expects:
        head = f"{file}:{e.line}:{e.column}:"
        hits = [ln for ln in lines if ln.startswith(head) and e.text in ln]
        assert hits, f"no line starting {head!r} containing {e.text!r}\n{where}"
    assert "nothing was done" in result.stderr, where
