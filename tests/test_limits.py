"""Token buckets, keyed buckets and connection counters: examples and properties."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from pairline.limits import ConnectionCounter, KeyedBuckets, TokenBucket

rates = st.floats(min_value=0.01, max_value=1000)
bursts = st.floats(min_value=1, max_value=100)
# Steps between calls, and how many tokens each call asks for.
calls = st.lists(
    st.tuples(st.floats(min_value=0, max_value=10), st.sampled_from([1, 1, 1, 0.5, 2, 5])),
    max_size=80,
)


def test_bucket_starts_full_then_refills_at_its_rate() -> None:
    bucket = TokenBucket(rate_per_s=2, burst=3)
    assert [bucket.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert bucket.retry_after(0.0) == pytest.approx(0.5)
    assert not bucket.take(0.4)
    assert bucket.take(0.5)
    assert not bucket.take(0.5)


def test_waiting_exactly_retry_after_is_enough() -> None:
    bucket = TokenBucket(rate_per_s=0.1, burst=1)
    now = 123.456
    assert bucket.take(now)
    for _ in range(20):
        now += bucket.retry_after(now)
        assert bucket.take(now)


def test_refusal_takes_nothing_and_oversized_requests_never_pass() -> None:
    bucket = TokenBucket(rate_per_s=1, burst=2)
    assert not bucket.take(0.0, n=3)
    assert bucket.available(0.0) == 2
    assert bucket.retry_after(0.0, n=3) == math.inf
    assert bucket.retry_after(0.0) == 0.0


def test_clock_going_back_neither_refills_nor_breaks() -> None:
    bucket = TokenBucket(rate_per_s=1, burst=1)
    assert bucket.take(10.0)
    assert not bucket.take(5.0)
    assert not bucket.take(10.5)
    assert bucket.take(11.0)


def test_bucket_refuses_bad_parameters() -> None:
    for rate, burst in ((0, 1), (1, 0), (-1, 1)):
        with pytest.raises(ValueError):
            TokenBucket(rate, burst)


@given(rates, bursts, calls)
def test_bucket_never_grants_more_than_burst_plus_rate_times_span(
    rate: float, burst: float, steps: list[tuple[float, float]]
) -> None:
    bucket = TokenBucket(rate, burst)
    now, granted = 0.0, []
    for step, n in steps:
        now += step
        if bucket.take(now, n):
            granted.append((now, n))
    for i, (start, _) in enumerate(granted):
        total = 0.0
        for end, n in granted[i:]:
            total += n
            assert total <= burst + rate * (end - start) + 1e-6


@given(rates, bursts, calls)
def test_bucket_left_alone_refills_to_burst(
    rate: float, burst: float, steps: list[tuple[float, float]]
) -> None:
    bucket = TokenBucket(rate, burst)
    now = 0.0
    for step, n in steps:
        now += step
        bucket.take(now, n)
    assert bucket.is_full(now + burst / rate)
    assert bucket.available(now + burst / rate + 100) == burst
    later = now + bucket.retry_after(now, burst)
    assert bucket.take(later, burst)


def test_keyed_buckets_limit_each_key_separately() -> None:
    buckets = KeyedBuckets(rate_per_s=1, burst=2)
    assert buckets.take("a", 0.0) and buckets.take("a", 0.0)
    assert not buckets.take("a", 0.0)
    assert buckets.retry_after("a", 0.0) == pytest.approx(1.0)
    assert buckets.take("b", 0.0)
    assert buckets.retry_after("never-seen", 0.0) == 0.0


def test_keyed_buckets_forget_buckets_that_are_full_again() -> None:
    buckets = KeyedBuckets(rate_per_s=1, burst=2)
    for key in ("a", "b", "c"):
        buckets.take(key, 0.0)
    assert len(buckets) == 3
    buckets.take("d", 5.0)
    assert len(buckets) == 1


def test_keyed_buckets_evict_the_least_recently_used_at_capacity() -> None:
    buckets = KeyedBuckets(rate_per_s=0.001, burst=1, max_keys=2)
    assert buckets.take("a", 0.0)
    assert buckets.take("b", 0.0)
    assert not buckets.take("a", 1.0)  # "a" is now the most recently used
    assert buckets.take("c", 1.0)  # evicts "b"
    assert len(buckets) == 2
    assert not buckets.take("a", 1.0)
    assert buckets.take("b", 1.0)  # forgotten, so full again


@given(
    st.integers(min_value=1, max_value=20),
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=60), st.floats(min_value=0, max_value=3)),
        max_size=300,
    ),
)
def test_keyed_buckets_never_hold_more_than_max_keys(
    max_keys: int, steps: list[tuple[int, float]]
) -> None:
    buckets = KeyedBuckets(rate_per_s=1, burst=3, max_keys=max_keys)
    now = 0.0
    for key, step in steps:
        now += step
        buckets.take(key, now)
        assert len(buckets) <= max_keys


def test_connection_counter_limits_and_forgets_keys_at_zero() -> None:
    counter = ConnectionCounter(limit_per_key=2)
    assert counter.acquire("ip") and counter.acquire("ip")
    assert not counter.acquire("ip")
    assert counter.acquire("other")
    counter.release("ip")
    assert counter.count("ip") == 1 and counter.acquire("ip")
    for _ in range(2):
        counter.release("ip")
    counter.release("other")
    assert len(counter) == 0
    counter.release("ip")  # one release too many: ignored, never negative
    assert counter.count("ip") == 0 and len(counter) == 0


@given(st.lists(st.tuples(st.sampled_from("abc"), st.booleans()), max_size=200))
def test_connection_counter_matches_a_model(ops: list[tuple[str, bool]]) -> None:
    counter, model = ConnectionCounter(limit_per_key=3), dict.fromkeys("abc", 0)
    for key, acquire in ops:
        if acquire:
            assert counter.acquire(key) == (model[key] < 3)
            model[key] = min(3, model[key] + 1)
        else:
            counter.release(key)
            model[key] = max(0, model[key] - 1)
        assert all(counter.count(k) == model[k] for k in model)
        assert len(counter) == sum(1 for v in model.values() if v)
