"""Table tests of the pure pieces: cool-downs, compatibility, deadlines, replay, settings."""

from __future__ import annotations

import json

import pytest

from pairline.core.cooldown import SkipRecord
from pairline.core.deadlines import DeadlineBook
from pairline.core.model import DeadlineKind, Preferences
from pairline.core.policy import Compatibility
from pairline.core.rules import Rules
from pairline.settings import Settings
from pairline.transport.session import Session

RULES = Rules(skip_limit=3, skip_window_ms=10_000, cooldowns_ms=(1000, 5000), good_call_ms=60_000)


def test_cooldown_starts_at_the_limit_and_escalates_then_repeats_the_last() -> None:
    record = SkipRecord()
    assert [record.record_skip(t, RULES) for t in (0, 1, 2)] == [0, 0, 1000]
    assert record.remaining_ms(500) == 502
    assert [record.record_skip(t, RULES) for t in (3000, 3001, 3002)] == [0, 0, 5000]
    assert [record.record_skip(t, RULES) for t in (9000, 9001, 9002)] == [0, 0, 5000]


def test_skips_outside_the_window_do_not_count() -> None:
    record = SkipRecord()
    assert [record.record_skip(t, RULES) for t in (0, 1, 20_000)] == [0, 0, 0]


def test_a_good_call_forgives_count_and_escalation() -> None:
    record = SkipRecord()
    for t in (0, 1, 2):
        record.record_skip(t, RULES)
    record.forgive()
    assert [record.record_skip(t, RULES) for t in (100, 101, 102)] == [0, 0, 1000]


def test_skip_limit_zero_turns_cooldowns_off() -> None:
    record = SkipRecord()
    off = Rules(skip_limit=0)
    assert all(record.record_skip(t, off) == 0 for t in range(100))


@pytest.mark.parametrize(
    ("a", "b", "now", "expected"),
    [
        (Preferences(), Preferences(), 0, True),
        (Preferences(lang="en"), Preferences(lang="fr"), 0, False),
        (Preferences(lang="en"), Preferences(), 0, True),
        (Preferences(frozenset({"x"})), Preferences(frozenset({"x", "y"})), 0, True),
        (Preferences(frozenset({"x"})), Preferences(frozenset({"y"})), 0, False),
        (Preferences(frozenset({"x"})), Preferences(), 0, False),  # a holds out for "x"...
        (Preferences(frozenset({"x"})), Preferences(), 5000, True),  # ...until its wait ends
        (Preferences(frozenset({"x"})), Preferences(frozenset({"y"})), 5000, True),
    ],
)
def test_compatibility(a: Preferences, b: Preferences, now: int, expected: bool) -> None:
    compat = Compatibility(Rules(interest_wait_ms=5000))
    assert compat.compatible("a", a, 0, "b", b, 0, now) is expected


def test_blocks_work_both_ways_and_rematch_expires() -> None:
    compat = Compatibility(Rules(rematch_after_ms=1000))
    compat.block("a", "b")
    assert not compat.compatible("b", Preferences(), 0, "a", Preferences(), 0, 0)
    compat.met("c", "d", at=0)
    assert not compat.compatible("d", Preferences(), 0, "c", Preferences(), 0, 999)
    assert compat.compatible("d", Preferences(), 0, "c", Preferences(), 0, 1000)
    assert not compat.compatible("a", Preferences(), 0, "a", Preferences(), 0, 0)


def test_deadline_book_pops_in_order_and_skips_cancelled_or_replaced() -> None:
    book = DeadlineBook()
    book.set(DeadlineKind.ACK, "m1", 30)
    book.set(DeadlineKind.RESUME, "u1", 10)
    book.set(DeadlineKind.ACK, "m2", 20)
    book.cancel(DeadlineKind.RESUME, "u1")
    book.set(DeadlineKind.ACK, "m1", 25)  # replaces 30
    assert book.next_at() == 20
    assert book.pop_due(19) is None
    assert book.pop_due(100) == (DeadlineKind.ACK, "m2")
    assert book.pop_due(100) == (DeadlineKind.ACK, "m1")
    assert book.pop_due(100) is None and book.next_at() is None


def test_session_numbers_buffers_and_replays_until_acked() -> None:
    session = Session("s", "u", "U", replay_limit=3)
    for n in range(3):
        session.push({"type": "chat", "text": str(n)})
    assert [json.loads(d)["seq"] for d in session.replay_after(1) or []] == [2, 3]
    session.ack(2)
    assert session.replay_after(1) is None  # seq 2 was acked and dropped
    assert [json.loads(d)["text"] for d in session.replay_after(2) or []] == ["2"]
    for n in range(3, 7):
        session.push({"type": "chat", "text": str(n)})
    assert session.replay_after(2) is None  # too far behind: the buffer holds 3
    assert session.replay_after(99) is None  # ahead of what was ever sent


def test_session_reports_which_matched_an_ack_covers() -> None:
    session = Session("s", "u", "U", replay_limit=10)
    session.push({"type": "ping", "nonce": 1})
    seq = session.push({"type": "matched", "match_id": "m1"})
    assert session.ack(seq - 1) == []
    assert session.ack(seq) == ["m1"]
    assert session.ack(seq) == []


def _texts(session: Session) -> list[str]:
    return [json.loads(d)["text"] for d in session.replay_after(0) or []]


def test_session_restores_event_order_and_holds_replies_behind_late_events() -> None:
    session = Session("s", "u", "U", replay_limit=10)
    assert session.deliver(2, {"type": "chat", "text": "event 2"})  # event 1 is on its way
    # A reply to a command that ran after event 2 was made waits for both.
    assert session.reply(2, {"type": "chat", "text": "reply"})
    assert session.reply(3, {"type": "chat", "text": "later reply"})
    assert _texts(session) == []
    assert session.deliver(1, {"type": "chat", "text": "event 1"})  # the later reply waits on
    assert _texts(session) == ["event 1", "event 2", "reply"]
    assert not session.deliver(3, {"type": "chat", "text": "event 3"})
    assert _texts(session)[3:] == ["event 3", "later reply"]
    assert not session.reply(3, {"type": "chat", "text": "caught up"})  # nothing to wait for
    assert _texts(session)[-1] == "caught up"


def test_an_abandoned_gap_drops_held_events_but_sends_waiting_replies() -> None:
    session = Session("s", "u", "U", replay_limit=10)
    session.deliver(3, {"type": "chat", "text": "event 3"})  # 1 and 2 were lost with a node
    session.reply(4, {"type": "chat", "text": "reply"})
    session.abandon_gap()
    assert _texts(session) == ["reply"]  # the client resyncs its state from a welcome
    assert session.events_lost  # …of a fresh session: this stream is not whole
    assert not session.waiting()
    assert not session.deliver(5, {"type": "chat", "text": "event 5"})
    assert _texts(session) == ["reply", "event 5"]


def test_settings_read_the_contracts_names(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PAIRLINE_SKIP_COOLDOWNS_S", "30, 90")
    monkeypatch.setenv("PAIRLINE_ICE_SERVERS", '[{"urls": "stun:stun.example.org"}]')
    monkeypatch.setenv("REDIS_URL", "redis://localhost/0")
    settings = Settings()
    assert settings.skip_cooldowns_s == [30, 90]
    assert settings.ice_servers == [{"urls": "stun:stun.example.org"}]
    assert settings.redis_url == "redis://localhost/0"
    rules = Rules.from_settings(settings)
    assert rules.cooldowns_ms == (30_000, 90_000)
    assert rules.stale_after_ms == 30_000
