"""Write-scope globs: matching, overlap, containment, and problems with a pattern.

Overlap and containment decide which tasks may run together, so besides the tables there
is a brute-force cross-check over a small universe of paths: `globs_overlap` must never say
"no overlap" when some path matches both globs, and `glob_within` must never say "contained"
when some path matches the inner glob but no outer one.
"""

from __future__ import annotations

import itertools
import random

import pytest

from controller.model.globs import (
    glob_within,
    globs_overlap,
    literal_heads,
    normalize,
    path_matches,
    pattern_problem,
    scopes_overlap,
)


@pytest.mark.parametrize(
    ("pattern", "segments"),
    [
        ("src/**", ("src", "**")),
        ("docs/", ("docs", "**")),
        ("./src//a.py", ("src", "a.py")),
        ("a/**/**/b", ("a", "**", "b")),
        ("  tests/*.py  ", ("tests", "*.py")),
        ("**", ("**",)),
    ],
)
def test_normalize(pattern: str, segments: tuple[str, ...]) -> None:
    assert normalize(pattern) == segments


@pytest.mark.parametrize(
    ("path", "pattern", "expected"),
    [
        ("src/a.py", "src/**", True),
        ("src/a/b/c.py", "src/**", True),
        ("srcx/a.py", "src/**", False),
        ("tests/a.py", "src/**", False),
        ("docs/a.md", "docs/*.md", True),
        ("docs/x/a.md", "docs/*.md", False),
        ("docs/a.txt", "docs/*.md", False),
        ("a.py", "**/*.py", True),
        ("x/y/z/a.py", "**/*.py", True),
        ("x/y/z/a.pyc", "**/*.py", False),
        ("docs/x/y.md", "docs/", True),
        ("src/a/b", "src/*", False),
        ("src/a", "src/*", True),
        ("ab.txt", "a?.txt", True),
        ("abc.txt", "a?.txt", False),
        ("b.txt", "[ab].txt", True),
        ("c.txt", "[ab].txt", False),
        ("c.txt", "[!ab].txt", True),
        ("src/x", "SRC/**", False),  # case-sensitive, like git
        (".claude/settings.json", ".claude/**", True),
        ("a/b/c/d", "a/**/d", True),
        ("a/d", "a/**/d", True),
        ("a/b/c/e", "a/**/d", False),
        ("docs/US-043-guide.md", "docs/US-043-*.md", True),
        ("docs/US-044-guide.md", "docs/US-043-*.md", False),
        ("src/a.py", "./src/a.py", True),
    ],
)
def test_path_matches(path: str, pattern: str, expected: bool) -> None:
    assert path_matches(path, [pattern]) is expected


def test_path_matches_any_of_several() -> None:
    assert path_matches("tests/t.py", ["src/**", "tests/**"])
    assert not path_matches("README.md", ["src/**", "tests/**"])
    assert not path_matches("anything", [])


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ("src/**", "src/a/**", True),
        ("src/**", "tests/**", False),
        ("docs/*.md", "docs/US-043-*.md", True),
        ("docs/*.md", "docs/roadmap/**", False),
        ("docs/roadmap/**", "docs/roadmap/ROADMAP.md", True),
        ("**/*.py", "docs/**", True),
        ("**/*.py", "**/*.md", False),
        ("*.py", "*.md", False),
        ("a*", "*b", True),
        ("[ab]x", "ax", True),
        ("[ab]x", "cx", False),
        ("**", "x/y/z", True),
        ("**/x", "**/y", False),
        ("a/**/b", "a/b", True),
        ("a/*/b", "a/b", False),
        ("coffee_maker/metrics/**", "coffee_maker/metrics/dashboard/**", True),
        ("tests/unit/metrics/**", "tests/unit/refactor/**", False),
        ("tests/**", "tests/unit/refactor/**", True),
        ("pyproject.toml", "pyproject.toml", True),
        ("pyproject.toml", "setup.py", False),
        ("docs/", "docs/a.md", True),
    ],
)
def test_globs_overlap(a: str, b: str, expected: bool) -> None:
    assert globs_overlap(a, b) is expected
    assert globs_overlap(b, a) is expected  # symmetric


def test_scopes_overlap() -> None:
    assert scopes_overlap(["src/**", "docs/*.md"], ["docs/README.md"])
    assert not scopes_overlap(["src/**"], ["tests/**", "docs/**"])
    assert not scopes_overlap([], ["**"])  # a read-only task touches nothing
    assert not scopes_overlap(["**"], [])


@pytest.mark.parametrize(
    ("scope", "heads"),
    [
        (("src/**", "tests/a.py"), frozenset({"src", "tests"})),
        (("./docs/*.md",), frozenset({"docs"})),
        (("src/**", "*.md"), None),
        (("**/x",), None),
        ((), frozenset()),
    ],
)
def test_literal_heads(scope: tuple[str, ...], heads: frozenset[str] | None) -> None:
    assert literal_heads(scope) == heads


@pytest.mark.parametrize(
    ("inner", "outers", "expected"),
    [
        ("src/a/**", ["src/**"], True),
        ("src/**", ["src/**"], True),
        ("src/*.py", ["src/**"], True),
        ("docs/US-*.md", ["docs/*.md"], True),
        ("docs/US-043-*.md", ["docs/roadmap/**", "docs/*.md"], True),
        ("docs/*.md", ["docs/US-*.md"], False),
        ("src/**", ["src/*"], False),
        ("a/b", ["a/*"], True),
        ("**", ["**"], True),
        ("**", ["src/**"], False),
        ("docs/**", ["docs/*.md"], False),
        ("pyproject.toml", ["pyproject.toml"], True),
        ("pyproject.toml", [], False),
        ("tests/unit/x.py", ["coffee_maker/**", "tests/**"], True),
        ("tests2/x.py", ["tests/**"], False),
    ],
)
def test_glob_within(inner: str, outers: list[str], expected: bool) -> None:
    assert glob_within(inner, outers) is expected


@pytest.mark.parametrize(
    ("pattern", "problem"),
    [
        ("src/**", None),
        ("docs/*.md", None),
        (".claude/**", None),
        ("", "empty path pattern"),
        ("   ", "empty path pattern"),
        ("/etc/**", "must be relative to the repository root"),
        ("../outside/**", "must not contain '..'"),
        ("src/../../x", "must not contain '..'"),
        ("src\\win", "must use '/' separators"),
        ("a/**b", "'**' must be a whole segment"),
        ("a**/b", "'**' must be a whole segment"),
    ],
)
def test_pattern_problem(pattern: str, problem: str | None) -> None:
    got = pattern_problem(pattern)
    if problem is None:
        assert got is None
    else:
        assert got is not None and problem in got


# --- brute force: conservative answers on a finite universe --------------------------------

NAMES = ["a", "b", "ab", "ba", "a.py", "b.md", ".x"]
UNIVERSE = [
    "/".join(parts) for depth in (1, 2, 3) for parts in itertools.product(NAMES, repeat=depth)
]
SEGMENTS = [
    "a",
    "b",
    "ab",
    "*",
    "**",
    "a*",
    "*b",
    "*a*",
    "*.py",
    "*.md",
    "?",
    "??",
    "a?",
    "?b",
    "[ab]",
    "[!a]",
    "[ab]*",
    "b.*",
    ".*",
]


def _patterns(count: int, seed: int) -> list[str]:
    rng = random.Random(seed)
    found = {"/".join(seg) for seg in itertools.product(SEGMENTS, repeat=1)}
    found |= {"/".join(seg) for seg in itertools.product(SEGMENTS, repeat=2)}
    found = set(sorted(found)[:: max(1, len(found) // (count // 2))])
    while len(found) < count:
        depth = rng.randint(1, 3)
        found.add("/".join(rng.choice(SEGMENTS) for _ in range(depth)))
    return sorted(p for p in found if pattern_problem(p) is None)


PATTERNS = _patterns(260, seed=7)


def _matches() -> dict[str, frozenset[str]]:
    return {p: frozenset(path for path in UNIVERSE if path_matches(path, [p])) for p in PATTERNS}


@pytest.fixture(scope="module")
def matches() -> dict[str, frozenset[str]]:
    return _matches()


def test_universe_is_meaningful(matches: dict[str, frozenset[str]]) -> None:
    assert len(UNIVERSE) > 300 and len(PATTERNS) > 200
    nonempty = [p for p, m in matches.items() if m]
    assert len(nonempty) > len(PATTERNS) * 0.8  # most patterns match something here
    assert any(0 < len(m) < len(UNIVERSE) / 10 for m in matches.values())


def test_overlap_is_never_wrongly_denied(matches: dict[str, frozenset[str]]) -> None:
    wrong = []
    disjoint_said = 0
    for a, b in itertools.combinations_with_replacement(PATTERNS, 2):
        common = matches[a] & matches[b]
        if not globs_overlap(a, b):
            disjoint_said += 1
            if common:
                wrong.append((a, b, sorted(common)[0]))
    assert not wrong, f"said 'no overlap' although a path matches both: {wrong[:10]}"
    assert disjoint_said > 1000  # and it does tell disjoint scopes apart


def test_containment_is_never_wrongly_claimed(matches: dict[str, frozenset[str]]) -> None:
    wrong = []
    contained_said = 0
    for inner, outer in itertools.product(PATTERNS, repeat=2):
        if glob_within(inner, [outer]):
            contained_said += 1
            escaped = matches[inner] - matches[outer]
            if escaped:
                wrong.append((inner, outer, sorted(escaped)[0]))
    assert not wrong, f"said 'contained' although a path escapes: {wrong[:10]}"
    assert contained_said > len(PATTERNS)  # more than the trivial p within p


def test_containment_in_several_outers(matches: dict[str, frozenset[str]]) -> None:
    rng = random.Random(11)
    for _ in range(3000):
        inner = rng.choice(PATTERNS)
        outers = rng.sample(PATTERNS, 3)
        if glob_within(inner, outers):
            union = frozenset().union(*(matches[o] for o in outers))
            assert matches[inner] <= union, (inner, outers)


def test_scope_overlap_is_never_wrongly_denied(matches: dict[str, frozenset[str]]) -> None:
    # scopes_overlap has its own fast path (literal first segments) and cache: check it too
    rng = random.Random(5)
    literal_first = [p for p in PATTERNS if not set(p.split("/")[0]) & set("*?[")]
    pool = PATTERNS + literal_first * 3  # make the all-literal-heads fast path common
    disjoint_said = disjoint_heads = 0
    for _ in range(4000):
        a = rng.sample(pool, rng.randint(1, 3))
        b = rng.sample(pool, rng.randint(1, 3))
        paths_a = frozenset().union(*(matches[p] for p in a))
        paths_b = frozenset().union(*(matches[p] for p in b))
        if not scopes_overlap(a, b):
            disjoint_said += 1
            assert not paths_a & paths_b, (a, b, sorted(paths_a & paths_b)[0])
        assert scopes_overlap(a, b) == scopes_overlap(b, a)
        # the scheduler's pre-test: disjoint literal first segments mean no common path
        heads_a, heads_b = literal_heads(tuple(a)), literal_heads(tuple(b))
        if heads_a is not None and heads_b is not None and not heads_a & heads_b:
            disjoint_heads += 1
            assert not paths_a & paths_b, (a, b)
            assert not scopes_overlap(a, b), (a, b)
    assert disjoint_said > 100
    assert disjoint_heads > 50
