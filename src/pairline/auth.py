"""Who a bearer token says the user is: signed, expiring guest tokens (HS256 JWTs)."""

from __future__ import annotations

import secrets
import time
from dataclasses import dataclass

import jwt

GUEST_ISSUER = "pairline-guest"
MAX_DISPLAY_NAME = 40


@dataclass(frozen=True, slots=True)
class Identity:
    user_id: str
    display_name: str


class GuestTokens:
    """Issues and verifies guest tokens signed with the node's secret."""

    def __init__(self, secret: str, ttl_s: int) -> None:
        self._secret = secret
        self.ttl_s = ttl_s

    def issue(self, display_name: str | None) -> tuple[str, Identity]:
        user_id = "g_" + secrets.token_hex(8)
        name = clean_display_name(display_name) or "Stranger"
        now = int(time.time())
        claims = {
            "sub": user_id,
            "name": name,
            "iss": GUEST_ISSUER,
            "iat": now,
            "exp": now + self.ttl_s,
        }
        token = jwt.encode(claims, self._secret, algorithm="HS256")
        return token, Identity(user_id, name)

    def verify(self, token: str) -> Identity | None:
        """The identity in a valid, unexpired guest token; None for anything else."""
        try:
            claims = jwt.decode(
                token,
                self._secret,
                algorithms=["HS256"],
                issuer=GUEST_ISSUER,
                options={"require": ["sub", "exp", "iss"]},
            )
        except jwt.PyJWTError:
            return None
        sub, name = claims.get("sub"), claims.get("name")
        if not isinstance(sub, str) or not sub:
            return None
        return Identity(sub, name if isinstance(name, str) else "Stranger")


def clean_display_name(name: str | None) -> str:
    """Printable, trimmed, at most MAX_DISPLAY_NAME characters."""
    if not name:
        return ""
    printable = "".join(ch for ch in name if ch.isprintable())
    return " ".join(printable.split())[:MAX_DISPLAY_NAME]
