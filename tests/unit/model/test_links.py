"""The symlink rule: a target is outside when absolute or climbing above the root."""

from __future__ import annotations

import pytest

from controller.model.links import escaping_links, link_escapes


@pytest.mark.parametrize(
    ("path", "target", "outside"),
    [
        ("src/passwd", "/etc/passwd", True),
        ("src/up", "../../x", True),
        ("top", "..", True),
        ("a/b/c", "../../../repo/README.md", True),  # leaves the tree, even to come back
        ("src/readme", "../README.md", False),
        ("src/same", "sibling.py", False),
        ("src/dot", ".", False),
        ("a/b", "../a/./b/../../c", False),
        ("src/empty", "", False),
        ("src/nul", "x\0y", True),
    ],
)
def test_link_escapes(path: str, target: str, outside: bool) -> None:
    assert link_escapes(path, target) is outside


def test_escaping_links_keeps_only_outside_ones() -> None:
    links = {"a": "/etc", "b": "c", "d/e": "../../f"}
    assert escaping_links(links) == {"a": "/etc", "d/e": "../../f"}
