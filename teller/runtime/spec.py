"""What the user asked for: child specs, restart types, strategies (frozen, validated).

Kept apart from what is running (``Handle``, ``Supervisor``, ``KeyedSupervisor``), as OTP keeps the
child spec apart from the child record.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any, Union

if TYPE_CHECKING:
    from teller.runtime.actor import AsyncioActor


class Restart(StrEnum):
    PERMANENT = "permanent"  # always restarted
    TRANSIENT = "transient"  # restarted only after an abnormal exit
    TEMPORARY = "temporary"  # never restarted


class Strategy(StrEnum):
    ONE_FOR_ONE = "one_for_one"
    ONE_FOR_ALL = "one_for_all"
    REST_FOR_ONE = "rest_for_one"


BUFFER_MAX_DEFAULT = 1_000
"""Messages a handle holds while its child restarts; past it senders get ``RestartBufferFull``."""
SHUTDOWN_S_DEFAULT = 5.0
"""How long a child may take to stop before it is cancelled."""


@dataclass(frozen=True, kw_only=True)
class Intensity:
    """At most ``restarts_max`` restarts within ``period_s``, else the supervisor fails."""

    restarts_max: int = 5
    period_s: float = 10.0

    def __post_init__(self) -> None:
        if self.restarts_max < 0 or self.period_s <= 0:
            raise ValueError("intensity needs restarts_max >= 0 and period_s > 0")


@dataclass(frozen=True, kw_only=True)
class Backoff:
    """Delay before restart n of a child: 0 for the first, then base * 2^(n-1), capped, +-jitter.

    The count resets once the child has gone ``reset_after_s`` without crashing.
    """

    base_s: float = 0.05
    max_s: float = 5.0
    jitter: float = 0.2  # fraction of the delay, drawn uniformly in [-jitter, +jitter]
    reset_after_s: float = 30.0

    def __post_init__(self) -> None:
        if self.base_s < 0 or self.max_s < self.base_s or not 0 <= self.jitter < 1 or self.reset_after_s < 0:
            raise ValueError("backoff needs 0 <= base_s <= max_s, 0 <= jitter < 1, reset_after_s >= 0")


def _check_name(name: str) -> None:
    if not name or "/" in name:
        raise ValueError(f"child name must be non-empty and without '/': {name!r}")


@dataclass(frozen=True, kw_only=True)
class ChildSpec:
    """One actor: ``factory()`` returns a new, unstarted actor instance (clean state)."""

    name: str
    factory: Callable[[], AsyncioActor]
    restart: Restart = Restart.PERMANENT
    shutdown_s: float = SHUTDOWN_S_DEFAULT
    buffer_max: int = BUFFER_MAX_DEFAULT

    def __post_init__(self) -> None:
        _check_name(self.name)
        if self.shutdown_s < 0 or self.buffer_max < 0:
            raise ValueError(f"{self.name}: shutdown_s and buffer_max must be >= 0")


@dataclass(frozen=True, kw_only=True)
class SupervisorSpec:
    """A supervisor: children start in order and stop in reverse."""

    name: str
    children: tuple[Spec, ...] = ()
    strategy: Strategy = Strategy.ONE_FOR_ONE
    intensity: Intensity = field(default_factory=Intensity)
    backoff: Backoff = field(default_factory=Backoff)
    restart: Restart = Restart.PERMANENT
    shutdown_s: float = SHUTDOWN_S_DEFAULT

    def __post_init__(self) -> None:
        _check_name(self.name)
        object.__setattr__(self, "children", tuple(self.children))
        names = [child.name for child in self.children]
        if len(names) != len(set(names)):
            raise ValueError(f"{self.name}: child names must be unique: {names}")


@dataclass(frozen=True, kw_only=True)
class KeyedSpec:
    """On-demand children, one per key (``factory(key)``), passivated when idle or past the bound."""

    name: str
    factory: Callable[[Any], AsyncioActor]
    child_restart: Restart = Restart.TRANSIENT
    idle_timeout_s: float = 300.0
    live_max: int = 200_000
    intensity: Intensity = field(default_factory=lambda: Intensity(restarts_max=50, period_s=10.0))
    backoff: Backoff = field(default_factory=Backoff)
    buffer_max: int = BUFFER_MAX_DEFAULT
    child_shutdown_s: float = SHUTDOWN_S_DEFAULT
    restart: Restart = Restart.PERMANENT
    shutdown_s: float = 30.0

    def __post_init__(self) -> None:
        _check_name(self.name)
        if self.live_max < 1 or self.idle_timeout_s <= 0:
            raise ValueError(f"{self.name}: live_max must be >= 1 and idle_timeout_s > 0")


Spec = Union[ChildSpec, SupervisorSpec, KeyedSpec]
Key = Hashable
