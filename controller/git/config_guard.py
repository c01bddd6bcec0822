"""Neutralise the programs a repository's own config could make the controller's git run.

Agents share the repository's `.git`, so any of them can write `.git/config`. Hooks and the
fsmonitor are pinned off for every call (`runner.PINNED_CONFIG`), but git runs other
configured programs by name: a `.gitattributes` line `* filter=x` plus `filter.x.smudge` in
the config runs a program on checkout, `merge.x.driver` on a merge, `diff.x.textconv` on a
diff, and `core.sshCommand` or `credential.helper` on a fetch or push. Their names are free,
so they cannot be pinned in advance; instead the config is read (reading runs nothing) and
every such key set in the repository's own scopes (local, worktree) gets a harmless
override on the command line, which wins over every config file:

- filter drivers: empty commands (git then passes content through unchanged);
- merge drivers: `git merge-file`, the same three-way text merge git does by default;
- diff drivers: empty textconv (the controller never asks for external diffs anyway);
- remote helpers and prompts: the plain defaults.

Keys in the user's global and system config are the user's own (git-lfs installs its filter
there) and are kept. The reading is cached per git directory and re-done when one of its
config files changes (or on every call while the config uses `include`, whose targets
could change unseen).
"""

from __future__ import annotations

import os
import re
import threading
from pathlib import Path

from controller.git.places import read_pointer
from controller.git.runner import GitError, Place, git_argv, git_env, run_bounded

UNTRUSTED_SCOPES = frozenset({"local", "worktree"})
MERGE_FILE = "git merge-file --marker-size=%L %A %O %B"
_DRIVER = re.compile(r"^(filter|merge|diff)\.(.+)\.([a-z]+)$")
_FIXED = {
    "core.sshcommand": "core.sshCommand=ssh",
    "core.gitproxy": "core.gitProxy=",
    "core.askpass": "core.askPass=",
    "credential.helper": "credential.helper=",
    "gpg.program": "gpg.program=gpg",
    "core.pager": "core.pager=cat",
    "core.editor": "core.editor=true",
    "sequence.editor": "sequence.editor=true",
    "core.alternaterefscommand": "core.alternateRefsCommand=",
}
_DRIVER_KEYS = {
    ("filter", "clean"): "",
    ("filter", "smudge"): "",
    ("filter", "process"): "",
    ("filter", "required"): "false",
    ("merge", "driver"): MERGE_FILE,
    ("diff", "textconv"): "",
    ("diff", "command"): "",
}

# git dir -> (config signature, overrides, config uses includes)
_cache: dict[Path, tuple[tuple[object, ...], tuple[str, ...], bool]] = {}
_lock = threading.Lock()


def neutralisers(listing: str) -> tuple[tuple[str, ...], bool]:
    """The `-c` overrides for `git config --list -z --show-scope` output, and whether the
    config uses includes (pure)."""
    found: dict[str, str] = {}
    includes = False
    fields = listing.split("\0")
    for i in range(0, len(fields) - 1, 2):
        scope, entry = fields[i], fields[i + 1]
        key, _, _value = entry.partition("\n")
        if key.startswith(("include.", "includeif.")):
            includes = True
        if scope not in UNTRUSTED_SCOPES:
            continue
        lowered = key.lower()
        if lowered in _FIXED:
            found[lowered] = _FIXED[lowered]
            continue
        m = _DRIVER.match(key)
        if m and (m.group(1).lower(), m.group(3).lower()) in _DRIVER_KEYS:
            kind, name, field = m.group(1).lower(), m.group(2), m.group(3).lower()
            found[f"{kind}.{name}.{field}"] = f"{kind}.{name}.{field}={_DRIVER_KEYS[(kind, field)]}"
    return tuple(sorted(found.values())), includes


def _signature(git_dir: Path) -> tuple[object, ...]:
    """What identifies the config files' current content cheaply (stat of each)."""
    sig: list[object] = []
    pointer = read_pointer(git_dir / "commondir")
    common = Path(os.path.realpath(git_dir / pointer)) if pointer else git_dir
    for path in (common / "config", git_dir / "config.worktree", common / "config.worktree"):
        try:
            st = os.stat(path)
            sig.append((st.st_ino, st.st_mtime_ns, st.st_size))
        except OSError:
            sig.append(None)
    return tuple(sig)


def _read(place: Place) -> tuple[tuple[str, ...], bool]:
    argv = git_argv(Place(place.git_dir), ["config", "--list", "-z", "--show-scope"])
    proc = run_bounded(argv, git_env(), 30.0)
    if proc.returncode not in (0, 1):  # 1: no config at all
        err = proc.stderr.decode(errors="replace")
        raise GitError(argv, proc.returncode, err)
    return neutralisers(proc.stdout.decode("utf-8", errors="surrogateescape"))


def overrides_for(place: Place) -> tuple[str, ...]:
    """The `-c` settings that neutralise `place`'s repository-defined programs."""
    key = place.git_dir
    sig = _signature(key)
    with _lock:
        cached = _cache.get(key)
    if cached is not None and cached[0] == sig and not cached[2]:
        return cached[1]
    overrides, includes = _read(place)
    with _lock:
        _cache[key] = (sig, overrides, includes)
    return overrides
