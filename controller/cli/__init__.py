"""The `orchestrator` command line: parse, call the layers below, render."""
