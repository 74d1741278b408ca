"""The signer signs only what matches a persisted, unfinished withdrawal, and never logs a key."""

from __future__ import annotations

import pytest
from eth_account import Account

from teller.actors.signer import SigningRefused, WithdrawalSigning
from teller.storage import Store
from teller.storage.withdrawals import Withdrawals
from tests.withdrawals.helpers import RECIPIENT, USDT, running, withdrawal_settings

HOT = "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"


async def test_signer_refuses_anything_but_the_persisted_withdrawal(store: Store, capsys: pytest.CaptureFixture) -> None:
    settings = withdrawal_settings()
    async with running(settings, store) as app:
        uid, headers = await app.sign_in()
        await app.credit(uid, USDT, 100 * 10**6)
        wid = int((await (await app.withdraw(headers, "s", chain="devnet", asset="USDT", to=RECIPIENT,
                                             amount="10")).json())["id"])
        signer, repo, chain = app.teller.ctx.handle("signer"), Withdrawals(store), settings.chains[0]
        good = WithdrawalSigning(withdrawal_id=wid, chain="devnet", asset="USDT", to_address=RECIPIENT,
                                 amount_minor=10 * 10**6, nonce=7, max_fee_per_gas_wei=2 * 10**9,
                                 max_priority_fee_per_gas_wei=10**9)
        signed = await signer.call("sign_withdrawal", good, withdrawals=repo, chain=chain)
        assert Account.recover_transaction(signed.raw) == HOT and signed.nonce == 7
        fields = {f: getattr(good, f) for f in good.__slots__}
        for change in ({"amount_minor": 11 * 10**6}, {"to_address": "0x" + "22" * 20}, {"asset": "ETH"},
                       {"chain": "other"}, {"withdrawal_id": wid + 1}):
            with pytest.raises(SigningRefused):
                await signer.call("sign_withdrawal", WithdrawalSigning(**{**fields, **change}), withdrawals=repo,
                                  chain=chain)
        out = capsys.readouterr()
        assert "test test test" not in out.out + out.err
