"""`orchestrator dashboard`: frames in a headless 80x24 console, their memory, the keys.

Frames are drawn by rich into a recording `Console(width=80, height=24)`, the same way the
terminal gets them, and read back as text. The view of a real run, the live loop in a pty
and `--once`/`--svg` are in `tests/e2e/test_dashboard.py`.
"""

from __future__ import annotations

import io
import time
import tracemalloc
from dataclasses import replace

from controller.core.plan import plan
from controller.model.observed import AttemptObs, Observed, ResourcesObs
from controller.model.spec import Spec, Threshold
from controller.state.store import EventRow
from controller.views.dashboard import Frame, render
from controller.views.live import Keys
from controller.views.measure import with_recorded_times
from controller.views.snapshot import ControllerInfo, Snapshot, spec_generation
from controller.views.status import build_status
from controller.views.summary import build_summary
from tests.support.views import screen


def _busy_frame(n_tasks: int = 40) -> Frame:
    now = 50_000.0
    spec = Spec.model_validate(
        {
            "apiVersion": "orchestrator/v1",
            "maxParallel": 4,
            "agents": {"code_developer": {"command": ["x"], "owns": ["**"]}},
            "backlog": [
                {
                    "id": f"task-with-a-long-name-{i:02d}",
                    "agent": "code_developer",
                    "paths": [f"m{i}/**"],
                    **({"dependsOn": [f"task-with-a-long-name-{i - 1:02d}"]} if i % 3 == 2 else {}),
                }
                for i in range(n_tasks)
            ],
        }
    )
    attempts = {
        f"task-with-a-long-name-{i:02d}": tuple(
            AttemptObs(
                f"task-with-a-long-name-{i:02d}",
                n,
                now - 900 + 60 * i + 20 * n,
                None if (i < 3 and n == 2) else now - 880 + 60 * i + 20 * n,
                None if (i < 3 and n == 2) else (1 if n == 1 else 0),
                100 + i,
                alive=i < 3 and n == 2,
                outcome="failed" if n == 1 else None,
                reason="exit 1" if n == 1 else "",
            )
            for n in (1, 2)
        )
        for i in range(0, n_tasks, 2)
    }
    observed = Observed(
        integration_sha="f" * 40,
        attempts=attempts,
        resources=ResourcesObs(cpu_percent=72.0, memory_percent=55.0),
    )
    result = plan(spec, observed, now)
    snap = Snapshot(
        spec=spec,
        observed=observed,
        plan=result,
        controller=ControllerInfo(running=True, pid=4242, last_pass=now - 1, generation="abc"),
        generation=spec_generation(spec),
        progress={"task-with-a-long-name-00": 63.0},
        now=now,
        has_store=True,
        attempts=with_recorded_times(attempts, {}),
    )
    summary = build_summary(spec, attempts, result.phases, hours=1.0, now=now)
    events = tuple(
        EventRow(
            i,
            now - 100 + i,
            f"task-with-a-long-name-{i:02d}",
            "spawn",
            "attempt 1 started: a rather long message " * 3,
        )
        for i in range(12)
    )
    return Frame(
        status=build_status(snap),
        bars=summary.bars,
        window=(now - 1000, now),
        events=events,
        cpu=tuple(float(v % 100) for v in range(0, 900, 7)),
        memory=(40.0, 55.0),
        cpu_rules=tuple(spec.resources.cpu),
        memory_rules=tuple(spec.resources.memory),
        interval=1.0,
    )


def test_renders_within_80x24_and_smaller() -> None:
    frame = _busy_frame()
    lines = screen(frame)
    assert len(lines) == 24
    assert lines[0].startswith("orchestrator ● running pid 4242")
    assert lines[3].startswith("cpu ") and "<50%→4 <70%→3 <80%→2 ≥80%→1" in lines[3]
    assert lines[4].startswith("mem ")
    assert lines[5].startswith("disk ") and "no rule" in lines[5]  # beside cpu and memory
    assert any("63%" in ln and "running" in ln for ln in lines)
    assert any(ln.startswith("… ") and "more" in ln for ln in lines)
    assert lines[-1].startswith("↑↓ select") and "q quit" in lines[-1]
    for width, height in ((40, 10), (120, 50), (20, 5)):
        screen(frame, width, height)


def test_the_disk_line_shows_the_disk_rule() -> None:
    frame = _busy_frame()
    rules = (Threshold(below=90, parallel=4), Threshold(parallel=1))
    status = replace(frame.status, admission={**frame.status.admission, "disk_limit": 1})
    frame = replace(frame, status=status, disk=(80.0, 93.0), disk_rules=rules)
    (disk,) = [ln for ln in screen(frame) if ln.startswith("disk ")]
    assert " 93% → 1" in disk and "<90%→4 ≥90%→1" in disk


def test_rendering_for_hours_does_not_grow_memory() -> None:
    frame = _busy_frame()
    for _ in range(20):  # warm caches
        render(frame, 80, 24)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    for _ in range(150):
        render(frame, 80, 24)
    grown = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert grown < 200_000, grown


def test_keys_without_a_terminal_just_wait() -> None:
    with Keys(io.StringIO()) as keys:
        t0 = time.monotonic()
        assert keys.wait_for_quit(0.05) is False
        assert time.monotonic() - t0 >= 0.05
