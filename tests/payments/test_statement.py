"""The HTTP statement source against the sandbox's statement endpoint."""

from __future__ import annotations

import io
from datetime import datetime, timezone

import aiohttp
import pytest
from hypothesis import given, strategies as st

from teller.errors import ProviderUnavailable
from teller.payments.sandbox import SandboxHandle
from teller.payments.sandbox_state import FailureMode, Scope
from teller.payments.statement import HttpStatementSource, StatementLine, line_from_wire, line_to_wire
from tests.fixtures.payments import CLIENT_RETRIES_MAX

CARD = "6037991234567893"
IBAN = "IR820540102680020817909002"


async def drain(source: HttpStatementSource, *, limit: int) -> tuple[list[StatementLine], int]:
    cursor, lines, pages = None, [], 0
    while True:
        page, cursor = await source.fetch(cursor, limit)
        pages += 1
        if not page:
            return lines, pages
        lines.extend(page)


async def test_pagination_with_a_cursor_reads_every_line_once(
    statement_source: HttpStatementSource, paystar_sandbox: SandboxHandle
) -> None:
    state = paystar_sandbox.state
    appended = [state.append_line(amount_rial=1_000 * (i + 1), source_iban=IBAN) for i in range(7)]
    lines, pages = await drain(statement_source, limit=3)
    assert [ln.bank_reference for ln in lines] == [ln.bank_reference for ln in appended]
    assert [ln.amount_rial for ln in lines] == [1_000 * (i + 1) for i in range(7)]
    assert pages == 4  # 3 + 3 + 1, then an empty page


async def test_cursor_resumes_after_new_lines_arrive(
    statement_source: HttpStatementSource, paystar_sandbox: SandboxHandle
) -> None:
    state = paystar_sandbox.state
    state.append_line(amount_rial=5_000, source_card=CARD)
    page, cursor = await statement_source.fetch(None, 10)
    assert len(page) == 1
    empty, same = await statement_source.fetch(cursor, 10)
    assert empty == [] and same == cursor
    state.append_line(amount_rial=7_000, source_iban=IBAN, bank_reference="REF-2")
    page, _ = await statement_source.fetch(cursor, 10)
    assert [ln.bank_reference for ln in page] == ["REF-2"]


async def test_the_same_line_can_be_served_twice(
    statement_source: HttpStatementSource, paystar_sandbox: SandboxHandle
) -> None:
    state = paystar_sandbox.state
    line = state.append_line(amount_rial=9_000, source_card=CARD, bank_reference="DUP-1")
    state.duplicate_line("DUP-1")
    page, _ = await statement_source.fetch(None, 10)
    assert [ln.bank_reference for ln in page] == ["DUP-1", "DUP-1"]
    assert page[0] == page[1] == line
    # Re-reading from an old cursor (a crash before the cursor was saved) serves the page again.
    again, _ = await statement_source.fetch(None, 10)
    assert again == page


async def test_card_is_kept_as_reported_but_shown_masked(
    statement_source: HttpStatementSource, paystar_sandbox: SandboxHandle
) -> None:
    state = paystar_sandbox.state
    state.append_line(amount_rial=1_000, source_card="۶۰۳۷۹۹۱۲۳۴۵۶۷۸۹۳")
    state.append_line(amount_rial=2_000, source_card="603799******7893")
    full, masked = (await statement_source.fetch(None, 10))[0]
    assert full.source_card == CARD and full.card_is_full and full.card_masked == "603799******7893"
    assert masked.source_card == "603799******7893" and not masked.card_is_full
    assert CARD not in repr(full)


@pytest.mark.parametrize("mode", [FailureMode.TIMEOUT, FailureMode.ERROR])
async def test_transient_failures_are_retried(
    statement_source: HttpStatementSource, paystar_sandbox: SandboxHandle, mode: str
) -> None:
    paystar_sandbox.state.append_line(amount_rial=1_000, source_iban=IBAN)
    paystar_sandbox.state.fail(mode, count=CLIENT_RETRIES_MAX, scope=Scope.STATEMENT)
    page, _ = await statement_source.fetch(None, 10)
    assert len(page) == 1


@pytest.mark.parametrize("mode", [FailureMode.TIMEOUT, FailureMode.ERROR, FailureMode.GARBAGE, FailureMode.MALFORMED])
async def test_failures_are_provider_unavailable(
    statement_source: HttpStatementSource, paystar_sandbox: SandboxHandle, mode: str
) -> None:
    paystar_sandbox.state.fail(mode, count=CLIENT_RETRIES_MAX + 1, scope=Scope.STATEMENT)
    with pytest.raises(ProviderUnavailable):
        await statement_source.fetch(None, 10)


async def test_control_endpoint_appends_fails_and_duplicates(
    statement_source: HttpStatementSource, paystar_sandbox: SandboxHandle
) -> None:
    async with aiohttp.ClientSession(base_url=paystar_sandbox.url) as http:
        resp = await http.post("/sandbox/statement/lines", json={"amount_rial": 12_000, "source_card": CARD,
                                                                 "bank_reference": "C-1"})
        assert resp.status == 201
        assert (await http.post("/sandbox/control", json={"action": "duplicate_line", "bank_reference": "C-1"})).status == 200
        assert (await http.post("/sandbox/statement/lines", json={"amount_rial": "12"})).status == 400
        assert (await http.post("/sandbox/control", json={"action": "nope"})).status == 400
        page, _ = await statement_source.fetch(None, 10)
        assert [ln.bank_reference for ln in page] == ["C-1", "C-1"]
        resp = await http.post("/sandbox/control", json={"action": "fail", "mode": "garbage", "scope": "statement",
                                                         "count": CLIENT_RETRIES_MAX + 1})
        assert resp.status == 200
    with pytest.raises(ProviderUnavailable):
        await statement_source.fetch(None, 10)


async def test_no_log_line_holds_the_card(
    log_stream: io.StringIO, statement_source: HttpStatementSource, paystar_sandbox: SandboxHandle
) -> None:
    paystar_sandbox.state.append_line(amount_rial=1_000, source_card=CARD)
    paystar_sandbox.state.fail(FailureMode.ERROR, scope=Scope.STATEMENT)
    await statement_source.fetch(None, 10)
    assert "provider.retry" in log_stream.getvalue()
    assert CARD not in log_stream.getvalue()


@given(
    ref=st.text(alphabet="ABCDEF0123456789-", min_size=1, max_size=40).filter(lambda s: s.strip() == s),
    amount=st.integers(min_value=1, max_value=10**15),
    seconds=st.integers(min_value=0, max_value=4_000_000_000),
)
def test_wire_round_trip(ref: str, amount: int, seconds: int) -> None:
    line = StatementLine(bank_reference=ref, amount_rial=amount, source_iban=IBAN,
                         occurred_at=datetime.fromtimestamp(seconds, tz=timezone.utc))
    assert line_from_wire(line_to_wire(line)) == line


@pytest.mark.parametrize(
    "patch",
    [{"amount_rial": 0}, {"amount_rial": -5}, {"amount_rial": 1.5}, {"amount_rial": "100"}, {"amount_rial": True},
     {"bank_reference": ""}, {"occurred_at": "2024-01-01T00:00:00"}, {"occurred_at": "yesterday"},
     {"source_iban": "IR000000"}, {"source_iban": None, "source_card": None}, {"source_card": "6037991234567890"}],
)
def test_malformed_lines_are_rejected(patch: dict[str, object]) -> None:
    raw = {"bank_reference": "R1", "amount_rial": 10, "source_iban": IBAN, "source_card": None,
           "occurred_at": "2024-01-01T00:00:00+03:30"} | patch
    with pytest.raises(ValueError):
        line_from_wire(raw)
