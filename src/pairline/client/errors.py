"""Exceptions raised by the client SDK."""

from __future__ import annotations

from typing import Any


class ClientError(Exception):
    """Base class of every exception this package raises on purpose."""


class CommandError(ClientError):
    """The server answered a command with `error{re: id, ...}` (protocol.md §3)."""

    def __init__(
        self,
        code: str,
        message: str = "",
        retry_after_ms: int | None = None,
        payload: dict[str, Any] | None = None,
    ) -> None:
        super().__init__(f"{code}: {message}" if message else code)
        self.code = code
        self.message = message
        self.retry_after_ms = retry_after_ms
        self.payload: dict[str, Any] = payload if payload is not None else {}


class ConnectionLost(ClientError):
    """The client stopped for good: a close code that means "don't come back"
    (4401, 4403, 4409), reconnection gave up, or the client was closed.

    `code` is the close code received from the server, or None when there was none
    (network failure, gave up, closed locally).
    """

    def __init__(self, code: int | None, reason: str = "") -> None:
        super().__init__(f"connection lost (code {code}){': ' + reason if reason else ''}")
        self.code = code
        self.reason = reason
