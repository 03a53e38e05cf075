import random

import pytest

from pairline.client.backoff import jittered


def test_schedule_keeps_order_and_stays_within_twenty_percent() -> None:
    rng = random.Random(1)
    for _ in range(200):
        delays = jittered((1.0, 2.0, 4.0), rng)
        assert len(delays) == 3
        for got, base in zip(delays, (1.0, 2.0, 4.0), strict=True):
            assert base * 0.8 <= got <= base * 1.2


def test_jitter_actually_varies() -> None:
    rng = random.Random(2)
    firsts = {jittered((1.0,), rng)[0] for _ in range(20)}
    assert len(firsts) > 1
    assert min(firsts) < 0.95 and max(firsts) > 1.05


def test_zero_jitter_is_exact() -> None:
    assert jittered((0.5, 1.0), random.Random(), jitter=0) == [0.5, 1.0]


@pytest.mark.parametrize(("delays", "jitter"), [((-1.0,), 0.2), ((1.0,), 1.0)])
def test_bad_parameters(delays: tuple[float, ...], jitter: float) -> None:
    with pytest.raises(ValueError):
        jittered(delays, random.Random(), jitter)
