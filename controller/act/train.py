"""The merge train: land a batch of finished branches with as few verify runs as possible.

The decisions are `core.train`'s; this module carries them out. It builds the chain of merge
commits M1..Mk (`merge.build_link`, each on the previous one), verifies prefixes of it in
scratch worktrees, and lands every prefix that passes by one compare-and-swap of the
integration branch (`merge.publish`) -- so the branch only ever points at a verified commit,
and every task keeps its own merge commit and trailer on its first-parent history.

What happens to each task is reported as soon as it is known (`report`), so a conflict
starts its fresh attempt, and a landing unblocks dependants, while the rest still verifies.
A task the train gives back (the links behind a culprit) is reported as `requeued`: it
rides the next train. Nothing here is persisted: a
controller killed mid-train has moved the integration branch only by whole verified
prefixes, whose trailers tell the next controller what landed; the rest is merged again.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, replace

from controller import git
from controller.act.merge import Link, MergeJob, build_link, publish, verify_link
from controller.core.train import Bisection, after_probes, next_probes
from controller.model.observed import WorktreeObs
from controller.model.outcomes import MergeOutcome
from controller.state import files

Report = Callable[[str, MergeOutcome], None]


@dataclass(frozen=True)
class TrainJob:
    """One train: the branches to chain (queue order) and those predicted to conflict."""

    links: tuple[MergeJob, ...]
    conflict_checks: tuple[MergeJob, ...] = ()
    batch: int = 1
    parallel: int = 1

    @property
    def jobs(self) -> tuple[MergeJob, ...]:
        return self.conflict_checks + self.links

    @property
    def tasks(self) -> tuple[str, ...]:
        return tuple(j.task for j in self.jobs)

    def run(self, report: Report) -> None:
        """Carry the train out, reporting every task's outcome exactly once."""
        told: set[str] = set()

        def tell(task: str, outcome: MergeOutcome) -> None:
            if task not in told:
                told.add(task)
                report(task, outcome)

        try:
            if self.jobs:
                _Train(self, tell).run()
        except (git.GitError, git.WorktreeError, OSError) as exc:
            error = MergeOutcome("error", message=f"merge failed, will retry: {exc}")
            for job in self.jobs:
                tell(job.task, error)
        finally:
            for job in self.jobs:  # a path this module forgot would hang the task: say so
                tell(job.task, MergeOutcome("requeued", message="back in the merge queue"))


def _note(job: MergeJob, text: str) -> None:
    """Replace the job's verify log with `text` (through `state.files`: nothing planted
    there is followed)."""
    files.write_atomic(job.state_root or job.verify_log.parent, job.verify_log, text.encode())


def _span(links: list[Link], start: int, end: int) -> str:
    shown = ", ".join(link.task for link in links[start:end])
    return f"link{'s' if end - start > 1 else ''} {start + 1}-{end} ({shown})"


class _Train:
    def __init__(self, job: TrainJob, report: Report) -> None:
        self.job = job
        self.report = report
        first = job.jobs[0]
        self.repo = git.open_repo(first.repo)
        self.integration = first.integration
        self.by_task = {j.task: j for j in job.jobs}
        self.listing = git.list_worktrees(self.repo)  # for the chain, and for landing at once

    def run(self) -> None:
        tip = git.rev_parse(self.repo, f"refs/heads/{self.integration}")
        if tip is None:
            blocked = MergeOutcome(
                "blocked", message=f"integration branch {self.integration} does not exist"
            )
            for job in self.job.jobs:
                self.report(job.task, blocked)
            return
        clean = self.check_conflicts(tip)
        links = self.build_chain(tip, self.job.links + clean)
        if not links:
            return
        if not self.by_task[links[0].task].verify:  # no verify: the listing is still fresh
            self.land(links, 0, len(links), tip, self.listing)
            return
        self.note_queued(links)
        self.bisect(links, tip)

    # -- the chain ------------------------------------------------------------------------
    def check_conflicts(self, tip: str) -> tuple[MergeJob, ...]:
        """Branches predicted to conflict: merged alone onto the tip, which settles it
        without a verify run. Those that merge cleanly after all (the agent's leftovers were
        committed since) are returned, to ride at the end of the chain."""
        clean = []
        for job in self.job.conflict_checks:
            found = build_link(self.repo, tip, job, self.listing)
            if isinstance(found, MergeOutcome):
                self.report(job.task, found)
            else:
                clean.append(job)
        return tuple(clean)

    def build_chain(self, tip: str, jobs: tuple[MergeJob, ...]) -> list[Link]:
        """M1..Mk, each on the previous; a branch that cannot be merged leaves at once."""
        links: list[Link] = []
        base = tip
        for job in jobs:
            found = build_link(self.repo, base, job, self.listing)
            if isinstance(found, MergeOutcome):
                if found.kind == "conflict" and links:
                    others = ", ".join(link.task for link in links)
                    found = replace(found, message=f"{found.message} + the train's {others}")
                self.report(job.task, found)
                continue
            links.append(found)
            base = found.sha
        return links

    def note_queued(self, links: list[Link]) -> None:
        """Each link's verify log says it is in the train (`status` reads its time)."""
        shown = ", ".join(link.task for link in links)
        for link in links:
            note = f"merge train: {len(links)} link(s) ({shown}); waiting for verify\n"
            _note(self.by_task[link.task], note)

    # -- verify and land ------------------------------------------------------------------
    def bisect(self, links: list[Link], tip: str) -> None:
        state = Bisection(len(links))
        failures: dict[int, str] = {}
        current: str | None = tip
        while not state.done:
            probes = next_probes(state, self.job.batch, self.job.parallel)
            results = self.verify_prefixes(links, probes)
            failures.update({p: msg for p, msg in results.items() if msg})
            new = after_probes(state, {p: msg is None for p, msg in results.items()})
            if new.good > state.good:
                current = self.land(links, state.good, new.good, current or tip)
                if current is None:
                    return
            state = new
        culprit = state.culprit
        if culprit is None:
            return
        message = failures[culprit + 1]
        self.report(links[culprit].task, MergeOutcome("verify_failed", message=message))
        for link in links[culprit + 1 :]:
            why = f"back in the merge queue: {links[culprit].task} failed verify ahead of it"
            self.report(link.task, MergeOutcome("requeued", message=why))

    def verify_prefixes(self, links: list[Link], probes: tuple[int, ...]) -> dict[int, str | None]:
        """Verify M_p for each prefix length p, side by side; p -> why it failed (or None)."""
        if len(probes) == 1:
            return {probes[0]: self.verify_prefix(links, probes[0])}
        with ThreadPoolExecutor(len(probes), thread_name_prefix="verify") as pool:
            futures = {p: pool.submit(self.verify_prefix, links, p) for p in probes}
            return {p: f.result() for p, f in futures.items()}

    def verify_prefix(self, links: list[Link], p: int) -> str | None:
        """Verify the prefix of length p; its output goes to the verify log of its last link."""
        link = links[p - 1]
        header = f"merge train: verifying {_span(links, 0, p)} at {link.sha}\n"
        return verify_link(self.by_task[link.task], self.repo, link.sha, header=header)

    def land(
        self,
        links: list[Link],
        start: int,
        end: int,
        tip: str,
        listing: list[WorktreeObs] | None = None,
    ) -> str | None:
        """Move the integration branch from `tip` to M_end (links start..end-1 land); the new
        tip, or None when it could not move (every link from `start` on is told why)."""
        new = links[end - 1].sha
        published = publish(self.repo, self.integration, new, tip, listing)
        if published.kind != "merged":
            for link in links[start:]:
                self.report(link.task, published)
            return None
        probe_log = self.by_task[links[end - 1].task].verify_log
        for link in links[start:end]:
            job = self.by_task[link.task]
            if job.verify and job.verify_log != probe_log:
                _note(
                    job,
                    f"merge train: landed with {_span(links, 0, end)} at {new}; "
                    f"verify output: {probe_log}\n",
                )
            outcome = MergeOutcome("merged", sha=link.sha, external_links=link.external_links)
            self.report(link.task, outcome)
        return new


def outcomes_of(job: TrainJob) -> Mapping[str, MergeOutcome]:
    """Run `job` in the calling thread; every task's outcome (for one-shot passes, tests)."""
    found: dict[str, MergeOutcome] = {}
    job.run(lambda task, outcome: found.__setitem__(task, outcome))
    return found
