"""The controller's own state on disk: the state-folder paths, the SQLite store, the lock."""
