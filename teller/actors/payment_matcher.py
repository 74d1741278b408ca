"""PaymentMatcher: verifies users' bank cards and credits bank-statement lines to their senders.

Card registration: validate locally, refuse a card already registered (by anyone: the keyed hash is
unique), ask Paystar for the card's IBAN and owner, then store the card (hash + mask, never the
number) and a ``card.verified`` event in one DB transaction. Nothing is stored unless Paystar
answered; a provider failure is ``ProviderUnavailable`` (502).

A statement line becomes exactly one ledger transfer keyed ``irt:{bank_reference}``, committed
together with the line's row (and, for a user, an ``irt.credited`` event):

- the sources it names (a full card by hash, a masked card by mask, an IBAN by the IBAN of a
  verified card) point at exactly one user: ``bank:irt`` -> ``user:{id}:IRT``, through that user's
  WalletActor, line ``matched``;
- no user, or more than one (a mask shared by two users' cards, a card and an IBAN naming different
  people): ``bank:irt`` -> ``suspense:irt``, line ``unmatched``, for ops to assign.

Replays are harmless at every level: a stored line is skipped, the ledger key makes a second
transfer a no-op (and a conflicting one, e.g. a line first parked in suspense, an
``IdempotencyConflict`` we treat as "already handled"). Ops assign an unmatched line with a second
transfer ``suspense:irt`` -> ``user:{id}:IRT`` keyed ``irt-assign:{bank_reference}``, whose
conditional update (unmatched -> assigned) runs in the same transaction: once, whatever the retries.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from teller.assets import IRT_CODE, IRT_DECIMALS
from teller.errors import (
    AlreadyCredited,
    CardExists,
    IdempotencyConflict,
    LimitExceeded,
    NotFound,
    TellerError,
)
from teller.events.schema import EventType
from teller.money import format_amount
from teller.payments.cards import card_hash, parse_card
from teller.payments.statement import StatementLine
from teller.runtime import AsyncioActor, Handle
from teller.storage.ledger_keys import statement_assign_key, statement_line_key
from teller.storage import BANK_IRT, SUSPENSE_IRT, Event, Outbox, UniqueViolation, user_account
from teller.storage.irt import LINE_ASSIGNED, LINE_MATCHED, LINE_UNMATCHED, CardRow, IrtRepository, LineRow
from teller.storage.store import StaleWrite

__all__ = ["PaymentMatcher", "CARDS_PER_USER_MAX", "MATCHER_MAILBOX_MAX", "line_key", "assign_key"]

CARDS_PER_USER_MAX = 10
MATCHER_MAILBOX_MAX = 2_000  # a statement page (500) plus card registrations and ops calls

# Outcomes of handle_line, for logs, tests and the sync's counters.
MATCHED, UNMATCHED, DUPLICATE = "matched", "unmatched", "duplicate"


def line_key(bank_reference: str) -> str:
    return statement_line_key(bank_reference)


def assign_key(bank_reference: str) -> str:
    return statement_assign_key(bank_reference)


def _credited_event(*, user_id: int, amount_minor: int, reference: str, how: str) -> Event:
    return Event(EventType.IRT_CREDITED.value, {
        "user_id": str(user_id), "asset": IRT_CODE, "amount": format_amount(amount_minor, IRT_DECIMALS),
        "reference": reference, "via": how,
    })


class PaymentMatcher(AsyncioActor):
    expected_errors = (TellerError,)
    mailbox_max = MATCHER_MAILBOX_MAX

    def __init__(self, *, store: Any, wallet: Callable[[int], Handle], paystar: Any, card_secret: bytes) -> None:
        super().__init__()
        self.store = store
        self.repo = IrtRepository(store)
        self.wallet = wallet
        self.paystar = paystar
        self.card_secret = card_secret

    # -- cards -----------------------------------------------------------------------------------
    async def register_card(self, user_id: int, card_number: object) -> CardRow:
        card = parse_card(card_number)  # InvalidCard (422) before anything else
        digest = card.hash(secret=self.card_secret)
        if await self.repo.card_by_hash(digest) is not None:
            raise CardExists()
        if await self.repo.count_cards_of(user_id) >= CARDS_PER_USER_MAX:
            raise LimitExceeded(f"at most {CARDS_PER_USER_MAX} cards per user")
        info = await self.paystar.card_to_iban(card)  # InvalidCard / ProviderUnavailable: nothing stored
        # Re-check after the await: another request may have registered the card meanwhile. The
        # unique hash decides in the end (across processes too); this only gives the clearer error.
        try:
            await self.store.run_atomic([
                IrtRepository.insert_card(user_id=user_id, card_hash=digest, card_masked=card.masked,
                                          iban=info.iban, owner_name=info.owner_name, bank=info.bank),
                Outbox.write(Event(EventType.CARD_VERIFIED.value, {
                    "user_id": str(user_id), "card_masked": card.masked, "bank": info.bank,
                })),
            ])
        except UniqueViolation as exc:
            raise CardExists() from exc
        row = await self.repo.card_by_hash(digest)
        assert row is not None and row.user_id == user_id, "the card row we just wrote is readable"
        self.log.info("irt.card_verified", user_id=user_id, card_masked=card.masked, bank=info.bank)
        return row

    # -- statement lines -------------------------------------------------------------------------
    async def handle_line(self, line: StatementLine) -> str:
        """Credit one line exactly once: to its sender, or to suspense. Returns what happened."""
        ref = line.bank_reference
        known = await self.repo.line_by_reference(ref)
        if known is not None:
            if known.amount_minor != line.amount_rial:
                self.log.error("irt.reference_reused", bank_reference=ref, amount_stored=known.amount_minor,
                               amount_served=line.amount_rial)
            return DUPLICATE
        hashed = card_hash(line.source_card, secret=self.card_secret) if line.card_is_full else None
        candidates = await self._candidates(line, hashed)
        if len(candidates) == 1:
            (user_id,) = candidates
            return await self.wallet(user_id).call("run", self._credit_user_command(line, hashed))
        if candidates:
            self.log.warning("irt.line_ambiguous", bank_reference=ref, candidates=len(candidates))
        return await self._credit_suspense(line, hashed)

    async def _candidates(self, line: StatementLine, hashed: str | None) -> set[int]:
        users: set[int] = set()
        if hashed is not None:
            users |= await self.repo.users_by_card_hash(hashed)
        elif line.card_masked is not None:
            users |= await self.repo.users_by_card_mask(line.card_masked)
        if line.source_iban is not None:
            users |= await self.repo.users_by_iban(line.source_iban)
        return users

    def _credit_user_command(self, line: StatementLine, hashed: str | None) -> Callable[[Any, int], Any]:
        log = self.log

        async def credit(store: Any, user_id: int) -> str:
            ref = line.bank_reference
            write = IrtRepository.insert_line(
                bank_reference=ref, amount_minor=line.amount_rial, source_iban=line.source_iban,
                source_card_masked=line.card_masked, source_card_hash=hashed, occurred_at=line.occurred_at,
                status=LINE_MATCHED, user_id=user_id)
            event = _credited_event(user_id=user_id, amount_minor=line.amount_rial, reference=ref, how="statement")
            outcome = await _transfer_once(store, log, debit=BANK_IRT, credit=user_account(user_id, IRT_CODE),
                                           amount=line.amount_rial, key=line_key(ref), writes=[write],
                                           outbox=[event], ok=MATCHED)
            if outcome == MATCHED:
                log.info("irt.credited", bank_reference=ref, user_id=user_id, amount_rial=line.amount_rial)
            return outcome

        return credit

    async def _credit_suspense(self, line: StatementLine, hashed: str | None) -> str:
        ref = line.bank_reference
        write = IrtRepository.insert_line(
            bank_reference=ref, amount_minor=line.amount_rial, source_iban=line.source_iban,
            source_card_masked=line.card_masked, source_card_hash=hashed, occurred_at=line.occurred_at,
            status=LINE_UNMATCHED, user_id=None)
        outcome = await _transfer_once(self.store, self.log, debit=BANK_IRT, credit=SUSPENSE_IRT,
                                       amount=line.amount_rial, key=line_key(ref), writes=[write], outbox=[],
                                       ok=UNMATCHED)
        if outcome == UNMATCHED:
            self.log.warning("irt.unmatched", bank_reference=ref, amount_rial=line.amount_rial, line=repr(line))
        return outcome

    # -- ops -------------------------------------------------------------------------------------
    async def assign(self, line_id: int, user_id: int) -> LineRow:
        """Move an unmatched line from suspense to a user, once. Again for the same user: a no-op."""
        line = await self.repo.line(line_id)
        if line is None:
            raise NotFound("no such statement line")
        if await self.store.users.get(user_id) is None:
            raise NotFound("no such user")
        if line.status == LINE_MATCHED or (line.status == LINE_ASSIGNED and line.user_id != user_id):
            raise AlreadyCredited()
        if line.status == LINE_UNMATCHED:
            await self.wallet(user_id).call("run", self._assign_command(line))
        fresh = await self.repo.line(line_id)
        assert fresh is not None
        # Re-check after the awaits: a concurrent assignment to someone else wins by its key.
        if fresh.status != LINE_ASSIGNED or fresh.user_id != user_id:
            raise AlreadyCredited()
        return fresh

    def _assign_command(self, line: LineRow) -> Callable[[Any, int], Any]:
        log = self.log

        async def assign(store: Any, user_id: int) -> None:
            ref = line.bank_reference
            try:
                await store.ledger.transfer(
                    debit=SUSPENSE_IRT, credit=user_account(user_id, IRT_CODE), asset=IRT_CODE,
                    amount=line.amount_minor, key=assign_key(ref),
                    writes=[IrtRepository.assign_line(line_id=line.id, user_id=user_id)],
                    outbox=[_credited_event(user_id=user_id, amount_minor=line.amount_minor, reference=ref,
                                            how="ops")])
            except (IdempotencyConflict, StaleWrite) as exc:
                raise AlreadyCredited() from exc
            log.info("irt.assigned", bank_reference=ref, user_id=user_id, amount_rial=line.amount_minor)

        return assign


async def _transfer_once(store: Any, log: Any, *, debit: str, credit: str, amount: int, key: str,
                         writes: list[Any], outbox: list[Event], ok: str) -> str:
    """The line's one transfer; ``ok`` if this call made it, DUPLICATE if it was already made."""
    try:
        transfer = await store.ledger.transfer(debit=debit, credit=credit, asset=IRT_CODE, amount=amount,
                                               key=key, writes=writes, outbox=outbox)
    except IdempotencyConflict:
        # The key exists with other content: this line was credited elsewhere (e.g. parked in
        # suspense before the sender's card was verified). Never a second credit.
        log.warning("irt.line_already_credited_elsewhere", key=key)
        return DUPLICATE
    except (UniqueViolation, StaleWrite):
        # The line's row exists without this key's transfer: only a concurrent writer in another
        # process can get here between our check and our commit. Its transfer stands.
        log.warning("irt.line_row_exists", key=key)
        return DUPLICATE
    return DUPLICATE if transfer.replayed else ok
