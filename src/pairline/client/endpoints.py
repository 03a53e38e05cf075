"""Where the server lives: URL derivation and the two plain HTTP calls the client needs."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

_WS_SCHEMES = {"http": "ws", "https": "wss", "ws": "ws", "wss": "wss"}
_HTTP_SCHEMES = {"http": "http", "https": "https", "ws": "http", "wss": "https"}


def _with(base: str, schemes: dict[str, str], path: str) -> str:
    parts = urlsplit(base)
    scheme = schemes.get(parts.scheme.lower())
    if scheme is None or not parts.netloc:
        raise ValueError(f"not an http(s) or ws(s) base URL: {base!r}")
    # Keep a path prefix (a server mounted under /chat), drop query and fragment.
    return urlunsplit((scheme, parts.netloc, parts.path.rstrip("/") + path, "", ""))


def ws_url(base: str) -> str:
    """`http://h:8000` → `ws://h:8000/v1/ws`; `https` → `wss`."""
    return _with(base, _WS_SCHEMES, "/v1/ws")


def http_url(base: str, path: str) -> str:
    """`ws://h:8000`, `/v1/status` → `http://h:8000/v1/status` (http bases are kept)."""
    return _with(base, _HTTP_SCHEMES, path)


async def guest_login(base: str, display_name: str | None, timeout_s: float) -> tuple[str, str]:
    """`POST /v1/auth/guest` → (token, user_id)."""
    body = {"display_name": display_name} if display_name is not None else {}
    async with httpx.AsyncClient(timeout=timeout_s) as http:
        response = await http.post(http_url(base, "/v1/auth/guest"), json=body)
        response.raise_for_status()
        data: dict[str, Any] = response.json()
    return str(data["token"]), str(data["user_id"])


async def fetch_status(base: str, token: str, timeout_s: float) -> dict[str, Any]:
    """`GET /v1/status` with the bearer token → the §4 state snapshot."""
    async with httpx.AsyncClient(timeout=timeout_s) as http:
        response = await http.get(
            http_url(base, "/v1/status"), headers={"Authorization": f"Bearer {token}"}
        )
        response.raise_for_status()
        data: dict[str, Any] = response.json()
    return data
