"""The machine-readable API description: an AsyncAPI 3.0 document built from the query
declarations (registry.py: wire names, aliases, pydantic schemas, access rules, the events
they emit) and the event declarations (eventdefs.py). Nothing is written by hand, so the
document cannot drift from the code; tests compare them and CI validates it with
@asyncapi/parser."""
from __future__ import annotations

import re
from functools import lru_cache

from .eventdefs import EVENTS
from .events import NAMESPACE
from .registry import declarations

TITLE = "propsec"
VERSION = "2.0.0"
_SAFE = re.compile(r"[^A-Za-z0-9._-]")

ENVELOPE = {
    "type": "object",
    "description": "Every acknowledgement: `status` (internal events), `success` (a change), "
                   "`data` (a read) or `error` (with `code`, `message` and, for validation "
                   "errors, `fields`). `requestIdentifier` comes back when it was sent.",
    "required": ["type", "data"],
    "properties": {
        "type": {"type": "string", "enum": ["status", "success", "data", "error"]},
        "data": {"type": "object"},
        "requestIdentifier": {"type": ["string", "integer"]},
    },
}


def _component(name: str) -> str:
    return _SAFE.sub("_", name)


def _schema(model, components: dict) -> dict:
    """A pydantic model's JSON schema, its nested definitions moved to the components."""
    schema = model.model_json_schema(by_alias=True, ref_template="#/components/schemas/{model}")
    for name, definition in schema.pop("$defs", {}).items():
        components.setdefault(_component(name), definition)
    return schema


def _who(decl) -> str:
    rule = decl.allow.value
    target = f" (the property named by `{decl.target}`)" if isinstance(decl.target, str) else ""
    return f"Who may call it: {rule}{target}."


@lru_cache(maxsize=1)
def document() -> dict:
    schemas: dict = {"Envelope": ENVELOPE}
    channels: dict = {}
    operations: dict = {}
    for decl in declarations():
        for wire in (decl.name, *decl.aliases):
            key = _component(wire)
            alias_of = f" An alias of `{decl.name}`." if wire != decl.name else ""
            emits = (" Emits " + ", ".join(f"`{e}`" for e in decl.emits) + ".") if decl.emits else ""
            channels[key] = {
                "address": wire,
                "title": wire,
                "description": f"{_who(decl)}{alias_of}{emits}",
                "messages": {
                    "request": {"name": f"{wire} request", "payload": _schema(decl.schema, schemas)},
                    "reply": {"name": f"{wire} acknowledgement",
                              "payload": {"$ref": "#/components/schemas/Envelope"}},
                },
            }
            operations[f"send.{key}"] = {
                "action": "send",
                "title": wire,
                "summary": (decl.handler.__doc__ or "").strip().split("\n")[0] or wire,
                "description": _who(decl),
                "channel": {"$ref": f"#/channels/{key}"},
                "messages": [{"$ref": f"#/channels/{key}/messages/request"}],
                "reply": {"channel": {"$ref": f"#/channels/{key}"},
                          "messages": [{"$ref": f"#/channels/{key}/messages/reply"}]},
            }
    for name, event in EVENTS.items():
        key = _component(name)
        channels[key] = {
            "address": name,
            "title": name,
            "description": f"Pushed to subscribers (`subscribe` with id `{name}`); caused by "
                           f"{event.caused_by}. Owners receive only their own properties' events.",
            "messages": {"event": {"name": name, "payload": _schema(event.payload, schemas)}},
        }
        operations[f"receive.{key}"] = {
            "action": "receive",
            "title": name,
            "channel": {"$ref": f"#/channels/{key}"},
            "messages": [{"$ref": f"#/channels/{key}/messages/event"}],
        }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": TITLE, "version": VERSION,
            "description": (
                f"The propsec Socket.IO API (namespace `{NAMESPACE}`). Authenticate at connect "
                "with `auth: {token}` (an API token) or the dashboard's session cookie. Each "
                "query is an event named `queries.<name>` sent with an acknowledgement "
                "callback, which receives the envelope; each event is pushed under its name "
                "to subscribers. The prose guide is docs/protocol.md."),
        },
        "defaultContentType": "application/json",
        "servers": {"local": {"host": "127.0.0.1:5000", "protocol": "ws", "pathname": "/socket.io/",
                              "description": f"Socket.IO (Engine.IO 4) on the server; namespace {NAMESPACE}"}},
        "channels": channels,
        "operations": operations,
        "components": {"schemas": schemas},
    }
