"""Ports for running attempts (`ports: {from: 8100, to: 8199}` on an agent).

The planner hands each attempt it starts the lowest port of its agent's range that no live
attempt holds, so two running attempts never share one, whatever their agents' ranges. A
port is held from the attempt's intent row until its process has exited; it is recorded in
the store, so a restarted controller knows which ports are taken. Pure functions.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from controller.core.lifecycle import classify_attempt
from controller.model.agent import PortRange
from controller.model.observed import AttemptObs


def ports_in_use(attempts: Mapping[str, Iterable[AttemptObs]], now: float) -> set[int]:
    """Ports held by live (running or starting) attempts."""
    taken = set()
    for rows in attempts.values():
        for a in rows:
            if a.port is not None and classify_attempt(a, now) in ("running", "starting"):
                taken.add(a.port)
    return taken


def free_port(ports: PortRange, taken: set[int]) -> int | None:
    """The lowest port of the range nobody holds, or None when all are taken."""
    for port in range(ports.first, ports.last + 1):
        if port not in taken:
            return port
    return None
