"""Bad input for the chaos harness: invalid specs and roadmaps, each with where it is wrong.

Three sources: mistakes made to the running spec's own text (a typo in the live file, the
realistic case), the repository's bad-spec corpus (`tests/support/data/bad_specs/`, each file naming
its expected `LINE:COL` on its first line), and broken roadmaps (the markdown a spec's
`backlogFrom` reads). Hostile inputs (huge, deeply nested, binary, alias bombs) are included.

Every input is a `BadInput`: the file it replaces (spec or roadmap), the bytes, and the line
the problem must be reported at when known (else any located `file:line:col` will do).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

CORPUS = Path(__file__).resolve().parent.parent / "tests" / "support" / "data" / "bad_specs"


@dataclass(frozen=True)
class BadInput:
    name: str
    target: str  # "spec" or "roadmap"
    data: bytes
    line: int | None = None  # the line the (first) problem must be reported at, if known
    column: int | None = None


def _sub(text: str, pattern: str, new: str) -> tuple[str, int]:
    """Replace the first line matching `pattern`; (new text, its 1-based line number)."""
    lines = text.split("\n")
    rx = re.compile(pattern)
    for i, line in enumerate(lines):
        if rx.search(line):
            indent = line[: len(line) - len(line.lstrip())]
            lines[i] = indent + new
            return "\n".join(lines), i + 1
    raise ValueError(f"no line matches {pattern!r}")


def _insert_after(text: str, pattern: str, new: str, indent: str | None = None) -> tuple[str, int]:
    """Insert line `new` after the first line matching `pattern` (same indent unless given)."""
    lines = text.split("\n")
    rx = re.compile(pattern)
    for i, line in enumerate(lines):
        if rx.search(line):
            if indent is None:
                indent = line[: len(line) - len(line.lstrip())]
            lines.insert(i + 1, indent + new)
            return "\n".join(lines), i + 2
    raise ValueError(f"no line matches {pattern!r}")


def _cycle(text: str) -> tuple[str, int]:
    """t01 -> t02 -> t01: reported at the first edge of the cycle."""
    text, line = _insert_after(text, r"^- id: t01$", "dependsOn: [t02]", "  ")
    return _insert_after(text, r"^- id: t02$", "dependsOn: [t01]", "  ")[0], line


Mutation = Callable[[str], tuple[str, int | None]]

ALIAS_BOMB = "x-anchors:\n  a: &a [x, x, x, x, x, x, x, x, x, x]\n" + "".join(
    f"  {b}: &{b} [{', '.join([f'*{a}'] * 10)}]\n"
    for a, b in zip("abcdefg", "bcdefgh", strict=True)
)


def spec_mutations() -> dict[str, Mutation]:
    """Mistakes a user makes in the live spec; each returns (text, expected line or None)."""
    return {
        **_settings_mutations(),
        **_agent_mutations(),
        **_task_mutations(),
        **_gate_mutations(),
        **_yaml_mutations(),
    }


def _settings_mutations() -> dict[str, Mutation]:
    """Top-level settings: numbers, durations, versions, branch, repo."""
    return {
        "max_parallel_word": lambda t: _sub(t, r"^maxParallel:", "maxParallel: four"),
        "max_parallel_zero": lambda t: _sub(t, r"^maxParallel:", "maxParallel: 0"),
        "max_parallel_huge": lambda t: _sub(t, r"^maxParallel:", "maxParallel: 100000"),
        "retries_negative": lambda t: _sub(t, r"^retries:", "retries: -1"),
        "timeout_zero": lambda t: _sub(t, r"^timeout:", "timeout: 0s"),
        "timeout_words": lambda t: _sub(t, r"^timeout:", "timeout: a while"),
        "poll_unknown_unit": lambda t: _sub(t, r"^pollInterval:", "pollInterval: 2 fortnights"),
        "backoff_inverted": lambda t: _sub(t, r"^  initial:", "initial: 1h"),
        "api_version_v2": lambda t: _sub(t, r"^apiVersion:", "apiVersion: orchestrator/v2"),
        "api_version_missing": lambda t: (_sub(t, r"^apiVersion:", "# no apiVersion")[0], None),
        "top_key_typo": lambda t: _sub(t, r"^maxParallel:", "maxParalel: 2"),
        "branch_double_dot": lambda t: _sub(t, r"^integrationBranch:", "integrationBranch: a..b"),
        "branch_task_space": lambda t: _sub(
            t, r"^integrationBranch:", "integrationBranch: orchestrator/main"
        ),
        "repo_missing": lambda t: _sub(t, r"^repo:", "repo: ../no-such-repo"),
    }


def _agent_mutations() -> dict[str, Mutation]:
    """Agent definitions: commands, scopes, environment, key typos."""
    return {
        "command_empty": lambda t: _sub(t, r"^    command:", "command: []"),
        "command_shell_string": lambda t: _sub(t, r"^    command:", "command: 'agent -p {prompt}'"),
        "command_placeholder": lambda t: _sub(t, r"^    command:", "command: [agent, '{nope}']"),
        "command_unbalanced": lambda t: _sub(t, r"^    command:", "command: [agent, '{task']"),
        "owns_absolute": lambda t: _sub(t, r"^    owns:", "owns: ['/etc/**']"),
        "env_bad_name": lambda t: _insert_after(t, r"^    owns:", "env: {BAD-NAME: x}"),
        "agent_key_typo": lambda t: _insert_after(t, r"^    owns:", "timout: 5s"),
    }


def _task_mutations() -> dict[str, Mutation]:
    """Backlog tasks: ids, agents, dependencies, paths, flags."""
    return {
        "task_id_upper": lambda t: _sub(t, r"^- id: t00$", "- id: T00"),
        "task_id_traversal": lambda t: _sub(t, r"^- id: t00$", "- id: ../../etc"),
        "task_id_shell": lambda t: _sub(t, r"^- id: t00$", "- id: 'a;rm -rf ~'"),
        "task_id_lock": lambda t: _sub(t, r"^- id: t00$", "- id: t00.lock"),
        "task_duplicate": lambda t: _sub(t, r"^- id: t01$", "- id: t00"),
        "task_agent_unknown": lambda t: _sub(t, r"^  agent: dev$", "agent: dve"),
        "task_key_typo": lambda t: _insert_after(t, r"^- id: t01$", "dependOn: [t00]", "  "),
        "depends_unknown": lambda t: _insert_after(t, r"^- id: t01$", "dependsOn: [t99]", "  "),
        "depends_self": lambda t: _insert_after(t, r"^- id: t01$", "dependsOn: [t01]", "  "),
        "depends_not_list": lambda t: _insert_after(t, r"^- id: t01$", "dependsOn: {a: 1}", "  "),
        "depends_cycle": lambda t: _cycle(t),
        "paths_outside_owns": lambda t: _sub(t, r"^  paths: .*t03/", "paths: ['docs/**']"),
        "paths_dotdot": lambda t: _sub(t, r"^  paths: .*t03/", "paths: ['tasks/../../x']"),
        "paused_maybe": lambda t: _insert_after(t, r"^- id: t03$", "paused: maybe", "  "),
    }


def _gate_mutations() -> dict[str, Mutation]:
    """The verify gate and the resource thresholds."""
    return {
        "verify_empty": lambda t: _sub(t, r"^verify:", "verify: []"),
        "verify_shell": lambda t: _sub(t, r"^verify:", "verify: 'pytest -q && echo ok'"),
        "threshold_over_100": lambda t: _sub(
            t, r"^  cpu:", "cpu: [{below: 150, parallel: 2}, {parallel: 1}]"
        ),
    }


def _yaml_mutations() -> dict[str, Mutation]:
    """YAML syntax and whole-file mistakes, hostile sizes and nesting."""
    return {
        "yaml_unclosed_flow": lambda t: (_sub(t, r"^    owns:", "owns: ['tasks/**'")[0], None),
        "yaml_unclosed_quote": lambda t: (_sub(t, r"^  agent: dev$", "agent: 'dev")[0], None),
        "yaml_tab": lambda t: (_sub(t, r"^maxParallel:", "maxParallel:\n\t2")[0], None),
        "yaml_duplicate_key": lambda t: _insert_after(t, r"^maxParallel:", "maxParallel: 3"),
        "yaml_bad_indent": lambda t: _sub(t, r"^  agent: dev$", "     agent: dev"),
        "yaml_bad_tag": lambda t: _sub(
            t, r"^maxParallel:", "maxParallel: !!python/object:os.system x"
        ),
        "yaml_nul_byte": lambda t: (t + "\x00\n", None),
        "top_level_list": lambda t: ("- " + t.replace("\n", "\n  "), None),
        "top_level_scalar": lambda t: ("just a sentence, not a spec\n", None),
        "only_comments": lambda t: ("\n".join(f"# {ln}" for ln in t.split("\n")), None),
        "empty_file": lambda t: ("", None),
        "huge_then_typo": lambda t: (
            "# padding\n" * 100_000 + t.replace("maxParallel:", "maxParalel:"),
            None,
        ),
        "deep_nesting": lambda t: (t + "deep: " + "[" * 3000 + "]" * 3000 + "\n", None),
        "giant_integer": lambda t: (
            _sub(t, r"^maxParallel:", "maxParallel: " + "9" * 5000)[0],
            None,
        ),
    }


def spec_inputs(valid: str) -> list[BadInput]:
    out = []
    for name, mutate in spec_mutations().items():
        text, line = mutate(valid)
        out.append(BadInput(f"spec:{name}", "spec", text.encode("utf-8"), line))
    out.append(BadInput("spec:not_utf8", "spec", valid.encode() + b"# caf\xe9\n"))
    out.append(BadInput("spec:binary", "spec", bytes(range(256)) * 64))
    return out


def hostile_inputs(valid: str) -> list[BadInput]:
    """Inputs meant to make the loader itself hang or blow up (alias expansion)."""
    text = valid.replace("backlog:", ALIAS_BOMB + "backlog:", 1)
    return [BadInput("spec:alias_bomb", "spec", text.encode("utf-8"))]


def corpus_inputs() -> list[BadInput]:
    out = []
    for path in sorted(CORPUS.glob("*.yaml")):
        data = path.read_bytes()
        first = data.split(b"\n", 1)[0].decode()
        m = re.match(r"# expect: (\d+):(\d+) ", first)
        line, col = (int(m.group(1)), int(m.group(2))) if m else (None, None)
        out.append(BadInput(f"corpus:{path.stem}", "spec", data, line, col))
    return out


def roadmap_text(items: list[tuple[str, str, list[str]]]) -> str:
    """A ROADMAP with `## US-NNN: Title` items: (id number, prompt, dependencies)."""
    parts = ["# Roadmap\n\nProse before the items is not an item.\n"]
    for number, prompt, deps in items:
        parts.append(f"\n## US-{number}: Item {number}\n\n**Status**: 📝 Planned\n")
        if deps:
            parts.append(f"\n**Dependencies**: {', '.join(f'US-{d}' for d in deps)}\n")
        parts.append(f"\n**Files to Modify**: `tasks/us-{number}/**`\n\n{prompt}\n")
    return "".join(parts)


def roadmap_inputs(items: list[tuple[str, str, list[str]]]) -> list[BadInput]:
    """Broken versions of the roadmap built from `items` (at least two items)."""
    (n1, p1, _d1), (n2, p2, _d2) = items[0], items[1]
    rest = items[2:]
    variants: dict[str, list[tuple[str, str, list[str]]]] = {
        # two different planned items with one id, and an item depending on that id: which
        # one it waits for would change what runs (identical duplicates only warn)
        "duplicate_heading": [*items, (n1, p1, [n2]), ("980", "sleep 0.1", [n1])],
        "unknown_dependency": [(n1, p1, ["999"]), *items[1:]],
        "unknown_dependency_late": [*items, ("950", "sleep 0.1", ["951"])],
        "self_dependency": [(n1, p1, [n1]), *items[1:]],
        "self_dependency_late": [*items[:-1], (items[-1][0], items[-1][1], [items[-1][0]])],
        "cycle_of_two": [(n1, p1, [n2]), (n2, p2, [n1]), *rest],
        "cycle_of_three": [
            *items,
            ("960", "sleep 0.1", ["961"]),
            ("961", "", ["962"]),
            ("962", "", ["960"]),
        ],
        "cycle_with_new_item": [(n1, p1, ["970"]), *items[1:], ("970", "sleep 0.1", [n1])],
    }
    out = [
        BadInput(f"roadmap:{name}", "roadmap", roadmap_text(v).encode())
        for name, v in variants.items()
    ]
    good = roadmap_text(items)
    out.append(BadInput("roadmap:not_utf8", "roadmap", good.encode() + b"\n\xff\xfe\n"))
    out.append(
        BadInput(
            "roadmap:scope_outside_owns",
            "roadmap",
            good.replace(f"`tasks/us-{n1}/**`", "`docs/us.md`").encode(),
        )
    )
    return out
