"""Script replies → the effects, replies, state views and errors the memory store returns.

Scripts reply with plain arrays (lib.lua says how); the messages users get are built here, in the
same shapes and key order as `pairline.core.matchmaker` builds them, so both backends send the
same bytes. Building them here rather than with cjson also keeps `common_interests: []` a list
and every number exact.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import msgspec

from pairline.core import effects as fx
from pairline.core.model import Match, MatchPhase
from pairline.core.protocol import CloseCode
from pairline.errors import (
    BadRequest,
    Banned,
    Cooldown,
    Internal,
    InvalidState,
    NotFound,
    ProtocolError,
    RateLimited,
    TooLarge,
    Unauthorized,
)
from pairline.store.base import Effects, Reply

_REFUSALS: dict[str, type[ProtocolError]] = {
    cls.code: cls
    for cls in (
        BadRequest,
        Unauthorized,
        InvalidState,
        NotFound,
        RateLimited,
        Cooldown,
        Banned,
        TooLarge,
        Internal,
    )
}


def text(raw: Any) -> Any:
    """The reply with every bytes value decoded (for clients without decode_responses)."""
    if isinstance(raw, bytes):
        return raw.decode()
    if isinstance(raw, list):
        return [text(item) for item in raw]
    return raw


def outcome(raw: Any) -> tuple[Any, Effects]:
    """A script's (reply, effects); raise the refusal it returned instead, if it did."""
    raw = text(raw)
    if raw[0] == "err":
        _, code, message, retry_after_ms = raw
        raise _REFUSALS[code](message, retry_after_ms=retry_after_ms)
    _, reply, effects = raw
    return reply, [effect(e) for e in effects]


def effect(raw: list[Any]) -> fx.Effect:
    tag, *fields = raw
    return _EFFECTS[tag](*fields)


def handed_off(payload: bytes) -> tuple[str, Effects]:
    """A hand-off (lib.lua): the node whose transition it was, and the effects that transition
    had for this node's users.

    It comes as msgpack rather than as a script reply, so its values are made what Redis
    makes of a reply's first (false → None, true → 1, a number → an integer) before they are
    read as the script's effects are."""
    origin, items = _as_reply(msgspec.msgpack.decode(payload))
    return origin, [effect(raw) for raw in items]


def _as_reply(value: Any) -> Any:
    if isinstance(value, list):
        return [_as_reply(item) for item in value]
    if value is False:
        return None
    if value is True:
        return 1
    if isinstance(value, float):
        return int(value)  # Redis cuts a Lua number to an integer, towards zero
    return value


def queue_reply(raw: list[Any]) -> Reply:
    """lib.lua's queue_reply {requeued (-1: absent), position, eta_ms, cooldown_ms}."""
    requeued, position, eta_ms, cooldown_ms = raw
    reply: Reply = {}
    if requeued != -1:
        reply["requeued"] = bool(requeued)
    reply["position"], reply["eta_ms"] = position, eta_ms
    if cooldown_ms is not None:
        reply["cooldown_ms"] = cooldown_ms
    return reply


def state(raw: list[Any]) -> tuple[dict[str, Any], tuple[str, str] | None]:
    """snapshot.lua's reply → (the §4 snapshot, the users of its match)."""
    status, position, eta_ms, info, cooldown_ms, users = raw
    match = None
    if info is not None:
        match_id, partner_id, partner_name, common = info
        match = {
            "match_id": match_id,
            "partner": _partner(partner_id, partner_name, common),
            "media": None,
        }
    out = {
        "status": status,
        "position": position,
        "eta_ms": eta_ms,
        "match": match,
        "cooldown_ms": cooldown_ms,
    }
    return out, (users[0], users[1]) if users is not None else None


def match(raw: list[Any]) -> Match:
    """lib.lua's match_repr → the core's Match."""
    match_id, a, b, phase, created, common, tickets, probing, acked = raw[:9]
    proposed, confirmed, ended, end_reason, ended_by = raw[9:]
    return Match(
        match_id=match_id,
        users=(a, b),
        phase=MatchPhase(phase),
        created_at=created,
        common_interests=tuple(common),
        tickets=dict(zip(tickets[::2], tickets[1::2], strict=True)),
        probing=dict(zip(probing[::2], probing[1::2], strict=True)),
        acked=set(acked),
        proposed_at=proposed,
        confirmed_at=confirmed,
        ended_at=ended,
        end_reason=end_reason,
        ended_by=ended_by,
    )


# ---------------------------------------------------------------------- messages


def _partner(user_id: str, display_name: str, common: list[str]) -> dict[str, Any]:
    return {"user_id": user_id, "display_name": display_name, "common_interests": list(common)}


def _matched(match_id: str, partner_id: str, name: str, common: list[str], ack_ms: int) -> Reply:
    return {
        "type": "matched",
        "match_id": match_id,
        "partner": _partner(partner_id, name, common),
        "ack_within_ms": ack_ms,
    }


def _ended(kind: str) -> Callable[[str, str, int, int | None], Reply]:
    def build(match_id: str, reason: str, requeued: int, position: int | None) -> Reply:
        return {
            "type": kind,
            "match_id": match_id,
            "reason": reason,
            "requeued": bool(requeued),
            "position": position,
        }

    return build


def _reconnecting(match_id: str, grace_ms: int) -> Reply:
    return {"type": "partner_reconnecting", "match_id": match_id, "grace_ms": grace_ms}


def _resumed(match_id: str) -> Reply:
    return {"type": "partner_resumed", "match_id": match_id}


def _queue_cancelled(reason: str) -> Reply:
    return {"type": "queue_cancelled", "reason": reason}


_MESSAGES: dict[str, Callable[..., Reply]] = {
    "matched": _matched,
    "match_cancelled": _ended("match_cancelled"),
    "partner_left": _ended("partner_left"),
    "partner_reconnecting": _reconnecting,
    "partner_resumed": _resumed,
    "queue_cancelled": _queue_cancelled,
}

# ---------------------------------------------------------------------- effects


def _send(user_id: str, node_id: str, order: int, kind: str, *fields: Any) -> fx.Send:
    return fx.Send(user_id, node_id, _MESSAGES[kind](*fields), order)


def _relay(user_id: str, node_id: str, order: int, message: str) -> fx.Send:
    """A chat or signal handed off (relay.lua): the message as its sender's node built it."""
    return fx.Send(user_id, node_id, msgspec.json.decode(message), order)


def _end_session(user_id: str, node_id: str, session_id: str, code: int | None) -> fx.EndSession:
    return fx.EndSession(user_id, node_id, session_id, None if code is None else CloseCode(code))


def _confirmed(
    raw: list[Any], node_a: str, node_b: str, order_a: int, order_b: int
) -> fx.Confirmed:
    return fx.Confirmed(match(raw), (node_a, node_b), (order_a, order_b))


def _call_ended(raw: list[Any]) -> fx.CallEnded:
    return fx.CallEnded(match(raw))


def _match_failed(raw: list[Any], reason: str, detail: list[list[Any]]) -> fx.MatchFailed:
    users = {
        user_id: {
            "presence": presence,
            "last_heard": last_heard,
            "acked": bool(acked),
            "probing": bool(probing),
            "outcome": told,
        }
        for user_id, presence, last_heard, acked, probing, told in detail
    }
    return fx.MatchFailed(match(raw), reason, users)


def _skip_penalty(
    user_id: str, skips: list[int], level: int, cooldown_until: int
) -> fx.SkipPenaltyChanged:
    return fx.SkipPenaltyChanged(user_id, tuple(skips), level, cooldown_until)


_EFFECTS: dict[str, Callable[..., fx.Effect]] = {
    "send": _send,
    "relay": _relay,
    "probe": fx.Probe,
    "end_session": _end_session,
    "confirmed": _confirmed,
    "call_ended": _call_ended,
    "match_failed": _match_failed,
    "blocked": fx.Blocked,
    "skip_penalty": _skip_penalty,
    "wake": fx.WakeAt,
}
