"""`orchestrator clean`: remove task branches that are merged, and archive refs that are old.

- `--merged`: task branches `orchestrator/<task>` whose tip is in the integration branch,
  of tasks the controller merged (or that left the spec);
- `--archives --older-than 30d`: archive refs `refs/orchestrator/archive/...` made longer
  ago than that (their reflog says when; older archives without one, by their commit's date);
- `--force`: task branches that are not merged too, of tasks not at work, each archived
  first (an archive ref keeps its tip, so nothing is lost).

Never removed: a branch checked out in a worktree, a branch of a task that is running or
being merged, an unmerged branch without `--force`. Every delete is a compare-and-swap
(`update-ref -d <ref> <old>`): a ref that moved meanwhile is kept. `--dry-run` prints what
would go and changes nothing. Exit 0, or 1 on a usage error.
"""

# No `from __future__ import annotations` in the CLI modules (see cli.app).

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import typer

from controller.cli.common import DEFAULT_SPEC, Output, OutputOpt, SpecOpt, fail, load, out
from controller.model.safe_text import shown

if TYPE_CHECKING:
    from controller.model.spec import Spec
    from controller.views.snapshot import Snapshot

BUSY = frozenset({"running", "starting", "stopping", "verifying", "merging"})


@dataclass(frozen=True)
class Gone:
    """A ref `clean` removes: what it is, the commit it must still point at, why."""

    name: str  # a task id (branches) or a full ref name (archives)
    sha: str
    why: str
    archive_first: bool = False


@dataclass
class Cleaning:
    branches: list[Gone] = field(default_factory=list)
    archives: list[Gone] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)
    archived: dict[str, str] = field(default_factory=dict)  # task -> archive ref made


def _branches(
    snap: "Snapshot", checked_out: dict[str, str], merged: bool, force: bool
) -> tuple[list[Gone], list[str]]:
    """The task branches to remove, and the lines saying which are kept and why."""
    spec, obs = snap.spec, snap.observed
    in_spec = {t.id for t in spec.backlog}
    tip = spec.integration_branch
    gone: list[Gone] = []
    kept: list[str] = []
    for task, b in sorted(obs.branches.items()):
        name = f"orchestrator/{task}"
        phase = snap.plan.phases.get(task)
        done = task in obs.merged_tasks or task not in in_spec
        if name in checked_out:
            kept.append(f"{name} (checked out in {checked_out[name]})")
        elif phase in BUSY:
            kept.append(f"{name} (its task is {phase})")
        elif b.merged and done:
            gone.append(Gone(task, b.sha, f"merged into {tip}"))
        else:
            why = f"its task is {phase}" if b.merged else f"not merged into {tip}"
            if force:
                gone.append(Gone(task, b.sha, why + ": archived first", archive_first=True))
            elif merged:
                kept.append(f"{name} ({why}; --force archives and removes it)")
    return gone, kept


def plan_clean(spec: "Spec", snap: "Snapshot", opts: dict[str, object]) -> Cleaning:
    """What `clean` would remove and keep (reads only)."""
    from controller import git

    repo = git.open_repo(spec.repo_path)
    checked_out = {
        w.branch: w.path for w in git.list_worktrees(repo) if w.branch and not w.prunable
    }
    c = Cleaning()
    if opts["merged"] or opts["force"]:
        c.branches, c.kept = _branches(snap, checked_out, bool(opts["merged"]), bool(opts["force"]))
    if opts["archives"]:
        cutoff = time.time() - float(opts["older_than"])  # type: ignore[arg-type]
        for a in git.archive_refs(repo):
            if a.made_at < cutoff:
                c.archives.append(Gone(a.ref, a.sha, f"made {_age(time.time() - a.made_at)} ago"))
    return c


def _age(seconds: float) -> str:
    from controller.model.durations import format_duration

    return format_duration(max(0.0, seconds))


def _carry_out(spec: "Spec", snap: "Snapshot", c: Cleaning) -> tuple[list[str], list[str]]:
    """Archive (unmerged branches), then delete by compare-and-swap; (removed, moved)."""
    from controller import git

    repo = git.open_repo(spec.repo_path)
    removed: list[str] = []
    moved: list[str] = []
    for g in c.branches:
        ref = f"refs/heads/orchestrator/{g.name}"
        if g.archive_first:
            attempts = snap.observed.attempts.get(g.name, ())
            number = attempts[-1].number if attempts else 1
            c.archived[g.name] = git.create_archive_ref(repo, g.name, max(1, number), g.sha)
        (removed if git.delete_ref(repo, ref, g.sha) else moved).append(ref)
    for g in c.archives:
        (removed if git.delete_ref(repo, g.name, g.sha) else moved).append(g.name)
    return removed, moved


def _lines(c: Cleaning, dry_run: bool) -> list[str]:
    verb = "would remove" if dry_run else "removed"
    lines = []
    for g in c.branches:
        kept = f" in {c.archived[g.name]}" if g.name in c.archived else ""
        lines.append(f"- {verb} branch orchestrator/{g.name} ({g.sha[:10]}, {g.why}{kept})")
    lines += [f"- {verb} {g.name} ({g.why})" for g in c.archives]
    lines += [f"  kept branch {k}" for k in c.kept]
    return lines


def clean(
    merged: Annotated[
        bool, typer.Option("--merged", help="Task branches merged into the integration branch.")
    ] = False,
    archives: Annotated[
        bool, typer.Option("--archives", help="Archive refs older than --older-than.")
    ] = False,
    older_than: Annotated[
        str, typer.Option("--older-than", help="With --archives: made longer ago than this.")
    ] = "30d",
    force: Annotated[
        bool,
        typer.Option(
            "--force",
            help="Unmerged task branches too (of tasks not at work), each archived first.",
        ),
    ] = False,
    dry_run: Annotated[
        bool, typer.Option("--dry-run", help="Print what would be removed; change nothing.")
    ] = False,
    file: SpecOpt = DEFAULT_SPEC,
    output: OutputOpt = Output.text,
) -> None:
    """Remove merged task branches and old archive refs, printing what goes.

    Never touches a branch checked out in a worktree or one of a task at work; an unmerged
    branch only with --force, after archiving its tip. Deletes are compare-and-swap: a ref
    that moved meanwhile is kept. Exit 0, or 1 on a usage error.
    """
    seconds = _check(merged, archives, force, older_than)
    spec = load(file, output)
    c, removed, moved = _run(spec, merged, archives, force, seconds, dry_run)
    if output is Output.json:
        from controller.cli.render import to_json

        data = {
            "dry_run": dry_run,
            "branches": [{"task": g.name, "sha": g.sha, "why": g.why} for g in c.branches],
            "archives": [{"ref": g.name, "sha": g.sha, "why": g.why} for g in c.archives],
            "archived_first": c.archived,
            "kept": c.kept,
            "moved": moved,
        }
        out.print(to_json(data), markup=False)
        return
    for line in _lines(c, dry_run):
        out.print(shown(line), markup=False)
    for ref in moved:
        out.print(shown(f"  kept {ref} (it moved while cleaning)"), markup=False)
    n_b, n_a = len(c.branches), len(c.archives)
    what = f"{n_b} branch{'es' if n_b != 1 else ''} and {n_a} archive ref{'s' if n_a != 1 else ''}"
    if dry_run:
        out.print(f"Would remove {what} (dry run: nothing changed).", markup=False)
    else:
        out.print(f"Removed {len(removed)} of {what}.", markup=False)


def _check(merged: bool, archives: bool, force: bool, older_than: str) -> float:
    from controller.model.durations import parse_duration

    if not (merged or archives or force):
        raise fail(
            "say what to clean: --merged (merged task branches), --archives (archive refs "
            "older than --older-than), --force (unmerged branches too, archived first)"
        )
    try:
        seconds = parse_duration(older_than)
    except ValueError as exc:
        raise fail(f"--older-than: {exc}") from None
    if seconds < 0:
        raise fail("--older-than must not be negative")
    return seconds


def _run(
    spec: "Spec", merged: bool, archives: bool, force: bool, seconds: float, dry_run: bool
) -> tuple[Cleaning, list[str], list[str]]:
    import sqlite3

    from controller import git
    from controller.state.store import StoreError
    from controller.views.snapshot import take

    opts = {"merged": merged, "archives": archives, "force": force, "older_than": seconds}
    try:
        snap = take(spec)
        c = plan_clean(spec, snap, opts)
        if dry_run:
            return c, [], []
        removed, moved = _carry_out(spec, snap, c)
    except (git.GitError, StoreError, sqlite3.Error, ValueError) as exc:
        raise fail(str(exc)) from None
    _record(spec, removed, c)
    return c, removed, moved


def _record(spec: "Spec", removed: list[str], c: Cleaning) -> None:
    """A `clean` event in the store, when there is one (never created for this)."""
    import sqlite3

    from controller.act.records import record_event
    from controller.state.paths import StatePaths
    from controller.state.store import Store, StoreError

    if not removed or not StatePaths(spec.state_path).db.is_file():
        return
    try:
        with Store.open(StatePaths(spec.state_path).db) as store:
            data = {"removed": removed, "archived_first": c.archived}
            record_event(store, "clean", f"removed {len(removed)} ref(s)", data=data)
    except (StoreError, sqlite3.Error, OSError):
        pass


def register(app: typer.Typer) -> None:
    app.command()(clean)
