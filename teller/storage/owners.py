"""Who owns what: verified identities, and the cards and IBANs bound to them (issue 15).

- ``identities``: one row per user who shared their own Telegram contact (``contact_shared``); it
  becomes ``verified`` once Shahkar matched the national code to that mobile. A national code is
  verified on one account at most (unique).
- ``cards`` and ``ibans`` hold active rows only: the unique ``card_hash`` / ``iban`` is "one owner at
  a time", decided by the database (two users racing end with one row), never by a read first.
  A row is ``verified`` (owner checked) or ``pending`` (from before issue 15: never matched).
  Removing one moves it to ``irt_removals`` (who, when, why) in the same transaction.

A card is stored as its keyed hash plus the key id (``teller.payments.card_keys``) and its mask;
a national code and a mobile are stored as they are (the provider needs them for every inquiry)
and never leave this module except to the provider and, masked, to the API.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from teller.storage.store import Write, utc_now

if TYPE_CHECKING:
    from teller.storage.store import Row, Store

__all__ = [
    "Owners",
    "IdentityRow",
    "CardRow",
    "IbanRow",
    "CARD",
    "IBAN",
    "CONTACT_SHARED",
    "VERIFIED",
    "PENDING",
    "OWNERS_LIST_MAX",
    "OWNER_CANDIDATES_MAX",
]

CONTACT_SHARED, VERIFIED, PENDING = "contact_shared", "verified", "pending"
OWNERS_LIST_MAX = 200          # cards or IBANs in one listing
OWNER_CANDIDATES_MAX = 8       # owners one identifier can name before we stop counting: > 1 is ambiguous anyway


@dataclass(frozen=True, slots=True, repr=False)
class IdentityRow:
    user_id: int
    mobile: str
    national_code: str | None
    status: str
    contact_at: datetime
    verified_at: datetime | None

    def __repr__(self) -> str:  # personal data never reaches a log line or a traceback
        return f"IdentityRow(user_id={self.user_id}, status={self.status!r})"


@dataclass(frozen=True, slots=True)
class CardRow:
    id: int
    user_id: int
    card_masked: str
    card_hash: str
    key_id: str
    iban: str | None
    owner_name: str | None
    bank: str | None
    status: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class IbanRow:
    id: int
    user_id: int
    iban: str
    owner_name: str | None
    bank: str | None
    status: str
    created_at: datetime


def _identity(row: Row) -> IdentityRow:
    return IdentityRow(user_id=int(row["user_id"]), mobile=row["mobile"], national_code=row["national_code"],
                       status=row["status"], contact_at=row["contact_at"], verified_at=row["verified_at"])


def _card(row: Row) -> CardRow:
    return CardRow(id=int(row["id"]), user_id=int(row["user_id"]), card_masked=row["card_masked"],
                   card_hash=row["card_hash"], key_id=row["key_id"], iban=row["iban"], owner_name=row["owner_name"],
                   bank=row["bank"], status=row["status"], created_at=row["created_at"])


def _iban(row: Row) -> IbanRow:
    return IbanRow(id=int(row["id"]), user_id=int(row["user_id"]), iban=row["iban"], owner_name=row["owner_name"],
                   bank=row["bank"], status=row["status"], created_at=row["created_at"])


_IDENTITY_COLUMNS = "user_id, mobile, national_code, status, contact_at, verified_at"
_CARD_COLUMNS = "id, user_id, card_masked, card_hash, key_id, iban, owner_name, bank, status, created_at"
_IBAN_COLUMNS = "id, user_id, iban, owner_name, bank, status, created_at"
# An owner counts for matching only with a verified identity, whatever their rows say.
_VERIFIED_USER = "user_id IN (SELECT user_id FROM identities WHERE status = 'verified')"


CARD, IBAN = "card", "iban"
# kind -> (table, what irt_removals shows, its hash, its key id): constants, never values, in the SQL below.
_REMOVABLE = {CARD: ("cards", "card_masked", "card_hash", "key_id"), IBAN: ("ibans", "iban", "NULL", "NULL")}


def _marks(values: list[str]) -> str:
    assert values, "an IN list needs at least one value"
    return ", ".join("?" for _ in values)


class Owners:
    def __init__(self, store: Store) -> None:
        self._store = store

    # -- identities ------------------------------------------------------------------------------
    async def identity(self, user_id: int) -> IdentityRow | None:
        row = await self._store.fetch_one(f"SELECT {_IDENTITY_COLUMNS} FROM identities WHERE user_id = ?", user_id)
        return None if row is None else _identity(row)

    async def record_contact(self, *, user_id: int, mobile: str) -> None:
        """Store (or replace) the mobile of an unverified identity; a verified one is left as it is."""
        now = utc_now()
        await self._store.execute(
            "INSERT INTO identities (user_id, mobile, status, contact_at, updated_at)"
            " VALUES (?, ?, 'contact_shared', ?, ?)"
            " ON CONFLICT (user_id) DO UPDATE SET mobile = excluded.mobile, contact_at = excluded.contact_at,"
            " updated_at = excluded.updated_at WHERE identities.status = 'contact_shared'",
            user_id, mobile, now, now)

    @staticmethod
    def verify_identity(*, user_id: int, mobile: str, national_code: str) -> Write:
        """contact_shared -> verified, only for the mobile the provider was asked about (else StaleWrite)."""
        now = utc_now()
        return Write(
            "UPDATE identities SET status = 'verified', national_code = ?, verified_at = ?, updated_at = ?"
            " WHERE user_id = ? AND status = 'contact_shared' AND mobile = ?",
            (national_code, now, now, user_id, mobile), expect_rows=1)

    # -- cards -----------------------------------------------------------------------------------
    async def card_by_hashes(self, hashes: list[str]) -> CardRow | None:
        """The active card stored under any of these hashes (one per key), a verified row first."""
        row = await self._store.fetch_one(
            f"SELECT {_CARD_COLUMNS} FROM cards WHERE card_hash IN ({_marks(hashes)})"
            " ORDER BY CASE status WHEN 'verified' THEN 0 ELSE 1 END, id LIMIT 1", *hashes)
        return None if row is None else _card(row)

    async def cards_of(self, user_id: int) -> list[CardRow]:
        rows = await self._store.fetch_all(
            f"SELECT {_CARD_COLUMNS} FROM cards WHERE user_id = ? ORDER BY id LIMIT ?", user_id, OWNERS_LIST_MAX)
        return [_card(r) for r in rows]

    async def count_cards_of(self, user_id: int) -> int:
        row = await self._store.fetch_one("SELECT COUNT(*) AS n FROM cards WHERE user_id = ?", user_id)
        return int(row["n"]) if row else 0

    async def card_key_ids(self) -> dict[str, int]:
        """How many active cards each key id hashed (ops: a key id not configured cannot be found)."""
        rows = await self._store.fetch_all("SELECT key_id, COUNT(*) AS n FROM cards GROUP BY key_id")
        return {str(r["key_id"]): int(r["n"]) for r in rows}

    @staticmethod
    def insert_card(*, user_id: int, card_hash: str, key_id: str, card_masked: str, iban: str,
                    owner_name: str | None, bank: str | None) -> Write:
        return Write(
            "INSERT INTO cards (user_id, card_hash, key_id, card_masked, iban, owner_name, bank, status, created_at)"
            " VALUES (?, ?, ?, ?, ?, ?, ?, 'verified', ?)",
            (user_id, card_hash, key_id, card_masked, iban, owner_name, bank, utc_now()), expect_rows=1)

    @staticmethod
    def verify_pending_card(*, card_id: int, user_id: int, card_hash: str, key_id: str, iban: str,
                            owner_name: str | None, bank: str | None) -> Write:
        return Write(
            "UPDATE cards SET status = 'verified', card_hash = ?, key_id = ?, iban = ?, owner_name = ?, bank = ?"
            " WHERE id = ? AND user_id = ? AND status = 'pending'",
            (card_hash, key_id, iban, owner_name, bank, card_id, user_id), expect_rows=1)

    @staticmethod
    def rehash_card(*, card_id: int, old_key_id: str, card_hash: str, key_id: str) -> Write:
        """Re-key one card's hash (a match found it under an old key); a no-op if someone did it first."""
        return Write("UPDATE cards SET card_hash = ?, key_id = ? WHERE id = ? AND key_id = ?",
                     (card_hash, key_id, card_id, old_key_id))

    @staticmethod
    def rekey_card_lines(*, hashes: Sequence[tuple[str, str]], key_id: str) -> Write | None:
        """The statement lines that carried this card under an older key (``hashes``: (key id, hash) under every
        configured key, the current one ``key_id`` among them) take the card's current hash, in the write that
        re-keys or registers the card. Without it, a line stored before a rotation no longer names its card, and
        the ops guard could not refuse assigning it to someone else. None when there is no older key."""
        current = dict(hashes)[key_id]
        older = [(kid, digest) for kid, digest in hashes if kid != key_id]
        if not older:
            return None
        where = " OR ".join("(source_card_hash = ? AND source_card_key_id = ?)" for _ in older)
        return Write(f"UPDATE statement_lines SET source_card_hash = ?, source_card_key_id = ? WHERE {where}",
                     (current, key_id, *(v for kid, digest in older for v in (digest, kid))))

    # -- IBANs -----------------------------------------------------------------------------------
    async def iban_row(self, iban: str) -> IbanRow | None:
        row = await self._store.fetch_one(f"SELECT {_IBAN_COLUMNS} FROM ibans WHERE iban = ?", iban)
        return None if row is None else _iban(row)

    async def ibans_of(self, user_id: int) -> list[IbanRow]:
        rows = await self._store.fetch_all(
            f"SELECT {_IBAN_COLUMNS} FROM ibans WHERE user_id = ? ORDER BY id LIMIT ?", user_id, OWNERS_LIST_MAX)
        return [_iban(r) for r in rows]

    async def count_ibans_of(self, user_id: int) -> int:
        row = await self._store.fetch_one("SELECT COUNT(*) AS n FROM ibans WHERE user_id = ?", user_id)
        return int(row["n"]) if row else 0

    @staticmethod
    def insert_iban(*, user_id: int, iban: str, owner_name: str | None, bank: str | None) -> Write:
        return Write("INSERT INTO ibans (user_id, iban, owner_name, bank, status, created_at)"
                     " VALUES (?, ?, ?, ?, 'verified', ?)",
                     (user_id, iban, owner_name, bank, utc_now()), expect_rows=1)

    @staticmethod
    def verify_pending_iban(*, iban_id: int, user_id: int, owner_name: str | None, bank: str | None) -> Write:
        return Write("UPDATE ibans SET status = 'verified', owner_name = ?, bank = ?"
                     " WHERE id = ? AND user_id = ? AND status = 'pending'",
                     (owner_name, bank, iban_id, user_id), expect_rows=1)

    # -- removal: the row moves to irt_removals, in one transaction ----------------------------------
    async def owner_of(self, kind: str, item_id: int) -> int | None:
        table = _REMOVABLE[kind][0]
        row = await self._store.fetch_one(f"SELECT user_id FROM {table} WHERE id = ?", item_id)
        return None if row is None else int(row["user_id"])

    @staticmethod
    def remove(*, kind: str, item_id: int, owner_id: int, removed_by: int | None, reason: str) -> list[Write]:
        """Copy the row to irt_removals (who, when, why), then delete it: its hash or IBAN is free again."""
        table, shown, digest, key_id = _REMOVABLE[kind]
        return [
            Write("INSERT INTO irt_removals (kind, item_id, user_id, shown, card_hash, key_id, status, registered_at,"
                  f" reason, removed_by, removed_at) SELECT ?, id, user_id, {shown}, {digest}, {key_id}, status,"
                  f" created_at, ?, ?, ? FROM {table} WHERE id = ? AND user_id = ?",
                  (kind, reason, removed_by, utc_now(), item_id, owner_id), expect_rows=1),
            Write(f"DELETE FROM {table} WHERE id = ? AND user_id = ?", (item_id, owner_id), expect_rows=1),
        ]

    # -- matching: the verified owners an identifier names ------------------------------------------
    async def owners_by_card_hashes(self, hashes: list[str]) -> dict[int, CardRow]:
        rows = await self._store.fetch_all(
            f"SELECT {_CARD_COLUMNS} FROM cards WHERE card_hash IN ({_marks(hashes)}) AND status = 'verified'"
            f" AND {_VERIFIED_USER} LIMIT ?", *hashes, OWNER_CANDIDATES_MAX)
        return {int(r["user_id"]): _card(r) for r in rows}

    async def owners_by_card_mask(self, card_masked: str) -> set[int]:
        return await self._users(f"SELECT DISTINCT user_id FROM cards WHERE card_masked = ? AND status = 'verified'"
                                 f" AND {_VERIFIED_USER} LIMIT ?", card_masked)

    async def owners_by_iban(self, iban: str) -> set[int]:
        """Owners of a verified card on this account and of this verified IBAN (a joint account names several)."""
        return await self._users(
            f"SELECT user_id FROM cards WHERE iban = ? AND status = 'verified' AND {_VERIFIED_USER}"
            f" UNION SELECT user_id FROM ibans WHERE iban = ? AND status = 'verified' AND {_VERIFIED_USER} LIMIT ?",
            iban, iban)

    async def _users(self, sql: str, *values: str) -> set[int]:
        rows = await self._store.fetch_all(sql, *values, OWNER_CANDIDATES_MAX)
        return {int(r["user_id"]) for r in rows}
