"""In-process cost of the write path: `python -m bench.dispatch [--database-url URL] [-n N]`.

Calls the dispatcher directly (no Socket.IO, no network) for `add-alert`, `add-visitor` and
`add-auth-entry` on a fresh database and prints microseconds per request, so that one
change to the write path can be measured against the commit before it in seconds. The
events are delivered inline (no subscriber), as in the test suite."""
from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from propsec import create_app
from propsec.database import init_fresh_db
from propsec.extensions import db
from propsec.models import ACTIVE, CAMERA, Equipment, Property, User
from propsec.protocol.access import Principal
from propsec.protocol.dispatcher import dispatch


class _Connection:
    sid = "bench"

    def take_token(self) -> None:
        pass


def _site(url: str):
    app = create_app({"SQLALCHEMY_DATABASE_URI": url, "PROPSEC_DELIVERY_INLINE": True,
                      "PROPSEC_ASYNC_MODE": "threading"})
    with app.app_context():
        init_fresh_db(app)
        db.session.add(User(id="bench-staff", full_name="Bench Staff", role="staff"))
        prop = Property(owner_id="bench-staff", location="1 Bench Road", tier_id=1, x=0, y=0,
                        width=20, height=20, status=ACTIVE, description="")
        db.session.add(prop)
        db.session.flush()
        camera = Equipment(property_id=prop.id, type_id=CAMERA, description="camera")
        db.session.add(camera)
        db.session.commit()
        return app, prop.id, camera.id


def measure(url: str, count: int, rounds: int = 5) -> dict[str, float]:
    app, pid, camera = _site(url)
    user = Principal("bench-staff", "Bench Staff", "staff")
    writes = {
        "add-alert": {"propertyId": pid, "userId": "bench-staff", "reason": "bench"},
        "add-visitor": {"propertyId": pid, "userId": "visitor", "cameraId": camera},
        "add-auth-entry": {"propertyId": pid, "userId": "stranger"},
    }
    result = {}
    with app.app_context():
        dispatch(user, _Connection(), "queries.get-tiers", {})
        for name, payload in writes.items():
            samples = []
            for _ in range(rounds):
                started = time.perf_counter()
                for _ in range(count):
                    answer = dispatch(user, _Connection(), "queries." + name, payload)
                samples.append((time.perf_counter() - started) / count * 1e6)
                assert answer["type"] == "success", answer
            result[name] = statistics.median(samples)
        db.session.remove()
        db.engine.dispose()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.dispatch", description=__doc__.split("\n\n")[0])
    parser.add_argument("--database-url", help="a PostgreSQL database to use (it is emptied)")
    parser.add_argument("-n", type=int, default=300, help="requests per round")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'dispatch.sqlite'}"
        for name, micros in measure(url, args.n).items():
            print(f"{name:<16} {micros:8.1f} µs per request")


if __name__ == "__main__":
    main()
