from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from teller.runtime.policy import affected, backoff_delay_s, next_attempt, should_restart, within_intensity
from teller.runtime.spec import Backoff, Intensity, Restart, Strategy


def test_restart_types_follow_otp() -> None:
    crash = RuntimeError("x")
    assert should_restart(Restart.PERMANENT, None) and should_restart(Restart.PERMANENT, crash)
    assert not should_restart(Restart.TRANSIENT, None) and should_restart(Restart.TRANSIENT, crash)
    assert not should_restart(Restart.TEMPORARY, None) and not should_restart(Restart.TEMPORARY, crash)


def test_intensity_allows_n_restarts_in_the_window_then_refuses() -> None:
    intensity = Intensity(restarts_max=3, period_s=10.0)
    history: tuple[float, ...] = ()
    results = []
    for now in (0.0, 1.0, 2.0, 3.0):
        allowed, history = within_intensity(history, now, intensity)
        results.append(allowed)
    assert results == [True, True, True, False]
    allowed, _ = within_intensity((0.0, 1.0, 2.0), 12.5, intensity)  # old ones left the window
    assert allowed


def test_backoff_is_immediate_first_then_doubles_and_caps() -> None:
    backoff = Backoff(base_s=0.1, max_s=1.0, jitter=0.0)
    delays = [backoff_delay_s(n, backoff, 0.5) for n in range(7)]
    assert delays == [0.0, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0]


def test_backoff_attempts_reset_after_a_quiet_period() -> None:
    backoff = Backoff(reset_after_s=30.0)
    assert next_attempt(0, None, 100.0, backoff) == 0
    assert next_attempt(2, 95.0, 100.0, backoff) == 3
    assert next_attempt(5, 60.0, 100.0, backoff) == 0


@given(attempt=st.integers(min_value=1, max_value=10_000), draw=st.floats(min_value=0.0, max_value=0.999999))
def test_jittered_backoff_stays_within_its_band(attempt: int, draw: float) -> None:
    backoff = Backoff(base_s=0.05, max_s=5.0, jitter=0.2)
    nominal = min(5.0, 0.05 * 2 ** min(attempt - 1, 62))
    delay = backoff_delay_s(attempt, backoff, draw)
    assert nominal * 0.8 - 1e-12 <= delay <= nominal * 1.2 + 1e-12


def test_affected_children_per_strategy() -> None:
    assert list(affected(Strategy.ONE_FOR_ONE, 1, 4)) == [1]
    assert list(affected(Strategy.ONE_FOR_ALL, 1, 4)) == [0, 1, 2, 3]
    assert list(affected(Strategy.REST_FOR_ONE, 1, 4)) == [1, 2, 3]


@given(
    gaps=st.lists(st.floats(min_value=0.0, max_value=5.0, allow_nan=False), max_size=40),
    restarts_max=st.integers(min_value=0, max_value=6),
    period_s=st.floats(min_value=0.1, max_value=20.0, allow_nan=False),
)
def test_intensity_decisions_match_counting_every_restart_in_the_window(
    gaps: list[float], restarts_max: int, period_s: float
) -> None:
    intensity = Intensity(restarts_max=restarts_max, period_s=period_s)
    history: tuple[float, ...] = ()
    every: list[float] = []
    now = 0.0
    for gap in gaps:
        now += gap
        every.append(now)
        allowed, history = within_intensity(history, now, intensity)
        assert allowed == (sum(1 for at in every if now - at < period_s) <= restarts_max)
