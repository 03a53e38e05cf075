"""Keys, a token factory and a real JWKS server (Starlette under uvicorn on a free port)."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jwt.algorithms import ECAlgorithm, RSAAlgorithm
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from tests.localhttp import serving


class FakeClock:
    """The monotonic clock OperatorTokens rate-limits refreshes with, moved by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class JwksServer:
    """Serves `{"keys": self.keys}` at /jwks.json; counts requests; can answer `status`."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.status = 200
        self.requests = 0
        self.url = ""
        self._counted = asyncio.Condition()
        self._serving: contextlib.AbstractAsyncContextManager[str] | None = None

    async def _jwks(self, request: Request) -> JSONResponse:
        async with self._counted:
            self.requests += 1
            self._counted.notify_all()
        return JSONResponse({"keys": self.keys}, status_code=self.status)

    async def wait_for_requests(self, count: int, timeout: float = 5.0) -> None:
        async with self._counted:
            await asyncio.wait_for(self._counted.wait_for(lambda: self.requests >= count), timeout)

    async def start(self) -> None:
        app = Starlette(routes=[Route("/jwks.json", self._jwks)])
        self._serving = serving(app)
        self.url = await self._serving.__aenter__() + "/jwks.json"

    async def stop(self) -> None:
        if self._serving is not None:
            await self._serving.__aexit__(None, None, None)
            self._serving = None


@pytest.fixture
async def jwks_server() -> AsyncIterator[JwksServer]:
    server = JwksServer()
    await server.start()
    try:
        yield server
    finally:
        await server.stop()


@pytest.fixture(scope="session")
def rsa_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def rsa_key_2() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture(scope="session")
def ec_key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def jwk_of(key: rsa.RSAPrivateKey | ec.EllipticCurvePrivateKey, kid: str | None) -> dict[str, Any]:
    """The public JWK of a private key, as an operator would publish it."""
    public = key.public_key()
    if isinstance(public, rsa.RSAPublicKey):
        jwk = dict(RSAAlgorithm.to_jwk(public, as_dict=True))
    else:
        jwk = dict(ECAlgorithm.to_jwk(public, as_dict=True))
    jwk["use"] = "sig"
    if kid is not None:
        jwk["kid"] = kid
    return jwk


def claims(sub: str = "user-42", ttl_s: int = 300, **extra: Any) -> dict[str, Any]:
    now = int(time.time())
    return {"sub": sub, "iat": now, "exp": now + ttl_s, **extra}


def sign(
    payload: dict[str, Any],
    key: Any,
    algorithm: str,
    kid: str | None = None,
) -> str:
    headers = {"kid": kid} if kid is not None else None
    return jwt.encode(payload, key, algorithm=algorithm, headers=headers)
