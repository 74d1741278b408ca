"""IRT is the toman; banks report rials (1 toman = 10 rials). A statement line's rials are kept exactly (the
rial is IRT's minor unit) and every reader sees tomans: the balance, the API, the events, the bot's message.
Amounts that are and are not multiples of 10 rials, end to end on both backends."""

from __future__ import annotations

import json
from typing import Any

from teller.assets import IRT_DECIMALS
from tests.irt.conftest import OPS, IrtApp, make_card, until

MELLI = "603799"


async def _get(app: IrtApp, path: str, headers: dict[str, str]) -> Any:
    response = await app.client.get(path, headers=headers)
    assert response.status == 200, await response.text()
    return await response.json()


def _would_send(log_stream: Any) -> list[str]:
    lines = [json.loads(line) for line in log_stream.getvalue().splitlines() if "telegram.would_send" in line]
    return [line["text"] for line in lines if line.get("event") == "telegram.would_send"]


async def test_rials_on_a_statement_are_credited_exactly_and_shown_in_tomans(irt_app: IrtApp,
                                                                             log_stream: Any) -> None:
    assert IRT_DECIMALS == 1
    number = make_card(MELLI, 21)
    uid, headers, _person = await irt_app.verified_user(2101, cards=(number,))
    response = await irt_app.client.post("/api/v1/cards", json={"card_number": number}, headers=headers)
    assert response.status == 201, await response.text()
    state = irt_app.sandbox.state
    state.append_line(amount_rial=1_500_000, source_card=number, bank_reference="TMN-1")  # 150,000 tomans
    state.append_line(amount_rial=5, source_card=number, bank_reference="TMN-2")          # half a toman

    async def both_credited() -> bool:
        return await irt_app.irt_balance(uid) == 1_500_005
    await until(both_credited)  # the ledger keeps rials, nothing rounded

    balances = (await _get(irt_app, "/api/v1/balances", headers))["balances"]
    assert [(b["available"], b["held"], b["decimals"]) for b in balances if b["asset"] == "IRT"] == [("150000.5", "0", 1)]
    assets = (await _get(irt_app, "/api/v1/assets", headers))["assets"]
    assert [(a["decimals"], a["chain"]) for a in assets if a["asset"] == "IRT"] == [(1, None)]
    deposits = (await _get(irt_app, "/api/v1/irt/deposits", headers))["deposits"]
    assert sorted((d["bank_reference"], d["amount"]) for d in deposits) == [("TMN-1", "150000"), ("TMN-2", "0.5")]
    history = (await _get(irt_app, "/api/v1/transactions", headers))["transactions"]
    assert sorted((t["amount"], t["kind"]) for t in history if t["asset"] == "IRT") == [
        ("0.5", "irt_deposit"), ("150000", "irt_deposit")]
    events = await irt_app.events("irt.credited")
    assert sorted((e["reference"], e["amount"], e["asset"]) for e in events) == [
        ("TMN-1", "150000", "IRT"), ("TMN-2", "0.5", "IRT")]

    async def both_sent() -> list[str]:
        texts = _would_send(log_stream)
        return texts if sum("Rial payment credited" in t for t in texts) == 2 else []
    texts = await until(both_sent)
    assert sorted(t for t in texts if "Rial payment credited" in t) == [
        "✅ Rial payment credited: 0.5 tomans (5 rials)",
        "✅ Rial payment credited: 150,000 tomans (1,500,000 rials)",
    ]


async def test_a_suspense_line_shows_tomans_to_ops_and_credits_its_rials(irt_app: IrtApp) -> None:
    uid, headers, _person = await irt_app.verified_user(2102)  # an assignment needs a verified identity
    irt_app.sandbox.state.append_line(amount_rial=42_007, source_card=make_card(MELLI, 22), bank_reference="TMN-S")

    async def listed() -> list[dict[str, Any]]:
        return list((await _get(irt_app, "/ops/irt/unmatched", OPS))["lines"])
    lines = await until(listed)
    assert [(x["bank_reference"], x["amount"]) for x in lines] == [("TMN-S", "4200.7")]
    response = await irt_app.client.post(f"/ops/irt/unmatched/{lines[0]['id']}/assign", json={"user_id": str(uid),
                                                                                       "operator": "ops-alice"},
                                         headers=OPS)
    assert response.status == 200, await response.text()
    assert (await response.json())["amount"] == "4200.7"
    assert await irt_app.irt_balance(uid) == 42_007
    balances = (await _get(irt_app, "/api/v1/balances", headers))["balances"]
    assert [b["available"] for b in balances if b["asset"] == "IRT"] == ["4200.7"]
