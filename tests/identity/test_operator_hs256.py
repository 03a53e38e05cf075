"""OperatorTokens with a shared HS256 secret: claims, expiry, algorithms, derived user ids."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import json

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import given, settings
from hypothesis import strategies as st

from pairline.identity import OperatorTokens, public_user_id
from tests.identity.conftest import claims, sign

SECRET = "operator-shared-secret-at-least-32-bytes!"
ID_KEY = b"node-id-key"


def hs_tokens(**kwargs: object) -> OperatorTokens:
    return OperatorTokens(id_key=ID_KEY, secret=SECRET, **kwargs)  # type: ignore[arg-type]


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def handmade(header: dict[str, object], payload: dict[str, object], key: bytes | None) -> str:
    """A JWT built by hand, for tokens PyJWT refuses to produce (alg none, PEM as HMAC key)."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    if key is None:
        return signing_input + "."
    signature = hmac.new(key, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


async def test_valid_token_gives_derived_id_and_clean_name() -> None:
    token = sign(claims("alice", name="  Alice\x00 \n Smith "), SECRET, "HS256")
    identity = await hs_tokens().verify(token)
    assert identity is not None
    assert identity.user_id == public_user_id("alice", ID_KEY)
    assert identity.display_name == "Alice Smith"


async def test_missing_or_blank_name_is_stranger() -> None:
    tokens = hs_tokens()
    for extra in ({}, {"name": ""}, {"name": "\x07\x08"}, {"name": 12}):
        identity = await tokens.verify(sign(claims("bob", **extra), SECRET, "HS256"))
        assert identity is not None and identity.display_name == "Stranger"


async def test_expired_token_is_refused_beyond_the_leeway() -> None:
    tokens = hs_tokens(leeway_s=10)
    assert await tokens.verify(sign(claims(ttl_s=-60), SECRET, "HS256")) is None
    assert await tokens.verify(sign(claims(ttl_s=-3), SECRET, "HS256")) is not None


async def test_missing_sub_exp_or_blank_sub_is_refused() -> None:
    tokens = hs_tokens()
    no_sub = claims()
    del no_sub["sub"]
    no_exp = claims()
    del no_exp["exp"]
    for payload in (no_sub, no_exp, claims(""), claims(sub=123)):  # type: ignore[arg-type]
        token = handmade({"alg": "HS256", "typ": "JWT"}, payload, SECRET.encode())
        assert await tokens.verify(token) is None


async def test_wrong_secret_or_tampered_payload_is_refused() -> None:
    tokens = hs_tokens()
    assert (
        await tokens.verify(sign(claims(), "another-secret-also-32-bytes-long!!", "HS256")) is None
    )
    head, _, sig = sign(claims("alice"), SECRET, "HS256").split(".")
    forged_payload = b64(json.dumps(claims("admin")).encode())
    assert await tokens.verify(f"{head}.{forged_payload}.{sig}") is None


async def test_alg_none_is_refused() -> None:
    token = handmade({"alg": "none", "typ": "JWT"}, claims(), None)
    assert await hs_tokens().verify(token) is None


async def test_asymmetric_token_is_refused_in_secret_mode(rsa_key: rsa.RSAPrivateKey) -> None:
    assert await hs_tokens().verify(sign(claims(), rsa_key, "RS256")) is None


async def test_audience_and_issuer_are_checked_when_configured() -> None:
    tokens = hs_tokens(audience="pairline", issuer="https://id.example")
    good = claims(aud="pairline", iss="https://id.example")
    assert await tokens.verify(sign(good, SECRET, "HS256")) is not None
    for bad in (
        claims(iss="https://id.example"),
        claims(aud="pairline"),
        claims(aud="other", iss="https://id.example"),
        claims(aud="pairline", iss="https://evil.example"),
    ):
        assert await tokens.verify(sign(bad, SECRET, "HS256")) is None


async def test_audience_is_ignored_when_not_configured() -> None:
    token = sign(claims(aud="whatever"), SECRET, "HS256")
    assert await hs_tokens().verify(token) is not None


async def test_oversized_token_is_refused_without_parsing() -> None:
    token = sign(claims(pad="x" * 10_000), SECRET, "HS256")
    assert await hs_tokens().verify(token) is None


def test_public_user_id_is_stable_opaque_and_keyed() -> None:
    first = public_user_id("user-42", ID_KEY)
    assert first == public_user_id("user-42", ID_KEY)
    assert first.startswith("o_") and len(first) == 2 + 26
    assert first[2:] == first[2:].lower() and "=" not in first
    assert "user-42" not in first
    assert first != public_user_id("user-43", ID_KEY)
    assert first != public_user_id("user-42", b"another-key")


@given(st.text(max_size=64))
def test_public_user_id_never_is_the_sub(sub: str) -> None:
    user_id = public_user_id(sub, ID_KEY)
    assert user_id != sub and user_id.startswith("o_") and not user_id.startswith("g_")


def test_constructor_refuses_bad_configurations() -> None:
    with pytest.raises(ValueError):
        OperatorTokens(id_key=ID_KEY)
    with pytest.raises(ValueError):
        OperatorTokens(id_key=ID_KEY, secret=SECRET, jwks_url="http://127.0.0.1/jwks.json")
    with pytest.raises(ValueError):
        OperatorTokens(id_key=ID_KEY, secret="short")
    with pytest.raises(ValueError):
        OperatorTokens(id_key=b"", secret=SECRET)
    with pytest.raises(ValueError):
        OperatorTokens(id_key=ID_KEY, secret=SECRET, leeway_s=60)


@settings(max_examples=100, deadline=None)
@given(
    st.one_of(
        st.text(max_size=300), st.from_regex(r"[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]*\.[A-Za-z0-9_\-]*")
    )
)
def test_garbage_never_raises(token: str) -> None:
    assert asyncio.run(hs_tokens().verify(token)) is None
