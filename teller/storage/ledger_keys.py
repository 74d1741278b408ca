"""Every ledger idempotency key Teller makes is built here, in families that cannot collide.

A key is ``<family>:<rest>``, and each family's first segment is its own (``FAMILIES``). A value
chosen outside Teller only ever stands after its own family's prefix, and a client's value only as
a hash: so no user input can form another family's key, nor a system key of its own family. (The
first wave put a client's Idempotency-Key in ``wd:{user}:{key}`` beside the settlement keys
``wd:{withdrawal}:post``: a user whose id equalled a pending withdrawal's id took that key.)
"""

from __future__ import annotations

import hashlib

__all__ = ["FAMILIES", "WITHDRAWAL_STEPS", "withdrawal_hold_key", "withdrawal_step_key", "statement_line_key",
           "statement_assign_key", "client_key_digest", "deposit_credit_key", "legacy_deposit_credit_key",
           "deposit_reversal_key"]

WITHDRAWAL_STEPS = ("post", "paid", "fee", "void")
FAMILIES = frozenset({
    "wd",                 # system: a withdrawal's settlement or refund, wd:{withdrawal id}:{step}
    "wdh",                # a client's withdrawal hold, wdh:{user id}:{sha256 of the Idempotency-Key}
    "deposit",            # system: a chain deposit's credit, deposit:{chain}:{tx}:{asset}:{address}:{ordinal}
    "deposit-reversal",   # an operator's debit of a credited deposit that left the chain, deposit-reversal:{id}
    "irt",                # a bank statement line's credit, irt:{bank reference}
    "irt-assign",         # an operator's assignment of a suspense line, irt-assign:{bank reference}
})


def client_key_digest(client_key: str) -> str:
    return hashlib.sha256(client_key.encode("utf-8")).hexdigest()


def withdrawal_hold_key(user_id: int, client_key: str) -> str:
    """The hold of a withdrawal a client asked for with ``Idempotency-Key: client_key``."""
    return f"wdh:{int(user_id)}:{client_key_digest(client_key)}"


def withdrawal_step_key(withdrawal_id: int, step: str) -> str:
    assert step in WITHDRAWAL_STEPS, step
    return f"wd:{int(withdrawal_id)}:{step}"


def statement_line_key(bank_reference: str) -> str:
    return f"irt:{bank_reference}"


def statement_assign_key(bank_reference: str) -> str:
    return f"irt-assign:{bank_reference}"


def deposit_credit_key(chain: str, tx_hash: str, asset: str, address: str, ordinal: int) -> str:
    """The credit of a transfer to a deposit address: the ``ordinal``-th transfer of ``asset`` (its
    symbol on ``chain``) to ``address`` within transaction ``tx_hash`` (native: 0). Nothing in it
    depends on the block, so the transaction re-mined at another height or log index keeps its key.
    (It cannot equal a legacy key: there the segment before the last is a 66-character transaction
    hash, here a 42-character address.)"""
    assert ordinal >= 0, ordinal
    return f"deposit:{chain}:{tx_hash.lower()}:{asset}:{address.lower()}:{int(ordinal)}"


def legacy_deposit_credit_key(chain: str, tx_hash: str, log_index: int) -> str:
    """The key deposits were credited with before migration 5 (kept in their ``credit_key``); it
    named the log index, which a re-included transaction does not keep. Never made for a new row."""
    return f"deposit:{chain}:{tx_hash}:{int(log_index)}"


def deposit_reversal_key(deposit_id: int) -> str:
    """An operator's debit of deposit ``deposit_id``'s credit after it was reversed: at most once."""
    return f"deposit-reversal:{int(deposit_id)}"
