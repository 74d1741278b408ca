"""Which user a bank-statement line belongs to: a pure decision over the owners each identifier names.

A line carries up to three identifiers. For each, the storage finds its *verified owners* (users
with a verified identity and a verified card/IBAN that is it). The line is credited only when every
identifier it carries names exactly one verified owner and all name the same one::

    identifier on the line    looked up as                                     no owner          several owners
    full card number          keyed hash of an active verified card            unknown_card      (cannot: unique)
    masked card (no full)     mask of verified cards                           unknown_card_mask ambiguous_card_mask
    IBAN                      a verified card's account, or a verified IBAN    unknown_iban      ambiguous_iban

    every identifier names one owner, the same one  -> credited to that user          (line 'matched')
    they name different owners                      -> suspense, identifiers_disagree (line 'unmatched')
    any identifier unknown or ambiguous             -> suspense, that reason          (line 'unmatched')

A full card outranks its own mask: when the bank reports the whole number, the mask is not looked up
(it would name every user whose card shares the BIN and last four). The reason is stored on the line
for ops. An ops assignment from suspense is refused when an identifier of the line names verified
owners that do not include the assignee (``contradicts``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

__all__ = ["Evidence", "Decision", "decide", "contradicts", "CARD", "CARD_MASK", "IBAN", "IDENTIFIERS_DISAGREE"]

CARD, CARD_MASK, IBAN = "card", "card_mask", "iban"
IDENTIFIERS_DISAGREE = "identifiers_disagree"
NO_IDENTIFIER = "no_identifier"


@dataclass(frozen=True, slots=True)
class Evidence:
    kind: str  # CARD, CARD_MASK or IBAN
    owners: frozenset[int]


@dataclass(frozen=True, slots=True)
class Decision:
    user_id: int | None
    reason: str | None  # why the line goes to suspense; None when credited

    def __post_init__(self) -> None:
        assert (self.user_id is None) != (self.reason is None), "a decision names a user or a reason"


def decide(evidence: Sequence[Evidence]) -> Decision:
    if not evidence:
        return Decision(None, NO_IDENTIFIER)
    for item in evidence:
        if not item.owners:
            return Decision(None, f"unknown_{item.kind}")
        if len(item.owners) > 1:
            return Decision(None, f"ambiguous_{item.kind}")
    owners = {next(iter(item.owners)) for item in evidence}
    if len(owners) > 1:
        return Decision(None, IDENTIFIERS_DISAGREE)
    (user_id,) = owners
    return Decision(user_id, None)


def contradicts(evidence: Sequence[Evidence], user_id: int) -> bool:
    """True when some identifier of the line names verified owners and the user is not one of them."""
    return any(item.owners and user_id not in item.owners for item in evidence)
