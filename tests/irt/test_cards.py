"""POST/GET /api/v1/cards over the Paystar sandbox: verified once, refused cleanly, nothing stored on failure."""

from __future__ import annotations

from typing import Any

import pytest

from teller.payments.sandbox_state import FailureMode, Scope, fake_card_account
from tests.irt.conftest import IrtApp, make_card

MELLI = "603799"
UNKNOWN_BIN = "999999"


async def test_a_card_is_verified_stored_masked_and_announced(irt_app: IrtApp) -> None:
    number = make_card(MELLI, 1)
    uid, headers, person = await irt_app.verified_user(1001, cards=(number,))
    response = await irt_app.client.post("/api/v1/cards", json={"card_number": number}, headers=headers)
    assert response.status == 201, await response.text()
    card = await response.json()
    expected = fake_card_account(number)
    assert card["card_masked"] == number[:6] + "******" + number[-4:]
    assert card["iban"] == expected.iban and card["owner_name"] == person.name
    assert card["bank"] == "Melli" and card["status"] == "verified"
    assert number not in await response.text()
    listed = await (await irt_app.client.get("/api/v1/cards", headers=headers)).json()
    assert [c["id"] for c in listed["cards"]] == [card["id"]]
    events = await irt_app.events("card.verified")
    assert events == [{"user_id": str(uid), "card_masked": card["card_masked"], "bank": "Melli"}]
    row = await irt_app.store.fetch_one("SELECT * FROM cards")
    assert number not in repr(row) and number[6:12] not in row["card_masked"]


async def test_persian_digits_and_separators_are_the_same_card(irt_app: IrtApp) -> None:
    number = make_card(MELLI, 2)
    _, headers, _ = await irt_app.verified_user(1002, cards=(number,))
    persian = "".join("۰۱۲۳۴۵۶۷۸۹"[int(d)] for d in number)
    spaced = " ".join(persian[i:i + 4] for i in range(0, 16, 4))
    first = await irt_app.client.post("/api/v1/cards", json={"card_number": spaced}, headers=headers)
    assert first.status == 201
    # The same user again (contract of issue 15): 200 with the existing card, nothing new stored or announced.
    again = await irt_app.client.post("/api/v1/cards", json={"card_number": number}, headers=headers)
    assert again.status == 200 and (await again.json())["id"] == (await first.json())["id"]
    assert await irt_app.count("cards") == 1 and len(await irt_app.events("card.verified")) == 1


@pytest.mark.parametrize("bad", [
    "603799123456789",            # 15 digits
    "60379912345678901",          # 17 digits
    "6037991234567891",           # fails Luhn
    "6037-99ab-3456-7890",        # letters
    "",
    "1" * 5000,                   # huge
    12345678,                     # not a string
    None,                         # missing
    ["6037991234567890"],
])
async def test_invalid_card_numbers_are_422_and_store_nothing(irt_app: IrtApp, bad: Any) -> None:
    _, headers, _ = await irt_app.verified_user(1003)
    body = {"card_number": bad} if bad is not None else {}
    response = await irt_app.client.post("/api/v1/cards", json=body, headers=headers)
    assert response.status == 422, await response.text()
    assert (await response.json())["error"]["code"] == "invalid_card"
    assert await irt_app.count("cards") == 0 and await irt_app.count("outbox") == 0
    assert irt_app.sandbox.state.requests[Scope.INQUIRY] == 0  # refused before any provider call


@pytest.mark.parametrize("raw", [b"", b"{not json", b"[1, 2]", b'"6037991234567890"', b"\xff\xfe"])
async def test_malformed_bodies_are_400(irt_app: IrtApp, raw: bytes) -> None:
    _, headers = await irt_app.user(1004)
    response = await irt_app.client.post("/api/v1/cards", data=raw,
                                         headers={**headers, "Content-Type": "application/json"})
    assert response.status == 400
    assert await irt_app.count("cards") == 0


async def test_a_card_unknown_to_the_bank_is_422(irt_app: IrtApp) -> None:
    _, headers, _ = await irt_app.verified_user(1005)
    response = await irt_app.client.post("/api/v1/cards", json={"card_number": make_card(UNKNOWN_BIN, 5)},
                                         headers=headers)
    assert response.status == 422 and (await response.json())["error"]["code"] == "invalid_card"
    assert await irt_app.count("cards") == 0


async def test_a_card_registered_by_another_user_is_409(irt_app: IrtApp) -> None:
    number = make_card(MELLI, 6)
    _, alice, _ = await irt_app.verified_user(1006, cards=(number,))
    _, bob, _ = await irt_app.verified_user(1007)
    assert (await irt_app.client.post("/api/v1/cards", json={"card_number": number}, headers=alice)).status == 201
    asked = irt_app.sandbox.state.requests
    # The provider's paid calls; the statement sync polls on its own meanwhile, and that is no inquiry.
    inquiries = {scope: asked[scope] for scope in (Scope.INQUIRY, Scope.MATCHING, Scope.REFRESH)}
    response = await irt_app.client.post("/api/v1/cards", json={"card_number": number}, headers=bob)
    assert response.status == 409 and (await response.json())["error"]["code"] == "card_exists"
    assert await irt_app.count("cards") == 1
    assert (await (await irt_app.client.get("/api/v1/cards", headers=bob)).json())["cards"] == []
    assert {scope: asked[scope] for scope in inquiries} == inquiries  # refused before asking Paystar anything
    assert len(await irt_app.events("card.verified")) == 1


@pytest.mark.parametrize("mode", [FailureMode.TIMEOUT, FailureMode.ERROR, FailureMode.GARBAGE, FailureMode.MALFORMED])
async def test_a_failing_provider_is_502_and_stores_nothing(irt_app: IrtApp, mode: str) -> None:
    _, headers, _ = await irt_app.verified_user(1008, cards=(make_card(MELLI, 8),))
    irt_app.sandbox.state.fail(mode, count=10)  # past the client's retries
    response = await irt_app.client.post("/api/v1/cards", json={"card_number": make_card(MELLI, 8)},
                                         headers=headers)
    assert response.status == 502, await response.text()
    assert (await response.json())["error"]["code"] == "provider_unavailable"
    assert await irt_app.count("cards") == 0 and await irt_app.count("outbox") == 0
    irt_app.sandbox.state.clear_failures()
    retry = await irt_app.client.post("/api/v1/cards", json={"card_number": make_card(MELLI, 8)}, headers=headers)
    assert retry.status == 201  # the failure left nothing behind that blocks a retry


async def test_an_expired_api_key_is_refreshed_transparently(irt_app: IrtApp) -> None:
    _, headers, _ = await irt_app.verified_user(1009, cards=(make_card(MELLI, 9), make_card(MELLI, 10)))
    state = irt_app.sandbox.state
    assert (await irt_app.client.post("/api/v1/cards", json={"card_number": make_card(MELLI, 9)},
                                      headers=headers)).status == 201
    refreshes = state.refreshes
    state.expire_keys()
    response = await irt_app.client.post("/api/v1/cards", json={"card_number": make_card(MELLI, 10)}, headers=headers)
    assert response.status == 201, await response.text()
    assert state.refreshes == refreshes + 1


async def test_no_log_line_holds_a_full_card_number(irt_app: IrtApp, log_stream: Any) -> None:
    numbers = [make_card(MELLI, n) for n in range(20, 24)]
    uid, headers, _ = await irt_app.verified_user(1010, cards=tuple(numbers[:3]))
    await irt_app.client.post("/api/v1/cards", json={"card_number": numbers[0]}, headers=headers)
    irt_app.sandbox.state.fail(FailureMode.ERROR, count=10)
    await irt_app.client.post("/api/v1/cards", json={"card_number": numbers[1]}, headers=headers)
    irt_app.sandbox.state.clear_failures()
    await irt_app.client.post("/api/v1/cards", json={"card_number": numbers[2][:-1] + "x"}, headers=headers)
    irt_app.sandbox.state.append_line(amount_rial=5_000, source_card=numbers[0], bank_reference="LOG-1")
    irt_app.sandbox.state.append_line(amount_rial=7_000, source_card=numbers[3], bank_reference="LOG-2")

    async def both_lines_stored() -> bool:
        return await irt_app.line_status("LOG-1") == "matched" and await irt_app.line_status("LOG-2") == "unmatched"

    from tests.irt.conftest import until
    await until(both_lines_stored)
    text = log_stream.getvalue()
    assert "irt.credited" in text and "irt.unmatched" in text  # the logs did talk about these lines
    for number in numbers:
        assert number not in text and number[6:12] not in text.replace(number[:6] + "******", "")


async def test_deposit_info_comes_from_settings(irt_app: IrtApp) -> None:
    _, headers = await irt_app.user(1011)
    body = await (await irt_app.client.get("/api/v1/irt/deposit-info", headers=headers)).json()
    assert body == {"iban": "IR820540102680020817909002", "account_owner": "Teller Co", "bank": "Parsian"}
