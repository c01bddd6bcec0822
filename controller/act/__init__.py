"""Carrying out a plan: spawning through runners, stopping, pruning, merging, recording."""
