"""The bad-spec corpus: every invalid spec is rejected with exit 1 and a located message.

Each file in `tests/support/data/bad_specs/` is one mistake a user can make; its first line
states what `orchestrator validate` must report (`tests.support.corpus`). Here the files are
checked through the console script's entry point (`controller.cli.app.main`, in-process,
fast); a representative file of each kind, and the cases that need a real file system or
repository, run the real CLI in a subprocess in `tests/e2e/test_spec_corpus.py`.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from loguru import logger

from controller.cli import app as cli
from tests.support.corpus import (
    CORPUS,
    CORPUS_DIR,
    IN_PROCESS,
    SUBPROCESS_SAMPLE,
    Expect,
    Result,
    assert_rejected,
    expectations_of,
    parse_expectations,
)


def run_in_process(
    args: list[str], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Result:
    """The console script's entry point, called in this process (any exception escapes)."""
    monkeypatch.setattr(sys, "argv", ["orchestrator", *args])
    monkeypatch.setattr(logger, "remove", lambda *a, **k: None)  # keep other tests' sinks
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        cli.main()
    out, err = capsys.readouterr()
    return Result(exc.value.code, out, err)


def test_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 30, f"only {len(CORPUS)} bad specs in {CORPUS_DIR}"


@pytest.mark.parametrize("path", CORPUS, ids=lambda p: p.stem)
def test_corpus_file_has_expectation(path: Path) -> None:
    expects = expectations_of(path)
    assert expects and all(e.line >= 1 and e.column >= 1 and e.text for e in expects)


def test_expectation_parser() -> None:
    got = parse_expectations("# expect: 5:9 a b && 12:1 c")
    assert got == [Expect(5, 9, "a b"), Expect(12, 1, "c")]
    with pytest.raises(ValueError):
        parse_expectations("apiVersion: orchestrator/v1")


@pytest.mark.timeout(30)
@pytest.mark.parametrize("path", IN_PROCESS, ids=lambda p: p.stem)
def test_corpus_rejected_with_location(
    path: Path,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    expects = expectations_of(path)
    result = run_in_process(["validate", "-f", str(path)], monkeypatch, capsys)
    assert_rejected(result, str(path), expects)


def test_subprocess_sample_exists() -> None:
    missing = SUBPROCESS_SAMPLE - {p.stem for p in CORPUS}
    assert not missing, f"sample names without a corpus file: {missing}"
