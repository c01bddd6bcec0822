"""Who put a commit on the integration branch: the controller, a known person, or neither."""

from __future__ import annotations

from controller.core.attribution import is_controller_merge, unattributed
from controller.model.names import CONTROLLER_EMAIL, agent_committer
from controller.model.observed import CommitInfo

ME = "me@example.com"


def commit(sha: str, author: str = ME, committer: str = ME, tasks: tuple = ()) -> CommitInfo:
    return CommitInfo(sha=sha, author_email=author, committer_email=committer, tasks=tasks)


def test_controller_merges_and_known_people_are_attributed() -> None:
    agent = agent_committer("t1")["GIT_COMMITTER_EMAIL"]
    commits = [
        commit("merge", CONTROLLER_EMAIL, CONTROLLER_EMAIL, ("t1",)),
        commit("mine"),
        commit("mine-upper-case", "Me@Example.com", "ME@example.com"),
        commit("mate", "mate@example.com", "mate@example.com"),
        commit("agent", ME, agent),
        commit("stranger", "x@evil.test", "x@evil.test"),
        commit("trailer-only", ME, agent, ("t1",)),  # a forged trailer, not our committer
        commit("rebased-by-me", "x@evil.test", ME),
    ]
    found = unattributed(commits, [ME, "mate@example.com"])
    assert [c.sha for c in found] == ["agent", "stranger", "trailer-only", "rebased-by-me"]


def test_a_merge_needs_the_trailer_and_the_controllers_identity() -> None:
    assert is_controller_merge(commit("m", CONTROLLER_EMAIL, CONTROLLER_EMAIL, ("a",)))
    assert not is_controller_merge(commit("m", CONTROLLER_EMAIL, CONTROLLER_EMAIL))
    assert not is_controller_merge(commit("m", ME, ME, ("a",)))


def test_nobody_known_means_only_controller_merges_pass() -> None:
    commits = [commit("merge", CONTROLLER_EMAIL, CONTROLLER_EMAIL, ("a",)), commit("mine")]
    assert [c.sha for c in unattributed(commits, [])] == ["mine"]
