"""`orchestrator activity-summary`: the window's figures, recomputed with the tests' own
interval arithmetic (`tests.support.views`).

The run whose controller is SIGKILLed midway and restarted, and the command's errors as a
process, are in `tests/e2e/test_summary.py`.
"""

from __future__ import annotations

import time

import pytest

from controller.model.observed import AttemptObs
from controller.model.spec import Spec
from controller.views.summary import build_summary
from controller.views.timeline import timeline_svg
from tests.support.views import busy_figures

# --- pure: the window ------------------------------------------------------------------------


def _spec() -> Spec:
    return Spec.model_validate(
        {
            "apiVersion": "orchestrator/v1",
            "maxParallel": 2,
            "agents": {"dev": {"command": ["x"]}},
            "backlog": [{"id": t, "agent": "dev"} for t in ("a", "b", "c", "q")],
        }
    )


def test_window_clips_attempts_and_groups_tasks() -> None:
    now = 100_000.0
    h = 3600.0
    attempts = {
        # started before the window, ended inside: only its part inside counts
        "a": (AttemptObs("a", 1, now - 1.5 * h, now - 0.5 * h, 0, 1, outcome="merged"),),
        # failed inside the window, retried, still running
        "b": (
            AttemptObs(
                "b", 1, now - 0.8 * h, now - 0.6 * h, 2, 2, outcome="failed", reason="exit 2"
            ),
            AttemptObs("b", 2, now - 0.55 * h, pid=3, alive=True),
        ),
        # entirely before the window
        "c": (AttemptObs("c", 1, now - 3 * h, now - 2 * h, 0, 4, outcome="merged"),),
    }
    phases = {"a": "merged", "b": "running", "c": "merged", "q": "queued"}
    s = build_summary(_spec(), attempts, phases, hours=1.0, now=now)
    assert [t.task for t in s.completed] == ["a"]
    assert [t.task for t in s.active] == ["b"] and [t.task for t in s.queued] == ["q"]
    spans = [(now - h, now - 0.5 * h), (now - 0.8 * h, now - 0.6 * h), (now - 0.55 * h, now)]
    expect = busy_figures(spans, 2)
    assert s.parallelism.work_s == pytest.approx(expect["work_s"])
    assert s.parallelism.busy_s == pytest.approx(expect["busy_s"])
    assert s.efficiency == pytest.approx(expect["efficiency"])
    assert s.failures == {"failed: exit 2": 1} and s.retries == {"failed: exit 2": 1}
    assert s.completed[0].duration_s == pytest.approx(0.5 * h)
    assert [b.outcome for b in s.bars] == ["merged", "failed", "running"]
    svg = timeline_svg(s.bars, s.start, now, title="t <&>", subtitle="")
    assert "t &lt;&amp;&gt;" in svg and svg.count("<title>") == 3


def test_summary_is_quick_on_ten_thousand_attempts() -> None:
    now = time.time()
    attempts = {
        f"t{i}": tuple(
            AttemptObs(f"t{i}", n, now - 3000 + i, now - 2990 + i + n, 0, n, outcome="merged")
            for n in range(1, 11)
        )
        for i in range(1000)
    }
    t0 = time.perf_counter()
    s = build_summary(_spec(), attempts, {}, hours=1.0, now=now)
    assert s.attempts == 10_000
    assert time.perf_counter() - t0 < 2.0
