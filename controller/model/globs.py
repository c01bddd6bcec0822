"""Write-scope globs: matching a path, overlap of two globs, containment of one in another.

Scopes are gitignore-like globs relative to the repository root: segments split on `/`,
`*` and `?` and `[...]` match within one segment, `**` matches any number of segments, and a
pattern ending in `/` means everything below that folder. Overlap and containment are
decided conservatively: when unsure, two scopes are taken to overlap (so they never run
together), and a task scope is taken as *not* contained in its agent's (so it is reported).
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from functools import lru_cache

_WILD = set("*?[")


@lru_cache(maxsize=65536)
def normalize(pattern: str) -> tuple[str, ...]:
    """Split a glob into segments; `dir/` means `dir/**`; `./` and empty segments dropped."""
    pattern = pattern.strip()
    trailing = pattern.endswith("/")
    segs = [s for s in pattern.split("/") if s not in ("", ".")]
    if trailing:
        segs.append("**")
    collapsed: list[str] = []
    for s in segs:
        if s == "**" and collapsed and collapsed[-1] == "**":
            continue
        collapsed.append(s)
    return tuple(collapsed)


def pattern_problem(pattern: str) -> str | None:
    """Why a scope glob is unusable, or None."""
    if not pattern.strip():
        return "empty path pattern"
    if pattern.startswith("/"):
        return f"path pattern {pattern!r} must be relative to the repository root"
    if ".." in pattern.split("/"):
        return f"path pattern {pattern!r} must not contain '..'"
    if "\\" in pattern or "\x00" in pattern:
        return f"path pattern {pattern!r} must use '/' separators"
    for seg in normalize(pattern):
        if "**" in seg and seg != "**":
            return f"path pattern {pattern!r}: '**' must be a whole segment"
    return None


def _is_wild(seg: str) -> bool:
    return not _WILD.isdisjoint(seg)


@lru_cache(maxsize=65536)
def _match_segs(pat: tuple[str, ...], path: tuple[str, ...]) -> bool:
    if not pat:
        return not path
    head = pat[0]
    if head == "**":
        return any(_match_segs(pat[1:], path[i:]) for i in range(len(path) + 1))
    if not path:
        return False
    return fnmatchcase(path[0], head) and _match_segs(pat[1:], path[1:])


def path_matches(path: str, patterns: list[str] | tuple[str, ...]) -> bool:
    """True when the repository-relative file `path` matches any of `patterns`."""
    segs = tuple(s for s in path.split("/") if s)
    return any(_match_segs(normalize(p), segs) for p in patterns)


def _literal_affixes(seg: str) -> tuple[str, str]:
    """Literal prefix (before the first wildcard) and suffix (after the last one)."""
    first = min((seg.index(c) for c in _WILD if c in seg), default=len(seg))
    last = max((seg.rindex(c) for c in "*?]" if c in seg), default=-1)
    return seg[:first], seg[last + 1 :]


def _segments_may_meet(a: str, b: str) -> bool:
    """Could one file-name segment match both segment patterns? (conservative: yes if unsure)"""
    wa, wb = _is_wild(a), _is_wild(b)
    if not wa and not wb:
        return a == b
    if not wa:
        return fnmatchcase(a, b)
    if not wb:
        return fnmatchcase(b, a)
    pa, sa = _literal_affixes(a)
    pb, sb = _literal_affixes(b)
    prefix_ok = pa.startswith(pb) or pb.startswith(pa)
    suffix_ok = sa.endswith(sb) or sb.endswith(sa)
    return prefix_ok and suffix_ok


@lru_cache(maxsize=65536)
def _overlap_segs(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    if not a and not b:
        return True
    if a and a[0] == "**":
        # `**` matches nothing, or swallows one segment of whatever b offers next
        return _overlap_segs(a[1:], b) or (bool(b) and _overlap_segs(a, b[1:]))
    if b and b[0] == "**":
        return _overlap_segs(a, b[1:]) or (bool(a) and _overlap_segs(a[1:], b))
    if not a or not b:
        return False
    return _segments_may_meet(a[0], b[0]) and _overlap_segs(a[1:], b[1:])


def globs_overlap(a: str, b: str) -> bool:
    """Could some file path match both globs?"""
    return _overlap_segs(normalize(a), normalize(b))


@lru_cache(maxsize=65536)
def literal_heads(scope: tuple[str, ...]) -> frozenset[str] | None:
    """The first path segment of every glob in `scope` when all of them are literal, else None.

    A cheap, exact pre-test for `scopes_overlap`: two globs whose first segments are
    different literals cannot overlap, so two scopes with disjoint heads never do.
    """
    heads = set()
    for pattern in scope:
        segs = normalize(pattern)
        if not segs or segs[0] == "**" or _is_wild(segs[0]):
            return None
        heads.add(segs[0])
    return frozenset(heads)


def scopes_overlap(a: list[str] | tuple[str, ...], b: list[str] | tuple[str, ...]) -> bool:
    """Could the two write scopes touch a common file? Empty scopes touch nothing."""
    return _scopes_overlap(tuple(a), tuple(b))


@lru_cache(maxsize=65536)
def _scopes_overlap(a: tuple[str, ...], b: tuple[str, ...]) -> bool:
    # the planner asks the same pairs for every waiting task and every pass: cache them
    return any(globs_overlap(x, y) for x in a for y in b)


def _segment_contains(outer: str, inner: str) -> bool:
    if outer == inner:
        return True
    if not _is_wild(inner):
        return fnmatchcase(inner, outer)
    if outer.count("*") == 1 and not any(c in outer for c in "?["):
        # outer is `prefix*suffix`: it holds any inner glob that keeps that prefix and suffix
        o_pre, o_suf = outer.split("*")
        i_pre, i_suf = _literal_affixes(inner)
        return i_pre.startswith(o_pre) and i_suf.endswith(o_suf)
    return False


@lru_cache(maxsize=65536)
def _contains_segs(outer: tuple[str, ...], inner: tuple[str, ...]) -> bool:
    if not outer:
        return not inner
    if outer[0] == "**":
        return _contains_segs(outer[1:], inner) or (
            bool(inner) and _contains_segs(outer, inner[1:])
        )
    if not inner or inner[0] == "**":
        return False
    return _segment_contains(outer[0], inner[0]) and _contains_segs(outer[1:], inner[1:])


def glob_within(inner: str, outers: list[str] | tuple[str, ...]) -> bool:
    """Is every path matched by `inner` matched by one of `outers`? (conservative: no if unsure)"""
    segs = normalize(inner)
    return any(_contains_segs(normalize(o), segs) for o in outers)
