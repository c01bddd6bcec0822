"""The JSON Schema of the spec, exported from the pydantic models to `specs/schema.json`.

Editors use the schema for completion and inline errors while the user types
(`# yaml-language-server: $schema=./schema.json` at the top of a spec). The models in
`controller.model.spec` are the single definition, so the schema is generated rather than written:

    python -m controller.specfile.schema            # (re)write specs/schema.json
    python -m controller.specfile.schema --check    # exit 1 when the committed file is stale

The schema checks structure (keys, types, patterns); the loader stays the judge of the rest
(dependencies, cycles, scopes, the repository), with located messages.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from controller.model.spec import Spec

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "specs" / "schema.json"
DIALECT = "https://json-schema.org/draft/2020-12/schema"
TITLE = "orchestrator spec"
DESCRIPTION = (
    "Desired state for orchestrator (specs/orchestrator.yaml): the agents, what each may "
    "write, how many run at once, and the backlog with its dependencies. Generated from "
    "controller/model/spec.py by `python -m controller.specfile.schema`; do not edit by hand."
)
REGENERATE = "python -m controller.specfile.schema"


def _tidy(node: Any) -> None:
    """In place: drop pydantic's generated property titles ("Maxparallel" helps nobody), and
    make mappings keyed by a name pattern (agents, env) refuse keys outside the pattern,
    as the loader does."""
    if isinstance(node, list):
        for item in node:
            _tidy(item)
        return
    if not isinstance(node, dict):
        return
    for prop in (node.get("properties") or {}).values():
        if isinstance(prop, dict):
            prop.pop("title", None)
    if "patternProperties" in node and "additionalProperties" not in node:
        node["additionalProperties"] = False
    for value in node.values():
        _tidy(value)


def spec_schema() -> dict[str, Any]:
    """The schema document: dialect, title and description first, then pydantic's schema."""
    generated = Spec.model_json_schema(by_alias=True)
    _tidy(generated)
    generated.pop("title", None)
    generated.pop("description", None)
    return {"$schema": DIALECT, "title": TITLE, "description": DESCRIPTION, **generated}


def render_schema() -> str:
    return json.dumps(spec_schema(), indent=2, ensure_ascii=False) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m controller.specfile.schema",
        description="Write the spec's JSON Schema, or check that the written one is current.",
    )
    parser.add_argument(
        "--check", action="store_true", help="exit 1 if the file differs from the models"
    )
    parser.add_argument("--output", type=Path, default=SCHEMA_PATH, help="schema file to write")
    args = parser.parse_args(argv)
    text = render_schema()
    path: Path = args.output
    current = path.read_text(encoding="utf-8") if path.is_file() else None
    if args.check:
        if current != text:
            what = "is missing" if current is None else "is out of date"
            print(f"{path} {what}; regenerate it: {REGENERATE}", file=sys.stderr)
            return 1
        print(f"{path} is up to date")
        return 0
    if current == text:
        print(f"{path} is up to date")
        return 0
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
