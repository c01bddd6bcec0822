"""Read-only views for people and scripts: status, dashboard, activity-summary, events."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    """Add the view commands to the CLI."""
