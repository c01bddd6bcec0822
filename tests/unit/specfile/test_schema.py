"""specs/schema.json: current with the models, and in agreement with the loader.

No JSON Schema library is a dependency, so a small validator below covers exactly the
keywords the generated schema uses (and fails loudly on any other), which is enough to check
that the example spec validates and that structurally wrong specs do not.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
from ruamel.yaml import YAML

from controller.specfile.schema import REGENERATE, SCHEMA_PATH, main, render_schema, spec_schema
from tests.support import DATA, ROOT

PROJECT_ROOT = ROOT
EXAMPLE = PROJECT_ROOT / "specs" / "example.yaml"
BAD_SPECS = DATA / "bad_specs"

KNOWN_KEYWORDS = {
    "$schema", "title", "description", "default", "$defs", "$ref", "type", "properties",
    "additionalProperties", "required", "items", "anyOf", "const", "enum", "pattern",
    "minimum", "maximum", "exclusiveMinimum", "minItems", "minProperties", "patternProperties",
}  # fmt: skip


def committed() -> dict[str, Any]:
    return json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))


def load_yaml(path: Path) -> Any:
    return YAML(typ="safe").load(path.read_text(encoding="utf-8"))


# --- a minimal validator for the keywords in use -------------------------------------------


def _is_type(value: Any, kind: str) -> bool:
    return {
        "object": isinstance(value, dict),
        "array": isinstance(value, list),
        "string": isinstance(value, str),
        "integer": isinstance(value, int) and not isinstance(value, bool),
        "number": isinstance(value, int | float) and not isinstance(value, bool),
        "boolean": isinstance(value, bool),
        "null": value is None,
    }[kind]


def schema_errors(
    value: Any, schema: dict[str, Any], root: dict[str, Any], at: str = ""
) -> list[str]:
    """Every violation of `schema` by `value`, as 'path: reason' strings."""
    unknown = set(schema) - KNOWN_KEYWORDS
    assert not unknown, f"validator does not know keywords {unknown} (at {at or 'root'})"
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return schema_errors(value, root["$defs"][name], root, at)
    errors: list[str] = []
    here = at or "root"
    if "anyOf" in schema and all(schema_errors(value, s, root, at) for s in schema["anyOf"]):
        errors.append(f"{here}: matches none of anyOf")
    if "type" in schema and not _is_type(value, schema["type"]):
        return [f"{here}: expected {schema['type']}, got {type(value).__name__}"]
    if "const" in schema and value != schema["const"]:
        errors.append(f"{here}: must be {schema['const']!r}")
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{here}: must be one of {schema['enum']!r}")
    if "pattern" in schema and isinstance(value, str) and not re.search(schema["pattern"], value):
        errors.append(f"{here}: {value!r} does not match {schema['pattern']}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{here}: below minimum")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{here}: above maximum")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            errors.append(f"{here}: not above exclusiveMinimum")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{here}: too few items")
        for i, item in enumerate(value):
            if "items" in schema:
                errors += schema_errors(item, schema["items"], root, f"{at}[{i}]")
    if isinstance(value, dict):
        if len(value) < schema.get("minProperties", 0):
            errors.append(f"{here}: too few properties")
        errors += [f"{here}: missing {k}" for k in schema.get("required", []) if k not in value]
        props = schema.get("properties", {})
        patterns = schema.get("patternProperties", {})
        for key, item in value.items():
            where = f"{at}.{key}" if at else str(key)
            matched = [s for p, s in patterns.items() if re.search(p, str(key))]
            if key in props:
                errors += schema_errors(item, props[key], root, where)
            elif matched:
                for s in matched:
                    errors += schema_errors(item, s, root, where)
            elif schema.get("additionalProperties") is False:
                errors.append(f"{where}: not allowed")
    return errors


# --- the committed file ------------------------------------------------------------------


def test_committed_schema_is_current() -> None:
    assert SCHEMA_PATH.read_text(encoding="utf-8") == render_schema(), (
        f"{SCHEMA_PATH} is out of date with controller/spec.py; regenerate it: {REGENERATE}"
    )


def test_schema_header() -> None:
    schema = committed()
    assert list(schema)[:3] == ["$schema", "title", "description"]
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["title"] == "orchestrator spec"
    assert "$id" not in schema
    assert REGENERATE in schema["description"]
    assert schema["type"] == "object"
    assert schema["additionalProperties"] is False
    assert set(schema["required"]) == {"apiVersion", "agents"}


def test_schema_uses_aliases_and_known_keywords() -> None:
    schema = committed()
    props = schema["properties"]
    assert {"apiVersion", "integrationBranch", "maxParallel", "backlogFrom"} <= set(props)
    assert "max_parallel" not in props
    assert "dependsOn" in schema["$defs"]["Task"]["properties"]
    assert schema_errors({}, schema, schema)  # the validator runs over every keyword


def test_example_declares_the_schema() -> None:
    first = EXAMPLE.read_text(encoding="utf-8").splitlines()[0]
    assert first == "# yaml-language-server: $schema=./schema.json"
    assert (EXAMPLE.parent / "schema.json").resolve() == SCHEMA_PATH


def test_example_keys_are_schema_properties() -> None:
    schema = committed()
    example = load_yaml(EXAMPLE)
    defs = schema["$defs"]
    assert set(example) <= set(schema["properties"])
    for agent in example["agents"].values():
        assert set(agent) <= set(defs["Agent"]["properties"])
    for task in example["backlog"]:
        assert set(task) <= set(defs["Task"]["properties"])
    assert set(example["backoff"]) <= set(defs["Backoff"]["properties"])
    for rule in example["resources"]["cpu"] + example["resources"]["memory"]:
        assert set(rule) <= set(defs["Threshold"]["properties"])


def test_example_validates_against_the_schema() -> None:
    schema = committed()
    assert schema_errors(load_yaml(EXAMPLE), schema, schema) == []


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("unknown_key_top_typo", "maxParalel: not allowed"),
        ("unknown_key_task_typo", "backlog[1].dependOn: not allowed"),
        ("unknown_key_resources_rule", "resources.cpu[0]: missing parallel"),
        ("max_parallel_string", "maxParallel: expected integer"),
        ("retries_negative", "retries: below minimum"),
        ("agents_as_list", "agents: expected object"),
        ("backlog_as_mapping", "backlog: expected array"),
        ("missing_api_version", "root: missing apiVersion"),
        ("api_version_wrong", "apiVersion: must be 'orchestrator/v1'"),
        ("duration_words", "timeout: matches none of anyOf"),
        ("timeout_zero", "backlog[0].timeout: matches none of anyOf"),
        ("task_id_uppercase", "backlog[0].id: 'US-043' does not match"),
        ("task_id_shell_semicolon", "backlog[0].id: 'x;rm -rf /' does not match"),
        ("agent_name_invalid", "agents.dev team: not allowed"),
        ("env_var_name_invalid", "agents.dev.env.BAD-NAME: not allowed"),
        ("command_shell_string", "agents.dev.command: expected array"),
        ("command_empty_list", "agents.dev.command: too few items"),
        ("paused_maybe", "paused: expected boolean"),
    ],
)
def test_structurally_bad_specs_fail_the_schema(name: str, reason: str) -> None:
    schema = committed()
    errors = schema_errors(load_yaml(BAD_SPECS / f"{name}.yaml"), schema, schema)
    assert any(e.startswith(reason) for e in errors), errors


# --- the generator's command line --------------------------------------------------------


def test_check_reports_a_stale_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "schema.json"
    assert main(["--check", "--output", str(target)]) == 1
    assert "is missing" in capsys.readouterr().err
    target.write_text("{}\n")
    assert main(["--check", "--output", str(target)]) == 1
    err = capsys.readouterr().err
    assert "is out of date" in err and REGENERATE in err
    assert target.read_text() == "{}\n"  # --check never writes


def test_write_then_check(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    target = tmp_path / "nested" / "schema.json"
    assert main(["--output", str(target)]) == 0
    assert "wrote" in capsys.readouterr().out
    assert json.loads(target.read_text()) == spec_schema()
    assert main(["--check", "--output", str(target)]) == 0
    assert main(["--output", str(target)]) == 0
    assert "up to date" in capsys.readouterr().out
