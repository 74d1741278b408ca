"""Two chains side by side (two anvil processes, two chain ids): one node going down stalls only its own
watcher; /ops/status shows each chain's head, checkpoint, lag and state."""

from __future__ import annotations

import asyncio
from typing import Any

from teller.storage.invariants import check_invariants
from tests.deposits.helpers import chain_table, checkpoint_of, deposit_rows, deposit_settings, running, wait_for
from tests.fixtures.http import OPS_TOKEN

OTHER = "otherchain"
OTHER_CHAIN_ID = 4242


async def _credited_on(store: Any, chain: str, count: int) -> bool:
    rows = [r for r in await deposit_rows(store) if r["chain"] == chain and r["status"] == "credited"]
    return len(rows) >= count


async def test_one_chain_down_does_not_stall_the_other(store, devnet, start_anvil) -> None:
    other = start_anvil(chain_id=OTHER_CHAIN_ID)
    other_token = await asyncio.to_thread(other.dev.deploy_demo_token)
    settings = deposit_settings(
        chain_table(rpc_url=devnet.url, token=devnet.token),
        chain_table(rpc_url=other.url, token=other_token, name=OTHER, chain_id=OTHER_CHAIN_ID, confirmations=1))
    async with running(settings, store) as app:
        _, headers = await app.sign_in(4001)
        here, there = await app.address(headers), await app.address(headers, OTHER)
        assert here == there  # the same HD index on both chains: the first user index
        await wait_for(lambda: checkpoint_of(store, OTHER), what="the other watcher's checkpoint")
        await asyncio.to_thread(other.dev.send_native, to=there, amount_wei=10**18)
        await wait_for(lambda: _credited_on(store, OTHER, 1), between=other.dev.mine, what="a credit on the other")
        await wait_for(lambda: checkpoint_of(store), what="the devnet watcher's checkpoint")

        other.kill()  # its node is gone; its watcher backs off
        await asyncio.to_thread(devnet.dev.send_native, to=here, amount_wei=2 * 10**18)
        await wait_for(lambda: _credited_on(store, "devnet", 1), between=devnet.dev.mine,
                       what="a credit on the healthy chain while the other is down")
        status = await _status(app)
        by_chain = {c["chain"]: c for c in status["chains"]}
        assert by_chain["devnet"]["state"] == "following"
        assert by_chain["devnet"]["checkpoint"] is not None and by_chain["devnet"]["lag_blocks"] is not None
        assert by_chain[OTHER]["state"] == "degraded"
        tree = status["tree"]
        assert "failed" not in str(tree)
        balances = await app.balances(headers)
        assert balances["devnet:ETH"] == "2" and balances[f"{OTHER}:ETH"] == "1"
    assert await check_invariants(store) == []


async def _status(app: Any) -> dict[str, Any]:
    async def degraded() -> Any:
        response = await app.client.get("/ops/status", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
        assert response.status == 200, await response.text()
        body = await response.json()
        states = {c["chain"]: c["state"] for c in body["chains"]}
        return body if states.get(OTHER) == "degraded" else None
    return await wait_for(degraded, what="the other chain reported degraded")
