"""Fixtures of the end-to-end tests."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.e2e.livekit import KEY, SECRET
from tests.media.twirp_server import TwirpRoomServer


@pytest.fixture
async def livekit() -> AsyncIterator[TwirpRoomServer]:
    async with TwirpRoomServer(KEY, SECRET).running() as server:
        yield server
