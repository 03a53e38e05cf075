"""Short-lived TURN credentials per the TURN REST API draft (coturn's `use-auth-secret`).

The TURN server shares `static-auth-secret` with us and recomputes the password itself, so no
credential is stored anywhere; the expiry inside the username is what limits its use.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from typing import Any


def turn_credentials(secret: str, user_id: str, ttl_s: int, now: int) -> tuple[str, str]:
    """(username, credential): `"<expiry unix>:<user_id>"`, base64(HMAC-SHA1(secret, username))."""
    if ":" in user_id:
        # coturn splits the username at ':' to find the expiry; keep the user part unambiguous.
        raise ValueError("user_id must not contain ':'")
    username = f"{now + ttl_s}:{user_id}"
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return username, base64.b64encode(digest).decode("ascii")


def ice_servers_for(
    user_id: str,
    base_ice_servers: list[dict[str, Any]],
    turn_urls: list[str],
    secret: str,
    ttl_s: int,
    now: int,
) -> list[dict[str, Any]]:
    """The configured ICE servers plus our TURN server with credentials for this user only."""
    if not turn_urls:
        return list(base_ice_servers)
    username, credential = turn_credentials(secret, user_id, ttl_s, now)
    turn = {"urls": list(turn_urls), "username": username, "credential": credential}
    return [*base_ice_servers, turn]
