"""The API description over HTTP: `/api/asyncapi.json` (the document, built from the code at
first use) and `/api`, the same rendered as a page for people (no scripts, works offline)."""
from __future__ import annotations

from flask import Blueprint, jsonify, render_template

from ..protocol.asyncapi import document

apidoc = Blueprint("apidoc", __name__)


@apidoc.get("/api/asyncapi.json")
def asyncapi_json():
    return jsonify(document())


def _type(schema: dict, schemas: dict) -> str:
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _type(schemas.get(name, {}), schemas) if "enum" in schemas.get(name, {}) else name
    if "anyOf" in schema:
        return " or ".join(_type(s, schemas) for s in schema["anyOf"])
    if "enum" in schema:
        return " | ".join(f'"{v}"' for v in schema["enum"])
    if "const" in schema:
        return f'"{schema["const"]}"'
    if schema.get("type") == "array":
        return f"list of {_type(schema.get('items', {}), schemas)}"
    kind = schema.get("type", "any")
    return " or ".join(kind) if isinstance(kind, list) else kind


def _limits(schema: dict) -> str:
    parts = []
    for key, word in (("minimum", "≥"), ("maximum", "≤"), ("minLength", "length ≥"),
                      ("maxLength", "length ≤"), ("minItems", "items ≥"), ("maxItems", "items ≤")):
        if key in schema:
            parts.append(f"{word} {schema[key]}")
    for option in schema.get("anyOf", []):
        extra = _limits(option)
        if extra:
            parts.append(extra)
    return ", ".join(parts)


def _fields(payload: dict, schemas: dict) -> list[dict]:
    required = set(payload.get("required", []))
    return [{"name": name, "type": _type(spec, schemas), "required": name in required,
             "limits": _limits(spec), "default": spec.get("default"),
             "description": spec.get("description", "")}
            for name, spec in payload.get("properties", {}).items()]


@apidoc.get("/api")
def api_page():
    doc = document()
    schemas = doc["components"]["schemas"]
    queries, events = [], []
    for channel in doc["channels"].values():
        messages = channel["messages"]
        if "request" in messages:
            queries.append({"name": channel["address"], "about": channel["description"],
                            "fields": _fields(messages["request"]["payload"], schemas)})
        else:
            events.append({"name": channel["address"], "about": channel["description"],
                           "fields": _fields(messages["event"]["payload"], schemas)})
    return render_template("api.html", info=doc["info"], queries=queries, events=events)
