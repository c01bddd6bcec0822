"""`orchestrator demo`: the whole product on a scratch repository with scripted agents."""
