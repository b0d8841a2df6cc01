"""One declaration per query: wire name, aliases, input schema, access rule and handler.

Modelled on Home Assistant's websocket_api: a decorator carries everything the dispatcher
needs, so adding a query means writing one decorated function and nothing else."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from .access import Allow
from .errors import UnknownQuery
from .schemas import Empty, Payload

QUERY_PREFIX = "queries."


@dataclass(frozen=True)
class Declaration:
    name: str
    handler: Callable
    schema: type[Payload]
    allow: Allow
    aliases: tuple[str, ...] = ()
    # The payload field holding the id of the property the access rule applies to, or a
    # function(data) -> property id for queries that name the property indirectly.
    target: str | Callable | None = None
    # The query changes something: it writes an audit entry in its transaction, takes the
    # SQLite writer's turn, and a REMOVED target refuses it with `conflict`.
    mutates: bool = False
    # Load the target row FOR UPDATE (read-modify-write on the property itself).
    lock: bool = False
    # Events the handler may emit; documentation and the delivery tests read it.
    emits: tuple[str, ...] = field(default=())
    # The payload names a user (`userId`) whom the SELF rule compares with the caller.
    checks_self: bool = False
    # The handler runs prepared statements only (propsec/sql.py): the request gets a driver
    # connection of its own as its transaction, and no ORM session.
    prepared: bool = False
    # Tables whose next id the target's read reserves (PostgreSQL: nextval in that same
    # round trip), so the handler's INSERTs of those rows need no answer (sql.NewRow).
    reserves: tuple = ()
    # Reads beside the target (targets.Lookup), by a payload field: a PostgreSQL group reads
    # them with its targets, in the same round trip.
    looks_up: tuple = ()

    def target_id(self, data: Payload) -> int | None:
        if self.target is None:
            return None
        if callable(self.target):
            return self.target(data)
        return getattr(data, self.target)


_REGISTRY: dict[str, Declaration] = {}
_DECLARATIONS: list[Declaration] = []


def websocket_query(name: str, schema: type[Payload] = Empty, *, allow: Allow,
                    aliases: tuple[str, ...] = (), target=None, mutates: bool = False,
                    lock: bool = False, emits: tuple[str, ...] = (), internal: bool = False,
                    prepared: bool = False, reserves: tuple = (), looks_up: tuple = ()):
    """Declare a query. `internal` ones (session, subscribe...) carry no `queries.` prefix."""
    prefix = "" if internal else QUERY_PREFIX
    if lock and not mutates:
        raise ValueError(f"{name}: only a query that changes its target locks it")
    if (reserves or looks_up) and not (prepared and mutates and isinstance(target, str)):
        raise ValueError(f"{name}: ids are reserved, and lookups made, with a changing "
                         "prepared query's target")

    def register(handler: Callable) -> Callable:
        decl = Declaration(prefix + name, handler, schema, allow,
                           tuple(prefix + a for a in aliases), target, mutates, lock, emits,
                           checks_self="userId" in schema.model_fields, prepared=prepared,
                           reserves=tuple(reserves), looks_up=tuple(looks_up))
        for wire_name in (decl.name, *decl.aliases):
            if wire_name in _REGISTRY:
                raise RuntimeError(f"query {wire_name} declared twice")
            _REGISTRY[wire_name] = decl
        _DECLARATIONS.append(decl)
        return handler

    return register


def lookup_name(wire_name) -> str:
    """The wire name if it is declared, else "unknown" (safe to write to a log or a label)."""
    return wire_name if isinstance(wire_name, str) and wire_name in _REGISTRY else "unknown"


def lookup(wire_name: str) -> Declaration:
    try:
        return _REGISTRY[wire_name]
    except (KeyError, TypeError):
        raise UnknownQuery(f"unknown query {str(wire_name)[:100]!r}") from None


def declarations() -> list[Declaration]:
    """Every declared query once (aliases are not repeated)."""
    return list(_DECLARATIONS)
