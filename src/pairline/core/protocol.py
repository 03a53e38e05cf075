"""Protocol v1 message types (protocol.md §5) and their input limits.

Client messages decode straight into typed structs; anything else becomes a `BadRequest` or
`TooLarge` naming what was wrong, and the command id when one can be read.
"""

from __future__ import annotations

import enum
from typing import Annotated, Any

import msgspec

from pairline.errors import BadRequest, TooLarge

PROTOCOL_VERSION = 1
MAX_COMMAND_ID = 64
MAX_INTERESTS = 10
MAX_INTEREST_CHARS = 32
MAX_LANG_CHARS = 16
MAX_CHAT_CHARS = 2000
MAX_SIGNAL_BYTES = 16 * 1024
MAX_DETAILS_CHARS = 1000
MAX_REASON_CHARS = 64


class CloseCode(enum.IntEnum):
    """WebSocket close codes of protocol.md §5, and the two standard ones pairline uses."""

    SERVICE_RESTART = 1012  # standard: reconnect (and resume) now
    TRY_AGAIN_LATER = 1013  # standard: a backend is unreachable; reconnect with backoff
    MALFORMED = 4400
    BAD_HELLO = 4401
    BANNED = 4403
    STALE = 4408
    REPLACED = 4409
    FLOOD = 4429


CommandId = Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_COMMAND_ID)]
Interest = Annotated[str, msgspec.Meta(max_length=MAX_INTEREST_CHARS)]
Text = Annotated[str, msgspec.Meta(max_length=64)]  # ids, match ids, nonces


class Hello(msgspec.Struct, tag="hello", tag_field="type"):
    v: int
    token: str
    resume: str | None = None
    last_seq: Annotated[int, msgspec.Meta(ge=0)] = 0


class Join(msgspec.Struct, tag="join", tag_field="type"):
    id: CommandId
    interests: Annotated[list[Interest], msgspec.Meta(max_length=MAX_INTERESTS)] = []
    lang: Annotated[str, msgspec.Meta(max_length=MAX_LANG_CHARS)] | None = None


class Leave(msgspec.Struct, tag="leave", tag_field="type"):
    id: CommandId


class Skip(msgspec.Struct, tag="skip", tag_field="type"):
    id: CommandId
    match_id: Text


class End(msgspec.Struct, tag="end", tag_field="type"):
    id: CommandId
    match_id: Text


class Block(msgspec.Struct, tag="block", tag_field="type"):
    id: CommandId
    match_id: Text


class Report(msgspec.Struct, tag="report", tag_field="type"):
    id: CommandId
    match_id: Text
    reason: Annotated[str, msgspec.Meta(min_length=1, max_length=MAX_REASON_CHARS)]
    details: str = ""  # length checked by hand: over the limit is too_large, not bad_request


class Signal(msgspec.Struct, tag="signal", tag_field="type"):
    match_id: Text
    data: msgspec.Raw  # kept serialised: relayed as is, measured without re-encoding


class Chat(msgspec.Struct, tag="chat", tag_field="type"):
    match_id: Text
    text: str


class MediaLost(msgspec.Struct, tag="media_lost", tag_field="type"):
    match_id: Text


class Ack(msgspec.Struct, tag="ack", tag_field="type"):
    seq: Annotated[int, msgspec.Meta(ge=0)]


class Pong(msgspec.Struct, tag="pong", tag_field="type"):
    nonce: Any = None


Command = Join | Leave | Skip | End | Block | Report
ClientMessage = Command | Hello | Signal | Chat | MediaLost | Ack | Pong

_decoder: msgspec.json.Decoder[ClientMessage] = msgspec.json.Decoder(ClientMessage)
_loose: msgspec.json.Decoder[Any] = msgspec.json.Decoder()
encode = msgspec.json.Encoder().encode


def decode(data: bytes | str) -> ClientMessage:
    """Decode and check one client message; raise BadRequest or TooLarge if it is not valid."""
    try:
        message = _decoder.decode(data)
    except msgspec.DecodeError as exc:
        raise _explain(data, exc) from None
    _check_sizes(message)
    return message


def command_id_of(data: bytes | str) -> str | None:
    """The `id` of a rejected message, if one can be read, so the error can name it."""
    try:
        raw = _loose.decode(data)
    except msgspec.DecodeError:
        return None
    if isinstance(raw, dict):
        value = raw.get("id")
        if isinstance(value, str) and 0 < len(value) <= MAX_COMMAND_ID:
            return value
    return None


def _explain(data: bytes | str, exc: msgspec.DecodeError) -> BadRequest:
    try:
        raw = _loose.decode(data)
    except msgspec.DecodeError:
        return BadRequest("not a JSON message")
    if not isinstance(raw, dict):
        return BadRequest("a message must be a JSON object")
    kind = raw.get("type")
    if not isinstance(kind, str):
        return BadRequest("a message needs a string `type`")
    if kind not in _KNOWN_TYPES:
        return BadRequest(f"unknown message type {kind!r}")
    return BadRequest(f"invalid {kind}: {exc}")


def _check_sizes(message: ClientMessage) -> None:
    if isinstance(message, Chat) and len(message.text) > MAX_CHAT_CHARS:
        raise TooLarge(f"chat text is limited to {MAX_CHAT_CHARS} characters")
    if isinstance(message, Signal) and len(message.data) > MAX_SIGNAL_BYTES:
        raise TooLarge(f"signal data is limited to {MAX_SIGNAL_BYTES} bytes serialised")
    if isinstance(message, Report) and len(message.details) > MAX_DETAILS_CHARS:
        raise TooLarge(f"report details are limited to {MAX_DETAILS_CHARS} characters")


def normalise_interests(interests: list[str]) -> frozenset[str]:
    """Interests compare case-insensitively and without surrounding space; blanks are dropped."""
    return frozenset(i.strip().casefold() for i in interests if i.strip())


_KNOWN_TYPES = frozenset(
    msgspec.inspect.type_info(t).tag  # type: ignore[attr-defined]
    for t in (Join, Leave, Skip, End, Block, Report, Hello, Signal, Chat, MediaLost, Ack, Pong)
)
