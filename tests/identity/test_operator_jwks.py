"""OperatorTokens with keys from a real JWKS server: RS256/ES256, rotation, refresh limits."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json
from collections.abc import AsyncIterator

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from pairline.identity import OperatorTokens, parse_jwks, public_user_id
from tests.identity.conftest import FakeClock, JwksServer, claims, jwk_of, sign

ID_KEY = b"node-id-key"


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
async def tokens(
    jwks_server: JwksServer,
    clock: FakeClock,
    rsa_key: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
) -> AsyncIterator[OperatorTokens]:
    jwks_server.keys = [jwk_of(rsa_key, "rsa-1"), jwk_of(ec_key, "ec-1")]
    operator = OperatorTokens(id_key=ID_KEY, jwks_url=jwks_server.url, clock=clock)
    await operator.start()
    assert jwks_server.requests == 1
    try:
        yield operator
    finally:
        await operator.close()


async def test_rs256_and_es256_verify(
    tokens: OperatorTokens, rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    rs = await tokens.verify(sign(claims("ann", name="Ann"), rsa_key, "RS256", kid="rsa-1"))
    es = await tokens.verify(sign(claims("bob"), ec_key, "ES256", kid="ec-1"))
    assert rs is not None and rs.user_id == public_user_id("ann", ID_KEY)
    assert rs.display_name == "Ann"
    assert es is not None and es.user_id == public_user_id("bob", ID_KEY)


async def test_token_without_kid_tries_the_keys_of_its_algorithm(
    tokens: OperatorTokens, rsa_key: rsa.RSAPrivateKey
) -> None:
    assert await tokens.verify(sign(claims(), rsa_key, "RS256")) is not None


async def test_expired_and_forged_tokens_are_refused(
    tokens: OperatorTokens,
    jwks_server: JwksServer,
    rsa_key: rsa.RSAPrivateKey,
    rsa_key_2: rsa.RSAPrivateKey,
    ec_key: ec.EllipticCurvePrivateKey,
) -> None:
    assert await tokens.verify(sign(claims(ttl_s=-120), rsa_key, "RS256", kid="rsa-1")) is None
    # Signed by another key but claiming a published kid.
    assert await tokens.verify(sign(claims(), rsa_key_2, "RS256", kid="rsa-1")) is None
    # The EC key's kid on an RS256 token, and the other way round.
    assert await tokens.verify(sign(claims(), rsa_key, "RS256", kid="ec-1")) is None
    assert await tokens.verify(sign(claims(), ec_key, "ES256", kid="rsa-1")) is None
    head, _, sig = sign(claims("ann"), rsa_key, "RS256", kid="rsa-1").split(".")
    forged = base64.urlsafe_b64encode(json.dumps(claims("root")).encode()).rstrip(b"=").decode()
    assert await tokens.verify(f"{head}.{forged}.{sig}") is None
    assert jwks_server.requests == 1


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


async def test_alg_none_and_hs256_with_the_public_key_are_refused(
    tokens: OperatorTokens, jwks_server: JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    payload = _b64(json.dumps(claims()).encode())
    none_token = f"{_b64(json.dumps({'alg': 'none', 'kid': 'rsa-1'}).encode())}.{payload}."
    assert await tokens.verify(none_token) is None

    # The classic confusion: HMAC keyed with the public key, which anyone can download.
    pem = rsa_key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    for kid in ("rsa-1", "not-published"):
        header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
        mac = hmac.new(pem, f"{header}.{payload}".encode(), hashlib.sha256).digest()
        assert await tokens.verify(f"{header}.{payload}.{_b64(mac)}") is None
    # Refused on the algorithm alone: an unknown kid on such a token fetches nothing.
    assert jwks_server.requests == 1


async def test_unknown_kid_refreshes_once_then_rate_limits(
    tokens: OperatorTokens,
    jwks_server: JwksServer,
    clock: FakeClock,
    rsa_key: rsa.RSAPrivateKey,
    rsa_key_2: rsa.RSAPrivateKey,
) -> None:
    jwks_server.keys = [jwk_of(rsa_key, "rsa-1"), jwk_of(rsa_key_2, "rsa-2")]  # rotation
    rotated = sign(claims("ann"), rsa_key_2, "RS256", kid="rsa-2")
    assert await tokens.verify(rotated) is not None
    assert jwks_server.requests == 2

    clock.now += 10
    jwks_server.keys.append(jwk_of(rsa_key, "rsa-3"))
    assert await tokens.verify(sign(claims(), rsa_key, "RS256", kid="rsa-3")) is None
    assert jwks_server.requests == 2
    assert await tokens.verify(rotated) is not None  # known kids need no fetch

    clock.now += 25  # 35 s since the last on-demand refresh
    assert await tokens.verify(sign(claims(), rsa_key, "RS256", kid="rsa-3")) is not None
    assert jwks_server.requests == 3


async def test_a_flood_of_unknown_kids_costs_one_request(
    tokens: OperatorTokens, jwks_server: JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    bogus = [sign(claims(), rsa_key, "RS256", kid=f"bogus-{i}") for i in range(50)]
    results = await asyncio.gather(*(tokens.verify(token) for token in bogus))
    assert results == [None] * 50
    assert jwks_server.requests == 2


@pytest.mark.parametrize("outage", ["stopped", "error_status", "garbage"])
async def test_cached_keys_survive_a_failed_refresh(
    outage: str,
    tokens: OperatorTokens,
    jwks_server: JwksServer,
    clock: FakeClock,
    rsa_key: rsa.RSAPrivateKey,
) -> None:
    if outage == "stopped":
        await jwks_server.stop()
    elif outage == "error_status":
        jwks_server.status = 503
    else:
        jwks_server.keys = "not a list"  # type: ignore[assignment]
    # An unknown kid prompts a refresh, which fails.
    assert await tokens.verify(sign(claims(), rsa_key, "RS256", kid="new")) is None
    if outage != "stopped":
        assert jwks_server.requests == 2
    assert await tokens.verify(sign(claims(), rsa_key, "RS256", kid="rsa-1")) is not None


async def test_background_refresh_picks_up_new_keys(
    jwks_server: JwksServer,
    clock: FakeClock,
    rsa_key: rsa.RSAPrivateKey,
    rsa_key_2: rsa.RSAPrivateKey,
) -> None:
    jwks_server.keys = [jwk_of(rsa_key, "rsa-1")]
    operator = OperatorTokens(id_key=ID_KEY, jwks_url=jwks_server.url, refresh_s=0.05, clock=clock)
    await operator.start()
    try:
        # Spend the on-demand refresh; the frozen clock keeps it spent, so only the background
        # loop can fetch from here on.
        assert await operator.verify(sign(claims(), rsa_key, "RS256", kid="spend")) is None
        jwks_server.keys = [jwk_of(rsa_key_2, "rsa-2")]  # rsa-1 retired
        await jwks_server.wait_for_requests(jwks_server.requests + 1)
        # Joins the background fetch the server just saw, or finds its result.
        assert await operator.verify(sign(claims(), rsa_key_2, "RS256", kid="rsa-2")) is not None
        assert await operator.verify(sign(claims(), rsa_key, "RS256", kid="rsa-1")) is None
    finally:
        await operator.close()


async def test_first_fetch_failing_does_not_raise_and_is_retried(
    jwks_server: JwksServer, clock: FakeClock, rsa_key: rsa.RSAPrivateKey
) -> None:
    jwks_server.status = 500
    jwks_server.keys = [jwk_of(rsa_key, "rsa-1")]
    operator = OperatorTokens(
        id_key=ID_KEY, jwks_url=jwks_server.url, refresh_s=60, min_refetch_s=0.05, clock=clock
    )
    await operator.start()
    try:
        token = sign(claims(), rsa_key, "RS256", kid="rsa-1")
        assert await operator.verify(token) is None  # also spends the on-demand refresh
        jwks_server.status = 200
        # After a failure the loop retries every min_refetch_s, not every refresh_s.
        await jwks_server.wait_for_requests(jwks_server.requests + 1)
        assert await operator.verify(token) is not None
    finally:
        await operator.close()


async def test_audience_and_issuer_with_jwks(
    jwks_server: JwksServer, rsa_key: rsa.RSAPrivateKey
) -> None:
    jwks_server.keys = [jwk_of(rsa_key, "rsa-1")]
    operator = OperatorTokens(
        id_key=ID_KEY, jwks_url=jwks_server.url, audience="pairline", issuer="https://id.example"
    )
    await operator.start()
    try:
        good = claims(aud="pairline", iss="https://id.example")
        assert await operator.verify(sign(good, rsa_key, "RS256", kid="rsa-1")) is not None
        bad = claims(aud="pairline", iss="https://other.example")
        assert await operator.verify(sign(bad, rsa_key, "RS256", kid="rsa-1")) is None
    finally:
        await operator.close()


def test_parse_jwks_keeps_only_usable_public_signing_keys(
    rsa_key: rsa.RSAPrivateKey, ec_key: ec.EllipticCurvePrivateKey
) -> None:
    small = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    p384 = ec.generate_private_key(ec.SECP384R1())
    private_jwk = jwk_of(rsa_key, "private")
    private_jwk["d"] = "AQAB"
    keys = parse_jwks(
        {
            "keys": [
                jwk_of(rsa_key, "rsa"),
                jwk_of(ec_key, "ec"),
                {**jwk_of(rsa_key, "enc"), "use": "enc"},
                {**jwk_of(rsa_key, "ps"), "alg": "PS256"},
                private_jwk,
                jwk_of(small, "small"),
                jwk_of(p384, "p384"),
                {"kty": "oct", "kid": "hmac", "k": "c2VjcmV0"},
                {"kty": "RSA", "kid": "broken", "n": "!!", "e": "AQAB"},
                "not a key",
            ]
        }
    )
    assert [(key.kid, key.algorithm) for key in keys] == [("rsa", "RS256"), ("ec", "ES256")]
    with pytest.raises(ValueError):
        parse_jwks({"nokeys": []})
