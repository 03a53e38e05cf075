import msgspec
import pytest

from pairline.client.events import (
    Chat,
    Error,
    Event,
    MatchConfirmed,
    Matched,
    PartnerLeft,
    Ping,
    Queue,
    Reply,
    describe,
    parse_event,
    parse_welcome,
)


def test_known_types_parse_to_their_struct() -> None:
    raw = {
        "type": "matched",
        "seq": 4,
        "match_id": "m1",
        "partner": {"user_id": "u2", "display_name": "bob", "common_interests": ["go"]},
        "ack_within_ms": 5000,
    }
    ev = parse_event(raw)
    assert isinstance(ev, Matched)
    assert (ev.type, ev.seq, ev.match_id, ev.ack_within_ms) == ("matched", 4, "m1", 5000)
    assert ev.partner.display_name == "bob"
    assert ev.partner.common_interests == ["go"]
    assert ev.raw is raw


@pytest.mark.parametrize(
    ("raw", "cls"),
    [
        ({"type": "queue", "seq": 1, "position": 2, "eta_ms": None}, Queue),
        (
            {"type": "match_confirmed", "seq": 2, "match_id": "m", "media": {"kind": "p2p"}},
            MatchConfirmed,
        ),
        (
            {
                "type": "partner_left",
                "seq": 3,
                "match_id": "m",
                "reason": "skipped",
                "requeued": True,
                "position": 1,
            },
            PartnerLeft,
        ),
        ({"type": "chat", "seq": 4, "match_id": "m", "text": "hi", "ts": 17}, Chat),
        ({"type": "ping", "seq": 5, "nonce": {"any": "json"}}, Ping),
        ({"type": "error", "seq": 6, "code": "too_large", "message": "x"}, Error),
    ],
)
def test_each_type_maps_to_its_class(raw: dict[str, object], cls: type[Event]) -> None:
    assert type(parse_event(raw)) is cls


def test_unknown_fields_are_ignored_but_kept_in_raw() -> None:
    ev = parse_event({"type": "queue", "seq": 9, "position": 1, "eta_ms": 5, "future": [1]})
    assert isinstance(ev, Queue)
    assert ev.raw["future"] == [1]


def test_unknown_type_falls_back_to_plain_event() -> None:
    ev = parse_event({"type": "brand_new", "seq": 7, "x": 1})
    assert type(ev) is Event
    assert (ev.type, ev.seq, ev.raw["x"]) == ("brand_new", 7, 1)


def test_malformed_known_type_falls_back_without_raising() -> None:
    ev = parse_event({"type": "matched", "seq": 3, "match_id": 12})  # no partner, bad id
    assert type(ev) is Event
    assert (ev.type, ev.seq) == ("matched", 3)


def test_bool_seq_is_not_a_seq() -> None:
    ev = parse_event({"type": "queue", "seq": True})
    assert type(ev) is Event
    assert ev.seq == 0


def test_reply_payload_drops_only_the_envelope() -> None:
    ev = parse_event({"type": "reply", "seq": 2, "re": "c1", "ok": True, "position": 3})
    assert isinstance(ev, Reply)
    assert ev.payload == {"ok": True, "position": 3}


def test_error_answer_keeps_re_and_retry() -> None:
    ev = parse_event(
        {
            "type": "error",
            "seq": 2,
            "re": "c1",
            "code": "cooldown",
            "message": "wait",
            "retry_after_ms": 60000,
        }
    )
    assert isinstance(ev, Error)
    assert (ev.re, ev.code, ev.retry_after_ms) == ("c1", "cooldown", 60000)


def test_welcome() -> None:
    raw = {
        "type": "welcome",
        "session": "s",
        "user_id": "u",
        "last_seq": 3,
        "state": {"status": "idle"},
        "heartbeat_ms": 15000,
        "replayed": 2,
    }
    w = parse_welcome(raw)
    assert (w.session, w.user_id, w.last_seq, w.heartbeat_ms, w.replayed) == ("s", "u", 3, 15000, 2)
    assert w.raw is raw
    with pytest.raises(msgspec.ValidationError):
        parse_welcome({"type": "error", "code": "unauthorized"})


def test_describe_is_short() -> None:
    text = describe(parse_event({"type": "chat", "seq": 1, "match_id": "m", "text": "x" * 500}))
    assert text.startswith("chat#1 ")
    assert len(text) <= 200
