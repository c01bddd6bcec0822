"""orchestrator: a declarative reconcile-loop controller for parallel coding agents."""

__version__ = "0.1.0"
