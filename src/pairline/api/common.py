"""What every HTTP handler needs: the node's runtime, and the caller's identity."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.requests import Request

from pairline.auth import Identity
from pairline.errors import Unauthorized

if TYPE_CHECKING:
    from pairline.api.runtime import Runtime


def runtime_of(request: Request) -> Runtime:
    runtime: Runtime = request.app.state.runtime
    return runtime


async def bearer_identity(request: Request) -> Identity:
    """The user a request's bearer token names (guest or operator), or 401."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    verified = (
        await runtime_of(request).auth.verify(token.strip()) if scheme.lower() == "bearer" else None
    )
    if verified is None:
        raise Unauthorized("a valid bearer token is required")
    return verified.identity
