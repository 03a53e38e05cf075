"""Authenticator: guest tokens first, then the operator's; which kind a token was."""

from __future__ import annotations

from pairline.auth import GuestTokens
from pairline.identity import Authenticator, OperatorTokens, Verified, public_user_id
from tests.identity.conftest import claims, sign

NODE_SECRET = "node-secret-for-guest-tokens-32-bytes!!"
OPERATOR_SECRET = "operator-shared-secret-at-least-32-bytes!"
ID_KEY = b"node-id-key"


def authenticator(with_operator: bool = True) -> Authenticator:
    operator = OperatorTokens(id_key=ID_KEY, secret=OPERATOR_SECRET) if with_operator else None
    return Authenticator(GuestTokens(NODE_SECRET, ttl_s=60), operator)


async def test_guest_token_is_a_guest() -> None:
    auth = authenticator()
    token, identity = GuestTokens(NODE_SECRET, ttl_s=60).issue("Ann")
    assert await auth.verify(token) == Verified(identity, "guest")


async def test_operator_token_is_an_operator_user_with_its_subject() -> None:
    auth = authenticator()
    await auth.start()
    try:
        verified = await auth.verify(sign(claims("acct-7", name="Bob"), OPERATOR_SECRET, "HS256"))
    finally:
        await auth.close()
    assert verified is not None and verified.kind == "operator"
    assert verified.identity.user_id == public_user_id("acct-7", ID_KEY)
    assert verified.identity.display_name == "Bob"
    assert verified.subject == "acct-7"


async def test_operator_tokens_are_refused_when_not_configured() -> None:
    token = sign(claims("acct-7"), OPERATOR_SECRET, "HS256")
    assert await authenticator(with_operator=False).verify(token) is None


async def test_a_guest_token_of_another_node_secret_is_not_an_operator_token() -> None:
    token, _ = GuestTokens("some-other-node-secret-32-bytes-long", ttl_s=60).issue("Eve")
    assert await authenticator().verify(token) is None


async def test_garbage_is_refused() -> None:
    auth = authenticator()
    for token in ("", "abc", "a.b.c", "x" * 20_000):
        assert await auth.verify(token) is None
