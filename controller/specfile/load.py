"""Loading a spec file: bytes -> YAML -> `Spec`, with every problem located at file:line:col.

A valid spec is read with the fast (C) safe loader; only when something is wrong is the text
parsed again with the round-trip loader (`yaml_tree`), which knows where every value stands.
pydantic's errors are turned into located problems by `errors`, cross-field checks come from
`checks`. Nothing here acts on the world: the only I/O is reading the file(s) and asking git
whether the repository exists. Files are read only when regular and up to `SPEC_LIMIT`
(`state.files.read_regular`): a pipe or a device never hangs or exhausts the loader.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq

from controller import git
from controller.model.problems import Problem, SpecError
from controller.model.sizes import format_size
from controller.model.spec import Locations, Spec, default_locations
from controller.specfile.checks import semantic_problems, semantic_warnings
from controller.specfile.errors import validation_problems
from controller.specfile.locations import location_problems
from controller.specfile.sources import with_roadmap
from controller.specfile.yaml_tree import Locator, decode_text, parse_yaml, plain_values
from controller.state import files

# a spec is a small YAML file: reading stops here (a file linked to /dev/zero never ends)
SPEC_LIMIT = 16 * files.MIB


def _repo_problems(spec: Spec, locator: Locator, source: str) -> list[Problem]:
    repo = spec.repo_path
    if not repo.is_dir():
        line, col = locator.locate(("repo",))
        return [Problem(source, line, col, "repo", f"repository {repo} does not exist")]
    try:
        pinned = git.open_repo(repo)
    except git.GitError:
        line, col = locator.locate(("repo",))
        return [Problem(source, line, col, "repo", f"{repo} is not a git repository")]
    branch = spec.integration_branch
    if git.rev_parse(pinned, f"refs/heads/{branch}") is None:
        line, col = locator.locate(("integrationBranch",))
        message = (
            f"branch '{branch}' does not exist in {repo} (create it: git -C {repo} branch {branch})"
        )
        return [Problem(source, line, col, "integrationBranch", message)]
    return []


def _runner_problems(spec: Spec, locator: Locator, source: str) -> list[Problem]:
    import importlib.util

    if spec.runner.kind == "ray" and importlib.util.find_spec("ray") is None:
        line, col = locator.locate(("runner", "kind"))
        message = "the ray runner needs Ray on this machine: pip install 'orchestrator[ray]'"
        return [Problem(source, line, col, "runner.kind", message)]
    return []


def _program_problems(spec: Spec, locator: Locator, source: str) -> list[Problem]:
    """A preset whose binary is not there (a located problem, before anything starts)."""
    problems = []
    for name, agent in spec.agents.items():
        program = agent.program_path(spec.locations.base_dir)
        preset = agent.preset_info
        if program is None or preset is None:
            continue
        if "/" in program:
            found = os.path.isfile(program) and os.access(program, os.X_OK)
            where = f"{program} is not an executable file"
        else:
            found = shutil.which(program) is not None
            where = f"'{program}' was not found on PATH"
        if found:
            continue
        key = "program" if agent.program is not None else "preset"
        line, col = locator.locate(("agents", name, key))
        message = (
            f"the {preset.name} binary is missing: {where}; install it ({preset.install}) "
            "or set `program:` to its path"
        )
        problems.append(Problem(source, line, col, f"agents.{name}.{key}", message))
    return problems


def resolve_locations(spec: Spec, source: Path, base_dir: Path) -> Locations:
    """Where the spec's paths point, resolved on disk once (symlinks followed)."""
    loc = default_locations(spec, source, base_dir)
    real = os.path.realpath
    return Locations(
        source=loc.source,
        base_dir=Path(real(loc.base_dir)),
        repo=Path(real(loc.repo)),
        state=Path(real(loc.state)),
        worktree_root=Path(real(loc.worktree_root)),
    )


def read_spec_text(
    text: str, source: str, base_dir: Path, repo: Path | None = None
) -> tuple[Spec, Locator]:
    """Parse and validate spec text (no repository checks); raises SpecError.

    A valid spec is read with the fast (C) safe loader; only when something is wrong is the
    text parsed again with the round-trip loader, which knows where every value stands.
    """
    try:
        fast = _read_fast(text, source, base_dir, repo)
        if fast is not None:
            return fast
        return _read_located(text, source, base_dir, repo)
    except RecursionError:
        message = "the document is nested too deeply to be a spec"
        raise SpecError([Problem(source, 1, 1, "", message)]) from None


def _validated(spec: Spec, source: str, base_dir: Path, locator: Locator) -> tuple[Spec, Locator]:
    spec._locations = resolve_locations(spec, Path(source), base_dir)
    if spec.backlog_from is not None:
        spec = with_roadmap(spec)
    problems = semantic_problems(spec, locator, source)
    if problems:
        raise SpecError(problems)
    spec._warnings = [*spec._warnings, *semantic_warnings(spec, locator, source)]
    return spec, locator


def _read_fast(
    text: str, source: str, base_dir: Path, repo: Path | None
) -> tuple[Spec, Locator] | None:
    """The spec when the safe loader and the models accept it as is, else None."""
    try:
        data = YAML(typ="safe").load(text)
    except Exception:
        return None
    if not isinstance(data, dict):
        return None
    data = plain_values(data, source)
    if repo is not None:
        data["repo"] = str(repo.resolve())
    try:
        spec = Spec.model_validate(data)
    except ValidationError:
        return None
    return _validated(spec, source, base_dir, Locator(text=text, source=source))


def _read_located(
    text: str, source: str, base_dir: Path, repo: Path | None
) -> tuple[Spec, Locator]:
    if not text.strip():
        raise SpecError([Problem(source, 1, 1, "", "spec file is empty")])
    tree = parse_yaml(text, source)
    if tree is None:
        raise SpecError([Problem(source, 1, 1, "", "spec file has only comments, no content")])
    locator = Locator(tree)
    if not isinstance(tree, CommentedMap):
        line, col = locator.locate(())
        kind = "a list" if isinstance(tree, CommentedSeq) else f"a {type(tree).__name__}"
        message = f"the spec must be a YAML mapping (apiVersion:, agents:, ...), not {kind}"
        raise SpecError([Problem(source, line, col, "", message)])
    try:
        data = plain_values(tree, source)
        if repo is not None:
            data["repo"] = str(repo.resolve())
        spec = Spec.model_validate(data)
    except ValidationError as exc:
        raise SpecError(validation_problems(exc, locator, source)) from None
    return _validated(spec, source, base_dir, locator)


def load_spec(path: Path, *, check_repo: bool = True, repo: Path | None = None) -> Spec:
    """Read, validate and resolve the spec at `path`; raises SpecError with located problems.

    `repo` overrides the spec's own `repo` (the `--repo` option of the commands).
    """
    source = str(path)
    if path.is_dir():
        raise SpecError([Problem(source, 1, 1, "", "is a directory, not a spec file")])
    try:
        data = files.read_regular(path, SPEC_LIMIT)
    except FileNotFoundError:
        raise SpecError([Problem(source, 1, 1, "", "spec file not found")]) from None
    except files.FileTooLarge:
        message = f"larger than {format_size(SPEC_LIMIT)}: not a spec file"
        raise SpecError([Problem(source, 1, 1, "", message)]) from None
    except files.UnsafeFile as exc:
        raise SpecError([Problem(source, 1, 1, "", f"{exc.reason}; not read")]) from None
    except OSError as exc:
        raise SpecError([Problem(source, 1, 1, "", f"cannot read: {exc.strerror}")]) from None
    text = decode_text(data, source)
    spec, locator = read_spec_text(text, source, path.parent.resolve(), repo)
    if check_repo:
        problems = [
            *_repo_problems(spec, locator, source),
            *_runner_problems(spec, locator, source),
            *_program_problems(spec, locator, source),
        ]
        if not problems:
            problems = location_problems(spec, locator, source)
        if problems:
            raise SpecError(problems)
    return spec
