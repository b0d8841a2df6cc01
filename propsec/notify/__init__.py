"""Notifications: webhooks and e-mail that reach people who are not looking (contract 15).

The work is rows in the database, done by background workers (propsec/background) that every
server process runs; nothing here runs inside a request.

- `fanout`: reads the committed event log in order from a durable cursor and, in the same
  transaction as the cursor's advance, writes one delivery row per event and matching
  webhook and one outbox message per alert and recipient. A crash before the commit writes
  nothing and the next step reads the same events again; uniqueness on (webhook, event) and
  (recipient, event) makes a second writer's attempt fail rather than duplicate.
- `webhooks`: a process takes one webhook's queue for a short lease, sends its oldest pending
  delivery, records the answer, and goes on in event-id order; a failed delivery waits its
  retry delay and holds back the later ones (order before speed). A process killed mid-send
  leaves the lease to expire and another process sends again: at least once, and once
  answered 2xx never again. After 8 failures in a row the webhook stops.
- `mail`: each outbox message is leased by one process, sent over SMTP, and marked sent;
  temporary failures wait and retry, permanent ones are recorded.

Requests never wait for any of this: they only write their events, as always."""
from __future__ import annotations

from flask import Flask

from ..background import Worker
from . import fanout, mail, webhooks

POLL_SECONDS = 1.0

fanout_worker = Worker("notification fan-out", fanout.step, POLL_SECONDS, 0.05)
webhook_worker = Worker("webhook delivery", webhooks.step, POLL_SECONDS, 0.05)
mail_worker = Worker("mail delivery", mail.step, POLL_SECONDS, 0.05)


def start(app: Flask) -> None:
    fanout.on_new_work = lambda: (webhook_worker.wake(), mail_worker.wake())
    fanout_worker.start(app)
    webhook_worker.start(app)
    mail_worker.start(app)


def listen_again() -> None:
    """A webhook was added: the fan-out stops idling and looks at once."""
    fanout.listen_again()
    fanout_worker.wake()


def wake() -> None:
    """Events were committed in this process: look for new work at once."""
    fanout_worker.wake()
