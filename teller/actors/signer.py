"""Signer: the only holder of keys. Derives addresses and signs, with its CPU work off the loop.

Keys come from the mnemonic (dev and tests) or from an encrypted keystore whose 32-byte secret is
the BIP-39 entropy of the wallet's mnemonic (production; password from the environment), so one
secret yields the hot wallet and every user's deposit address. Nothing here logs a key, and the
actor's repr and state dumps hold none.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from eth_account.hdaccount.mnemonic import Mnemonic

from teller.chain.keys import HdWallet, KeyLoadError
from teller.chain.signing import NATIVE_TRANSFER_GAS, sign_native_transfer, sign_token_transfer
from teller.chain.types import SignedTx
from teller.config import AssetSettings, ChainSettings, SignerSettings
from teller.errors import Forbidden, TellerError
from teller.runtime import AsyncioActor

if TYPE_CHECKING:
    from teller.storage.store import Row
    from teller.storage.withdrawals import Withdrawals

__all__ = ["Signer", "wallet_from_settings", "SignerNotConfigured", "WithdrawalSigning", "SigningRefused",
           "TOKEN_TRANSFER_GAS"]

# ERC-20 transfer() costs ~35-65k gas; a fixed generous limit (unused gas is refunded) keeps a token
# that reverts a revert ON CHAIN, where the receipt settles it, instead of an estimate error here.
TOKEN_TRANSFER_GAS = 120_000


class SigningRefused(Forbidden):
    """The signer refused: what it was asked to sign does not match a persisted, unfinished withdrawal."""

    code = "signing_refused"
    default_message = "the transaction does not match a persisted withdrawal"


@dataclass(frozen=True, slots=True)
class WithdrawalSigning:
    """What the withdrawal actor asks the signer to sign. The transaction's recipient, amount and token
    come from the withdrawal row the signer re-reads, never from here; ``to_address``/``amount_minor``
    are what the caller believes, and must match the row."""

    withdrawal_id: int
    chain: str
    asset: str
    to_address: str
    amount_minor: int
    nonce: int
    max_fee_per_gas_wei: int
    max_priority_fee_per_gas_wei: int

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
        self._hot_key_bytes: bytes | None = None

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

    def _hot_key(self) -> bytes:
        """The hot wallet's key, derived once (BIP-32 derivation costs about as much as a signature).
        Called on the signer's thread only; the key never leaves this actor."""
        if self._hot_key_bytes is None:
            self._hot_key_bytes = self.wallet.private_key(self._settings.hot_wallet_index)
        return self._hot_key_bytes

    async def hot_wallet_address(self) -> str:
        return await self.address_for(self._settings.hot_wallet_index)

    # -- signing -------------------------------------------------------------------------------------
    async def sign_withdrawal(self, request: WithdrawalSigning, *, withdrawals: Withdrawals,
                              chain: ChainSettings) -> SignedTx:
        """Sign the hot wallet's transaction paying out withdrawal ``request.withdrawal_id``.

        Refuses (``SigningRefused``) unless the persisted row is unfinished and matches the request's
        chain, asset, recipient and amount, and its nonce (once bound) is the request's. The key is
        derived and used on the signer's thread; it never leaves this actor.
        """
        (signed,) = await self.sign_withdrawals([request], withdrawals=withdrawals, chain=chain)
        return signed

    async def sign_withdrawals(self, requests: Sequence[WithdrawalSigning], *, withdrawals: Withdrawals,
                               chain: ChainSettings) -> list[SignedTx]:
        """``sign_withdrawal`` for many: the rows read in one query, all signed in one hop to the
        signer's thread. All or nothing: one refusal refuses the whole call."""
        rows = await withdrawals.get_many([r.withdrawal_id for r in requests])
        jobs = [(request, rows.get(request.withdrawal_id)) for request in requests]
        assets = [_check_signing(request, row, chain) for request, row in jobs]
        hot_key = self._hot_key

        def sign() -> list[SignedTx]:
            key = hot_key()
            out = []
            for (request, row), asset in zip(jobs, assets):
                assert row is not None
                fees = {"max_fee_per_gas_wei": request.max_fee_per_gas_wei,
                        "max_priority_fee_per_gas_wei": request.max_priority_fee_per_gas_wei}
                if asset.contract is None:
                    out.append(sign_native_transfer(
                        key, chain_id=chain.chain_id, nonce=request.nonce, to=row["to_address"],
                        amount_wei=row["amount_minor"], gas=NATIVE_TRANSFER_GAS, **fees))
                else:
                    out.append(sign_token_transfer(
                        key, chain_id=chain.chain_id, nonce=request.nonce, token=asset.contract, to=row["to_address"],
                        amount_minor=row["amount_minor"], gas=TOKEN_TRANSFER_GAS, **fees))
            return out

        return await self.off_loop(sign)


def _check_signing(request: WithdrawalSigning, row: Row | None, chain: ChainSettings) -> AssetSettings:
    """The chain's asset to sign for, if the persisted row agrees with the request; else SigningRefused."""
    if row is None or row["status"] not in ("pending", "signed", "broadcast"):
        raise SigningRefused("no unfinished withdrawal with this id")
    if chain.name != request.chain or row["chain"] != request.chain or row["asset"] != request.asset:
        raise SigningRefused("chain or asset differs from the persisted withdrawal")
    if row["to_address"].lower() != request.to_address.lower() or row["amount_minor"] != request.amount_minor:
        raise SigningRefused("recipient or amount differs from the persisted withdrawal")
    if row["nonce"] is not None and int(row["nonce"]) != request.nonce:
        raise SigningRefused("the withdrawal is bound to another nonce")
    asset = chain.asset(row["asset"])
    if asset is None:
        raise SigningRefused("the asset is not configured on this chain")
    return asset
