"""The operator's signing keys: fetched from its JWKS URL, cached, refreshed in the background."""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Literal

import httpx
import structlog
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from jwt.exceptions import PyJWTError

log = structlog.get_logger("pairline.identity")

JwksAlgorithm = Literal["RS256", "ES256"]
PublicKey = rsa.RSAPublicKey | ec.EllipticCurvePublicKey

# A JWKS holds a handful of keys; anything far bigger is a misconfigured URL, not key material.
MAX_JWKS_BYTES = 256 * 1024
MIN_RSA_BITS = 2048


@dataclass(frozen=True, slots=True)
class SigningKey:
    kid: str | None
    algorithm: JwksAlgorithm
    key: PublicKey


def parse_jwks(document: Any) -> list[SigningKey]:
    """The usable verification keys of a JWKS document; ValueError when it is not one.

    Keys pairline cannot or must not use (symmetric, private, encryption-only, other curves or
    algorithms, RSA under 2048 bits) are skipped rather than failing the whole set.
    """
    if not isinstance(document, dict) or not isinstance(document.get("keys"), list):
        raise ValueError('not a JWKS document: expected {"keys": [...]}')
    return [key for key in map(_parse_jwk, document["keys"]) if key is not None]


def _parse_jwk(jwk: Any) -> SigningKey | None:
    if not isinstance(jwk, dict) or jwk.get("use", "sig") != "sig" or "d" in jwk:
        return None
    kid = jwk.get("kid")
    if kid is not None and not isinstance(kid, str):
        return None
    key: Any
    algorithm: JwksAlgorithm
    try:
        if jwk.get("kty") == "RSA":
            key, algorithm = RSAAlgorithm.from_jwk(jwk), "RS256"
            usable = isinstance(key, rsa.RSAPublicKey) and key.key_size >= MIN_RSA_BITS
        elif jwk.get("kty") == "EC":
            key, algorithm = ECAlgorithm.from_jwk(jwk), "ES256"
            usable = isinstance(key, ec.EllipticCurvePublicKey) and isinstance(
                key.curve, ec.SECP256R1
            )
        else:
            return None
    except (PyJWTError, ValueError, TypeError, KeyError):
        return None
    # A key that names its algorithm is used with that algorithm only.
    if not usable or jwk.get("alg", algorithm) != algorithm:
        return None
    return SigningKey(kid, algorithm, key)


class JwksCache:
    """Keys from one JWKS URL. Lookups never touch the network; fetches happen in the background
    every `refresh_s`, and on demand for an unknown `kid` at most once per `min_refetch_s`.
    A failed fetch keeps the keys already held."""

    def __init__(
        self,
        url: str,
        *,
        refresh_s: float = 300.0,
        min_refetch_s: float = 30.0,
        timeout_s: float = 5.0,
        http: httpx.AsyncClient | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._url = url
        self._refresh_s = refresh_s
        self._min_refetch_s = min_refetch_s
        self._timeout_s = timeout_s
        self._http = http
        self._owns_http = http is None
        self._clock = clock
        self._by_kid: dict[str, SigningKey] = {}
        self._keys: list[SigningKey] = []
        self._last_ok = False
        self._last_on_demand: float | None = None
        self._inflight: asyncio.Task[bool] | None = None
        self._loop: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """First fetch, then the refresh loop. A failed first fetch is logged, not raised: the
        loop retries every `min_refetch_s` until it succeeds."""
        if self._http is None:
            self._http = httpx.AsyncClient(timeout=self._timeout_s)
        await self.refresh()
        self._loop = asyncio.create_task(self._refresh_loop(), name="jwks-refresh")

    async def close(self) -> None:
        for task in (self._loop, self._inflight):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        self._loop = self._inflight = None
        if self._owns_http and self._http is not None:
            await self._http.aclose()
            self._http = None

    def knows(self, kid: str) -> bool:
        return kid in self._by_kid

    def candidates(self, kid: str | None, algorithm: str) -> list[SigningKey]:
        """Keys that may have signed a token with this header: the one named by `kid`, or every
        key of the algorithm when the token names none."""
        if kid is not None:
            key = self._by_kid.get(kid)
            return [key] if key is not None and key.algorithm == algorithm else []
        return [key for key in self._keys if key.algorithm == algorithm]

    async def refresh(self) -> bool:
        """Fetch now, or join the fetch already under way. True when it succeeded."""
        task = self._inflight
        if task is None:
            task = self._inflight = asyncio.create_task(self._fetch(), name="jwks-fetch")
            task.add_done_callback(self._fetch_done)
        # Shielded: a verifier that gives up must not cancel the fetch others are waiting on.
        return await asyncio.shield(task)

    async def refresh_for_unknown_kid(self) -> bool:
        """A refresh for a token naming a key not held, rate-limited so a flood of made-up kids
        costs the operator's endpoint at most one request per `min_refetch_s`."""
        if self._inflight is not None:
            return await self.refresh()
        now = self._clock()
        if self._last_on_demand is not None and now - self._last_on_demand < self._min_refetch_s:
            return False
        self._last_on_demand = now
        return await self.refresh()

    def _fetch_done(self, task: asyncio.Task[bool]) -> None:
        if self._inflight is task:
            self._inflight = None

    async def _refresh_loop(self) -> None:
        while True:
            # After a failure, retry sooner than the regular interval: keys may be missing.
            wait = self._refresh_s if self._last_ok else min(self._refresh_s, self._min_refetch_s)
            await asyncio.sleep(wait)
            await self.refresh()

    async def _fetch(self) -> bool:
        try:
            keys = await self._download()
        except (httpx.HTTPError, OSError, ValueError) as exc:
            self._last_ok = False
            log.warning("jwks_fetch_failed", url=self._url, error=repr(exc), kept=len(self._keys))
            return False
        self._keys = keys
        self._by_kid = {key.kid: key for key in keys if key.kid is not None}
        self._last_ok = True
        if not keys:
            log.warning("jwks_has_no_usable_keys", url=self._url)
        return True

    async def _download(self) -> list[SigningKey]:
        if self._http is None:
            raise RuntimeError("JwksCache.start() was not called")
        body = bytearray()
        async with (
            asyncio.timeout(self._timeout_s),
            self._http.stream("GET", self._url, headers={"Accept": "application/json"}) as resp,
        ):
            resp.raise_for_status()
            async for chunk in resp.aiter_bytes():
                body += chunk
                if len(body) > MAX_JWKS_BYTES:
                    raise ValueError(f"JWKS document over {MAX_JWKS_BYTES} bytes")
        return parse_jwks(json.loads(body))
