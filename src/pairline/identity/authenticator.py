"""One entry point for bearer tokens: pairline's guest tokens first, then the operator's."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pairline.auth import GuestTokens, Identity
from pairline.identity.operator import OperatorTokens


@dataclass(frozen=True, slots=True)
class Verified:
    identity: Identity
    kind: Literal["guest", "operator"]
    # The operator's own `sub` for an operator user: only ever for the operator (e.g. report
    # webhooks), never shown to other users, who see `identity.user_id`.
    subject: str | None = None


class Authenticator:
    def __init__(self, guests: GuestTokens, operator: OperatorTokens | None = None) -> None:
        self._guests = guests
        self._operator = operator

    async def start(self) -> None:
        if self._operator is not None:
            await self._operator.start()

    async def close(self) -> None:
        if self._operator is not None:
            await self._operator.close()

    async def verify(self, token: str) -> Verified | None:
        # Guests first: one HMAC with the node's secret, no I/O ever.
        identity = self._guests.verify(token)
        if identity is not None:
            return Verified(identity, "guest")
        if self._operator is None:
            return None
        found = await self._operator.verify_with_subject(token)
        if found is None:
            return None
        return Verified(found[0], "operator", subject=found[1])
