"""The churn checker itself: each invariant it claims to check, it catches when broken."""

from __future__ import annotations

import random
from typing import Any

from pairline.client import Client, parse_event
from tests.cluster.churn import User, check_logs


def user_with(user_id: str, messages: list[dict[str, Any]]) -> User:
    client = Client("http://127.0.0.1:1")
    client._user_id = user_id  # a client that never connected, fed a recorded log
    for seq, message in enumerate(messages, 1):
        client.events_log.append(parse_event({"seq": seq, **message}))
    return User(client, random.Random(0))


def confirmed(match_id: str) -> dict[str, Any]:
    return {"type": "match_confirmed", "match_id": match_id, "media": {}}


def in_call(match_id: str, partner: str) -> dict[str, Any]:
    match = {"match_id": match_id, "partner": {"user_id": partner}, "media": None}
    return {"status": "in_call", "position": None, "eta_ms": None, "match": match}


def test_a_clean_history_passes() -> None:
    ann = user_with("ann", [confirmed("m1"), {"type": "partner_left", "match_id": "m1"}])
    bob = user_with(
        "bob", [confirmed("m1"), {"type": "reply", "re": "end-0", "ok": True}, confirmed("m2")]
    )
    cat = user_with("cat", [confirmed("m2")])
    bob.ended["end-0"] = "m1"  # bob's own end, answered before m2 began
    idle = {"status": "idle", "match": None}
    assert check_logs([ann, bob, cat], {"ann": idle, "bob": idle}) == []


def test_a_call_only_one_side_was_told_of_is_a_split_brain() -> None:
    ann = user_with("ann", [confirmed("m1")])
    bob = user_with("bob", [])
    violations = check_logs([ann, bob], {})
    assert violations == ["m1 confirmed for ['ann']"]


def test_a_second_call_before_the_first_ended_is_caught() -> None:
    ann = user_with("ann", [confirmed("m1"), confirmed("m2")])
    bob = user_with("bob", [confirmed("m1")])
    cat = user_with("cat", [confirmed("m2")])
    violations = check_logs([ann, bob, cat], {})
    assert "ann confirmed in m2 during m1" in violations


def test_a_one_sided_final_state_and_an_open_proposal_are_caught() -> None:
    states = {
        "ann": in_call("m1", "bob"),
        "bob": {"status": "queued", "match": None},
        "cat": {"status": "proposed", "match": None},
    }
    violations = sorted(check_logs([], states))
    assert len(violations) == 2
    assert violations[0].startswith("cat still proposed")
    assert violations[1].startswith("one-sided call: ann in m1")


def test_a_blocker_matched_again_with_the_one_it_blocked_is_caught() -> None:
    def matched(match_id: str, partner: str) -> dict[str, Any]:
        return {"type": "matched", "match_id": match_id, "partner": {"user_id": partner}}

    ann = user_with(
        "ann",
        [
            matched("m1", "bob"),
            {"type": "reply", "re": "block-0", "ok": True},
            matched("m2", "cat"),
            matched("m3", "bob"),
        ],
    )
    ann.blocked["block-0"] = "bob"
    assert check_logs([ann], {}) == ["ann matched with bob, blocked before"]
