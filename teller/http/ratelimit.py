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
        # key -> [tokens, at], updated in place: one lookup a call, no tuple built and no re-insertion.
        self._buckets: OrderedDict[str, list[float]] = OrderedDict()

    def take(self, key: str) -> float:
        now = self._clock()
        bucket = self._buckets.get(key)
        if bucket is None:
            bucket = self._buckets[key] = [self._burst, now]
            if len(self._buckets) > self._keys_max:
                self._buckets.popitem(last=False)  # forget the least recently seen key
        else:
            self._buckets.move_to_end(key)
        tokens = min(self._burst, bucket[0] + (now - bucket[1]) * self._rate_per_s)
        bucket[1] = now
        if tokens >= 1.0:
            bucket[0] = tokens - 1.0
            return 0.0
        bucket[0] = tokens
        return math.ceil((1.0 - tokens) / self._rate_per_s)
