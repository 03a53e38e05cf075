"""Keeping the §4 state snapshot roughly current between two authoritative copies.

The authoritative snapshot comes from `welcome` or `GET /v1/status`; in between, the
client folds in what events and command replies obviously imply (status, position,
match). Anything subtle (cool-down countdowns, a late `skip`) is left as it was: call
`Client.refresh_state()` when exactness matters.
"""

from __future__ import annotations

from typing import Any

from .events import (
    Event,
    MatchCancelled,
    MatchConfirmed,
    Matched,
    PartnerLeft,
    Queue,
    QueueCancelled,
    Reply,
)

Snapshot = dict[str, Any]


def idle_snapshot() -> Snapshot:
    return {"status": "idle", "position": None, "eta_ms": None, "match": None, "cooldown_ms": None}


def _queued(state: Snapshot, position: Any, eta_ms: Any) -> Snapshot:
    return {**state, "status": "queued", "position": position, "eta_ms": eta_ms, "match": None}


def _idle(state: Snapshot) -> Snapshot:
    return {**state, "status": "idle", "position": None, "eta_ms": None, "match": None}


def match_id_of(state: Snapshot) -> str | None:
    match = state.get("match")
    if isinstance(match, dict):
        value = match.get("match_id")
        return value if isinstance(value, str) else None
    return None


def apply_event(state: Snapshot, event: Event) -> Snapshot:
    """The snapshot after an unsolicited event (not a command answer)."""
    if isinstance(event, Queue):
        return _queued(state, event.position, event.eta_ms)
    if isinstance(event, Matched):
        match = {"match_id": event.match_id, "partner": event.raw.get("partner"), "media": None}
        return {**state, "status": "proposed", "position": None, "eta_ms": None, "match": match}
    if isinstance(event, MatchConfirmed) and event.match_id == match_id_of(state):
        return {**state, "status": "in_call", "match": {**state["match"], "media": event.media}}
    if isinstance(event, (MatchCancelled, PartnerLeft)) and event.match_id == match_id_of(state):
        if event.requeued:
            return _queued(state, event.position, state.get("eta_ms"))
        return _idle(state)
    if isinstance(event, QueueCancelled) and state.get("status") == "queued":
        return _idle(state)
    return state


def apply_reply(state: Snapshot, sent: dict[str, Any], reply: Reply) -> Snapshot:
    """The snapshot after a successful reply to the command we `sent`."""
    body = reply.raw
    command = sent["type"]
    ends_a_call = command in ("skip", "end", "block", "report")
    current = match_id_of(state)
    if ends_a_call and current is not None and current != sent.get("match_id"):
        return state  # late, for a call already over: the one we are in now goes on
    if command == "join":
        return _queued(state, body.get("position"), body.get("eta_ms"))
    if command == "leave":
        return _idle(state)
    if command == "skip":
        cooldown = body.get("cooldown_ms", state.get("cooldown_ms"))
        if body.get("requeued", True):
            queued = _queued(state, body.get("position"), body.get("eta_ms"))
            return {**queued, "cooldown_ms": cooldown}
        return {**_idle(state), "cooldown_ms": cooldown}
    if ends_a_call:
        return _idle(state)
    return state
