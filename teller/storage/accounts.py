"""Ledger account names (ARCHITECTURE.md) and the rules they carry.

``user:{user_id}:{asset}`` accounts may never go below zero; every other (system) account may.
Asset codes are opaque strings and may contain ``:`` (``ethereum:USDT``).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

__all__ = [
    "AccountName",
    "parse_account",
    "user_account",
    "chain_account",
    "hot_account",
    "hold_account",
    "fees_account",
    "BANK_IRT",
    "SUSPENSE_IRT",
]

BANK_IRT = "bank:irt"
SUSPENSE_IRT = "suspense:irt"
ACCOUNT_NAME_LEN_MAX = 200
PARSED_NAMES_CACHED_MAX = 65_536

# prefix -> does the name carry a chain segment before the asset
_WITH_ASSET = {"chain": True, "hot": True, "withdrawal-hold": False, "fees": False}


@dataclass(frozen=True, slots=True)
class AccountName:
    name: str
    user_id: int | None  # set only for user accounts
    asset: str | None    # None when the name does not carry it (bank:irt, suspense:irt)


def user_account(user_id: int, asset: str) -> str:
    return f"user:{user_id}:{asset}"


def chain_account(chain: str, asset: str) -> str:
    return f"chain:{chain}:{asset}"


def hot_account(chain: str, asset: str) -> str:
    return f"hot:{chain}:{asset}"


def hold_account(asset: str) -> str:
    return f"withdrawal-hold:{asset}"


def fees_account(asset: str) -> str:
    return f"fees:{asset}"


def parse_account(name: object) -> AccountName:
    """Parse and check an account name; ``ValueError`` for anything not in the chart of accounts."""
    if not isinstance(name, str) or not name or len(name) > ACCOUNT_NAME_LEN_MAX:
        raise ValueError(f"bad account name: {name!r}")
    return _parse(name)


@functools.lru_cache(maxsize=PARSED_NAMES_CACHED_MAX)  # names repeat on every transfer: parse each once
def _parse(name: str) -> AccountName:
    if name in (BANK_IRT, SUSPENSE_IRT):
        return AccountName(name, None, None)
    prefix, _, rest = name.partition(":")
    if prefix == "user":
        user_text, _, asset = rest.partition(":")
        if not user_text.isascii() or not user_text.isdigit() or not asset:
            raise ValueError(f"bad user account name: {name!r}")
        return AccountName(name, int(user_text), asset)
    if prefix in _WITH_ASSET:
        asset = rest
        if _WITH_ASSET[prefix]:
            chain, _, asset = rest.partition(":")
            if not chain:
                raise ValueError(f"bad account name: {name!r}")
        if not asset:
            raise ValueError(f"bad account name: {name!r}")
        return AccountName(name, None, asset)
    raise ValueError(f"unknown account kind: {name!r}")
