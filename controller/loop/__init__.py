"""The reconcile loop: one pass, the watch loop around it, and the merge worker."""
