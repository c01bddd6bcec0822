"""The runner a spec asks for (the local one unless `runner.kind` says otherwise)."""

from __future__ import annotations

from controller.act.runners.base import Runner
from controller.act.runners.local import LocalRunner
from controller.model.spec import Spec


def make_runner(spec: Spec) -> Runner:
    if spec.runner.kind == "ray":
        from controller.act.runners.ray import RayRunner  # needs Ray: only when asked for

        return RayRunner(
            spec.runner.address,
            spec.runner.remote,
            spec.repo_path,
            python=spec.runner.python,
            log_limit=spec.log_limit,
        )
    return LocalRunner()
