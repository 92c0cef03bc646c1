"""The results-file schema (docs/results.schema.json) and a validator for the part of JSON Schema
it uses.

Why not the ``jsonschema`` package: it is not among the project's pinned requirements, and the
schema needs only ``type``, ``required``, ``properties``, ``additionalProperties``, ``items``,
``enum``, ``anyOf``, ``allOf`` and local ``$ref``s; any other keyword in the schema is refused,
so the file cannot silently promise a check this code does not make.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from utils.runtime.io import read_json

SCHEMA_PATH = Path(__file__).resolve().parents[2] / "docs" / "results.schema.json"
SUPPORTED = {
    "$schema",
    "$id",
    "$defs",
    "$ref",
    "title",
    "description",
    "type",
    "required",
    "properties",
    "additionalProperties",
    "items",
    "enum",
    "anyOf",
    "allOf",
}
TYPES: dict[str, Any] = {
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
    "string": lambda v: isinstance(v, str),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    # NaN is a number here: a metric of an empty slice is written as NaN
    "number": lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
}


def load_schema(path: Path = SCHEMA_PATH) -> dict[str, Any]:
    return read_json(path, "restore docs/results.schema.json from git")


def validate(value: Any, schema: dict[str, Any], root: dict[str, Any] | None = None) -> list[str]:
    """Every way ``value`` breaks ``schema``, each as ``"<where>: <what>"`` (empty when valid)."""
    return _errors(value, schema, root or schema, "$")


def _errors(value: Any, schema: dict[str, Any], root: dict[str, Any], where: str) -> list[str]:
    unknown = set(schema) - SUPPORTED
    if unknown:
        raise ValueError(f"schema at {where}: unsupported keyword(s) {sorted(unknown)}")
    if "$ref" in schema:
        return _errors(value, _resolve(schema["$ref"], root), root, where)
    types = schema.get("type")
    if types is not None:
        names = [types] if isinstance(types, str) else types
        if not any(TYPES[t](value) for t in names):
            shown = f"{type(value).__name__} {_show(value)}"
            return [f"{where}: {shown}, expected {' or '.join(names)}"]
    if "enum" in schema and value not in schema["enum"]:
        return [f"{where}: {_show(value)} is not one of {schema['enum']}"]
    if "anyOf" in schema:
        tries = [_errors(value, s, root, where) for s in schema["anyOf"]]
        if all(tries):
            closest = min(tries, key=len)
            return [f"{where}: none of its {len(tries)} layouts fits; closest: {closest[0]}"] + (
                closest[1:]
            )
    out = [e for s in schema.get("allOf", []) for e in _errors(value, s, root, where)]
    if isinstance(value, dict):
        required = schema.get("required", [])
        out += [f"{where}: missing {key!r}" for key in required if key not in value]
        props = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for key, item in value.items():
            if key in props:
                out += _errors(item, props[key], root, f"{where}.{key}")
            elif extra is False:
                out.append(f"{where}: unexpected key {key!r}")
            elif isinstance(extra, dict):
                out += _errors(item, extra, root, f"{where}.{key}")
    if isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            out += _errors(item, schema["items"], root, f"{where}[{i}]")
    return out


def _resolve(ref: str, root: dict[str, Any]) -> dict[str, Any]:
    """A local reference ``#/$defs/name``."""
    if not ref.startswith("#/"):
        raise ValueError(f"schema: only local references are supported, not {ref!r}")
    node: Any = root
    for part in ref[2:].split("/"):
        node = node[part]
    return node


def _show(value: Any) -> str:
    if isinstance(value, float) and math.isnan(value):
        return "NaN"
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."
