"""Real server processes for tests: `python app.py` on a free port with its own database.

Used by the tests that need the whole stack (real sockets, both transports, restarts)."""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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

    def create_user(self, user_id: str, role: str, password: str | None = None,
                    name: str | None = None) -> str:
        args = ["create-user", user_id, "--name", name or user_id.title(), "--role", role]
        if password:
            args += ["--password", password]
        self.flask(*args)
        return self.flask("issue-token", user_id).strip().splitlines()[-1]

    def start(self, timeout: float = 30) -> "LiveServer":
        self.log = open(self.log_path, "ab")
        self.process = subprocess.Popen([sys.executable, "app.py"], cwd=ROOT, env=self.env,
                                        stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"server exited early:\n{self.log_path.read_text()[-3000:]}")
            try:
                if requests.get(self.url + "/healthz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.1)
        raise RuntimeError(f"server did not come up:\n{self.log_path.read_text()[-3000:]}")

    def stop(self, sig: int = signal.SIGTERM) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)
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
