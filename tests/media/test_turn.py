"""TURN REST credentials against vectors computed here, independently of the module."""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from pairline.media.turn import ice_servers_for, turn_credentials


def test_known_vector() -> None:
    # Fixed by hand: expiry 1700000000 + 3600, HMAC-SHA1 keyed by the shared secret.
    username, credential = turn_credentials("north", "alice", ttl_s=3600, now=1_700_000_000)
    assert username == "1700003600:alice"
    expected = base64.b64encode(
        hmac.new(b"north", b"1700003600:alice", hashlib.sha1).digest()
    ).decode()
    assert credential == expected
    # The same value from `openssl dgst -sha1 -hmac north -binary | base64`.
    assert credential == "wjwSXO2ch1B6VaLTLMy2Avn5O9o="
    assert len(base64.b64decode(credential)) == 20  # a SHA-1 digest


def test_credentials_differ_per_user_and_secret() -> None:
    a = turn_credentials("s", "alice", 60, 0)
    assert a != turn_credentials("s", "bob", 60, 0)
    assert a[1] != turn_credentials("t", "alice", 60, 0)[1]


def test_user_id_with_colon_is_refused() -> None:
    with pytest.raises(ValueError):
        turn_credentials("s", "a:b", 60, 0)


def test_ice_servers_for_appends_turn_entry() -> None:
    base = [{"urls": ["stun:stun.example.org:3478"]}]
    urls = ["turn:turn.example.org:3478?transport=udp", "turns:turn.example.org:5349"]
    servers = ice_servers_for("bob", base, urls, "north", ttl_s=600, now=1000)
    assert servers[0] == base[0]
    user, cred = "1600:bob", hmac.new(b"north", b"1600:bob", hashlib.sha1).digest()
    assert servers[1] == {
        "urls": urls,
        "username": user,
        "credential": base64.b64encode(cred).decode(),
    }
    assert base == [{"urls": ["stun:stun.example.org:3478"]}]  # input left alone
    assert ice_servers_for("bob", base, [], "north", 600, 1000) == base
