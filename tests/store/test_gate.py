"""When a node counts itself too busy for new work."""

from __future__ import annotations

import pytest

from pairline.store.redis.gate import (
    MAX_TURN_S,
    MIN_RATE_PER_S,
    MIN_TURN_S,
    RATE_WINDOW_S,
    REQUESTS_PER_JOIN,
    TURN_HEADROOM,
    RequestGate,
)


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


async def test_joins_shed_in_a_burst_are_given_turns_spread_at_the_rate_joins_are_served() -> None:
    clock = FakeClock()
    gate = RequestGate(8, min_pending=10, max_wait_s=1.0, slot_timeout_s=5, clock=clock)
    gate.pending = 500  # two seconds' work ahead at the assumed 250 requests a second
    turns = [gate.turn() for _ in range(100)]
    spacing = REQUESTS_PER_JOIN / (MIN_RATE_PER_S * TURN_HEADROOM)
    assert turns[0] == pytest.approx(2.0)
    assert turns == pytest.approx([2.0 + i * spacing for i in range(100)])

    # Later, the queue gone: the schedule goes on where the burst's turns end...
    clock.now = 1.0
    gate.pending = 0
    assert gate.turn() == pytest.approx(2.0 + 100 * spacing - 1.0)
    # ...and once they are past, a shed join waits the least a retry is worth.
    clock.now = 10.0
    assert gate.turn() == MIN_TURN_S


async def test_past_the_horizon_a_shed_join_comes_back_spread_and_is_judged_again() -> None:
    clock = FakeClock()
    gate = RequestGate(8, min_pending=10, max_wait_s=1.0, slot_timeout_s=5, clock=clock)
    gate.pending = int(MIN_RATE_PER_S * MAX_TURN_S) + 1
    turns = [gate.turn() for _ in range(50)]
    assert all(MAX_TURN_S / 2 <= t <= MAX_TURN_S for t in turns)
    assert len(set(turns)) > 1  # spread, not one instant
    gate.pending = 0  # the swamp cleared: the schedule was not pushed out by those refusals
    assert gate.turn() == MIN_TURN_S
