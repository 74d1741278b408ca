"""Bank-statement source: the incoming credits to the company account, read page by page.

``StatementSource.fetch(cursor, limit)`` returns ``(lines, next_cursor)``. The cursor is opaque:
the caller persists ``next_cursor`` after it has durably handled the page and passes it back; a
``None`` cursor starts from the beginning. A source may serve a line more than once (a re-read
after a crash, a bank repeating itself): ``bank_reference`` is the idempotency key downstream.

``StatementLine.source_card`` is the card as the bank reports it, normalized to ASCII: either the
full 16 digits (Paystar's statement carries the full card of a card-to-card transfer) or the
masked form ``603799******7890`` when the bank masks it. A full number is only for matching in
memory (by ``card_hash``); the line's repr shows the mask, and ``card_masked`` is what to store.

The HTTP implementation speaks the sandbox's statement format (below); every failure of the
source, including one malformed line, is ``ProviderUnavailable`` for the whole page, so a cursor
never moves past a line nobody could read.
"""

from __future__ import annotations

import asyncio
import re
from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import aiohttp

from teller.errors import InvalidCard, InvalidIban, ProviderUnavailable
from teller.log import get_logger
from teller.payments.cards import mask_card, parse_card
from teller.payments.http_retry import RetryPolicy, exchange
from teller.payments.iban import mask_iban, parse_iban

__all__ = [
    "StatementLine",
    "StatementSource",
    "HttpStatementSource",
    "STATEMENT_PAGE_MAX",
    "PATH_STATEMENT",
    "line_to_wire",
    "line_from_wire",
]

# Bound on one page: a sync loop asks for at most this many lines at a time.
STATEMENT_PAGE_MAX = 500
BANK_REFERENCE_LEN_MAX = 128
AMOUNT_RIAL_MAX = 10**15  # far above any single bank transfer; a bigger number is a broken answer

PATH_STATEMENT = "/sandbox/statement"
W_LINES, W_NEXT_CURSOR = "lines", "next_cursor"
W_REF, W_AMOUNT, W_IBAN, W_CARD, W_AT = "bank_reference", "amount_rial", "source_iban", "source_card", "occurred_at"
_MASKED_CARD_RE = re.compile(r"[0-9]{6}\*{6}[0-9]{4}")


@dataclass(frozen=True, slots=True, repr=False)
class StatementLine:
    bank_reference: str
    amount_rial: int
    occurred_at: datetime  # timezone-aware
    source_iban: str | None = None
    source_card: str | None = None  # full 16 digits or the masked form, as the bank reported it

    def __post_init__(self) -> None:
        assert self.bank_reference and len(self.bank_reference) <= BANK_REFERENCE_LEN_MAX
        assert type(self.amount_rial) is int and 0 < self.amount_rial <= AMOUNT_RIAL_MAX
        assert self.occurred_at.tzinfo is not None, "occurred_at must be timezone-aware"
        assert self.source_iban is not None or self.source_card is not None, "a line names its source"

    @property
    def card_masked(self) -> str | None:
        if self.source_card is None:
            return None
        return self.source_card if "*" in self.source_card else mask_card(self.source_card)

    @property
    def card_is_full(self) -> bool:
        return self.source_card is not None and "*" not in self.source_card

    def __repr__(self) -> str:
        iban = mask_iban(self.source_iban) if self.source_iban else None
        return (
            f"StatementLine(bank_reference={self.bank_reference!r}, amount_rial={self.amount_rial}, "
            f"source_iban={iban!r}, source_card={self.card_masked!r}, occurred_at={self.occurred_at.isoformat()})"
        )


class StatementSource(ABC):
    """Where statement lines come from (the sandbox, later a bank or Paystar's statement API)."""

    @abstractmethod
    async def fetch(self, cursor: str | None, limit: int) -> tuple[list[StatementLine], str | None]:
        """Up to ``limit`` lines after ``cursor`` and the cursor after them (unchanged when none)."""


def line_to_wire(line: StatementLine) -> dict[str, Any]:
    return {
        W_REF: line.bank_reference,
        W_AMOUNT: line.amount_rial,
        W_IBAN: line.source_iban,
        W_CARD: line.source_card,
        W_AT: line.occurred_at.isoformat(),
    }


def line_from_wire(raw: Any) -> StatementLine:
    """Parse and validate one line; ValueError (with a reason that holds no card number) if broken."""
    if not isinstance(raw, Mapping):
        raise ValueError("a line is not an object")
    ref, amount, at = raw.get(W_REF), raw.get(W_AMOUNT), raw.get(W_AT)
    if not isinstance(ref, str) or not ref.strip() or len(ref) > BANK_REFERENCE_LEN_MAX:
        raise ValueError("bank_reference is missing or too long")
    if type(amount) is not int or not 0 < amount <= AMOUNT_RIAL_MAX:
        raise ValueError("amount_rial is not a positive integer")
    if not isinstance(at, str):
        raise ValueError("occurred_at is missing")
    try:
        occurred_at = datetime.fromisoformat(at)
    except ValueError as exc:
        raise ValueError("occurred_at is not an ISO 8601 date-time") from exc
    if occurred_at.tzinfo is None:
        raise ValueError("occurred_at has no timezone")
    iban, card = raw.get(W_IBAN), raw.get(W_CARD)
    try:
        iban = parse_iban(iban) if iban is not None else None
        if card is not None:
            card = card if isinstance(card, str) and _MASKED_CARD_RE.fullmatch(card) else parse_card(card).number
    except (InvalidIban, InvalidCard) as exc:
        raise ValueError(f"the source is not a valid IBAN or card ({exc.code})") from exc
    if iban is None and card is None:
        raise ValueError("the line names neither a source IBAN nor a card")
    return StatementLine(
        bank_reference=ref.strip(),
        amount_rial=amount,
        occurred_at=occurred_at.astimezone(timezone.utc),
        source_iban=iban,
        source_card=card,
    )


class HttpStatementSource(StatementSource):
    """The statement over HTTP (the sandbox's format): ``GET {base}/sandbox/statement?cursor=&limit=``."""

    def __init__(
        self,
        base_url: str,
        *,
        timeout_s: float = 10.0,
        retries_max: int = 2,
        session: aiohttp.ClientSession | None = None,
        backoff_base_s: float = 0.2,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._url = base_url.rstrip("/") + PATH_STATEMENT
        self._session = session
        self._owns_session = session is None
        self._policy = RetryPolicy(timeout_s=timeout_s, retries_max=max(0, retries_max), backoff_base_s=backoff_base_s)
        self._sleep = sleep
        self._log = get_logger(actor="payments/statement")

    async def close(self) -> None:
        if self._owns_session and self._session is not None:
            await self._session.close()
            self._session = None

    async def fetch(self, cursor: str | None, limit: int) -> tuple[list[StatementLine], str | None]:
        if not 0 < limit <= STATEMENT_PAGE_MAX:
            raise ValueError(f"limit must be between 1 and {STATEMENT_PAGE_MAX}")
        if self._session is None:
            self._session = aiohttp.ClientSession()
        params = {"limit": str(limit)} | ({"cursor": cursor} if cursor is not None else {})
        answer = await exchange(
            self._session, "GET", self._url, policy=self._policy, log=self._log, params=params, sleep=self._sleep
        )
        body = answer.body
        data = body.get("data") if isinstance(body, Mapping) else None
        if answer.http_status != 200 or not isinstance(data, Mapping):
            self._log.warning("statement.unexpected_answer", http_status=answer.http_status)
            raise ProviderUnavailable("the statement source gave an unexpected answer")
        raw_lines, next_cursor = data.get(W_LINES), data.get(W_NEXT_CURSOR)
        if not isinstance(raw_lines, list) or len(raw_lines) > limit or not isinstance(next_cursor, (str, type(None))):
            raise ProviderUnavailable("the statement page is malformed")
        try:
            lines = [line_from_wire(raw) for raw in raw_lines]
        except ValueError as exc:
            self._log.warning("statement.malformed_line", reason=str(exc))
            raise ProviderUnavailable("the statement page holds a malformed line") from exc
        return lines, next_cursor
