"""Local endpoints for notification tests: an HTTP receiver for webhooks and an SMTP server
(aiosmtpd), both in the test process on free ports, recording what they get."""
from __future__ import annotations

import threading
import time
from email import message_from_bytes, policy
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Waiting:
    """`wait(predicate)`: poll until predicate(self) holds or the time is up."""

    def wait(self, predicate, timeout: float = 15.0) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(0.05)
        return predicate(self)


class Receiver(Waiting):
    """Records every POST (headers and exact body); answers with the statuses in `script`
    in turn (then `default`)."""

    def __init__(self, default: int = 200, host: str = "127.0.0.1", port: int = 0):
        self.requests: list[dict] = []
        self.script: list[int] = []
        self.default = default
        self._lock = threading.Lock()
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):  # noqa: N802 - the http.server protocol
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with owner._lock:
                    status = owner.script.pop(0) if owner.script else owner.default
                    owner.requests.append({"path": self.path, "headers": dict(self.headers),
                                           "body": body, "status": status})
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://{host}:{self.port}/hook"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def answered(self, status_range=range(200, 300)) -> list[dict]:
        with self._lock:
            return [r for r in self.requests if r["status"] in status_range]

    def close(self):
        self.server.shutdown()
        self.server.server_close()


class MailBox(Waiting):
    """An SMTP server (aiosmtpd) that keeps every message; `refuse` answers the next
    deliveries with a temporary failure (451) that many times."""

    def __init__(self):
        from aiosmtpd.controller import Controller

        self.messages = []
        self.refuse = 0
        box = self

        class Handler:
            async def handle_DATA(self, server, session, envelope):  # noqa: N802 - aiosmtpd API
                if box.refuse > 0:
                    box.refuse -= 1
                    return "451 4.3.0 try again later"
                box.messages.append({"to": list(envelope.rcpt_tos),
                                     "message": message_from_bytes(envelope.content, policy=policy.default)})
                return "250 OK"

        from bench.servers import free_port

        port = free_port()
        self.controller = Controller(Handler(), hostname="127.0.0.1", port=port)
        self.controller.start()
        self.url = f"smtp://127.0.0.1:{port}"

    def to(self, address: str) -> list:
        return [m["message"] for m in self.messages if address in m["to"]]

    def close(self):
        self.controller.stop()
