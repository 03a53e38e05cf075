"""When a node counts itself too busy for new work, and which work never waits behind it."""

from __future__ import annotations

import asyncio

from pairline.store.redis.gate import MIN_RATE_PER_S, RATE_WINDOW_S, RequestGate


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


async def test_new_work_is_shed_once_the_queue_outlasts_the_wait_at_the_measured_rate() -> None:
    clock = FakeClock()
    gate = RequestGate(8, min_pending=10, max_wait_s=1.0, slot_timeout_s=5, clock=clock)
    assert gate.rate == MIN_RATE_PER_S
    # 2,000 requests complete in one window: the node carries 4,000 a second.
    for _ in range(2000):
        async with gate.slot("join"):
            pass
    clock.now += RATE_WINDOW_S
    async with gate.slot("join"):
        pass
    assert gate.rate == (MIN_RATE_PER_S + 2001 / RATE_WINDOW_S) / 2

    gate.pending = 2000  # 2,000 waiting: under a second's work at that rate
    assert not gate.overloaded()
    gate.pending = int(gate.rate) + 1  # more than a second's work
    assert gate.overloaded()
    gate.pending = 9  # below the floor nothing is shed, whatever the rate
    gate.rate = 1.0
    assert not gate.overloaded()


async def test_work_in_progress_passes_a_bulk_lane_that_is_full() -> None:
    gate = RequestGate(8, min_pending=1, max_wait_s=0, slot_timeout_s=5)
    release = asyncio.Event()

    async def hold() -> None:
        async with gate.slot("join"):
            await release.wait()

    holders = [asyncio.create_task(hold()) for _ in range(6)]  # the bulk lane: 8 - 2 kept
    await asyncio.sleep(0)  # one turn of the loop: each holder takes its connection
    assert gate.pending == 6 and gate.overloaded()
    async with asyncio.timeout(1):
        async with gate.slot("heard", priority=True):  # not queued behind the joins
            pass
    release.set()
    await asyncio.gather(*holders)
    assert gate.pending == 0 and not gate.overloaded()
