"""Token buckets keyed by user or IP: burst, refill, Retry-After, and the bound on keys."""

from __future__ import annotations

from teller.http.ratelimit import KeyedRateLimiter


class Clock:
    def __init__(self) -> None:
        self.now_s = 1000.0

    def __call__(self) -> float:
        return self.now_s


def test_a_burst_then_wait_for_the_refill() -> None:
    clock = Clock()
    limiter = KeyedRateLimiter(rate_per_s=0.5, burst=2, clock=clock)
    assert [limiter.take("a"), limiter.take("a")] == [0, 0]
    assert limiter.take("a") == 2  # one token takes 2 s at 0.5/s
    clock.now_s += 1.0
    assert limiter.take("a") == 1  # half a token back: 1 s to go
    clock.now_s += 1.0
    assert limiter.take("a") == 0
    assert limiter.take("b") == 0  # another key has its own bucket


def test_refill_stops_at_the_burst() -> None:
    clock = Clock()
    limiter = KeyedRateLimiter(rate_per_s=10.0, burst=3, clock=clock)
    limiter.take("a")
    clock.now_s += 3600.0
    assert [limiter.take("a") for _ in range(3)] == [0, 0, 0]
    assert limiter.take("a") == 1  # a tenth of a second, rounded up to a whole Retry-After


def test_refused_takes_do_not_spend_tokens() -> None:
    clock = Clock()
    limiter = KeyedRateLimiter(rate_per_s=1.0, burst=1, clock=clock)
    assert limiter.take("a") == 0
    assert all(limiter.take("a") == 1 for _ in range(5))
    clock.now_s += 1.0
    assert limiter.take("a") == 0


def test_the_least_recently_seen_key_is_forgotten_first() -> None:
    clock = Clock()
    limiter = KeyedRateLimiter(rate_per_s=0.001, burst=1, keys_max=2, clock=clock)
    assert limiter.take("a") == 0 and limiter.take("b") == 0
    assert limiter.take("a") > 0  # seen again: "b" is now the oldest
    assert limiter.take("c") == 0  # a third key: "b" is forgotten, "a" is kept
    assert limiter.take("a") > 0
    assert limiter.take("b") == 0  # forgotten, so a fresh bucket
