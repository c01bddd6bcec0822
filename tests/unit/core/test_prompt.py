"""The composed prompt: the task's prompt, its write scope, and why the last attempt failed."""

from __future__ import annotations

from controller.core.prompt import SEPARATOR, PromptFacts, compose_prompt, tail
from controller.model.observed import AgentReport
from tests.support.planning import failed, make_spec, task

AGENTS = {
    "dev": {"preset": "claude-code", "owns": ["src/**", "tests/**"]},
    "reader": {"command": ["r"], "owns": []},
    "any": {"command": ["a"], "owns": ["**"]},
}


def spec(**top: object):
    backlog = [
        task("t1", prompt="Add the parser.", paths=["src/parse/**"]),
        task("t2", agent="reader", prompt="Review."),
        task("t3", agent="any", prompt=""),
    ]
    return make_spec(backlog, AGENTS, verify=["pytest", "-q"], **top)


def test_a_first_attempt_gets_its_prompt_then_the_notes() -> None:
    s = spec()
    text = compose_prompt(s, s.backlog[0], 1, 4)
    head, notes = text.split(f"\n{SEPARATOR}\n")
    assert head == "Add the parser.\n"
    assert "task t1, attempt 1 of 4" in notes
    assert "branch orchestrator/t1" in notes and "after the verify command `pytest -q`" in notes
    assert "Change only files matching: src/parse/**." in notes
    assert "previous attempt" not in notes


def test_the_scope_note_says_read_only_or_anything() -> None:
    s = spec()
    assert "Do not change any file" in compose_prompt(s, s.backlog[1], 1, 4)
    empty = compose_prompt(s, s.backlog[2], 1, 4)
    assert empty.startswith(SEPARATOR) and "You may change any file" in empty


def test_a_retry_after_a_failed_verify_quotes_its_output_fenced() -> None:
    s = spec()
    prev = failed("t1", 1, outcome="verify_failed", reason="verify failed: exit 1; log: x")
    output = "line\n" * 100 + "E   assert parse('```') == 1\nFAILED tests/test_parse.py\n"
    text = compose_prompt(s, s.backlog[0], 2, 4, prev, PromptFacts(verify_tail=tail(output)))
    assert "The previous attempt (1) did not land: verify failed: exit 1; log: x." in text
    assert "The verify command `pytest -q` failed on the merge result." in text
    assert "  ````" in text  # a fence longer than any run of backticks in the output
    assert "  FAILED tests/test_parse.py" in text
    assert text.count("  line") <= 40


def test_a_retry_names_conflicts_no_changes_and_refusals() -> None:
    s = spec()
    conflict = failed("t1", 1, outcome="conflict", reason="merge conflict in a.py",
                      conflicts=("a.py", "b.py"))  # fmt: skip
    text = compose_prompt(s, s.backlog[0], 2, 4, conflict)
    assert "conflicted with work merged meanwhile in: a.py, b.py" in text
    nothing = failed("t1", 1, reason="no changes")
    assert "It changed no file" in compose_prompt(s, s.backlog[0], 2, 4, nothing)
    denied = failed("t1", 1, exit_code=0, reason="permission denied: Write /etc/x")
    text = compose_prompt(s, s.backlog[0], 2, 4, denied)
    assert "did not land: permission denied: Write /etc/x." in text
    assert "refused by your permissions" in text
    setup = failed("t1", 1, reason="setup failed: `uv sync` exited with code 1")
    facts = PromptFacts(setup_tail="error: no network")
    assert "  error: no network" in compose_prompt(s, s.backlog[0], 2, 4, setup, facts)


def test_a_stopped_attempt_is_no_failure_to_explain() -> None:
    s = spec()
    stopped = failed("t1", 1, outcome="stopped", reason="stop --force")
    assert "previous attempt" not in compose_prompt(s, s.backlog[0], 2, 4, stopped)


def test_a_refusal_reported_live_reads_the_same_as_a_recorded_one() -> None:
    s = spec()
    live = failed("t1", 1, exit_code=0, reason="",
                  report=AgentReport(denials=("Write /etc/x",)))  # fmt: skip
    assert "did not land: permission denied: Write /etc/x." in compose_prompt(
        s, s.backlog[0], 2, 4, live
    )
