"""The watch over LiveKit rooms, on both stores, against the LiveKit stand-in.

Two nodes may hear of one room's changes: each sets its own timer, and the store's note of the
last change decides which timer may end the call.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from pairline.media.livekit import LiveKitMedia
from pairline.media.room_watch import RoomWatch
from pairline.store.base import Store
from tests.media.twirp_server import TwirpRoomServer
from tests.store.conftest import StoreFactory
from tests.store.test_contract import RULES, T0, hello, in_call

KEY, SECRET = "APIroomwatch", "room-watch-secret-long-enough-for-hs256"
ALONE_MS = 1000


@pytest.fixture
async def stand_in() -> AsyncIterator[TwirpRoomServer]:
    async with TwirpRoomServer(KEY, SECRET).running() as server:
        yield server


@pytest.fixture
async def livekit(stand_in: TwirpRoomServer) -> AsyncIterator[LiveKitMedia]:
    media = LiveKitMedia(stand_in.url, KEY, SECRET)
    yield media
    await media.close()


class Node:
    """One node's watch, on the shared store, with a clock the test moves."""

    def __init__(self, livekit: LiveKitMedia, store: Store, clock: list[int]) -> None:
        self.store = store
        self.ended: list[tuple[str, list[str]]] = []
        self.ended_event = asyncio.Event()
        self.watch = RoomWatch(
            livekit,
            store,
            self.end_absent,
            alone_ms=ALONE_MS,
            sweep_ms=60_000,
            clock=lambda: clock[0],
        )

    async def end_absent(self, match_id: str, present: list[str]) -> None:
        effects = await self.store.media_absent(match_id, present, T0)
        if effects:
            self.ended.append((match_id, present))
            self.ended_event.set()


async def test_only_a_timer_as_old_as_the_last_change_on_any_node_ends_the_call(
    stores: StoreFactory, livekit: LiveKitMedia, stand_in: TwirpRoomServer
) -> None:
    store = stores(RULES)
    await hello(store, "a", "b")
    match_id = await in_call(store, "a", "b")
    room = livekit.room_name(match_id)
    await livekit.prepare(match_id, ("a", "b"))
    clock = [T0]
    one, two = Node(livekit, store, clock), Node(livekit, store, clock)

    stand_in.participants[room] = ["a"]
    await one.watch.room_changed(match_id)  # a joined (heard by node one)
    clock[0] += 600
    await two.watch.room_changed(match_id)  # b joined and left again (heard by node two)
    clock[0] += 400
    await one.watch.check(match_id)  # one's timer: a sat alone only 400 ms since b left
    assert one.ended == []
    clock[0] += 600
    stand_in.participants[room] = ["a", "b"]
    await two.watch.check(match_id)  # b is back: nobody is alone
    assert two.ended == []
    stand_in.participants[room] = ["a"]
    await two.watch.check(match_id)  # alone for 1,000 ms since the last change
    assert two.ended == [(match_id, ["a"])] and two.watch.alone_count == 1
    await one.watch.check(match_id)  # the call is over: nothing more
    assert one.ended == []
    for node in (one, two):
        await node.watch.stop()


async def test_a_change_arms_a_timer_that_ends_the_call(
    stores: StoreFactory, livekit: LiveKitMedia, stand_in: TwirpRoomServer
) -> None:
    store = stores(RULES)
    await hello(store, "a", "b")
    match_id = await in_call(store, "a", "b")
    await livekit.prepare(match_id, ("a", "b"))
    stand_in.participants[livekit.room_name(match_id)] = ["b"]
    clock = [T0]
    node = Node(livekit, store, clock)
    node.watch.alone_ms = 50  # a real timer, in real time; the clock says it has passed
    await node.watch.room_changed(match_id)
    clock[0] += 50
    await asyncio.wait_for(node.ended_event.wait(), 5)
    assert node.ended == [(match_id, ["b"])]
    await node.watch.stop()
