"""Token buckets keyed by user or IP, with a bound on how many keys are remembered."""

from __future__ import annotations

import math
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["KeyedRateLimiter"]

KEYS_TRACKED_MAX = 100_000


class KeyedRateLimiter:
    """``take(key)`` returns 0 when allowed, else the seconds to wait (the Retry-After)."""

    def __init__(
        self,
        *,
        rate_per_s: float,
        burst: int,
        keys_max: int = KEYS_TRACKED_MAX,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        assert rate_per_s > 0 and burst >= 1
        self._rate_per_s = rate_per_s
        self._burst = float(burst)
        self._keys_max = keys_max
        self._clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, at)

    def take(self, key: str) -> float:
        now = self._clock()
        tokens, at = self._buckets.pop(key, (self._burst, now))
        tokens = min(self._burst, tokens + (now - at) * self._rate_per_s)
        wait_s = 0.0
        if tokens >= 1.0:
            tokens -= 1.0
        else:
            wait_s = (1.0 - tokens) / self._rate_per_s
        self._buckets[key] = (tokens, now)
        if len(self._buckets) > self._keys_max:
            self._buckets.popitem(last=False)  # forget the least recently seen key
        return math.ceil(wait_s) if wait_s else 0.0
