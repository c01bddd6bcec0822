"""Reading desired state from files: YAML with located problems, cross-field checks, the
JSON Schema, and backlog sources (a markdown ROADMAP)."""
