"""ChainReads on a real anvil: receipts with their Transfer logs, transactions and mined counts in batches;
null answers as None; failures as ChainUnavailable; the RPC URL never shown."""

from __future__ import annotations

import pytest

from teller.chain.receipts import ChainReads
from teller.errors import ChainUnavailable
from tests.fixtures.chain import DevNet

TO = "0x5555555555555555555555555555555555555555"
UNKNOWN = "0x" + "ab" * 32


async def test_receipts_transactions_and_counts_in_one_batch_each(devnet: DevNet) -> None:
    minted = devnet.dev.mint(devnet.token, to=TO, amount_minor=12_345).lower()
    sent = devnet.dev.send_native(to=TO, amount_wei=10**15).lower()
    reads = ChainReads(name="devnet", rpc_url=devnet.url, timeout_s=2.0)
    try:
        receipts = await reads.receipts([minted, sent.upper().replace("0X", "0x"), UNKNOWN])
        assert receipts[UNKNOWN] is None
        token = receipts[minted]
        assert token is not None and token.receipt.succeeded
        assert [(log.token, log.to_address, log.amount_minor) for log in token.transfers] == [(devnet.token, TO, 12_345)]
        assert receipts[sent] is not None and receipts[sent].transfers == ()
        txs = await reads.transactions([sent, UNKNOWN])
        assert txs[UNKNOWN] is None and (txs[sent].to_address, txs[sent].value_wei) == (TO, 10**15)
        hot = devnet.wallet.address(1)
        assert (await reads.mined_counts([hot]))[hot.lower()] >= 0
    finally:
        await reads.close()


async def test_a_dead_node_is_chain_unavailable_and_the_url_stays_hidden() -> None:
    reads = ChainReads(name="devnet", rpc_url="http://127.0.0.1:1/secret-key", timeout_s=1.0)
    try:
        with pytest.raises(ChainUnavailable) as caught:
            await reads.receipts([UNKNOWN])
        assert "secret-key" not in str(caught.value) and "secret-key" not in repr(reads)
        assert await reads.receipts([]) == {}
    finally:
        await reads.close()
