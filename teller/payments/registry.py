"""Binding people, cards and IBANs: each step asks the provider, then makes one write the database decides.

The steps, each refusing cleanly and storing nothing unless the provider said yes::

    share contact      the user's own Telegram contact (Mini App: signed string; bot: a contact
                       message whose contact.user_id is the sender) -> identity contact_shared
    national code      Shahkar(national code, mobile) -> identity verified (one account per code)
    card / IBAN        identity verified, then card|IBAN <-> national code -> row verified

Races are the database's: the unique card hash / IBAN / national code lets one writer win and the
loser sees the winner's row (its own again: 200; someone else's: 409 with no hint of whose).
A crash between the provider's answer and the write leaves nothing: the user asks again and the
provider is asked again. Personal data is logged masked or not at all.
"""

from __future__ import annotations

from typing import Any

from teller.errors import (
    CardExists,
    CardOwnerMismatch,
    ContactRequired,
    ForeignContact,
    IbanExists,
    IbanOwnerMismatch,
    IdentityMismatch,
    IdentityRequired,
    IdentityVerified,
    LimitExceeded,
    NationalCodeTaken,
    NotFound,
)
from teller.events.schema import EventType
from teller.log import get_logger
from teller.payments.card_keys import CardKeys
from teller.payments.cards import parse_card
from teller.payments.iban import iban_bank, mask_iban, parse_iban
from teller.payments.national_code import parse_mobile, parse_national_code
from teller.storage import Event, Outbox, UniqueViolation
from teller.storage.owners import CARD, IBAN, VERIFIED, CardRow, IbanRow, IdentityRow, Owners
from teller.storage.store import StaleWrite, Write

__all__ = ["OwnerRegistry", "ContactBook", "CARDS_PER_USER_MAX", "IBANS_PER_USER_MAX", "SUPERSEDED", "REMOVED_BY_USER"]

CARDS_PER_USER_MAX = 10
IBANS_PER_USER_MAX = 10
REMOVED_BY_USER, SUPERSEDED = "removed_by_user", "superseded_by_verified_owner"


class ContactBook:
    """The first step alone (no provider): the bot records contacts with it as the Mini App's route does."""

    def __init__(self, store: Any) -> None:
        self._owners = Owners(store)
        self._log = get_logger(component="irt/contacts")

    async def share(self, *, user_id: int, telegram_id: int, contact_user_id: int, phone: str) -> IdentityRow:
        """Record the caller's own mobile. Again with the same mobile: the same answer, also once verified."""
        if contact_user_id != telegram_id:
            raise ForeignContact()
        mobile = parse_mobile(phone)
        known = await self._owners.identity(user_id)
        if known is not None and known.status == VERIFIED:
            if known.mobile != mobile:
                raise IdentityVerified()
            return known
        await self._owners.record_contact(user_id=user_id, mobile=mobile)
        fresh = await self._owners.identity(user_id)
        assert fresh is not None
        if fresh.mobile != mobile:  # verified meanwhile with the earlier mobile: it no longer changes
            raise IdentityVerified()
        self._log.info("irt.contact_shared", user_id=user_id)
        return fresh


class OwnerRegistry:
    def __init__(self, *, store: Any, paystar: Any, keys: CardKeys) -> None:
        self._store = store
        self._owners = Owners(store)
        self._paystar = paystar
        self._keys = keys
        self._log = get_logger(component="irt/registry")

    @property
    def owners(self) -> Owners:
        return self._owners

    # -- identity --------------------------------------------------------------------------------
    async def identity(self, user_id: int) -> IdentityRow | None:
        return await self._owners.identity(user_id)

    async def share_contact(self, *, user_id: int, telegram_id: int, contact_user_id: int, phone: str) -> IdentityRow:
        return await ContactBook(self._store).share(user_id=user_id, telegram_id=telegram_id,
                                                    contact_user_id=contact_user_id, phone=phone)

    async def verify_national_code(self, *, user_id: int, national_code: object) -> IdentityRow:
        code = parse_national_code(national_code)  # 422 before anything else
        known = await self._owners.identity(user_id)
        if known is None:
            raise ContactRequired()
        if known.status == VERIFIED:
            if known.national_code != code:
                raise IdentityVerified()
            return known
        # The provider first, though each inquiry is paid: answering "taken" before it would tell anyone with a
        # shared contact whether a national code is a customer's. After it, only the code's own mobile gets here.
        if not await self._paystar.shahkar(national_code=code, mobile=known.mobile):
            self._log.info("irt.identity_mismatch", user_id=user_id)
            raise IdentityMismatch()
        try:
            await self._store.run_atomic([Owners.verify_identity(user_id=user_id, mobile=known.mobile,
                                                                 national_code=code)])
        except UniqueViolation as exc:
            raise NationalCodeTaken() from exc
        except StaleWrite:
            pass  # the mobile changed or another request verified meanwhile: decided below
        fresh = await self._owners.identity(user_id)
        assert fresh is not None
        if fresh.status != VERIFIED:
            raise ContactRequired("your contact changed while it was being verified; try again")
        if fresh.national_code != code:
            raise IdentityVerified()
        self._log.info("irt.identity_verified", user_id=user_id)
        return fresh

    async def _verified(self, user_id: int) -> str:
        """The user's verified national code; ``IdentityRequired`` until there is one."""
        identity = await self._owners.identity(user_id)
        if identity is None or identity.status != VERIFIED or identity.national_code is None:
            raise IdentityRequired()
        return identity.national_code

    # -- cards -----------------------------------------------------------------------------------
    async def add_card(self, user_id: int, card_number: object) -> tuple[CardRow, bool]:
        """(the card, True if this call verified it). 409 when it is someone else's, 422 when not the user's."""
        national_code = await self._verified(user_id)
        card = parse_card(card_number)
        hashes = [digest for _, digest in self._keys.hashes(card)]
        existing = await self._owners.card_by_hashes(hashes)
        if existing is not None and existing.status == VERIFIED:
            if existing.user_id == user_id:
                return existing, False
            raise CardExists()
        if existing is None and await self._owners.count_cards_of(user_id) >= CARDS_PER_USER_MAX:
            raise LimitExceeded(f"at most {CARDS_PER_USER_MAX} cards per user")
        if not await self._paystar.card_matches(card, national_code=national_code):
            self._log.info("irt.card_owner_mismatch", user_id=user_id, card_masked=card.masked)
            raise CardOwnerMismatch()
        info = await self._paystar.card_to_iban(card)
        digest = self._keys.hash(card)
        fields = dict(card_hash=digest, key_id=self._keys.current_id, iban=info.iban, owner_name=info.owner_name,
                      bank=info.bank)
        writes: list[Write] = []
        if existing is not None and existing.user_id == user_id:  # pending from before issue 15: now checked
            writes.append(Owners.verify_pending_card(card_id=existing.id, user_id=user_id, **fields))
        else:
            if existing is not None:  # pending, someone else's: the verified holder takes it over
                writes += Owners.remove(kind=CARD, item_id=existing.id, owner_id=existing.user_id, removed_by=None,
                                        reason=SUPERSEDED)
            writes.append(Owners.insert_card(user_id=user_id, card_masked=card.masked, **fields))
        lines = Owners.rekey_card_lines(hashes=self._keys.hashes(card), key_id=self._keys.current_id)
        writes += [lines] if lines else []  # lines stored under an older key now name this card
        event = Event(EventType.CARD_VERIFIED.value, {"user_id": str(user_id), "card_masked": card.masked,
                                                      "bank": info.bank})
        try:
            await self._store.run_atomic([*writes, Outbox.write(event)])
        except (UniqueViolation, StaleWrite) as exc:
            row = await self._owners.card_by_hashes(hashes)  # another writer won the race: whose is it?
            if row is not None and row.user_id == user_id and row.status == VERIFIED:
                return row, False
            raise CardExists() from exc
        row = await self._owners.card_by_hashes([digest])
        assert row is not None and row.user_id == user_id, "the card row we just wrote is readable"
        self._log.info("irt.card_verified", user_id=user_id, card_masked=card.masked, bank=info.bank)
        return row, True

    # -- IBANs -----------------------------------------------------------------------------------
    async def add_iban(self, user_id: int, iban_text: object) -> tuple[IbanRow, bool]:
        national_code = await self._verified(user_id)
        iban = parse_iban(iban_text)
        existing = await self._owners.iban_row(iban)
        if existing is not None and existing.status == VERIFIED:
            if existing.user_id == user_id:
                return existing, False
            raise IbanExists()
        if existing is None and await self._owners.count_ibans_of(user_id) >= IBANS_PER_USER_MAX:
            raise LimitExceeded(f"at most {IBANS_PER_USER_MAX} IBANs per user")
        if not await self._paystar.iban_matches(iban, national_code=national_code):
            self._log.info("irt.iban_owner_mismatch", user_id=user_id, iban=mask_iban(iban))
            raise IbanOwnerMismatch()
        info = await self._paystar.iban_inquiry(iban)
        owner_name, bank = ", ".join(info.owners), iban_bank(iban) or info.bank
        writes: list[Write] = []
        if existing is not None and existing.user_id == user_id:
            writes.append(Owners.verify_pending_iban(iban_id=existing.id, user_id=user_id, owner_name=owner_name,
                                                     bank=bank))
        else:
            if existing is not None:
                writes += Owners.remove(kind=IBAN, item_id=existing.id, owner_id=existing.user_id, removed_by=None,
                                        reason=SUPERSEDED)
            writes.append(Owners.insert_iban(user_id=user_id, iban=iban, owner_name=owner_name, bank=bank))
        try:
            await self._store.run_atomic(writes)
        except (UniqueViolation, StaleWrite) as exc:
            row = await self._owners.iban_row(iban)
            if row is not None and row.user_id == user_id and row.status == VERIFIED:
                return row, False
            raise IbanExists() from exc
        row = await self._owners.iban_row(iban)
        assert row is not None and row.user_id == user_id, "the IBAN row we just wrote is readable"
        self._log.info("irt.iban_verified", user_id=user_id, iban=mask_iban(iban), bank=bank)
        return row, True

    # -- removal -------------------------------------------------------------------------------
    async def remove(self, *, kind: str, user_id: int, item_id: int) -> None:
        """Remove one of the user's cards or IBANs (``kind``), recorded; someone else's or none is a 404."""
        if await self._owners.owner_of(kind, item_id) != user_id:
            raise NotFound(f"no such {kind}")
        try:
            await self._store.run_atomic(Owners.remove(kind=kind, item_id=item_id, owner_id=user_id,
                                                       removed_by=user_id, reason=REMOVED_BY_USER))
        except StaleWrite as exc:  # removed by a concurrent request
            raise NotFound(f"no such {kind}") from exc
        self._log.info("irt.removed", kind=kind, item_id=item_id, user_id=user_id)
