"""The card-hash keys: the current one and the previous ones, each under a key id, so the secret can rotate.

A card is stored as ``HMAC-SHA256(secret, number)`` plus the id of the key that made it. Matching
asks under every configured key (the current first); a hash found under an old key is re-hashed
under the current one by the caller (``PaymentMatcher``) on that match. A key is its own secret
(``irt.card_hash_secret``), never derived from another: rotating the JWT secret must not orphan
the cards.

A secret is text (its UTF-8 bytes) or ``hex:<hex digits>`` for raw bytes. The latter carries the
key a deployment used before issue 15, derived from its JWT secret: ``legacy_card_hash_secret``
(or ``python -m teller.payments.card_keys legacy`` with ``TELLER_JWT_SECRET`` set) prints it, for
``[irt.card_hash_previous] legacy = "hex:..."``, the key id migration 8 gave every existing hash.
"""

from __future__ import annotations

import hashlib
import hmac
import os
import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from teller.payments.cards import CARD_HASH_SECRET_LEN_MIN, Card

__all__ = [
    "CardKeys",
    "KEY_ID_LEGACY",
    "KEY_ID_DEFAULT",
    "KEYS_PREVIOUS_MAX",
    "key_id_valid",
    "parse_secret",
    "legacy_card_hash_secret",
]

KEY_ID_LEGACY = "legacy"  # what migration 8 stamped on the hashes made before key ids existed
KEY_ID_DEFAULT = "k1"
KEYS_PREVIOUS_MAX = 8  # each previous key is one more hash per lookup
_KEY_ID_RE = re.compile(r"[A-Za-z0-9_-]{1,32}")
_HEX_PREFIX = "hex:"
_LEGACY_LABEL = b"teller/irt/card-hash/v1"  # the label teller/flows/irt.py derived the old key with


def key_id_valid(key_id: object) -> bool:
    return isinstance(key_id, str) and _KEY_ID_RE.fullmatch(key_id) is not None


def parse_secret(text: str) -> bytes:
    """The key bytes of a configured secret; ValueError (naming no value) when unusable."""
    if text.startswith(_HEX_PREFIX):
        try:
            secret = bytes.fromhex(text[len(_HEX_PREFIX):])
        except ValueError:
            raise ValueError("a hex: secret must be hex digits") from None
    else:
        secret = text.encode()
    if len(secret) < CARD_HASH_SECRET_LEN_MIN:
        raise ValueError(f"a card hash secret must be at least {CARD_HASH_SECRET_LEN_MIN} bytes")
    return secret


def legacy_card_hash_secret(jwt_secret: str) -> str:
    """The key Teller derived from the JWT secret when ``irt.card_hash_secret`` was unset, as ``hex:...``."""
    return _HEX_PREFIX + hmac.new(jwt_secret.encode(), _LEGACY_LABEL, hashlib.sha256).hexdigest()


@dataclass(frozen=True, slots=True, repr=False)
class CardKeys:
    current_id: str
    current: bytes
    previous: Mapping[str, bytes]

    @classmethod
    def from_config(cls, *, key_id: str, secret: str, previous: Iterable[tuple[str, str]] = ()) -> CardKeys:
        return cls(current_id=key_id, current=parse_secret(secret),
                   previous={kid: parse_secret(text) for kid, text in previous})

    def __post_init__(self) -> None:
        assert key_id_valid(self.current_id) and self.current_id not in self.previous
        assert len(self.previous) <= KEYS_PREVIOUS_MAX

    def __repr__(self) -> str:  # secrets never reach a log line
        return f"CardKeys(current_id={self.current_id!r}, previous={sorted(self.previous)!r})"

    @property
    def ids(self) -> frozenset[str]:
        return frozenset({self.current_id, *self.previous})

    def hash(self, card: Card) -> str:
        """The card's hash under the current key: what is stored."""
        return card.hash(secret=self.current)

    def hashes(self, card: Card) -> list[tuple[str, str]]:
        """(key id, hash) under every key, the current first: what is looked up."""
        keys = [(self.current_id, self.current), *self.previous.items()]
        return [(kid, card.hash(secret=secret)) for kid, secret in keys]


def main() -> None:  # pragma: no cover - an operator's one-liner
    if sys.argv[1:] != ["legacy"] or not os.environ.get("TELLER_JWT_SECRET"):
        sys.exit("usage: TELLER_JWT_SECRET=... python -m teller.payments.card_keys legacy")
    print(legacy_card_hash_secret(os.environ["TELLER_JWT_SECRET"]))


if __name__ == "__main__":  # pragma: no cover
    main()
