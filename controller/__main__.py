"""Allows `python -m controller`."""

from controller.cli.app import main

main()
