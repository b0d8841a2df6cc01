"""Real server processes for tests: `python app.py` on a free port with its own database.

Used by the tests that need the whole stack (real sockets, both transports, restarts)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import requests

from bench.servers import free_port, stop_process  # (process helpers shared with bench/)

ROOT = Path(__file__).resolve().parent.parent


class LiveServer:
    def __init__(self, tmp_path: Path, *, database_url: str | None = None, port: int | None = None,
                 **env: str):
        self.port = port or free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = tmp_path / f"server-{self.port}.log"
        self.env = {**os.environ, "PROPSEC_PORT": str(self.port), "PROPSEC_HOST": "127.0.0.1",
                    "PROPSEC_SEED_DEMO": "0", "PROPSEC_SECRET_KEY": "test-secret-key",
                    "PROPSEC_DATABASE_URL": database_url or f"sqlite:///{tmp_path / 'live.sqlite'}",
                    "PYTHONUNBUFFERED": "1", **env}
        self.process: subprocess.Popen | None = None

    def flask(self, *args: str) -> str:
        """Run a `flask --app app` command against this server's database; return stdout."""
        done = subprocess.run([sys.executable, "-m", "flask", "--app", "app", *args], cwd=ROOT,
                              env=self.env, capture_output=True, text=True, timeout=120)
        if done.returncode != 0:
            raise RuntimeError(f"flask {' '.join(args[:1])} failed: {done.stderr[-2000:]}")
        return done.stdout

    def init_db(self) -> None:
        """What `flask --app app init-db` does, in this process (a subprocess costs seconds)."""
        from propsec.database import init_db

        app = self.local_app()
        with app.app_context():
            init_db(app)

    def local_app(self):
        """An app in the test process on the server's database, for fast set-up."""
        if getattr(self, "_local_app", None) is None:
            from propsec import create_app

            self._local_app = create_app({"SQLALCHEMY_DATABASE_URI": self.env["PROPSEC_DATABASE_URL"],
                                          "PROPSEC_ASYNC_MODE": "threading"})
        return self._local_app

    def create_user(self, user_id: str, role: str, password: str | None = None,
                    name: str | None = None) -> str:
        """Create (or update) a user and return a fresh API token for it."""
        from propsec.extensions import db
        from propsec.models import User
        from propsec.security import hash_password, issue_token

        with self.local_app().app_context():
            user = db.session.get(User, user_id) or User(id=user_id)
            user.full_name, user.role = name or user_id.title(), role
            if password:
                user.password_hash = hash_password(password)
            db.session.add(user)
            db.session.commit()
            token = issue_token(user_id)
            db.session.remove()
            return token

    def start(self, timeout: float = 90, healthy: bool = True) -> "LiveServer":
        """Start and wait for /healthz: a 200, or with `healthy=False` any answer at all
        (a server whose queue is down answers 503); the answer is kept in `first_health`."""
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=self.env,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()[-3000:]}")
            try:
                answer = requests.get(self.url + "/healthz", timeout=5)
                if answer.status_code == 200 or not healthy:
                    self.first_health = answer
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not come up:\n{self.log_path.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        stop_process(self.process, sig)
        self.process = None
        if getattr(self, "log", None):
            self.log.close()

    def restart(self) -> "LiveServer":
        self.stop()
        return self.start()

    def __enter__(self) -> "LiveServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()
