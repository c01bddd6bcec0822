"""Types only: the spec, the observed world, names, globs, durations, located problems.

Nothing in this layer does I/O or imports another layer; every other layer may import it.
"""
