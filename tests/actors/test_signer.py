"""The signer derives the same addresses anvil and MetaMask do, from a mnemonic or a keystore."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from eth_account.hdaccount.mnemonic import Mnemonic

from teller.actors.signer import SignerNotConfigured, wallet_from_settings
from teller.app import start_teller
from teller.chain.keys import write_keystore
from teller.config import SignerSettings
from tests.fixtures.http import settings_for_tests

ANVIL_MNEMONIC = "test test test test test test test test test test test junk"


async def test_signer_actor_answers_hd_addresses(store: Any) -> None:
    teller = await start_teller(settings_for_tests(chains=[], signer={"mnemonic": ANVIL_MNEMONIC}), store=store)
    try:
        signer = teller.ctx.handle("signer")
        assert await signer.call("address_for", 0) == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        assert await signer.call("hot_wallet_address") == "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266"
        assert await signer.call("address_for", 1) == "0x70997970C51812dc3A010C7d01b50e0d17dc79C8"
        assert "test" not in repr(teller.tree.status())
    finally:
        await teller.stop()


def test_keystore_holds_the_mnemonic_entropy(tmp_path: Path) -> None:
    path = tmp_path / "keystore.json"
    write_keystore(path, b"\x01" * 32, "pw", kdf="pbkdf2", iterations=2)
    wallet = wallet_from_settings(SignerSettings(keystore=str(path), password="pw"))
    expected = wallet_from_settings(SignerSettings(mnemonic=Mnemonic().to_mnemonic(b"\x01" * 32)))
    assert wallet.address(3) == expected.address(3)
    assert wallet_from_settings(SignerSettings(keystore=str(path), password="pw")).address(0) == expected.address(0)


def test_no_keys_is_a_clear_error() -> None:
    with pytest.raises(SignerNotConfigured):
        wallet_from_settings(SignerSettings())
