"""Asyncio client SDK for the pairline matchmaking server (protocol.md, version 1)."""

from .client import Client
from .errors import ClientError, CommandError, ConnectionLost
from .events import (
    Chat,
    Error,
    Event,
    MatchCancelled,
    MatchConfirmed,
    Matched,
    Partner,
    PartnerLeft,
    PartnerReconnecting,
    PartnerResumed,
    Ping,
    Queue,
    QueueCancelled,
    Reply,
    Signal,
    Welcome,
    parse_event,
)

__all__ = [
    "Chat",
    "Client",
    "ClientError",
    "CommandError",
    "ConnectionLost",
    "Error",
    "Event",
    "MatchCancelled",
    "MatchConfirmed",
    "Matched",
    "Partner",
    "PartnerLeft",
    "PartnerReconnecting",
    "PartnerResumed",
    "Ping",
    "Queue",
    "QueueCancelled",
    "Reply",
    "Signal",
    "Welcome",
    "parse_event",
]
