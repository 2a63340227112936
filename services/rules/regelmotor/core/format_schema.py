"""The ruleset file format (and the cases file format) as JSON Schema, for editors that check a file as it is typed.

Generated from the format's own model, the shapes in `shapes` that the readers check every entry against: the
allowed keys of each section, the kind of each value and the shape of each section's entries. The readers check
more than a schema can say (names that must be declared, expressions, dates that must be real days), so a file
the schema accepts may still be refused by `regelmotor ruleset validate`; what the schema refuses, the loader
refuses too, except that the schema does not accept null for a key (the loader reads it as not given).

Draft-07, which the YAML extension of VS Code (yaml-language-server) and most other editors understand. The
generated text is shipped in the package (`regelmotor/schemas/`) and in docs/; `regelmotor ruleset schema`
prints it.
"""

from __future__ import annotations

import json
import re
from typing import Any

from .shapes import CASE, RULESET, Expect, Shape

DIALECT = "http://json-schema.org/draft-07/schema#"
SCHEMA_FILES = {"ruleset-format.schema.json": "ruleset", "ruleset-cases.schema.json": "cases"}


def _name(shape: Shape) -> str:
    return re.sub(r"[^a-z0-9]+", "_", shape.label.removeprefix("the ").lower()).strip("_")


class _Writer:
    def __init__(self) -> None:
        self.definitions: dict[str, Any] = {}

    def ref(self, shape: Shape) -> dict[str, Any]:
        name = _name(shape)
        if name not in self.definitions:
            self.definitions[name] = {}  # claimed first: a shape may (through others) contain itself
            self.definitions[name] = self.shape(shape)
        return {"$ref": f"#/definitions/{name}"}

    def shape(self, shape: Shape) -> dict[str, Any]:
        properties: dict[str, Any] = {}
        for key, expect in shape.keys.items():
            entry = self.value(expect)
            hint = shape.required.get(key, "").strip(" :()")
            what = entry.pop("description", expect.what)
            entry["description"] = f"{what} (required: {hint})" if hint else (
                f"{what} (required)" if key in shape.required else what)
            properties[key] = entry
        schema: dict[str, Any] = {"type": "object", "title": shape.label, "properties": properties,
                                  "additionalProperties": False}
        if shape.required:
            schema["required"] = list(shape.required)
        if shape.shorthand is not None:
            return {"anyOf": [self.value(shape.shorthand), schema]}
        return schema

    def value(self, expect: Expect) -> dict[str, Any]:
        schema = dict(expect.schema)
        if expect.shape is not None:
            return self.ref(expect.shape)
        if expect.entries is not None:
            schema["additionalProperties"] = self.ref(expect.entries)
            schema["description"] = f"each name to its {expect.entries.label}"
        if expect.items is not None:
            schema["items"] = self.ref(expect.items)
            schema["description"] = f"a list of {expect.items.label}s"
        return schema


def ruleset_schema() -> dict[str, Any]:
    """The JSON Schema of a ruleset version file (`rulesets/<name>/<version>.yaml`)."""
    writer = _Writer()
    top = writer.shape(RULESET)
    return {"$schema": DIALECT, **top,
            "title": "Regelmotor ruleset version (docs/ruleset-format.md)", "definitions": writer.definitions}


def cases_schema() -> dict[str, Any]:
    """The JSON Schema of a cases file (`<version>.cases.yaml`): `cases`, and any other top-level keys (which
    hold values that cases share through YAML anchors)."""
    writer = _Writer()
    cases = {"type": "array", "items": writer.ref(CASE), "description": "the test cases of the version"}
    return {"$schema": DIALECT, "title": "Regelmotor test cases (docs/ruleset-format.md)",
            "type": "object", "properties": {"cases": cases}, "required": ["cases"],
            "definitions": writer.definitions}


def schema_text(which: str) -> str:
    """The text of the schema file named `which` (a key of SCHEMA_FILES): JSON, indented, ending in a newline."""
    schema = ruleset_schema() if SCHEMA_FILES[which] == "ruleset" else cases_schema()
    return json.dumps(schema, ensure_ascii=False, indent=2) + "\n"
