"""propsec/signals.py: the eventlet signal a grouped request waits on behaves as the
threading.Event it replaces: a waiter wakes once it is set, setting twice is harmless, a
signal set before the wait does not block."""
from __future__ import annotations

import warnings

from propsec import signals


def test_the_eventlet_signal_wakes_its_waiter_and_may_be_set_again():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import eventlet

    kind = signals._eventlet_kind()
    done, woke = kind(), []
    waiter = eventlet.spawn(lambda: woke.append(done.wait() is None))
    eventlet.sleep(0)
    assert woke == [], "it waits until set"
    done.set()
    done.set()  # (a second set must not raise, as eventlet's send would)
    waiter.wait()
    assert woke == [True]
    early = kind()
    early.set()
    assert eventlet.spawn(early.wait).wait() is None, "set before the wait: no blocking"
