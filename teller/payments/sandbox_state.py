"""The Paystar sandbox's state and its fakes: credentials, expiring keys, planned failures, statement.

Its people (``sandbox_people``) answer the info-matching inquiries: a card of a person there is
that person's account (their name as owner), any other card keeps the derived fake below.

Deterministic fakes, so tests can predict them: a card with a known BIN belongs to an account of
that BIN's bank (IBAN bank code matches, mod-97 valid) whose 19-digit account part and owner are
derived from a SHA-256 of the card; the owner of an IBAN is derived from the IBAN, so a card's
inquiry and its IBAN's inquiry name the same person. A card with an unknown BIN, a Luhn failure
or one marked with ``forget_card`` is "not found" (Paystar status 10).
"""

from __future__ import annotations

import hashlib
import secrets
import time
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone

from teller.errors import InvalidCard, InvalidIban
from teller.payments.banks import BANK_BY_BIN, BANK_BY_IBAN_CODE
from teller.payments.cards import parse_card
from teller.payments.iban import build_iban, iban_bank_code, parse_iban
from teller.payments.paystar_wire import CardIbanInfo, IbanInfo
from teller.payments.sandbox_people import PEOPLE, Person
from teller.payments.statement import StatementLine

__all__ = ["SandboxState", "FailureMode", "Scope", "fake_card_account", "fake_iban_account", "KEYS_MAX", "LINES_MAX"]

KEYS_MAX = 1_000  # live API keys the sandbox remembers; older ones are dropped
LINES_MAX = 100_000  # statement lines held in memory
FAILURES_PLANNED_MAX = 1_000

_FIRST = ("Ali", "Maryam", "Reza", "Zahra", "Hossein", "Fatemeh", "Mohammad", "Sara", "Amir", "Narges", "Mehdi", "Leila")
_LAST = ("Ahmadi", "Hosseini", "Karimi", "Rezaei", "Mousavi", "Jafari", "Rahimi", "Moradi", "Kazemi", "Sadeghi")


class FailureMode:
    TIMEOUT = "timeout"  # hang past the client's timeout
    ERROR = "error"  # HTTP 500
    GARBAGE = "garbage"  # HTTP 200, not JSON
    MALFORMED = "malformed"  # HTTP 200, JSON with status 1 but the data fields missing
    UNKNOWN_CARD = "unknown_card"  # status 10 (inquiries only)
    MISMATCH = "mismatch"  # status 1, is_matched false (info-matching only)
    LIMIT = "limit"  # status 9: the paid-inquiry budget is spent
    ALL = frozenset({"timeout", "error", "garbage", "malformed", "unknown_card", "mismatch", "limit"})


class Scope:
    INQUIRY = "inquiry"  # card-to-iban and iban-inquiry
    MATCHING = "matching"  # info-matching: Shahkar, card and IBAN <-> national code
    REFRESH = "refresh"
    STATEMENT = "statement"
    ALL = frozenset({"inquiry", "matching", "refresh", "statement"})


def fake_owner(iban: str) -> str:
    digest = hashlib.sha256(b"teller-sandbox-owner:" + iban.encode()).digest()
    return f"{_FIRST[digest[0] % len(_FIRST)]} {_LAST[digest[1] % len(_LAST)]}"


def fake_card_account(card: str) -> CardIbanInfo | None:
    """What the sandbox answers for a card, or None when it says "not found"."""
    try:
        number = parse_card(card).number
    except InvalidCard:
        return None
    bank = BANK_BY_BIN.get(number[:6])
    if bank is None:
        return None
    digest = hashlib.sha256(b"teller-sandbox-card:" + number.encode()).digest()
    account = str(int.from_bytes(digest[:16], "big") % 10**19).zfill(19)
    iban = build_iban(bank_code=bank.iban_code, account=account)
    return CardIbanInfo(iban=iban, owner_name=fake_owner(iban), bank=bank.name)


def fake_iban_account(iban: str) -> IbanInfo | None:
    try:
        iban = parse_iban(iban)
    except InvalidIban:
        return None
    bank = BANK_BY_IBAN_CODE.get(iban_bank_code(iban))
    if bank is None:
        return None
    return IbanInfo(iban=iban, owners=(fake_owner(iban),), bank=bank.name, account_status="active")


@dataclass
class SandboxState:
    """Everything a test can steer. Mutated only on the sandbox's event loop."""

    application_id: str = "sandbox-app"
    access_password: str = "sandbox-password"
    refresh_token: str = "sandbox-refresh-token"
    api_key_ttl_s: float = 60.0
    hang_s: float = 30.0  # how long a TIMEOUT failure holds the request (released on shutdown)
    clock: Callable[[], float] = time.time
    keys: dict[str, float] = field(default_factory=dict)  # api key -> expires at (epoch s)
    requests: Counter[str] = field(default_factory=Counter)  # scope -> requests received
    refreshes: int = 0
    forgotten_cards: set[str] = field(default_factory=set)
    lines: list[StatementLine] = field(default_factory=list)
    people: list[Person] = field(default_factory=lambda: list(PEOPLE))
    _failures: dict[str, deque[str]] = field(default_factory=dict)

    # -- keys ------------------------------------------------------------------------------

    def issue_key(self) -> tuple[str, float]:
        now_s = self.clock()
        self.keys = {k: exp for k, exp in self.keys.items() if exp > now_s}
        while len(self.keys) >= KEYS_MAX:
            self.keys.pop(next(iter(self.keys)))
        key = "sbx_" + secrets.token_urlsafe(24)
        self.keys[key] = now_s + self.api_key_ttl_s
        self.refreshes += 1
        return key, self.keys[key]

    def key_state(self, key: str) -> str:
        """"ok", "expired" or "invalid"."""
        expires_at_s = self.keys.get(key)
        if expires_at_s is None:
            return "invalid"
        return "ok" if self.clock() < expires_at_s else "expired"

    def expire_keys(self) -> None:
        """Every issued key is expired from now on (clients holding one must refresh)."""
        now_s = self.clock()
        self.keys = {k: min(exp, now_s) for k, exp in self.keys.items()}

    # -- failures --------------------------------------------------------------------------

    def fail(self, mode: str, *, count: int = 1, scope: str = Scope.INQUIRY) -> None:
        """The next ``count`` requests in ``scope`` fail with ``mode``."""
        if mode not in FailureMode.ALL or scope not in Scope.ALL:
            raise ValueError(f"unknown failure mode {mode!r} or scope {scope!r}")
        plan = self._failures.setdefault(scope, deque())
        if len(plan) + count > FAILURES_PLANNED_MAX:
            raise ValueError("too many planned failures")
        plan.extend([mode] * count)

    def next_failure(self, scope: str) -> str | None:
        self.requests[scope] += 1
        plan = self._failures.get(scope)
        return plan.popleft() if plan else None

    def clear_failures(self) -> None:
        self._failures.clear()

    # -- cards -----------------------------------------------------------------------------

    def forget_card(self, card: str) -> None:
        self.forgotten_cards.add(parse_card(card).number)

    def card_account(self, card: str) -> CardIbanInfo | None:
        info = None if card in self.forgotten_cards else fake_card_account(card)
        holder = self._holder_of_card(card)
        return info if info is None or holder is None else CardIbanInfo(info.iban, holder.name, info.bank)

    def iban_account(self, iban: str) -> IbanInfo | None:
        info = fake_iban_account(iban)
        holder = self._holder_of_iban(info.iban) if info is not None else None
        if info is None or holder is None:
            return info
        return IbanInfo(info.iban, (holder.name,), info.bank, info.account_status)

    # -- people (info-matching) ------------------------------------------------------------

    def add_person(self, person: Person) -> None:
        self.people.append(person)

    def shahkar(self, national_code: str, mobile: str) -> bool:
        return any(p.national_code == national_code and p.mobile == mobile for p in self.people)

    def card_owned_by(self, card: str, national_code: str) -> bool | None:
        """None when the bank does not know the card (status 10), else whether this code holds it."""
        if self.card_account(card) is None:
            return None
        return any(p.national_code == national_code for p in self.people if card in p.cards)  # shared: several

    def iban_owned_by(self, iban: str, national_code: str) -> bool | None:
        info = fake_iban_account(iban)
        if info is None:
            return None
        return any(p.national_code == national_code and self._holds_iban(p, info.iban) for p in self.people)

    def _holder_of_card(self, card: str) -> Person | None:
        return next((p for p in self.people if card in p.cards), None)

    def _holder_of_iban(self, iban: str) -> Person | None:
        return next((p for p in self.people if self._holds_iban(p, iban)), None)

    @staticmethod
    def _holds_iban(person: Person, iban: str) -> bool:
        accounts = (fake_card_account(card) for card in person.cards)
        return iban in person.ibans or any(a is not None and a.iban == iban for a in accounts)

    # -- statement -------------------------------------------------------------------------

    def append_line(
        self,
        *,
        amount_rial: int,
        source_iban: str | None = None,
        source_card: str | None = None,
        bank_reference: str | None = None,
        occurred_at: datetime | None = None,
    ) -> StatementLine:
        if len(self.lines) >= LINES_MAX:
            raise ValueError("the sandbox statement is full")
        line = StatementLine(
            bank_reference=bank_reference or f"SBX{len(self.lines) + 1:010d}",
            amount_rial=amount_rial,
            occurred_at=occurred_at or datetime.fromtimestamp(self.clock(), tz=timezone.utc),
            source_iban=parse_iban(source_iban) if source_iban else None,
            source_card=source_card,
        )
        self.lines.append(line)
        return line

    def duplicate_line(self, bank_reference: str) -> StatementLine:
        """Serve an already served line once more, at the end of the statement."""
        line = next(ln for ln in self.lines if ln.bank_reference == bank_reference)
        self.lines.append(line)
        return line

    def page(self, cursor: int, limit: int) -> tuple[list[StatementLine], int]:
        page = self.lines[cursor : cursor + limit]
        return page, cursor + len(page)
