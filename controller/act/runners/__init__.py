"""How agent processes run: the Runner interface (base), local detached processes (local).

Deliberately imports nothing, so `controller.act.runners.shim` starts fast and stays free of the
rest of the package.
"""
