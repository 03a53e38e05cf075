"""The operator's own user tokens: HS256 with a shared secret, or RS256/ES256 from its JWKS."""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Callable
from typing import Any

import httpx
import jwt

from pairline.auth import Identity, clean_display_name
from pairline.identity.jwks import JwksCache, PublicKey

OPERATOR_ID_PREFIX = "o_"
# RFC 7518 §3.2: an HS256 key must be at least as long as the hash.
MIN_SECRET_BYTES = 32
MAX_LEEWAY_S = 30.0
# Far above any real JWT; keeps parsing cheap for garbage.
MAX_TOKEN_CHARS = 8192
JWKS_ALGORITHMS = frozenset({"RS256", "ES256"})


def public_user_id(sub: str, key: bytes) -> str:
    """The id pairline shows for an operator user: "o_" + the first 16 bytes of
    HMAC-SHA256(key, sub) in lowercase base32 without padding (26 characters).

    Stable for a given key, so blocks keep working across sessions and nodes; the `sub` itself
    cannot be read back from it. Guest ids start with "g_", so the two never collide.
    """
    digest = hmac.new(key, sub.encode(), hashlib.sha256).digest()[:16]
    return OPERATOR_ID_PREFIX + base64.b32encode(digest).decode().rstrip("=").lower()


class OperatorTokens:
    """Verifies the operator's JWTs in exactly one mode: a shared HS256 `secret`, or RS256/ES256
    keys from `jwks_url`. Only that mode's algorithms are accepted, so a token signed with
    HS256 using a public key as the secret (algorithm confusion) never verifies.

    `id_key` keys `public_user_id`: it must be the same on every node and across restarts.
    Without an `audience`, a token's `aud` claim is not checked.
    """

    def __init__(
        self,
        *,
        id_key: bytes,
        secret: str | None = None,
        jwks_url: str | None = None,
        audience: str | None = None,
        issuer: str | None = None,
        leeway_s: float = 10.0,
        refresh_s: float = 300.0,
        min_refetch_s: float = 30.0,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if (secret is None) == (jwks_url is None):
            raise ValueError("give exactly one of secret (HS256) or jwks_url (RS256/ES256)")
        if secret is not None and len(secret.encode()) < MIN_SECRET_BYTES:
            raise ValueError(f"the HS256 secret must be at least {MIN_SECRET_BYTES} bytes")
        if not id_key:
            raise ValueError("id_key must not be empty")
        if not 0 <= leeway_s <= MAX_LEEWAY_S:
            raise ValueError(f"leeway_s must be between 0 and {MAX_LEEWAY_S}")
        self._id_key = id_key
        self._secret = secret
        self._audience = audience
        self._issuer = issuer
        self._leeway_s = leeway_s
        self._required = ["sub", "exp"]
        self._required += ["aud"] if audience is not None else []
        self._required += ["iss"] if issuer is not None else []
        self._jwks = (
            JwksCache(
                jwks_url, refresh_s=refresh_s, min_refetch_s=min_refetch_s, http=http, clock=clock
            )
            if jwks_url is not None
            else None
        )

    async def start(self) -> None:
        if self._jwks is not None:
            await self._jwks.start()

    async def close(self) -> None:
        if self._jwks is not None:
            await self._jwks.close()

    async def verify(self, token: str) -> Identity | None:
        """The identity in a valid operator token; None for anything else."""
        verified = await self.verify_with_subject(token)
        return verified[0] if verified is not None else None

    async def verify_with_subject(self, token: str) -> tuple[Identity, str] | None:
        """As `verify`, plus the raw `sub`: for the operator's own eyes (its moderation tool),
        never for other users."""
        if len(token) > MAX_TOKEN_CHARS:
            return None
        if self._secret is not None:
            claims = self._decode(token, self._secret, "HS256")
        else:
            claims = await self._decode_with_jwks(token)
        if claims is None:
            return None
        sub, name = claims.get("sub"), claims.get("name")
        if not isinstance(sub, str) or not sub:
            return None
        display_name = clean_display_name(name if isinstance(name, str) else None) or "Stranger"
        return Identity(public_user_id(sub, self._id_key), display_name), sub

    async def _decode_with_jwks(self, token: str) -> dict[str, Any] | None:
        assert self._jwks is not None
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError:
            return None
        algorithm, kid = header.get("alg"), header.get("kid")
        # Checked before any lookup: a token of another algorithm never prompts a refresh.
        if algorithm not in JWKS_ALGORITHMS or (kid is not None and not isinstance(kid, str)):
            return None
        if kid is not None and not self._jwks.knows(kid):
            await self._jwks.refresh_for_unknown_kid()
        for key in self._jwks.candidates(kid, algorithm):
            claims = self._decode(token, key.key, key.algorithm)
            if claims is not None:
                return claims
        return None

    def _decode(self, token: str, key: str | PublicKey, algorithm: str) -> dict[str, Any] | None:
        try:
            return jwt.decode(
                token,
                key,
                algorithms=[algorithm],
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway_s,
                options={
                    "require": self._required,
                    "verify_aud": self._audience is not None,
                    # A weak key is refused outright rather than warned about on every token.
                    "enforce_minimum_key_length": True,
                },
            )
        except jwt.PyJWTError:
            return None
