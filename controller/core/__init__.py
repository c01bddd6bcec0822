"""The pure core: planning, scheduling, the task state machine, outcome rules, metrics.

Every function here is a function of (spec, observed, now) and imports nothing that does
I/O (an import contract and `tests/unit/core/test_purity.py` keep it so).
"""
