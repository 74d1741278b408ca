"""StatementSync: reads the bank statement from a persisted cursor and hands each line to the matcher.

One pass (``sync_once``): load the cursor from ``sync_cursors``, fetch a page of at most
``page_max`` lines, have the PaymentMatcher credit each one (each line's credit is its own DB
transaction, idempotent by bank reference), and only then save the page's next cursor. A crash
anywhere in a page leaves the cursor where it was, so the page is read again on restart and every
line it already credited is a no-op. At most ``pages_per_pass_max`` pages per pass, so a long
backlog never starves the actor's mailbox.

The actor polls at its own interval: a ticker task asks the actor for one pass, waits for the
answer, sleeps, repeats (never more than one pass queued). A failing source (``ProviderUnavailable``)
is logged and retried at the next tick; anything else crashes the actor, and its supervisor
(``payments``, rest_for_one) restarts it fresh from the stored cursor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from teller.errors import TellerError
from teller.payments.statement import STATEMENT_PAGE_MAX, StatementSource
from teller.runtime import Handle, PassLoopActor
from teller.storage.irt import IrtRepository

__all__ = ["StatementSync", "SyncReport", "CURSOR_NAME", "PAGE_MAX_DEFAULT", "PAGES_PER_PASS_MAX"]

CURSOR_NAME = "irt:statement"
PAGE_MAX_DEFAULT = 100
PAGES_PER_PASS_MAX = 20
SYNC_MAILBOX_MAX = 16


@dataclass(frozen=True, slots=True)
class SyncReport:
    pages: int
    lines: int
    outcomes: dict[str, int]
    cursor: str | None


class StatementSync(PassLoopActor):
    pass_method = "sync_once"
    expected_errors = (TellerError,)
    mailbox_max = SYNC_MAILBOX_MAX

    def __init__(self, *, store: Any, source: StatementSource, matcher: Callable[[], Handle], poll_interval_s: float,
                 page_max: int = PAGE_MAX_DEFAULT, pages_per_pass_max: int = PAGES_PER_PASS_MAX) -> None:
        super().__init__()
        if not 0 < page_max <= STATEMENT_PAGE_MAX:
            raise ValueError(f"page_max must be 1..{STATEMENT_PAGE_MAX}")
        self.repo = IrtRepository(store)
        self.source = source
        self.matcher = matcher  # resolved on each pass: the tree may still be starting when we do
        self.poll_interval_s = poll_interval_s
        self.page_max = page_max
        self.pages_per_pass_max = pages_per_pass_max
        self.last_report: SyncReport | None = None

    def delay_after(self, _report: SyncReport | None, _failures: int) -> float:
        return self.poll_interval_s

    async def sync_once(self) -> SyncReport:
        """Read and credit up to ``pages_per_pass_max`` pages; the cursor moves after each whole page."""
        matcher = self.matcher()
        cursor = await self.repo.cursor(CURSOR_NAME)
        outcomes: dict[str, int] = {}
        pages = lines_total = 0
        try:
            while pages < self.pages_per_pass_max:
                lines, next_cursor = await self.source.fetch(cursor, self.page_max)
                pages += 1
                for line in lines:
                    outcome = await matcher.call("handle_line", line)
                    outcomes[outcome] = outcomes.get(outcome, 0) + 1
                lines_total += len(lines)
                # Every line of the page is durable (credited or known): only now may the cursor pass it.
                if next_cursor is not None and next_cursor != cursor:
                    await self.repo.save_cursor(CURSOR_NAME, next_cursor)
                    cursor = next_cursor
                if len(lines) < self.page_max:
                    break
        except TellerError as exc:
            self.log.warning("irt.statement_sync_failed", error=exc.code, pages=pages)
            raise
        report = SyncReport(pages=pages, lines=lines_total, outcomes=outcomes, cursor=cursor)
        self.last_report = report
        if lines_total:
            self.log.info("irt.statement_synced", pages=pages, lines=lines_total, **outcomes)
        return report
