"""When a node counts itself too busy for new work."""

from __future__ import annotations

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
