"""The crypto deposit flow: a ChainWatcher per configured chain under ``chains``, and the HTTP service.

Watchers run whenever chains are configured (they only need addresses, never keys); handing out new
deposit addresses needs the signer (``feature_disabled`` without keys). Routes: the user's
(``teller.http.deposits``) and the ops' (``teller.http.ops_deposits``: reversed deposits and their
resolution). Its part of ``/ops/status``: ``chains`` (each watcher's head, checkpoint, lag, state) and
``deposit_reversals`` (``{"open": n, "items": [{"deposit_id", "user_id", "asset", "amount",
"tx_hash"}]}``, at most ``STATUS_REVERSALS_MAX`` items: credited deposits that left the chain and wait
for an operator; ``/ops/metrics`` renders ``open`` as ``teller_deposit_reversals_open``). ``ctx.overrides``:
``deposit_client:<chain>`` (the watcher's ChainClient), ``deposit_start_block:<chain>`` (where a watcher with no
checkpoint starts; default: the head), ``deposit_crash_hook`` (tests: ``fn(chain, step)``),
``devchain:<chain>`` (the dev faucet's ``DevChain``).
"""

from __future__ import annotations

import asyncio
from typing import Any

from teller.actors.chain_watcher import ChainWatcher
from teller.actors.deposit_scan import ChainAssets, WatcherStatus
from teller.chain.address import checksum, normalize_address
from teller.chain.client import ChainClient
from teller.chain.devchain import DevChain, DevChainError
from teller.config import ChainSettings
from teller.errors import ChainUnavailable, Conflict, FeatureDisabled, UnknownChain
from teller.flows.base import AppContext, Flow, ask_actor
from teller.log import endpoint_of, get_logger, scrub_urls
from teller.money import format_amount
from teller.runtime import ChildSpec
from teller.storage.accounts import chain_account, user_account
from teller.storage.deposits import RESOLUTIONS, Deposits
from teller.storage.ledger_keys import deposit_reversal_key
from teller.storage.store import Row, StaleWrite

__all__ = ["build", "DepositService", "SERVICE_NAME", "CHAINS_SLOT", "chain_assets", "STATUS_REVERSALS_MAX"]

SERVICE_NAME = "deposits"
CHAINS_SLOT = "chains"
STATUS_REVERSALS_MAX = 50   # open reversals listed in /ops/status (the count is always whole)
_log = get_logger(component="deposits")


def chain_assets(chain: ChainSettings) -> ChainAssets:
    return ChainAssets(
        chain=chain.name, native_symbol=chain.native.symbol, native_decimals=chain.native.decimals,
        tokens={normalize_address(t.contract): (t.symbol, t.decimals) for t in chain.tokens if t.contract},
        confirmations=chain.confirmations)


class DepositService:
    """What the HTTP handlers call: a user's deposit address, their deposits, the dev faucet."""

    def __init__(self, ctx: AppContext, *, statuses: dict[str, WatcherStatus]) -> None:
        self._ctx = ctx
        self.repo = Deposits(ctx.store)
        self.statuses = statuses
        self.chains = {c.name: c for c in ctx.settings.chains}
        self._first_checkpoint = {c.name: asyncio.Lock() for c in ctx.settings.chains}
        signer = ctx.settings.signer
        self.signer_enabled = bool(signer.mnemonic or signer.keystore)

    def chain(self, name: str) -> ChainSettings:
        chain = self.chains.get(name)
        if chain is None:
            raise UnknownChain(f"unknown chain {name[:32]!r}")
        return chain

    async def address(self, user_id: int, chain_name: str) -> str:
        """The user's deposit address on the chain (checksummed): the same one on every call."""
        chain = self.chain(chain_name)
        row = await self.repo.address_of(user_id, chain.name)
        if row is None:
            if not self.signer_enabled:
                raise FeatureDisabled("deposit addresses need signer keys on this server")
            settings = self._ctx.settings

            async def derive(index: int) -> str:
                return str(await ask_actor(self._ctx.handle("signer").call("address_for", index),
                                           timeout_s=settings.server.upstream_timeout_s))

            await self._ensure_checkpoint(chain.name)
            row = await self.repo.claim_address(user_id, chain.name, derive=derive,
                                                reserved_index=settings.signer.hot_wallet_index)
        return checksum(row["address"])

    async def _ensure_checkpoint(self, chain: str) -> None:
        """An address is watched from the checkpoint at its claim (``claim_block``). With none yet (the watcher
        never reached the node), a deposit made before the first checkpoint was never scanned (the simulator's
        seed 14): the watcher makes one now, or the claim fails (ChainUnavailable) and nothing is claimed.
        Claims waiting at once share one ask (the watcher's mailbox is small)."""
        if await self.repo.checkpoint(chain) is not None:
            return
        async with self._first_checkpoint[chain]:
            if await self.repo.checkpoint(chain) is None:
                await ask_actor(self._ctx.handle(f"{CHAINS_SLOT}/{chain}").call("ensure_checkpoint"),
                                timeout_s=self._ctx.settings.server.upstream_timeout_s)

    def decimals(self, row: Row) -> int:
        asset = self._ctx.assets.get(f"{row['chain']}:{row['asset']}")
        return asset.decimals if asset is not None else 0

    def confirmations(self, row: Row) -> int:
        if row["status"] not in ("pending", "credited"):
            return 0  # orphaned, out of chain, reversed: not on the chain we follow
        status = self.statuses.get(row["chain"])
        top = status.checkpoint if status is not None and status.checkpoint is not None else row["block_number"]
        return max(0, top - int(row["block_number"]) + 1)

    async def faucet(self, user_id: int, *, chain_name: str, symbol: str, amount_minor: int,
                     address: str | None) -> str:
        """Dev only: send test funds to ``address`` (default: the caller's deposit address)."""
        chain = self.chain(chain_name)
        to = address if address is not None else await self.address(user_id, chain.name)
        dev = self._ctx.overrides.get(f"devchain:{chain.name}") or DevChain(chain.rpc_url)
        asset = chain.asset(symbol)
        assert asset is not None
        try:
            if asset.contract is None:
                return await asyncio.to_thread(dev.send_native, to=to, amount_wei=amount_minor, wait=False)
            # The demo token is owned by the faucet, which mints (a Transfer log from 0x0, like any deposit).
            return await asyncio.to_thread(dev.mint, asset.contract, to=to, amount_minor=amount_minor, wait=False)
        except Exception as exc:  # noqa: BLE001 - DevChainError and transport errors alike: the dev node failed
            # A transport error's text can hold the node's URL, and an RPC URL can hold a key: its type only.
            # What the node itself answered (a revert reason) is kept, URLs cut.
            said = isinstance(exc, DevChainError) and exc.__cause__ is None
            reason = scrub_urls(str(exc))[:200] if said else type(exc.__cause__ or exc).__name__
            raise ChainUnavailable(
                f"the dev chain refused the faucet transfer: {reason} ({endpoint_of(chain.rpc_url)})",
                chain=chain.name) from None

    # -- reversals: credited deposits whose transaction left the chain for good -----------------------
    async def reversals_status(self) -> dict[str, Any]:
        """The ``deposit_reversals`` part of /ops/status."""
        rows = await self.repo.reversals(state="open", limit=STATUS_REVERSALS_MAX)
        return {"open": await self.repo.open_reversals_count(), "items": [{
            "deposit_id": str(r["id"]), "user_id": str(r["user_id"]), "asset": f"{r['chain']}:{r['asset']}",
            "amount": format_amount(r["amount_minor"], self.decimals(r)), "tx_hash": r["tx_hash"],
        } for r in rows]}

    async def resolve_reversal(self, deposit_id: int, *, action: str, reason: str) -> Row:
        """An operator's decision on a reversed deposit, once: ``debit`` takes the amount back from the
        user (InsufficientFunds if they no longer have it: nothing changes), ``release`` keeps the
        credit; both lift the freeze and record the reason, in the same transaction. NotFound for a
        deposit that is not reversed, Conflict for one already resolved."""
        assert action in RESOLUTIONS
        row = await self.repo.reversal(deposit_id)
        if row["resolved_at"] is not None:
            raise Conflict("this reversal is already resolved")
        if action == "release":
            await self.repo.release(deposit_id, reason=reason)
        else:
            await ask_actor(self._ctx.wallet(int(row["user_id"])).call("run", _debit_command(row, reason)),
                            timeout_s=self._ctx.settings.server.upstream_timeout_s)
        _log.warning("deposits.reversal_resolved", deposit_id=deposit_id, user_id=int(row["user_id"]),
                     resolution=RESOLUTIONS[action])
        resolved = await self.repo.get(deposit_id)
        assert resolved is not None
        return resolved


def _debit_command(row: Row, reason: str) -> Any:
    """The wallet command that takes a reversed deposit's amount back: user -> chain account."""
    chain, code = row["chain"], f"{row['chain']}:{row['asset']}"

    async def debit(store: Any, user_id: int) -> None:
        assert user_id == int(row["user_id"])
        try:
            transfer = await store.ledger.transfer(
                debit=user_account(user_id, code), credit=chain_account(chain, code), asset=code,
                amount=row["amount_minor"], key=deposit_reversal_key(row["id"]),
                writes=Deposits.resolve_writes(row["id"], action="debit", reason=reason))
        except StaleWrite as exc:  # resolved by someone else since we read it
            raise Conflict("this reversal is already resolved") from exc
        if transfer.replayed:
            raise Conflict("this reversal is already resolved")

    return debit


def _watcher_factory(ctx: AppContext, chain: ChainSettings, client: ChainClient, status: WatcherStatus) -> Any:
    assets = chain_assets(chain)
    start_block = ctx.overrides.get(f"deposit_start_block:{chain.name}")
    return lambda: ChainWatcher(chain=chain, store=ctx.store, client=client, assets=assets, wallet=ctx.wallet,
                                status=status, start_block=start_block,
                                crash_hook=ctx.overrides.get("deposit_crash_hook"))


def build(ctx: AppContext) -> Flow:
    from teller.http.deposits import routes
    from teller.http.ops_deposits import routes as ops_routes

    statuses = {c.name: WatcherStatus(chain=c.name) for c in ctx.settings.chains}
    service = DepositService(ctx, statuses=statuses)
    owned: list[ChainClient] = []
    specs = []
    for chain in ctx.settings.chains:
        # A watcher's own client (not shared with withdrawals): a slow answer to one never holds the other.
        client = ctx.overrides.get(f"deposit_client:{chain.name}")
        if client is None:
            client = ChainClient.from_settings(chain)
            owned.append(client)
        specs.append(ChildSpec(name=chain.name, factory=_watcher_factory(ctx, chain, client, statuses[chain.name])))

    async def status() -> dict[str, Any]:
        return {"chains": [s.as_json() for s in statuses.values()],
                "deposit_reversals": await service.reversals_status()}

    async def close() -> None:
        for client in owned:
            await client.close()

    return Flow(name="deposits", children={CHAINS_SLOT: tuple(specs)} if specs else {},
                routes=(*routes(dev=ctx.settings.auth.dev), *ops_routes()),
                services={SERVICE_NAME: service}, status=status, close=close)
