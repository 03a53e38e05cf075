"""Every error pairline raises, and the wire code each one carries.

PairlineError
├── ProtocolError              answered to the client as `error{code, message}` (protocol.md §5)
│   ├── BadRequest             bad_request: not a valid message
│   ├── Unauthorized           unauthorized: no, bad or expired token
│   ├── InvalidState           invalid_state: the command does not fit the user's state
│   ├── NotFound               not_found: no such match (or not the user's)
│   ├── RateLimited            rate_limited
│   │   └── Busy               rate_limited: shed while the store is overloaded (transient)
│   ├── Cooldown               cooldown: skipping too often; carries retry_after_ms
│   ├── Banned                 banned
│   ├── TooLarge               too_large: over an input limit; nothing relayed or stored
│   └── Internal               internal: a backend failed; the command had no effect
└── StoreUnavailable           a backend (Redis, the database) is unreachable → Internal
"""

from __future__ import annotations

from typing import ClassVar


class PairlineError(Exception):
    """Base of all pairline errors."""


class ProtocolError(PairlineError):
    """An error the client is told about, with its wire code."""

    code: ClassVar[str] = "internal"

    def __init__(self, message: str, *, retry_after_ms: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.retry_after_ms = retry_after_ms

    def to_wire(self, re: str | None = None) -> dict[str, object]:
        out: dict[str, object] = {"type": "error", "code": self.code, "message": self.message}
        if re is not None:
            out["re"] = re
        if self.retry_after_ms is not None:
            out["retry_after_ms"] = self.retry_after_ms
        return out


class BadRequest(ProtocolError):
    code = "bad_request"


class Unauthorized(ProtocolError):
    code = "unauthorized"


class InvalidState(ProtocolError):
    code = "invalid_state"

    @classmethod
    def expected(cls, command: str, expected: str, actual: str) -> InvalidState:
        return cls(f"{command} needs status {expected}, but the user is {actual}")


class NotFound(ProtocolError):
    code = "not_found"


class RateLimited(ProtocolError):
    code = "rate_limited"


class Busy(RateLimited):
    """A join shed while the store is overloaded. Transient: unlike other refusals it is not
    remembered as the command's answer, so the same command id may simply be sent again."""


class Cooldown(ProtocolError):
    code = "cooldown"


class Banned(ProtocolError):
    code = "banned"


class TooLarge(ProtocolError):
    code = "too_large"


class Internal(ProtocolError):
    code = "internal"


class StoreUnavailable(PairlineError):
    """A backend could not be reached; the transition did not happen."""
