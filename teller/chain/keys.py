"""Keys: BIP-44 HD derivation from a mnemonic, and encrypted keystores (eth-keyfile).

Lives only inside the signer actor (and dev/test tooling): nothing here logs, and no object here prints
a key or the mnemonic in its repr. Derivation path: m/44'/60'/0'/0/{index}, the one MetaMask and anvil use.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from eth_account import Account
from eth_account.hdaccount import key_from_seed, seed_from_mnemonic
from eth_account.signers.local import LocalAccount
from eth_utils import ValidationError

BIP44_ETH_PATH = "m/44'/60'/0'/0/{index}"
HD_INDEX_MAX = 2**31 - 1  # past it the index would be a hardened one
KEYSTORE_BYTES_MAX = 64 * 1024


class KeyLoadError(Exception):
    """A mnemonic or keystore could not be loaded. A start-up failure, like ``ConfigError``, not a domain
    error; the message never contains the secret."""


class HdWallet:
    """Accounts derived from one mnemonic. The BIP-39 seed (2048 PBKDF2 rounds) is computed once here,
    so deriving many indexes costs only the BIP-32 steps (``Account.from_mnemonic`` redoes the seed
    every call; it runs the same eth-account code otherwise)."""

    __slots__ = ("_seed",)

    def __init__(self, mnemonic: str, *, passphrase: str = "") -> None:
        try:
            self._seed = seed_from_mnemonic(" ".join(mnemonic.split()), passphrase)
        except (ValidationError, ValueError, KeyError):
            # `from None`: eth-account's message quotes the words, and a traceback would print them
            raise KeyLoadError("the mnemonic is not a valid BIP-39 phrase") from None

    def __repr__(self) -> str:
        return "HdWallet(<secret>)"

    def private_key(self, index: int) -> bytes:
        _check_index(index)
        return key_from_seed(self._seed, BIP44_ETH_PATH.format(index=index))

    def account(self, index: int) -> LocalAccount:
        return Account.from_key(self.private_key(index))

    def address(self, index: int) -> str:
        """The checksummed address of ``index``."""
        return str(self.account(index).address)


def _check_index(index: int) -> None:
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index <= HD_INDEX_MAX:
        raise ValueError(f"HD index must be an int in [0, {HD_INDEX_MAX}]")


def load_keystore(path: str | Path, password: str) -> LocalAccount:
    """Decrypt an Ethereum keystore (v3 JSON, scrypt or pbkdf2) into an account."""
    try:
        if os.path.getsize(path) > KEYSTORE_BYTES_MAX:
            raise KeyLoadError(f"keystore {path} is too large to be a keystore")
        with open(path, encoding="utf-8") as fh:
            keyfile = json.load(fh)
    except (OSError, json.JSONDecodeError) as exc:
        raise KeyLoadError(f"cannot read keystore {path}: {type(exc).__name__}") from exc
    try:
        key = Account.decrypt(keyfile, password)
    except ValueError:
        # eth-keyfile says "MAC mismatch" for a wrong password; hide the cause chain, it holds nothing useful
        raise KeyLoadError(f"cannot decrypt keystore {path}: wrong password or corrupt file") from None
    return Account.from_key(key)


def write_keystore(
    path: str | Path,
    private_key: bytes,
    password: str,
    *,
    kdf: str = "scrypt",
    iterations: int | None = None,
) -> str:
    """Encrypt ``private_key`` into a new keystore file (mode 0600, refuses to overwrite); returns the
    checksummed address. ``iterations`` lowers the KDF cost for tests only."""
    keyfile = Account.encrypt(private_key, password, kdf=kdf, iterations=iterations)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(keyfile, fh)
    return str(Account.from_key(private_key).address)
