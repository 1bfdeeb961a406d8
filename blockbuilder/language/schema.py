"""A JSON Schema of the language, generated from the block and section registries (for editors)."""

from __future__ import annotations

from typing import Any

from blockbuilder.blocks.registry import block_names, get_block
from blockbuilder.language.sections import registered_sections

EXPRESSION = {"type": "string", "pattern": r"^\$", "description": "a $name or ${expression}"}


def _with_expressions(schema: Any) -> Any:
    """``schema`` where every number, integer and boolean may also be an expression, at any depth (an
    expression may stand for any value of a file: ``padding: [[${2 - s}, 1], [${2 - s}, 1]]``)."""
    if isinstance(schema, list):
        return [_with_expressions(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    inner = {key: (_with_expressions(value) if key in ("items", "prefixItems", "anyOf", "oneOf", "allOf")
                   else {k: _with_expressions(v) for k, v in value.items()} if key == "properties"
                   else value) for key, value in schema.items()}
    if inner.get("type") in ("integer", "number", "boolean"):
        return {"anyOf": [inner, EXPRESSION]}
    return inner


def _args_schema(name: str, defs: dict[str, Any]) -> dict[str, Any]:
    block = get_block(name)
    assert block is not None, name
    schema = _with_expressions(block.Spec.model_json_schema(ref_template="#/$defs/{model}"))
    defs.update({key: _with_expressions(value) for key, value in schema.pop("$defs", {}).items()})
    properties = {key: {"anyOf": [value, EXPRESSION]} for key, value in schema.get("properties", {}).items()}
    for field in block.block_fields:
        properties[field] = {"anyOf": [{"$ref": "#/$defs/blocks"}, {"type": "string"},
                                       {"type": "array", "items": {"$ref": "#/$defs/blocks"}}]}
    args: dict[str, Any] = {"type": "object", "properties": properties, "additionalProperties": False,
                            "description": (block.__doc__ or "").strip().splitlines()[0] if block.__doc__ else ""}
    if schema.get("required"):
        args["required"] = schema["required"]
    options = [args, {"type": "null"}]
    if block.scalar_key or block.block_fields:
        options.append({"type": ["number", "string", "array"]})
    return {"anyOf": options}


#: ``from:`` and ``inputs:``: a block's name, or a list of them.
NAMES = {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]}


def json_schema() -> dict[str, Any]:
    """The schema of an architecture file; user-defined block names are allowed as extra keys."""
    defs: dict[str, Any] = {}
    blocks = {name: _args_schema(name, defs) for name in block_names()}
    defs["block"] = {
        "anyOf": [
            {"type": "string", "description": "a block type without arguments, e.g. flatten"},
            {"type": "object", "properties": {**blocks, "name": {"type": "string"}, "body": {}, "from": NAMES},
             "minProperties": 1},
        ]
    }
    defs["blocks"] = {"anyOf": [{"type": "array", "items": {"$ref": "#/$defs/block"}},
                                {"$ref": "#/$defs/block"}]}
    properties: dict[str, Any] = {
        "name": {"type": "string"},
        "description": {"type": "string"},
        "extends": {"type": "string", "description": "a file (relative to this one) or a zoo name"},
        "input": {"anyOf": [{"type": "array", "items": {"anyOf": [{"type": "integer", "minimum": 1},
                                                                  EXPRESSION]},
                             "minItems": 3, "maxItems": 3}, EXPRESSION]},
        "input_name": {"type": "string"},
        "classes": {"anyOf": [{"type": "integer", "minimum": 1}, {"const": "auto"}, EXPRESSION]},
        "variables": {"type": "object"},
        "defaults": {"type": "object", "properties": {n: {"type": "object"} for n in block_names()}},
        "blocks": {"type": "object", "additionalProperties": {
            "type": "object", "required": ["body"], "additionalProperties": False,
            "properties": {"params": {"type": "object"}, "inputs": NAMES, "body": {"$ref": "#/$defs/blocks"},
                           "doc": {"type": "string"}}}},
        "network": {"type": "array", "items": {"$ref": "#/$defs/block"}},
        "meta": {"type": "object"},
    }
    for section in registered_sections():  # train, weights/freeze/head, search ... from their packages
        properties.update(section.schema(defs))
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "blockbuilder architecture",
        "type": "object",
        "properties": properties,
        "anyOf": [{"required": ["input", "network"]}, {"required": ["extends"]}],
        "additionalProperties": False,
        "$defs": defs,
    }
