"""The crypto withdrawal flow: a WithdrawalActor per chain under ``withdrawals``, and the HTTP service.

On when chains and signer keys are configured; otherwise the routes answer ``feature_disabled``.
``ctx.overrides``: ``chain_client:<chain>`` (a ChainClient to use), ``withdrawal_crash_hook`` (tests).
"""

from __future__ import annotations

from typing import Any

from teller.actors.withdrawal_actor import WithdrawalActor
from teller.actors.withdrawal_steps import WithdrawalRequest, place_command
from teller.chain.client import ChainClient
from teller.config import ChainSettings
from teller.errors import FeatureDisabled
from teller.flows.base import AppContext, Flow, ask_actor
from teller.runtime import Call, ChildSpec, Handle
from teller.storage.freezes import Freezes
from teller.storage.store import Row
from teller.storage.withdrawals import Withdrawals

__all__ = ["build", "WithdrawalService", "SERVICE_NAME", "WITHDRAWALS_SLOT"]

SERVICE_NAME = "withdrawals"
WITHDRAWALS_SLOT = "withdrawals"


class WithdrawalService:
    """What the HTTP handlers call: accept a withdrawal (through the user's wallet actor), read them."""

    def __init__(self, ctx: AppContext, *, enabled: bool) -> None:
        self._ctx = ctx
        self.enabled = enabled
        self.repo = Withdrawals(ctx.store)

    async def request(self, request: WithdrawalRequest) -> tuple[Row, bool]:
        """``(row, created)``; the same key and body again answers the first row with ``created`` False."""
        if not self.enabled:
            raise FeatureDisabled("withdrawals are not configured on this server")
        timeout_s = self._ctx.settings.server.upstream_timeout_s
        row, created = await ask_actor(self._ctx.wallet(request.user_id).call("run", place_command(request)),
                                       timeout_s=timeout_s)
        if created:
            self._poke(row["chain"])
        return row, created

    def actor(self, chain: str) -> Handle:
        if not self.enabled:
            raise FeatureDisabled("withdrawals are not configured on this server")
        return self._ctx.handle(f"{WITHDRAWALS_SLOT}/{chain}")

    async def status(self) -> dict[str, Any]:
        """For /ops/status: per chain, the rows parked after failures or in an incident, and the freeze."""
        freezes = Freezes(self._ctx.store)
        chains = []
        for chain in self._ctx.settings.chains:
            parked, incidents = await self.repo.troubled_counts(chain.name)
            blocking = await freezes.blocking(chain=chain.name)
            items = await self.repo.troubled(chain.name) if parked or incidents else []
            chains.append({
                "chain": chain.name, "parked": parked, "incidents": incidents, "frozen": blocking is not None,
                "freeze_id": None if blocking is None else str(blocking["id"]),
                "items": [_troubled_json(row) for row in items]})
        return {"withdrawals": {"chains": chains}}

    def _poke(self, chain: str) -> None:
        try:
            self._ctx.handle(f"{WITHDRAWALS_SLOT}/{chain}").tell(Call("poke", (), {}))
        except Exception:  # noqa: BLE001 - a nudge only: the actor's own poll picks the row up anyway
            pass


def _troubled_json(row: Row) -> dict[str, Any]:
    return {"withdrawal_id": str(row["id"]), "user_id": str(row["user_id"]), "asset": row["asset"],
            "status": row["status"], "nonce": row["nonce"], "incident": row["incident_reason"],
            "failures": row["failures"], "last_error": row["last_error"],
            "retry_at": row["retry_at"].isoformat() if row["retry_at"] else None}


def _actor_factory(ctx: AppContext, chain: ChainSettings, client: ChainClient) -> Any:
    def signer() -> Handle:
        return ctx.handle("signer")

    return lambda: WithdrawalActor(chain=chain, store=ctx.store, client=client, signer=signer, assets=ctx.assets,
                                   crash_hook=ctx.overrides.get("withdrawal_crash_hook"))


def build(ctx: AppContext) -> Flow:
    from teller.http.ops_withdrawals import routes as ops_routes
    from teller.http.withdrawals import routes

    signer = ctx.settings.signer
    enabled = bool(ctx.settings.chains) and bool(signer.mnemonic or signer.keystore)
    service = WithdrawalService(ctx, enabled=enabled)
    if not enabled:
        return Flow(name="withdrawals", routes=(*routes(), *ops_routes()), services={SERVICE_NAME: service})
    clients: dict[str, ChainClient] = {}
    owned: list[ChainClient] = []
    for chain in ctx.settings.chains:
        client = ctx.overrides.get(f"chain_client:{chain.name}")
        if client is None:
            client = ChainClient.from_settings(chain)
            owned.append(client)
        clients[chain.name] = client
    specs = tuple(ChildSpec(name=chain.name, factory=_actor_factory(ctx, chain, clients[chain.name]))
                  for chain in ctx.settings.chains)

    async def close() -> None:
        for client in owned:
            await client.close()

    return Flow(name="withdrawals", children={WITHDRAWALS_SLOT: specs}, routes=(*routes(), *ops_routes()),
                services={SERVICE_NAME: service}, close=close, status=service.status)
