"""HD derivation (BIP-44, anvil's known vectors) and encrypted keystores."""

from __future__ import annotations

from pathlib import Path

import pytest
from eth_account import Account

from teller.chain.keys import HdWallet, KeyLoadError, load_keystore, write_keystore

ANVIL_MNEMONIC = "test test test test test test test test test test test junk"
ANVIL_ADDRESSES = [  # what anvil prints for its default mnemonic
    "0xf39Fd6e51aad88F6F4ce6aB8827279cffFb92266",
    "0x70997970C51812dc3A010C7d01b50e0d17dc79C8",
    "0x3C44CdDdB6a900fa2b585dd299e03d12FA4293BC",
]
ANVIL_KEY_0 = "ac0974bec39a17e36ba4a6b4d238ff944bacb478cbed5efcae784d7bf4f2ff80"


def test_derives_anvils_accounts() -> None:
    wallet = HdWallet(ANVIL_MNEMONIC)
    assert [wallet.address(i) for i in range(3)] == ANVIL_ADDRESSES
    assert wallet.private_key(0).hex() == ANVIL_KEY_0
    assert wallet.account(1).address == ANVIL_ADDRESSES[1]


def test_matches_eth_accounts_own_mnemonic_path() -> None:
    Account.enable_unaudited_hdwallet_features()
    wallet = HdWallet(ANVIL_MNEMONIC)
    for index in (0, 7, 1000, 2**31 - 1):
        expected = Account.from_mnemonic(ANVIL_MNEMONIC, account_path=f"m/44'/60'/0'/0/{index}")
        assert wallet.address(index) == expected.address


def test_extra_whitespace_in_the_mnemonic_is_the_same_wallet() -> None:
    assert HdWallet("  " + ANVIL_MNEMONIC.replace(" ", "   ") + "\n").address(0) == ANVIL_ADDRESSES[0]


def test_a_bad_mnemonic_fails_without_echoing_it() -> None:
    words = "test test test test test test test test test test test test"  # bad checksum word
    with pytest.raises(KeyLoadError) as info:
        HdWallet(words)
    assert "test test" not in str(info.value)
    assert info.value.__cause__ is None and info.value.__suppress_context__


def test_nothing_secret_in_repr() -> None:
    wallet = HdWallet(ANVIL_MNEMONIC)
    assert "test" not in repr(wallet) and ANVIL_KEY_0 not in repr(wallet)


@pytest.mark.parametrize("index", [-1, 2**31, True, 1.0])
def test_refuses_indexes_outside_the_soft_range(index: object) -> None:
    with pytest.raises(ValueError):
        HdWallet(ANVIL_MNEMONIC).address(index)  # type: ignore[arg-type]  # the point of the test


def test_keystore_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "hot.json"
    key = bytes.fromhex(ANVIL_KEY_0)
    address = write_keystore(path, key, "correct horse", kdf="pbkdf2", iterations=1000)
    assert address == ANVIL_ADDRESSES[0]
    assert path.stat().st_mode & 0o777 == 0o600
    assert ANVIL_KEY_0 not in path.read_text()
    account = load_keystore(path, "correct horse")
    assert account.address == ANVIL_ADDRESSES[0] and account.key == key


def test_keystore_with_scrypt_default(tmp_path: Path) -> None:
    path = tmp_path / "hot.json"
    write_keystore(path, bytes.fromhex(ANVIL_KEY_0), "pw")
    assert load_keystore(path, "pw").address == ANVIL_ADDRESSES[0]


def test_keystore_wrong_password_missing_file_and_no_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "hot.json"
    write_keystore(path, bytes.fromhex(ANVIL_KEY_0), "right", kdf="pbkdf2", iterations=1000)
    with pytest.raises(KeyLoadError, match="wrong password"):
        load_keystore(path, "wrong")
    with pytest.raises(KeyLoadError):
        load_keystore(tmp_path / "missing.json", "right")
    (tmp_path / "junk.json").write_text("{not json")
    with pytest.raises(KeyLoadError):
        load_keystore(tmp_path / "junk.json", "right")
    with pytest.raises(FileExistsError):
        write_keystore(path, bytes.fromhex(ANVIL_KEY_0), "other", kdf="pbkdf2", iterations=1000)
