"""Property-based fuzzing of every declared query (issue 6).

Payloads are generated from each query's own schema (`model_json_schema()` of its pydantic
model, with realistic ids mixed in so that handlers really run) and then pushed beyond it:
wrong types, missing and extra fields, huge and exotic strings (NUL, lone surrogates,
emoji, 60 KiB), nested junk, booleans and floats for integers, out-of-range numbers, and
things that are not objects at all. Each payload goes through the Socket.IO test client as
one of four callers (owner, neighbour, staff, admin), and:

- the answer is one of the contract's envelopes, an error carrying one of its codes and
  never `internal_error`, a stack trace or SQL;
- the connection stays usable (a `session` call right after succeeds);
- a rejected request changes nothing: the whole database (every row of every table,
  the event log included) is identical, and no event reached a subscriber.

Quick profile by default (a few seconds); `PROPSEC_FUZZ_LONG=1` runs the long profile of
more than 10,000 payloads that `.ci/run` uses, split between the backends that
PROPSEC_TEST_BACKENDS names (SQLite by default; CI adds PostgreSQL, where the "nothing
changed" check is a digest of every row computed in the database)."""
from __future__ import annotations

import json
import os
import re
import sqlite3
from datetime import date, timedelta

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from sqlalchemy import select, text

import propsec.handlers  # noqa: F401  (registers every declaration)
from support import Client, database_url, make_app, prepare_database, reset_database
from support import test_backends as configured_backends
from propsec.extensions import db
from propsec.models import (ACTIVE, CAMERA, DRONE, PENDING, REMOVAL_REQUESTED, REMOVED, Alert, ApiToken,
                            Equipment, Property, STATUSES)
from propsec.models._common import utcnow
from propsec.protocol.errors import ERROR_CODES
from propsec.protocol.events import EVENT_NAMES, NAMESPACE
from propsec.protocol.registry import QUERY_PREFIX, declarations
from propsec.security import issue_token, token_digest

LONG = os.environ.get("PROPSEC_FUZZ_LONG", "") not in ("", "0")
DECLARATIONS = declarations()
# Long profile: enough examples per query that the whole run sends well over 10,000 payloads.
BACKENDS = configured_backends()
# The long profile's budget is split between the configured backends (CI: SQLite and
# PostgreSQL), so that the module stays within a few minutes.
LONG_EXAMPLES_PER_QUERY = 10_400 // (len(DECLARATIONS) * len(BACKENDS)) + 1
QUICK_EXAMPLES_PER_QUERY = 8

_common = dict(deadline=None, derandomize=False, print_blob=True,
               suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                      HealthCheck.filter_too_much])
settings.register_profile("propsec-fuzz-quick", max_examples=QUICK_EXAMPLES_PER_QUERY, **_common)
settings.register_profile("propsec-fuzz-long", max_examples=LONG_EXAMPLES_PER_QUERY, **_common)
PROFILE = settings.get_profile("propsec-fuzz-long" if LONG else "propsec-fuzz-quick")

CALLERS = ("owner", "neighbour", "staff", "admin")
SENT = {"payloads": 0}

# --------------------------------------------------------------------------- the site


@pytest.fixture(scope="module", params=BACKENDS)
def fuzz(request, tmp_path_factory):
    """One app per backend for the whole module: a varied site, a client per caller and a
    watcher subscribed to everything."""
    if request.param == "sqlite":
        app = make_app(database_url(tmp_path_factory.mktemp("fuzz")))
        prepare_database(app)
    else:
        app = make_app(request.getfixturevalue("postgres_suite_url"))
        reset_database(app)
    with app.app_context():
        def prop(owner, location, status, x):
            p = Property(owner_id=owner, location=location, tier_id=2, x=x, y=0, width=20,
                         height=20, status=status, description=location.lower())
            db.session.add(p)
            db.session.flush()
            return p.id

        props = [prop("owner", "1 Harbour Road", ACTIVE, 0),
                 prop("neighbour", "2 Harbour Road", ACTIVE, 100),
                 prop("owner", "3 Mill Lane", PENDING, 200),
                 prop("owner", "4 Mill Lane", REMOVAL_REQUESTED, 300),
                 prop("neighbour", "5 Old Quay", REMOVED, 400)]
        equipment = []
        for pid in props:
            for kind, what in ((CAMERA, "camera"), (DRONE, "drone a"), (DRONE, "drone b")):
                item = Equipment(property_id=pid, type_id=kind, description=what)
                db.session.add(item)
                db.session.flush()
                equipment.append(item.id)
        alerts = []
        for pid, acked in ((props[0], False), (props[0], True), (props[1], False)):
            alert = Alert(property_id=pid, user_id="owner", reason="seeded",
                          acknowledged_by="staff" if acked else None,
                          acknowledged_at=utcnow() if acked else None)
            db.session.add(alert)
            db.session.flush()
            alerts.append(alert.id)
        db.session.commit()
        tokens = {user: issue_token(user) for user in CALLERS}
        watcher_token = issue_token("admin")
        spare = [issue_token("neighbour") for _ in range(3)]
        spare_ids = list(db.session.scalars(select(ApiToken.id).where(
            ApiToken.token_hash.in_([token_digest(t) for t in spare]))))
        in_use = {str(i) for i in db.session.scalars(select(ApiToken.id).where(
            ApiToken.token_hash.in_([token_digest(t) for t in (*tokens.values(), watcher_token)])))}
        db.session.remove()
    clients = {user: Client(app, token) for user, token in tokens.items()}
    watcher = Client(app, watcher_token)
    assert watcher.call("subscribe", {"id": "events.all"})["type"] == "status"
    watcher.events()
    yield {"app": app, "snapshot": Snapshot(app), "clients": clients, "watcher": watcher, "props": props,
           "equipment": equipment, "alerts": alerts, "backend": request.param,
           "spare_tokens": spare_ids, "tokens_in_use": in_use}
    for client in (*clients.values(), watcher):
        if client.sio.is_connected(NAMESPACE):
            client.sio.disconnect(NAMESPACE)
    with app.app_context():
        db.session.remove()
        db.engine.dispose()


class Snapshot:
    """Tells whether anything at all was written to the database between two looks.

    On SQLite, `PRAGMA data_version` read on a connection of our own changes whenever any
    other connection commits a change, so an unchanged value proves that the request wrote
    nothing (the event log included). On PostgreSQL, a digest of every row of every table,
    computed in the database in one statement."""

    def __init__(self, app):
        self.app = app
        url = app.config["SQLALCHEMY_DATABASE_URI"]
        self.sqlite = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None) \
            if url.startswith("sqlite:///") else None
        self.statement = text("SELECT " + " || ".join(
            f"(SELECT md5(coalesce(string_agg(t::text, '|' ORDER BY t::text), '')) FROM {table.name} t)"
            for table in db.metadata.sorted_tables))

    def __call__(self):
        if self.sqlite is not None:
            return self.sqlite.execute("PRAGMA data_version").fetchone()[0]
        with self.app.app_context():
            try:
                return db.session.execute(self.statement).scalar_one()
            finally:
                db.session.remove()


# --------------------------------------------------------------------------- strategies

SAFE_TEXT = st.characters(exclude_categories=("Cs",), exclude_characters="\x00")
ANY_CHAR = st.characters(codec=None)  # everything, lone surrogates and NUL included
HOSTILE_STRINGS = [
    "", " ", "\x00", "a\x00b", "\ud800", "x\udfffy", "\udc00\ud800", "١٢٣", "１２", "²",
    "1e3", " 1", "1 ", "+1", "-1", "0x1F", "1.0", "01", "9" * 19, "9" * 20, "9" * 400,
    "true", "null", "NaN", "' OR 1=1 --", "1; DROP TABLE properties", "%", "_", "\\%",
    "<script>alert(1)</script>", "{{7*7}}", "../../etc/passwd", "\u202e\u0000\ufeff",
    "😀" * 100, "é" * 5000, "x" * 60 * 1024, "\n\r\t", "events.all", "queries.get-map",
]
# engine.io itself refuses JSON numbers of more than 100 digits before propsec sees them
# (test_abuse covers that on a real server); in-process payloads stay below that.
INTS = st.integers(-(10**80), 10**80)
HUGE_INTS = [0, -1, 2**31 - 1, 2**31, 2**53 + 1, 2**63 - 1, 2**63, 2**64, -(2**63) - 1,
             10**30, -(10**30), 10**99]

scalars = st.one_of(
    st.none(), st.booleans(), INTS, st.sampled_from(HUGE_INTS),
    st.floats(allow_nan=True, allow_infinity=True), st.text(ANY_CHAR, max_size=50),
    st.sampled_from(HOSTILE_STRINGS), st.binary(max_size=20),
)
junk = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                    | st.dictionaries(st.text(ANY_CHAR, max_size=10), inner, max_size=4),
                    max_leaves=12)
not_objects = st.one_of(st.none(), st.booleans(), INTS, st.floats(),
                        st.text(ANY_CHAR, max_size=30), st.lists(junk, max_size=5),
                        st.sampled_from(HOSTILE_STRINGS))


def _bounds(node: dict) -> tuple[int | None, int | None]:
    return node.get("minimum", node.get("ge")), node.get("maximum", node.get("le"))


def from_schema(node: dict) -> st.SearchStrategy:
    """Valid values for one JSON-schema node of a pydantic model."""
    if "anyOf" in node:
        return st.one_of([from_schema(option) for option in node["anyOf"]])
    kind = node.get("type")
    if kind == "integer":
        low, high = _bounds(node)
        edges = [v for v in (low, high) if v is not None]
        return st.one_of(st.integers(low, high), st.sampled_from(edges)) if edges else INTS
    if kind == "string":
        low, high = node.get("minLength", 0), node.get("maxLength", 100)
        return st.one_of(st.text(SAFE_TEXT, min_size=low, max_size=min(high, 40)),
                         st.text(SAFE_TEXT, min_size=1, max_size=8).map(
                             lambda part: (part * (high // len(part) + 1))[:high]))
    if kind == "null":
        return st.none()
    if kind == "boolean":
        return st.booleans()
    return junk


def beyond_schema(node: dict) -> st.SearchStrategy:
    """Values of the wrong type or out of range for one field."""
    options = [junk, st.booleans(), st.floats(), st.lists(scalars, max_size=3),
               st.dictionaries(st.text(SAFE_TEXT, max_size=5), scalars, max_size=3)]
    kinds = {o.get("type") for o in node.get("anyOf", [node])}
    if "integer" in kinds:
        for option in node.get("anyOf", [node]):
            low, high = _bounds(option)
            if low is not None:
                options.append(st.sampled_from([low - 1, low - 10**20]))
            if high is not None:
                options.append(st.sampled_from([high + 1, high * 2 + 10**20]))
        options += [st.sampled_from(["1.5", "1e3", "-1", " 7", "٣", "0x10", ""]),
                    st.floats(min_value=1, max_value=10).map(lambda f: f + 0.5),
                    st.just(1.0)]
    if "string" in kinds:
        for option in node.get("anyOf", [node]):
            high = option.get("maxLength")
            if high is not None:
                options.append(st.just("y" * (high + 1)))
            if option.get("minLength"):
                options.append(st.just(""))
        options += [INTS, st.sampled_from(HOSTILE_STRINGS),
                    st.text(ANY_CHAR, min_size=1, max_size=30).filter(
                        lambda s: "\x00" in s or any(0xD800 <= ord(c) <= 0xDFFF for c in s)),
                    st.sampled_from(["\x00", "ok\x00", "\ud83d", "a\udc00"])]
    return st.one_of(options)


def day_strings() -> st.SearchStrategy:
    base = date(2026, 1, 1)
    return st.one_of(
        st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)).map(date.isoformat),
        st.integers(-800, 800).map(lambda n: (base + timedelta(days=n)).isoformat()),
        st.sampled_from(["9999-12-31", "0001-01-01", "2026-02-29", "2024-02-29", "2026-13-01",
                         "2026-1-1", "20260101", "2026-01-01T00:00:00Z", "yesterday"]))


def hint(name: str, node: dict, site: dict) -> st.SearchStrategy | None:
    """Realistic values for fields whose meaning the schema alone does not tell."""
    ids = st.one_of(st.sampled_from(site["props"] + site["equipment"] + site["alerts"]),
                    st.integers(1, 60))
    users = st.sampled_from(list(CALLERS) + ["nobody", "v1"])
    as_text = lambda s: s.map(str)  # noqa: E731  (ids may arrive as strings of digits)
    if name == "propertyId":
        return st.one_of(st.sampled_from(site["props"]), ids, as_text(ids))
    if name in ("equipmentId", "cameraId", "droneId"):
        return st.one_of(st.sampled_from(site["equipment"]), ids, as_text(ids))
    if name == "alertId":
        return st.one_of(st.sampled_from(site["alerts"]), ids)
    if name == "tokenId":
        # spare tokens, or ids far past every token: revoking the fuzzing clients' own tokens
        # would (rightly) cut their connections mid-run
        return st.one_of(st.sampled_from(site["spare_tokens"]), st.integers(10**6, 2**63 - 1))
    if name in ("userId", "clientId"):
        return users
    if name == "id" and node.get("maxLength") == 64:  # subscribe / unsubscribe
        return st.sampled_from(EVENT_NAMES)
    if name == "event":
        return st.sampled_from(EVENT_NAMES)
    if name == "tier":
        return st.integers(1, 4)
    if name == "equipmentType":
        return st.integers(1, 6)
    if name == "status":
        return st.sampled_from([*STATUSES, "removed", "ACTIVE "])
    if name in ("from", "to"):
        return day_strings()
    if name in ("limit", "offset"):
        return st.integers(0, 30)
    return None


@st.composite
def payloads(draw, decl, site) -> object:
    schema = decl.schema.model_json_schema()
    props: dict = schema.get("properties", {})
    required = set(schema.get("required", []))
    body: dict = {}
    for name, node in props.items():
        if name not in required and draw(st.booleans()):
            continue  # optional field left out
        realistic = hint(name, node, site)
        strategy = from_schema(node) if realistic is None else st.one_of(realistic, from_schema(node))
        body[name] = draw(strategy)
    mode = draw(st.sampled_from(["valid", "valid", "extra", "missing", "wrong", "wrong",
                                 "many-wrong", "not-object"]))
    if mode == "extra":
        body.update(draw(st.dictionaries(st.text(ANY_CHAR, max_size=12), junk, min_size=1,
                                         max_size=4)))
    elif mode == "missing" and body:
        for name in draw(st.lists(st.sampled_from(sorted(body)), min_size=1, unique=True)):
            del body[name]
    elif mode == "wrong" and props:
        name = draw(st.sampled_from(sorted(props)))
        body[name] = draw(beyond_schema(props[name]))
    elif mode == "many-wrong" and props:
        for name in draw(st.lists(st.sampled_from(sorted(props)), min_size=1, unique=True)):
            body[name] = draw(beyond_schema(props[name]))
    elif mode == "not-object":
        return draw(not_objects)
    if draw(st.integers(0, 4)) == 0:
        body["requestIdentifier"] = draw(st.one_of(st.text(ANY_CHAR, max_size=20), INTS,
                                                   st.booleans(), junk))
    return body


# --------------------------------------------------------------------------- checks

LEAKS = re.compile(r"Traceback|File \"|\bSELECT\b|\bINSERT\b|\bUPDATE\b.*\bSET\b|sqlalchemy|"
                   r"sqlite3|psycopg|Error\(|\bat 0x", re.IGNORECASE)


def _strings(value):
    """Every string in a payload, longest first (keys and values, nested)."""
    found: list[str] = []

    def walk(item):
        if isinstance(item, str):
            found.append(item)
        elif isinstance(item, dict):
            for key, inner in item.items():
                walk(key)
                walk(inner)
        elif isinstance(item, (list, tuple)):
            for inner in item:
                walk(inner)

    walk(value)
    return sorted((s for s in found if s), key=len, reverse=True)


def check_envelope(envelope, payload, event: str | None = None) -> None:
    assert isinstance(envelope, dict), envelope
    assert envelope.get("type") in ("status", "success", "data", "error"), envelope
    body = envelope.get("data")
    assert isinstance(body, dict), envelope
    if envelope["type"] == "error":
        assert body.get("code") in ERROR_CODES, envelope
        assert body["code"] != "internal_error", (envelope, payload)
        assert isinstance(body.get("message"), str)
        if "fields" in body:
            assert isinstance(body["fields"], dict) and body["fields"], envelope
            assert all(isinstance(k, str) and isinstance(v, str) for k, v in body["fields"].items())
        if body["code"] == "validation_error":
            assert body.get("fields"), envelope
        said = body["message"] + json.dumps(body.get("fields", {}))
        for echoed in _strings([event, payload]):  # the caller's words quoted back: no leak
            said = said.replace(echoed, "")
        assert not LEAKS.search(said), envelope
    elif envelope["type"] in ("status", "success"):
        assert isinstance(body.get("message"), str), envelope
    rid = payload.get("requestIdentifier") if isinstance(payload, dict) else None
    if isinstance(rid, (str, int)) and not isinstance(rid, bool):
        assert envelope.get("requestIdentifier") == rid, envelope


def send(fuzz, caller: str, event: str, payload) -> dict:
    """Send one payload and check every promise the contract makes about the answer."""
    client, watcher = fuzz["clients"][caller], fuzz["watcher"]
    before = fuzz["snapshot"]()
    envelope = client.sio.emit(event, payload, namespace=NAMESPACE, callback=True)
    SENT["payloads"] += 1
    check_envelope(envelope, payload, event)
    pushed = watcher.events()
    for other in fuzz["clients"].values():
        other.events()  # fuzzed subscriptions may have queued events; keep the queues short
    if envelope["type"] == "error":
        assert fuzz["snapshot"]() == before, f"rejected {event} changed the database: {envelope}"
        assert pushed == [], f"rejected {event} pushed events: {pushed}"
    elif pushed:  # the detector itself works: an answered write is seen as a change
        assert fuzz["snapshot"]() != before, (event, pushed)
    # The connection is still there and still answers.
    assert client.sio.is_connected(NAMESPACE), f"{event} dropped the connection"
    alive = client.call("session")
    assert alive["type"] == "status", alive
    return envelope


# --------------------------------------------------------------------------- tests


@pytest.mark.parametrize("decl", DECLARATIONS, ids=lambda d: d.name.removeprefix(QUERY_PREFIX))
@settings(PROFILE)
@given(data=st.data())
def test_every_query_answers_every_payload_with_a_contract_envelope(fuzz, decl, data):
    caller = data.draw(st.sampled_from(CALLERS), label="caller")
    payload = data.draw(payloads(decl, fuzz), label="payload")
    # (revoking the token a fuzzing client is connected with rightly cuts that connection)
    assume(not (isinstance(payload, dict) and str(payload.get("tokenId")) in fuzz["tokens_in_use"]))
    wire_name = data.draw(st.sampled_from((decl.name, *decl.aliases)), label="name")
    send(fuzz, caller, wire_name, payload)


EVENT_NAME_JUNK = st.one_of(
    st.text(ANY_CHAR, max_size=40),
    st.sampled_from(["*", "connect", "disconnect", "message", "connect_error", "queries.","queries.get-map ", "QUERIES.GET-MAP", "queries.get_map",
                     "queries.__init__", "queries.get-map\x00", "events.all", "events.alerts",
                     "x" * 10_000, "queries." + "\ud800", "session\n"]))


@settings(PROFILE, max_examples=PROFILE.max_examples * 4)
@given(caller=st.sampled_from(CALLERS), name=EVENT_NAME_JUNK,
       payload=st.one_of(junk, st.dictionaries(st.text(SAFE_TEXT, max_size=10), junk, max_size=5)))
def test_unknown_event_names_are_refused_cleanly(fuzz, caller, name, payload):
    envelope = send(fuzz, caller, name, payload)
    if name.startswith(("queries.", "session", "subscribe", "unsubscribe")):
        return  # may happen to be a real query name
    assert envelope["type"] == "error" and envelope["data"]["code"] == "unknown_query", envelope


@settings(PROFILE, max_examples=PROFILE.max_examples * 4)
@given(caller=st.sampled_from(CALLERS), decl=st.sampled_from(DECLARATIONS),
       args=st.lists(junk, min_size=0, max_size=4))
def test_any_number_of_arguments_is_handled(fuzz, caller, decl, args):
    """Socket.IO lets a client send zero or several arguments; only the first counts."""
    client = fuzz["clients"][caller]
    before = fuzz["snapshot"]()
    envelope = client.sio.emit(decl.name, *args, namespace=NAMESPACE, callback=True)
    SENT["payloads"] += 1
    check_envelope(envelope, args[0] if args else None)
    if envelope["type"] == "error":
        assert fuzz["snapshot"]() == before
        assert fuzz["watcher"].events() == []
    fuzz["watcher"].events()
    assert client.call("session")["type"] == "status"


def test_the_site_still_works_after_fuzzing(fuzz):
    """After everything above, ordinary requests still succeed for every caller."""
    for caller, client in fuzz["clients"].items():
        assert client.call("queries.get-tiers")["type"] == "data"
        assert client.call("queries.get-properties", {"limit": 5})["type"] == "data"
        assert client.call("session")["data"]["user"]["id"] == caller
    if LONG and fuzz["backend"] == BACKENDS[-1]:  # all backends done: the whole budget sent
        assert SENT["payloads"] >= 10_000, SENT
