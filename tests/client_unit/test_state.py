from typing import Any

from pairline.client.events import Event, Reply, parse_event
from pairline.client.state import apply_event, apply_reply, idle_snapshot, match_id_of


def ev(type_: str, **fields: Any) -> Event:
    return parse_event({"type": type_, "seq": 1, **fields})


def reply(**fields: Any) -> Reply:
    r = parse_event({"type": "reply", "seq": 1, "re": "c", "ok": True, **fields})
    assert isinstance(r, Reply)
    return r


MATCHED = ev("matched", match_id="m1", partner={"user_id": "u2"}, ack_within_ms=5000)


def test_a_whole_call() -> None:
    s = apply_reply(idle_snapshot(), {"type": "join"}, reply(position=2, eta_ms=900))
    assert (s["status"], s["position"], s["eta_ms"]) == ("queued", 2, 900)
    s = apply_event(s, ev("queue", position=1, eta_ms=100))
    assert s["position"] == 1
    s = apply_event(s, MATCHED)
    assert s["status"] == "proposed" and s["position"] is None
    assert match_id_of(s) == "m1" and s["match"]["media"] is None
    s = apply_event(s, ev("match_confirmed", match_id="m1", media={"kind": "p2p"}))
    assert s["status"] == "in_call" and s["match"]["media"] == {"kind": "p2p"}
    s = apply_event(
        s, ev("partner_left", match_id="m1", reason="skipped", requeued=True, position=4)
    )
    assert (s["status"], s["position"], s["match"]) == ("queued", 4, None)


def test_events_for_another_match_change_nothing() -> None:
    s = apply_event(idle_snapshot(), MATCHED)
    assert apply_event(s, ev("partner_left", match_id="old", reason="ended")) == s
    assert apply_event(s, ev("match_confirmed", match_id="old", media={})) == s


def test_cancelled_without_requeue_goes_idle() -> None:
    s = apply_event(idle_snapshot(), MATCHED)
    s = apply_event(s, ev("match_cancelled", match_id="m1", reason="ack_timeout", requeued=False))
    assert s["status"] == "idle" and s["match"] is None


def test_skip_into_cooldown_is_idle() -> None:
    s = apply_event(idle_snapshot(), MATCHED)
    s = apply_reply(s, {"type": "skip", "match_id": "m1"}, reply(requeued=False, cooldown_ms=60000))
    assert (s["status"], s["cooldown_ms"], s["match"]) == ("idle", 60000, None)


def test_end_and_leave_go_idle_and_queue_cancelled_too() -> None:
    queued = apply_reply(idle_snapshot(), {"type": "join"}, reply(position=1))
    assert apply_reply(queued, {"type": "leave"}, reply())["status"] == "idle"
    assert apply_event(queued, ev("queue_cancelled", reason="shutdown"))["status"] == "idle"
    in_call = apply_event(idle_snapshot(), MATCHED)
    assert apply_reply(in_call, {"type": "end", "match_id": "m1"}, reply())["status"] == "idle"


def test_a_late_skip_or_end_for_an_earlier_call_leaves_the_current_one() -> None:
    # We sent `end m0` as m0's partner left; we were re-matched into m1 before the reply came.
    in_call = apply_event(
        apply_event(idle_snapshot(), MATCHED), ev("match_confirmed", match_id="m1", media={})
    )
    for command in ("skip", "end", "block", "report"):
        assert apply_reply(in_call, {"type": command, "match_id": "m0"}, reply()) is in_call
    queued = apply_reply(idle_snapshot(), {"type": "join"}, reply(position=3))
    assert apply_reply(queued, {"type": "end", "match_id": "m0"}, reply())["status"] == "idle"


def test_unrelated_events_keep_the_state_object() -> None:
    s = idle_snapshot()
    assert apply_event(s, ev("ping", nonce="n")) is s
    assert apply_reply(s, {"type": "custom"}, reply()) is s
