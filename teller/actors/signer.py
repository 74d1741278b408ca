"""Signer: the only holder of keys. Derives addresses and signs, with its CPU work off the loop.

Keys come from the mnemonic (dev and tests) or from an encrypted keystore whose 32-byte secret is
the BIP-39 entropy of the wallet's mnemonic (production; password from the environment), so one
secret yields the hot wallet and every user's deposit address. Nothing here logs a key, and the
actor's repr and state dumps hold none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from eth_account.hdaccount.mnemonic import Mnemonic

from teller.chain.keys import HdWallet, KeyLoadError
from teller.config import SignerSettings
from teller.errors import TellerError
from teller.runtime import AsyncioActor

__all__ = ["Signer", "wallet_from_settings", "SignerNotConfigured"]

T = TypeVar("T")
ADDRESS_CACHE_MAX = 100_000


class SignerNotConfigured(KeyLoadError):
    """Neither a mnemonic nor a keystore is configured."""


def wallet_from_settings(settings: SignerSettings) -> HdWallet:
    if settings.mnemonic:
        return HdWallet(settings.mnemonic)
    if settings.keystore:
        from teller.chain.keys import load_keystore

        entropy = bytes(load_keystore(settings.keystore, settings.password).key)
        return HdWallet(Mnemonic().to_mnemonic(entropy))
    raise SignerNotConfigured("signer.mnemonic or signer.keystore is required")


class Signer(AsyncioActor):
    """Answers ``address_for(index)`` and ``hot_wallet_address()``; signing methods live beside them."""

    expected_errors = (TellerError,)

    def __init__(self, settings: SignerSettings) -> None:
        super().__init__()
        self._settings = settings
        self._wallet: HdWallet | None = None
        # One thread: signing is CPU-bound and the GIL gives nothing to a second one.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="signer")
        self._addresses: dict[int, str] = {}

    def __repr__(self) -> str:
        return "Signer(<keys hidden>)"

    async def on_start(self) -> None:
        self._wallet = await self.off_loop(wallet_from_settings, self._settings)

    def on_stop(self) -> None:
        self._executor.shutdown(wait=False, cancel_futures=True)

    async def off_loop(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn, *args)

    @property
    def wallet(self) -> HdWallet:
        assert self._wallet is not None, "the signer has not started"
        return self._wallet

    async def address_for(self, index: int) -> str:
        """The checksummed address at HD ``index`` (cached: derivation costs ~1 ms of CPU)."""
        address = self._addresses.get(index)
        if address is None:
            address = await self.off_loop(self.wallet.address, index)
            if len(self._addresses) >= ADDRESS_CACHE_MAX:
                self._addresses.clear()
            self._addresses[index] = address
        return address

    async def hot_wallet_address(self) -> str:
        return await self.address_for(self._settings.hot_wallet_index)
