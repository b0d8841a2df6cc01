"""Wake-up hints between processes (propsec/pipeline/hints.py), the rules on their own:
a process announces only rows it wrote, and a hint turns into a read of the log only when
the tailer has not got that far by itself. (test_cluster.py runs two real processes whose
only prompt way to hear of each other's events is these hints.)"""
from __future__ import annotations

import pytest

from propsec.config import load_settings
from propsec.pipeline import hints
from propsec.pipeline.hints import HeardHints, HintSender


def sender() -> HintSender:
    return HintSender("redis://127.0.0.1:1/0", "test", lambda: "me")


def test_a_read_owes_a_hint_only_after_a_commit_of_this_process():
    s = sender()
    assert not s.after_read(s.before_read(), cursor=10, blocked=False)  # others' rows only
    s.committed()
    commits = s.before_read()
    assert s.after_read(commits, cursor=12, blocked=False)
    assert s._owed == 12
    assert not s.after_read(s.before_read(), cursor=15, blocked=False)  # announced already


def test_a_commit_during_a_read_is_announced_by_the_next_one():
    s = sender()
    commits = s.before_read()
    s.committed()  # (its rows may be after what this read saw)
    assert not s.after_read(commits, cursor=5, blocked=False)
    assert s.after_read(s.before_read(), cursor=6, blocked=False)


def test_a_read_held_back_keeps_the_hint_owed_until_one_is_not():
    s = sender()
    s.committed()
    assert s.after_read(s.before_read(), cursor=7, blocked=True)
    assert s.after_read(s.before_read(), cursor=9, blocked=False)
    assert s._owed == 9
    assert not s.after_read(s.before_read(), cursor=9, blocked=False)


def test_a_failed_send_forgets_the_hint_and_says_so_once(caplog):
    s = sender()
    s.committed()
    s.after_read(s.before_read(), cursor=3, blocked=False)
    s.step()  # nothing listens on port 1
    assert s._owed is None and s._failing
    assert sum("cannot send wake-up hints" in r.message for r in caplog.records) == 1


class Tailer:
    def __init__(self, cursor):
        self.cursor = cursor
        self.woken = 0


def heard_by(tailer: Tailer):
    checks = []
    heard = HeardHints(lambda: tailer.cursor, lambda: setattr(tailer, "woken", tailer.woken + 1),
                       lambda: checks.append(1))
    return heard, checks


def test_a_hint_the_tailer_has_passed_is_dropped(monkeypatch):
    tailer = Tailer(cursor=20)
    heard, checks = heard_by(tailer)
    heard.heard(20)
    heard.heard(3)
    assert checks == [] and tailer.woken == 0


def test_a_hint_ahead_wakes_the_tailer_unless_it_got_there_meanwhile(monkeypatch):
    monkeypatch.setattr(hints.socketio, "sleep", lambda seconds: None)
    tailer = Tailer(cursor=20)
    heard, checks = heard_by(tailer)
    heard.heard(25)
    assert checks == [1] and tailer.woken == 0  # not at once: the check comes later
    tailer.cursor = 30  # its own read took the rows in
    heard.step()
    assert tailer.woken == 0
    heard.heard(40)
    heard.step()
    assert tailer.woken == 1


def test_look_now_hints_wake_the_tailer_at_once():
    tailer = Tailer(cursor=None)
    heard, checks = heard_by(tailer)
    heard.heard(None)  # the listener reconnected, or an older process hinted
    assert tailer.woken == 1 and checks == []
    heard.heard(1)  # a tailer not started yet is behind everything
    assert checks == [1]


@pytest.mark.parametrize("text", ["0", "-1", "soon", "nan", "inf"])
def test_a_poll_interval_that_is_not_a_positive_number_is_refused(monkeypatch, tmp_path, text):
    monkeypatch.setenv("PROPSEC_EVENT_POLL_SECONDS", text)
    with pytest.raises(ValueError, match="PROPSEC_EVENT_POLL_SECONDS must be a positive"):
        load_settings(tmp_path)


def test_the_poll_interval_is_read_from_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("PROPSEC_EVENT_POLL_SECONDS", "2.5")
    assert load_settings(tmp_path)["PROPSEC_EVENT_POLL_SECONDS"] == 2.5
    monkeypatch.delenv("PROPSEC_EVENT_POLL_SECONDS")
    assert load_settings(tmp_path)["PROPSEC_EVENT_POLL_SECONDS"] == 0.5
