"""Typed server→client messages (protocol.md §2 `welcome`, §5 server → client table).

`parse_event` never raises: a message of an unknown type, or a known type with fields
that do not fit, becomes a plain `Event`, so a newer server cannot crash an older client.
Every event keeps the decoded JSON object it came from in `.raw`.
"""

from __future__ import annotations

from typing import Any

import msgspec

# `raw` is attached after conversion; renamed so that no wire field can land in it.
_RAW_KEY = "__pairline_raw__"


class Event(msgspec.Struct, kw_only=True, frozen=True):
    """Any server message with a `seq`; the fallback for unknown or malformed ones."""

    type: str
    # 0 only for a message that came without a usable seq; real ones start at 1.
    seq: int = 0
    raw: dict[str, Any] = msgspec.field(default_factory=dict, name=_RAW_KEY)


class Queue(Event, kw_only=True, frozen=True):
    position: int | None = None
    eta_ms: int | None = None


class Partner(msgspec.Struct, kw_only=True, frozen=True):
    user_id: str
    display_name: str | None = None
    common_interests: list[str] = msgspec.field(default_factory=list)


class Matched(Event, kw_only=True, frozen=True):
    match_id: str
    partner: Partner
    ack_within_ms: int | None = None


class MatchConfirmed(Event, kw_only=True, frozen=True):
    match_id: str
    # {"kind": "p2p", ...} or {"kind": "livekit", ...}: kept as a dict, the caller picks.
    media: dict[str, Any] = msgspec.field(default_factory=dict)


class MatchCancelled(Event, kw_only=True, frozen=True):
    match_id: str
    reason: str
    requeued: bool = False
    position: int | None = None


class PartnerLeft(Event, kw_only=True, frozen=True):
    match_id: str
    reason: str
    requeued: bool = False
    position: int | None = None


class PartnerReconnecting(Event, kw_only=True, frozen=True):
    match_id: str
    grace_ms: int | None = None


class PartnerResumed(Event, kw_only=True, frozen=True):
    match_id: str


class QueueCancelled(Event, kw_only=True, frozen=True):
    reason: str


class Signal(Event, kw_only=True, frozen=True):
    match_id: str
    data: Any = None
    ts: int | float | str | None = None


class Chat(Event, kw_only=True, frozen=True):
    match_id: str
    text: str
    ts: int | float | str | None = None


class Ping(Event, kw_only=True, frozen=True):
    # Echoed back untouched in `pong`, so its JSON type is not constrained.
    nonce: Any = None


class Error(Event, kw_only=True, frozen=True):
    code: str
    message: str = ""
    re: str | None = None
    retry_after_ms: int | None = None


class Reply(Event, kw_only=True, frozen=True):
    re: str
    ok: bool = True

    @property
    def payload(self) -> dict[str, Any]:
        """The reply minus its envelope (`type`, `re`, `seq`)."""
        return {k: v for k, v in self.raw.items() if k not in ("type", "re", "seq")}


class Welcome(msgspec.Struct, kw_only=True, frozen=True):
    """The connection's first message; it has no `seq` and is not part of the stream."""

    session: str
    user_id: str
    last_seq: int = 0
    state: dict[str, Any] = msgspec.field(default_factory=dict)
    heartbeat_ms: int | None = None
    replayed: int = 0
    raw: dict[str, Any] = msgspec.field(default_factory=dict, name=_RAW_KEY)


EVENT_TYPES: dict[str, type[Event]] = {
    "queue": Queue,
    "matched": Matched,
    "match_confirmed": MatchConfirmed,
    "match_cancelled": MatchCancelled,
    "partner_left": PartnerLeft,
    "partner_reconnecting": PartnerReconnecting,
    "partner_resumed": PartnerResumed,
    "queue_cancelled": QueueCancelled,
    "signal": Signal,
    "chat": Chat,
    "ping": Ping,
    "error": Error,
    "reply": Reply,
}


def parse_event(raw: dict[str, Any]) -> Event:
    """Turn one decoded server message (a JSON object with a `type`) into an event."""
    cls = EVENT_TYPES.get(str(raw.get("type")), Event)
    try:
        event = msgspec.convert(raw, cls)
    except msgspec.ValidationError:
        seq = raw.get("seq")
        return Event(
            type=str(raw.get("type")),
            seq=seq if isinstance(seq, int) and not isinstance(seq, bool) else 0,
            raw=raw,
        )
    # The very object received, not a copy: cheap, and `raw is message` for callers.
    msgspec.structs.force_setattr(event, "raw", raw)
    return event


def parse_welcome(raw: dict[str, Any]) -> Welcome:
    """Parse a `welcome`; raises `msgspec.ValidationError` if it is not one."""
    if raw.get("type") != "welcome":
        raise msgspec.ValidationError(f"expected welcome, got {raw.get('type')!r}")
    welcome = msgspec.convert(raw, Welcome)
    msgspec.structs.force_setattr(welcome, "raw", raw)
    return welcome


def describe(event: Event) -> str:
    """A one-line summary for logs and timeout messages."""
    fields = {k: v for k, v in event.raw.items() if k not in ("type", "seq")}
    text = f"{event.type}#{event.seq} {fields}"
    return text if len(text) <= 200 else text[:197] + "..."
