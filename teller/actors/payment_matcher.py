"""PaymentMatcher: credits bank-statement lines to their verified senders, or to suspense with the reason.

Who a line belongs to is ``matching_rules.decide`` (the table is there): every identifier the line
carries (full card, masked card, IBAN) must name the same single verified owner. Cards, IBANs and
identities are bound by ``teller.payments.registry``; this actor only reads them.

A statement line becomes exactly one ledger transfer keyed ``irt:{bank_reference}``, committed
together with the line's row (and, for a user, an ``irt.credited`` event):

- credited: ``bank:irt`` -> ``user:{id}:IRT``, through that user's WalletActor, line ``matched``;
- otherwise: ``bank:irt`` -> ``suspense:irt``, line ``unmatched`` with its ``reason``, for ops.

A full card found under a previous card-hash key is re-hashed under the current key on that match
(before the credit, in its own conditional write: losing it only means it is done next time).

Replays are harmless at every level: a stored line is skipped, the ledger key makes a second
transfer a no-op (and a conflicting one, e.g. a line first parked in suspense, an
``IdempotencyConflict`` we treat as "already handled"). Ops assign an unmatched line with a second
transfer ``suspense:irt`` -> ``user:{id}:IRT`` keyed ``irt-assign:{bank_reference}``, whose
conditional update (unmatched -> assigned, naming the operator) runs in the same transaction: once,
whatever the retries; refused when the assignee has no verified identity or the line's identifiers
name other verified owners.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from teller.actors.matching_rules import CARD, CARD_MASK, IBAN, Decision, Evidence, contradicts, decide
from teller.assets import IRT_CODE, IRT_DECIMALS
from teller.errors import (
    AlreadyCredited,
    AssignmentContradicts,
    IdempotencyConflict,
    IdentityRequired,
    NotFound,
    TellerError,
)
from teller.events.schema import EventType
from teller.money import format_amount
from teller.payments.card_keys import CardKeys
from teller.payments.cards import parse_card
from teller.payments.statement import StatementLine
from teller.runtime import AsyncioActor, Handle
from teller.storage.ledger_keys import statement_assign_key, statement_line_key
from teller.storage import BANK_IRT, SUSPENSE_IRT, Event, UniqueViolation, user_account
from teller.storage.irt import LINE_ASSIGNED, LINE_MATCHED, LINE_UNMATCHED, IrtRepository, LineRow
from teller.storage.owners import VERIFIED, Owners
from teller.storage.store import StaleWrite

__all__ = ["PaymentMatcher", "MATCHER_MAILBOX_MAX", "line_key", "assign_key"]

MATCHER_MAILBOX_MAX = 2_000  # a statement page (500) plus ops calls

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

    def __init__(self, *, store: Any, wallet: Callable[[int], Handle], keys: CardKeys) -> None:
        super().__init__()
        self.store = store
        self.repo = IrtRepository(store)
        self.owners = Owners(store)
        self.wallet = wallet
        self.keys = keys

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
        hashed = self.keys.hash(parse_card(line.source_card)) if line.card_is_full else None
        evidence = await self._line_evidence(line)
        decision = decide(evidence)
        if decision.user_id is not None:
            return await self.wallet(decision.user_id).call("run", self._credit_user_command(line, hashed))
        self.log.warning("irt.line_to_suspense", bank_reference=ref, reason=decision.reason)
        return await self._credit_suspense(line, hashed, decision)

    async def _line_evidence(self, line: StatementLine) -> list[Evidence]:
        evidence = []
        if line.card_is_full:
            assert line.source_card is not None
            card = parse_card(line.source_card)
            hashes = self.keys.hashes(card)
            found = await self.owners.owners_by_card_hashes([digest for _, digest in hashes])
            for row in found.values():
                if row.key_id != self.keys.current_id:  # found under an old key: re-key it (and its lines) now
                    await self._rehash(row, hashes)
            evidence.append(Evidence(CARD, frozenset(found)))
        elif line.card_masked is not None:
            evidence.append(Evidence(CARD_MASK, frozenset(await self.owners.owners_by_card_mask(line.card_masked))))
        if line.source_iban is not None:
            evidence.append(Evidence(IBAN, frozenset(await self.owners.owners_by_iban(line.source_iban))))
        return evidence

    async def _rehash(self, row: Any, hashes: list[tuple[str, str]]) -> None:
        current_id = self.keys.current_id
        writes = [Owners.rehash_card(card_id=row.id, old_key_id=row.key_id, card_hash=dict(hashes)[current_id],
                                     key_id=current_id)]
        lines = Owners.rekey_card_lines(hashes=hashes, key_id=current_id)
        try:
            await self.store.run_atomic([*writes, *([lines] if lines else [])])
        except UniqueViolation:  # an unverified twin holds the current hash: ops' to untangle, the match stands
            self.log.warning("irt.card_rehash_refused", card_id=row.id)
            return
        self.log.info("irt.card_rehashed", card_id=row.id, key_id=self.keys.current_id)

    def _line_write(self, line: StatementLine, hashed: str | None, *, user_id: int | None,
                    reason: str | None) -> Any:
        return IrtRepository.insert_line(
            bank_reference=line.bank_reference, amount_minor=line.amount_rial, source_iban=line.source_iban,
            source_card_masked=line.card_masked, source_card_hash=hashed,
            source_card_key_id=None if hashed is None else self.keys.current_id, occurred_at=line.occurred_at,
            status=LINE_MATCHED if user_id is not None else LINE_UNMATCHED, user_id=user_id, reason=reason)

    def _credit_user_command(self, line: StatementLine, hashed: str | None) -> Callable[[Any, int], Any]:
        log = self.log

        async def credit(store: Any, user_id: int) -> str:
            ref = line.bank_reference
            write = self._line_write(line, hashed, user_id=user_id, reason=None)
            event = _credited_event(user_id=user_id, amount_minor=line.amount_rial, reference=ref, how="statement")
            outcome = await _transfer_once(store, log, debit=BANK_IRT, credit=user_account(user_id, IRT_CODE),
                                           amount=line.amount_rial, key=line_key(ref), writes=[write],
                                           outbox=[event], ok=MATCHED)
            if outcome == MATCHED:
                log.info("irt.credited", bank_reference=ref, user_id=user_id, amount_rial=line.amount_rial)
            return outcome

        return credit

    async def _credit_suspense(self, line: StatementLine, hashed: str | None, decision: Decision) -> str:
        ref = line.bank_reference
        write = self._line_write(line, hashed, user_id=None, reason=decision.reason)
        outcome = await _transfer_once(self.store, self.log, debit=BANK_IRT, credit=SUSPENSE_IRT,
                                       amount=line.amount_rial, key=line_key(ref), writes=[write], outbox=[],
                                       ok=UNMATCHED)
        if outcome == UNMATCHED:
            self.log.warning("irt.unmatched", bank_reference=ref, amount_rial=line.amount_rial, line=repr(line),
                             reason=decision.reason)
        return outcome

    # -- ops -------------------------------------------------------------------------------------
    async def assign(self, line_id: int, user_id: int, operator: str) -> LineRow:
        """Move an unmatched line from suspense to a user, once. Again for the same user: a no-op."""
        line = await self.repo.line(line_id)
        if line is None:
            raise NotFound("no such statement line")
        if await self.store.users.get(user_id) is None:
            raise NotFound("no such user")
        if line.status == LINE_MATCHED or (line.status == LINE_ASSIGNED and line.user_id != user_id):
            raise AlreadyCredited()
        if line.status == LINE_UNMATCHED:
            identity = await self.owners.identity(user_id)
            if identity is None or identity.status != VERIFIED:
                raise IdentityRequired("the user has no verified identity: IRT cannot be credited to them")
            if contradicts(await self._stored_line_evidence(line), user_id):
                self.log.warning("irt.assignment_refused", line_id=line_id, user_id=user_id, operator=operator)
                raise AssignmentContradicts()
            await self.wallet(user_id).call("run", self._assign_command(line, operator))
        fresh = await self.repo.line(line_id)
        assert fresh is not None
        # Re-check after the awaits: a concurrent assignment to someone else wins by its key.
        if fresh.status != LINE_ASSIGNED or fresh.user_id != user_id:
            raise AlreadyCredited()
        return fresh

    async def _stored_line_evidence(self, line: LineRow) -> list[Evidence]:
        """What a stored line's identifiers say now, read as matching reads them: a line that carried the full
        card is judged by that card (its hash; a card re-keyed since took the line's hash along), never by its
        mask, which another person's card can share; only a line that carried just the mask is judged by it."""
        evidence = []
        if line.source_card_hash is not None:
            owners = await self.owners.owners_by_card_hashes([line.source_card_hash])
            evidence.append(Evidence(CARD, frozenset(owners)))
        elif line.source_card_masked is not None:
            owners_by_mask = await self.owners.owners_by_card_mask(line.source_card_masked)
            evidence.append(Evidence(CARD_MASK, frozenset(owners_by_mask)))
        if line.source_iban is not None:
            evidence.append(Evidence(IBAN, frozenset(await self.owners.owners_by_iban(line.source_iban))))
        return evidence

    def _assign_command(self, line: LineRow, operator: str) -> Callable[[Any, int], Any]:
        log = self.log

        async def assign(store: Any, user_id: int) -> None:
            ref = line.bank_reference
            try:
                await store.ledger.transfer(
                    debit=SUSPENSE_IRT, credit=user_account(user_id, IRT_CODE), asset=IRT_CODE,
                    amount=line.amount_minor, key=assign_key(ref),
                    writes=[IrtRepository.assign_line(line_id=line.id, user_id=user_id, operator=operator)],
                    outbox=[_credited_event(user_id=user_id, amount_minor=line.amount_minor, reference=ref,
                                            how="ops")])
            except (IdempotencyConflict, StaleWrite) as exc:
                raise AlreadyCredited() from exc
            log.info("irt.assigned", bank_reference=ref, user_id=user_id, amount_rial=line.amount_minor,
                     operator=operator)

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
