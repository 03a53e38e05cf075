import pytest

from pairline.client.endpoints import http_url, ws_url


@pytest.mark.parametrize(
    ("base", "expected"),
    [
        ("http://127.0.0.1:8000", "ws://127.0.0.1:8000/v1/ws"),
        ("http://127.0.0.1:8000/", "ws://127.0.0.1:8000/v1/ws"),
        ("https://chat.example.com", "wss://chat.example.com/v1/ws"),
        ("HTTPS://chat.example.com/pl/", "wss://chat.example.com/pl/v1/ws"),
        ("ws://h:1", "ws://h:1/v1/ws"),
        ("http://h:1?x=1#y", "ws://h:1/v1/ws"),
    ],
)
def test_ws_url(base: str, expected: str) -> None:
    assert ws_url(base) == expected


def test_http_url_maps_ws_schemes_back() -> None:
    assert http_url("wss://h", "/v1/status") == "https://h/v1/status"
    assert http_url("http://h:8000/", "/v1/auth/guest") == "http://h:8000/v1/auth/guest"


@pytest.mark.parametrize("base", ["ftp://h", "127.0.0.1:8000", "http://"])
def test_bad_base_is_rejected(base: str) -> None:
    with pytest.raises(ValueError):
        ws_url(base)
