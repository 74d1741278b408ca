"""``FaultPlan``: what the simulated node does wrong, decided by one seed, switchable per fault and method.

Each fault has the methods it can hit, a probability per call and optionally ``hits_max`` (a fault "for a
while": it switches itself off after that many injections). Decisions come from one
``random.Random`` per method, seeded from ``(seed, method)``: the n-th call of a method gets the same
decision in every run with that seed, whatever the interleaving of other methods' calls. ``heal()`` turns
every fault off: from then on the node is honest (the liveness oracle's "after faults stop").

Faults (``Fault``):

- ``NULL_RECEIPT``: ``eth_getTransactionReceipt`` answers null for a mined transaction.
- ``EMPTY_LOGS``: ``eth_getLogs`` answers ``[]``.
- ``STALE_HEAD``: ``eth_blockNumber`` answers ``stale_lag_blocks`` behind the head (a lagging replica).
- ``HTTP_429`` / ``HTTP_5XX``: the whole HTTP request answers 429 / 502 (no JSON-RPC body).
- ``TIMEOUT``: the request hangs ``hang_s`` (bounded by ``HANG_S_MAX``), then is answered: a client with a
  shorter timeout gives up first, and the call still takes effect (a transaction sent so reaches the pool,
  as with a real node that answers late).
- ``DROP_TX``: ``eth_sendRawTransaction`` is accepted, then silently gone from the pool.
"""

from __future__ import annotations

import enum
import random
from collections.abc import Iterable
from dataclasses import dataclass

__all__ = ["DEFAULT_METHODS", "HANG_S_MAX", "Fault", "FaultPlan", "FaultRule"]

HANG_S_MAX = 30.0
STALE_LAG_BLOCKS_MAX = 64
_ANY = "*"


class Fault(enum.Enum):
    NULL_RECEIPT = "null_receipt"
    EMPTY_LOGS = "empty_logs"
    STALE_HEAD = "stale_head"
    HTTP_429 = "http_429"
    HTTP_5XX = "http_5xx"
    TIMEOUT = "timeout"
    DROP_TX = "drop_tx"


HTTP_FAULTS = (Fault.HTTP_429, Fault.HTTP_5XX, Fault.TIMEOUT)
DEFAULT_METHODS: dict[Fault, frozenset[str]] = {
    Fault.NULL_RECEIPT: frozenset({"eth_getTransactionReceipt"}),
    Fault.EMPTY_LOGS: frozenset({"eth_getLogs"}),
    Fault.STALE_HEAD: frozenset({"eth_blockNumber"}),
    Fault.HTTP_429: frozenset({_ANY}),
    Fault.HTTP_5XX: frozenset({_ANY}),
    Fault.TIMEOUT: frozenset({_ANY}),
    Fault.DROP_TX: frozenset({"eth_sendRawTransaction"}),
}


@dataclass(frozen=True, slots=True)
class FaultRule:
    fault: Fault
    probability: float  # per call, 0..1 (a chance, not money)
    methods: frozenset[str]  # "*" for every method
    hits_max: int | None = None  # "for a while": the rule switches itself off after this many injections

    def hits(self, method: str) -> bool:
        return _ANY in self.methods or method in self.methods


class FaultPlan:
    def __init__(self, seed: int, *, stale_lag_blocks: int = 3, hang_s: float = 5.0) -> None:
        if not 0 <= stale_lag_blocks <= STALE_LAG_BLOCKS_MAX or not 0 < hang_s <= HANG_S_MAX:
            raise ValueError("stale lag or hang out of bounds")
        self.seed = seed
        self.stale_lag_blocks = stale_lag_blocks
        self.hang_s = hang_s
        self._rules: dict[Fault, FaultRule] = {}
        self._rngs: dict[str, random.Random] = {}
        self._hits: dict[Fault, int] = {}  # injections since the rule was enabled
        self.injected: dict[Fault, int] = {fault: 0 for fault in Fault}

    @classmethod
    def random(cls, seed: int, *, faults: Iterable[Fault] = tuple(Fault), probability_max: float = 0.3) -> FaultPlan:
        """A plan whose faults and their rates are drawn from ``seed``."""
        plan = cls(seed)
        chooser = random.Random(f"{seed}:plan")
        for fault in faults:
            if chooser.random() < 0.5:
                plan.enable(fault, probability=chooser.uniform(0.01, probability_max))
        return plan

    def enable(self, fault: Fault, *, probability: float = 1.0, methods: Iterable[str] | None = None,
               hits_max: int | None = None) -> None:
        if not 0.0 <= probability <= 1.0 or (hits_max is not None and hits_max < 1):
            raise ValueError("probability must be in [0, 1] and hits_max positive")
        chosen = DEFAULT_METHODS[fault] if methods is None else frozenset(methods)
        self._rules[fault] = FaultRule(fault=fault, probability=probability, methods=chosen, hits_max=hits_max)
        self._hits[fault] = 0

    def disable(self, fault: Fault) -> None:
        self._rules.pop(fault, None)

    def heal(self) -> None:
        self._rules.clear()

    @property
    def healed(self) -> bool:
        return not self._rules

    @property
    def rules(self) -> tuple[FaultRule, ...]:
        return tuple(self._rules.values())

    def decide(self, method: str, candidates: Iterable[Fault]) -> Fault | None:
        """The fault (among ``candidates``) this call of ``method`` suffers, if any. Each call draws once
        per enabled candidate in ``Fault`` order, so a decision depends only on the seed and the count."""
        rng = self._rngs.get(method)
        if rng is None:
            rng = self._rngs[method] = random.Random(f"{self.seed}:{method}")
        chosen = None
        for fault in candidates:
            rule = self._rules.get(fault)
            if rule is None or not rule.hits(method):
                continue
            if rng.random() < rule.probability and chosen is None:
                chosen = fault
        if chosen is not None:
            self.injected[chosen] += 1
            self._hits[chosen] += 1
            if self._rules[chosen].hits_max == self._hits[chosen]:
                self.disable(chosen)
        return chosen
