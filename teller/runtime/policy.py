"""Pure decisions of a supervisor: restart or not, intensity, backoff, who restarts with whom.

No clocks, no randomness, no state: the caller passes ``now`` and a uniform draw, so every rule is
a plain function a test can table.
"""

from __future__ import annotations

from bisect import bisect_right

from teller.runtime.spec import Backoff, Intensity, Restart, Strategy


def should_restart(restart: Restart, reason: BaseException | None) -> bool:
    """OTP's rule: permanent always; transient after an abnormal exit; temporary never."""
    if restart is Restart.PERMANENT:
        return True
    if restart is Restart.TRANSIENT:
        return reason is not None
    return False


def within_intensity(
    history: tuple[float, ...], now: float, intensity: Intensity
) -> tuple[bool, tuple[float, ...]]:
    """Record a restart at ``now``; allowed while restarts in the window stay <= restarts_max.

    ``history`` is in time order (each call appends ``now``), so the window starts at a bisection
    and only the last ``restarts_max`` entries can matter later: the kept tuple never grows past
    ``restarts_max + 1``, and a decision costs O(log n), not a Python loop over every restart.
    """
    start = bisect_right(history, now - intensity.period_s)
    # Float rounding at the window's edge: keep the rule exactly `now - at < period_s`.
    while start > 0 and now - history[start - 1] < intensity.period_s:
        start -= 1
    while start < len(history) and not now - history[start] < intensity.period_s:
        start += 1
    in_window = len(history) - start + 1
    kept = history[max(start, len(history) - intensity.restarts_max) :] + (now,)
    return in_window <= intensity.restarts_max, kept


def next_attempt(attempt: int, last_crash_at: float | None, now: float, backoff: Backoff) -> int:
    """The crash count for backoff: back to 0 after a quiet period, else one more."""
    if last_crash_at is None or now - last_crash_at >= backoff.reset_after_s:
        return 0
    return attempt + 1


def backoff_delay_s(attempt: int, backoff: Backoff, draw: float) -> float:
    """Delay before restart number ``attempt`` (0-based); ``draw`` is uniform in [0, 1)."""
    if attempt <= 0:
        return 0.0
    delay_s = min(backoff.max_s, backoff.base_s * 2 ** min(attempt - 1, 62))
    return delay_s * (1.0 + backoff.jitter * (2.0 * draw - 1.0))


def affected(strategy: Strategy, index: int, count: int) -> range:
    """Indices of the children that restart when child ``index`` of ``count`` exits."""
    if strategy is Strategy.ONE_FOR_ALL:
        return range(count)
    if strategy is Strategy.REST_FOR_ONE:
        return range(index, count)
    return range(index, index + 1)
