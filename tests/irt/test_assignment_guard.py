"""The ops assignment guard reads a suspense line's card as matching does: a line that carried the full card
is judged by that card (never by its mask), also after the card-hash key rotated and the card was re-keyed.
Found by an adversarial review: after a rotation, a line carrying Alice's full card could be assigned to Bob,
whose different card has the same mask."""

from __future__ import annotations

from typing import Any

from teller.config import PaystarSettings
from teller.payments.cards import luhn_valid
from teller.payments.sandbox import SandboxHandle
from tests.irt.conftest import OPS, IrtApp, make_card, make_iban, running_irt_app, until

MELLI = "603799"
K1, K2 = "1" * 32, "2" * 32


def _twin(card: str) -> str:
    """Another Luhn-valid card with the same BIN and last four digits: the same mask."""
    for middle in range(10**6):
        candidate = card[:6] + f"{middle:06d}" + card[-4:]
        if candidate != card and luhn_valid(candidate):
            return candidate
    raise AssertionError("unreachable")


async def _line(app: IrtApp, ref: str, **line: Any) -> str:
    app.sandbox.state.append_line(amount_rial=1_000_000, bank_reference=ref, **line)

    async def stored() -> str | None:
        return await app.line_status(ref)
    return str(await until(stored))


async def _assign(app: IrtApp, ref: str, user_id: int) -> Any:
    lines = (await (await app.client.get("/ops/irt/unmatched", headers=OPS)).json())["lines"]
    [line] = [x for x in lines if x["bank_reference"] == ref]
    return await app.client.post(f"/ops/irt/unmatched/{line['id']}/assign",
                                 json={"user_id": user_id, "operator": "ops-review"}, headers=OPS)


async def test_assignment_contradicting_the_full_card_is_refused_after_rotation(
        store: Any, paystar_sandbox: SandboxHandle, paystar_settings: PaystarSettings,
        irt_overrides: dict[str, Any]) -> None:
    alice_card = make_card(MELLI, 7001)
    bob_card = _twin(alice_card)
    run = dict(store=store, sandbox=paystar_sandbox, paystar_settings=paystar_settings, overrides=irt_overrides)
    async with running_irt_app(**run, card_hash_secret=K1, card_hash_key_id="k1") as app:
        alice, alice_h, _ = await app.verified_user(7001, cards=(alice_card,))
        bob, bob_h, _ = await app.verified_user(7002, cards=(bob_card,))
        for headers, number in ((alice_h, alice_card), (bob_h, bob_card)):
            assert (await app.client.post("/api/v1/cards", json={"card_number": number},
                                          headers=headers)).status == 201
        # Alice's full card, from an account nobody registered: suspense (unknown_iban).
        assert await _line(app, "ROT-SUSP", source_card=alice_card, source_iban=make_iban(7999)) == "unmatched"
        before = await _assign(app, "ROT-SUSP", bob)
        assert before.status == 409, await before.text()
    async with running_irt_app(**run, card_hash_secret=K2, card_hash_key_id="k2",
                               card_hash_previous={"k1": K1}) as app:
        assert await _line(app, "ROT-OK", source_card=alice_card) == "matched"  # re-keys Alice's card to k2
        after = await _assign(app, "ROT-SUSP", bob)
        assert after.status == 409, await after.text()  # the line still carries Alice's full card
        assert await app.irt_balance(bob) == 0
        to_alice = await _assign(app, "ROT-SUSP", alice)
        assert to_alice.status == 200, await to_alice.text()
        assert await app.irt_balance(alice) == 2_000_000


async def test_a_full_card_line_is_judged_by_its_card_not_by_a_strangers_card_with_the_same_mask(
        irt_app: IrtApp) -> None:
    """Matching ignores the mask when the bank gave the full number; so does the guard: the owner of another
    card with that mask is not the line's owner, and the real sender (who never registered it) is not refused."""
    unregistered = make_card(MELLI, 7101)
    bob_card = _twin(unregistered)
    bob, bob_h, _ = await irt_app.verified_user(7102, cards=(bob_card,))
    assert (await irt_app.client.post("/api/v1/cards", json={"card_number": bob_card},
                                      headers=bob_h)).status == 201
    carol, _, _ = await irt_app.verified_user(7103)  # the real sender, who never registered that card
    assert await _line(irt_app, "MASK-1", source_card=unregistered) == "unmatched"
    to_carol = await _assign(irt_app, "MASK-1", carol)
    assert to_carol.status == 200, await to_carol.text()
