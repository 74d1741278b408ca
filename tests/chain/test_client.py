"""ChainClient against a real anvil: blocks, Transfer logs, receipts, nonces, fees, sending."""

from __future__ import annotations

import asyncio

import pytest

from teller.chain.client import ChainClient
from teller.chain.devchain import FAUCET_ADDRESS
from teller.chain.signing import sign_native_transfer, sign_token_transfer
from teller.chain.types import Receipt, SendOutcome
from teller.errors import ChainUnavailable, UnknownBlock
from tests.fixtures.chain import DevNet

HANG_GUARD_S = 30  # not a timing assertion: only keeps a broken test from hanging the run
RECEIPT_POLLS_MAX = 500
FEES = dict(max_fee_per_gas_wei=10 * 10**9, max_priority_fee_per_gas_wei=10**9)


async def mined_receipt(client: ChainClient, tx_hash: str) -> Receipt:
    """anvil answers eth_sendRawTransaction before it mines (FIELD-NOTES): poll, within a bound."""
    for _ in range(RECEIPT_POLLS_MAX):
        receipt = await client.get_receipt(tx_hash)
        if receipt is not None:
            return receipt
        await asyncio.sleep(0.02)
    raise AssertionError(f"{tx_hash} was not mined")


def user(devnet: DevNet, index: int) -> str:
    return devnet.wallet.address(index).lower()


async def test_reads_head_chain_id_and_blocks_with_native_transfers(devnet: DevNet, chain_client: ChainClient) -> None:
    tx_hash = devnet.dev.send_native(to=user(devnet, 5), amount_wei=3 * 10**17)
    head = await chain_client.block_number()
    assert await chain_client.chain_id() == devnet.chain_id
    block = await chain_client.get_block(head)
    assert block is not None and block.number == head
    [tx] = [t for t in block.transactions if t.tx_hash == tx_hash]
    assert (tx.from_address, tx.to_address, tx.value_wei) == (FAUCET_ADDRESS, user(devnet, 5), 3 * 10**17)
    assert tx.block_number == head and tx.block_hash == block.block_hash
    parent = await chain_client.get_block(head - 1, full_transactions=False)
    assert parent is not None and block.parent_hash == parent.block_hash and parent.transactions == ()
    assert await chain_client.get_block(head + 1000) is None
    by_hash = await chain_client.get_block_by_hash(block.block_hash)
    assert by_hash == block


async def test_get_blocks_batches_in_order(devnet: DevNet, chain_client: ChainClient) -> None:
    devnet.dev.mine(250)  # more than one JSON-RPC batch
    head = await chain_client.block_number()
    numbers = list(range(head - 240, head + 3))
    blocks = await chain_client.get_blocks(numbers, full_transactions=False)
    assert [b.number for b in blocks if b is not None] == numbers[:-2] and blocks[-2:] == [None, None]
    for parent, child in zip(blocks, blocks[1:-2]):
        assert child is not None and parent is not None and child.parent_hash == parent.block_hash


async def test_token_transfers_decoded_by_range_and_by_hash(devnet: DevNet, chain_client: ChainClient) -> None:
    a, b, c = user(devnet, 11), user(devnet, 12), user(devnet, 13)
    single = devnet.dev.send_token(devnet.token, to=a, amount_minor=1_500_000)
    double = devnet.dev.batch_send_token(devnet.token, [(b, 2_000_000), (c, 3)])
    head = await chain_client.block_number()
    logs = await chain_client.get_transfer_logs(tokens=[devnet.token], from_block=head - 1, to_block=head)
    assert [(log.tx_hash, log.to_address, log.amount_minor) for log in logs] == [
        (single, a, 1_500_000), (double, b, 2_000_000), (double, c, 3)]
    two = [log for log in logs if log.tx_hash == double]
    assert two[0].log_index != two[1].log_index and two[0].block_hash == two[1].block_hash
    assert all(log.token == devnet.token and log.from_address == FAUCET_ADDRESS for log in logs)

    block = await chain_client.get_block(head, full_transactions=False)
    assert block is not None
    assert await chain_client.get_transfer_logs_by_block_hash(tokens=[devnet.token], block_hash=block.block_hash) == two
    only_c = await chain_client.get_transfer_logs(tokens=[devnet.token], from_block=head - 1, to_block=head,
                                                  to_addresses=[devnet.wallet.address(13)])
    assert [log.to_address for log in only_c] == [c]
    assert await chain_client.get_transfer_logs(tokens=[], from_block=0, to_block=head) == []
    assert await chain_client.get_transfer_logs(tokens=[devnet.token], from_block=0, to_block=head,
                                                to_addresses=[]) == []
    other_token = "0x" + "77" * 20
    assert await chain_client.get_transfer_logs(tokens=[other_token], from_block=0, to_block=head) == []


async def test_logs_by_hash_of_a_block_the_node_lacks_is_unknown_block(devnet: DevNet,
                                                                      chain_client: ChainClient) -> None:
    devnet.dev.send_token(devnet.token, to=user(devnet, 14), amount_minor=9)
    head = await chain_client.block_number()
    dropped = await chain_client.get_block(head, full_transactions=False)
    assert dropped is not None
    devnet.dev.reorg(1)  # the block is replaced by another at the same height
    with pytest.raises(UnknownBlock) as info:
        await chain_client.get_transfer_logs_by_block_hash(tokens=[devnet.token], block_hash=dropped.block_hash)
    assert info.value.code == "unknown_block" and isinstance(info.value, ChainUnavailable)
    replaced = await chain_client.get_block(head, full_transactions=False)
    assert replaced is not None and replaced.block_hash != dropped.block_hash
    assert await chain_client.get_transfer_logs_by_block_hash(
        tokens=[devnet.token], block_hash=replaced.block_hash) == []


async def test_signed_native_and_token_transfers_land(devnet: DevNet, chain_client: ChainClient) -> None:
    sender = devnet.wallet.account(1)
    devnet.dev.send_token(devnet.token, to=sender.address, amount_minor=50_000_000)
    nonce = await chain_client.get_nonce(sender.address)
    fees = await chain_client.suggest_fees(max_fee_per_gas_cap_wei=10**12)
    fee_args = dict(max_fee_per_gas_wei=fees.max_fee_per_gas_wei,
                    max_priority_fee_per_gas_wei=fees.max_priority_fee_per_gas_wei)
    before = await chain_client.get_balance(user(devnet, 20))
    native = sign_native_transfer(sender, chain_id=devnet.chain_id, nonce=nonce, to=user(devnet, 20),
                                  amount_wei=12345, **fee_args)
    token = sign_token_transfer(sender, chain_id=devnet.chain_id, nonce=nonce + 1, token=devnet.token,
                                to=user(devnet, 21), amount_minor=7_000_000, gas=100_000, **fee_args)
    for signed in (native, token):
        result = await chain_client.send_raw_transaction(signed.raw)
        assert result.outcome is SendOutcome.ACCEPTED and result.tx_hash == signed.tx_hash
    for signed in (native, token):
        receipt = await mined_receipt(chain_client, signed.tx_hash)
        assert receipt.succeeded and receipt.fee_wei > 0
    assert await chain_client.get_balance(user(devnet, 20)) == before + 12345
    assert await chain_client.get_token_balance(token=devnet.token, owner=user(devnet, 21)) == 7_000_000
    assert await chain_client.get_nonce(sender.address) == nonce + 2
    mined = await chain_client.get_transaction(token.tx_hash)
    assert mined is not None and mined.nonce == nonce + 1 and mined.block_number is not None


async def test_a_reverting_token_transfer_is_mined_as_failed(devnet: DevNet, chain_client: ChainClient) -> None:
    sender = devnet.wallet.account(2)
    devnet.dev.send_token(devnet.token, to=sender.address, amount_minor=10_000_000)
    devnet.dev.set_blocked(devnet.token, user(devnet, 22), True)
    signed = sign_token_transfer(sender, chain_id=devnet.chain_id, nonce=await chain_client.get_nonce(sender.address),
                                 token=devnet.token, to=user(devnet, 22), amount_minor=1, gas=100_000, **FEES)
    assert (await chain_client.send_raw_transaction(signed.raw)).outcome is SendOutcome.ACCEPTED
    receipt = await mined_receipt(chain_client, signed.tx_hash)
    assert not receipt.succeeded
    assert await chain_client.get_token_balance(token=devnet.token, owner=user(devnet, 22)) == 0


async def test_resending_is_resolved_not_failed(devnet: DevNet, chain_client: ChainClient) -> None:
    sender = devnet.wallet.account(3)
    nonce = await chain_client.get_nonce(sender.address)
    devnet.dev.set_automine(False)
    pending = sign_native_transfer(sender, chain_id=devnet.chain_id, nonce=nonce, to=user(devnet, 23),
                                   amount_wei=1, **FEES)
    assert (await chain_client.send_raw_transaction(pending.raw)).outcome is SendOutcome.ACCEPTED
    again = await chain_client.send_raw_transaction(pending.raw)
    assert again.outcome is SendOutcome.ALREADY_KNOWN and again.tx_hash == pending.tx_hash
    assert await chain_client.get_nonce(sender.address, pending=True) == nonce + 1
    assert await chain_client.get_nonce(sender.address) == nonce
    assert await chain_client.get_receipt(pending.tx_hash) is None
    same_fee_other_tx = sign_native_transfer(sender, chain_id=devnet.chain_id, nonce=nonce, to=user(devnet, 24),
                                             amount_wei=1, **FEES)
    replaced = await chain_client.send_raw_transaction(same_fee_other_tx.raw)
    assert replaced.outcome is SendOutcome.REPLACEMENT_UNDERPRICED
    devnet.dev.mine()
    mined = await chain_client.send_raw_transaction(pending.raw)
    assert mined.outcome is SendOutcome.NONCE_TOO_LOW and mined.tx_hash == pending.tx_hash
    receipt = await chain_client.get_receipt(pending.tx_hash)
    assert receipt is not None and receipt.succeeded


async def test_an_unaffordable_transaction_is_rejected_with_the_reason(devnet: DevNet,
                                                                      chain_client: ChainClient) -> None:
    sender = devnet.wallet.account(4)
    signed = sign_native_transfer(sender, chain_id=devnet.chain_id, nonce=await chain_client.get_nonce(sender.address),
                                  to=user(devnet, 25), amount_wei=10**30, **FEES)
    result = await chain_client.send_raw_transaction(signed.raw)
    assert result.outcome is SendOutcome.REJECTED and "insufficient funds" in result.reason.lower()


async def test_fee_suggestion_follows_the_base_fee_and_respects_the_cap(chain_client: ChainClient) -> None:
    fees = await chain_client.suggest_fees(max_fee_per_gas_cap_wei=10**15)
    assert fees.max_fee_per_gas_wei >= fees.base_fee_per_gas_wei + fees.max_priority_fee_per_gas_wei
    assert fees.max_priority_fee_per_gas_wei > 0 and not fees.capped
    capped = await chain_client.suggest_fees(max_fee_per_gas_cap_wei=fees.base_fee_per_gas_wei)
    assert capped.capped and capped.max_fee_per_gas_wei == fees.base_fee_per_gas_wei
    assert capped.max_priority_fee_per_gas_wei <= capped.max_fee_per_gas_wei


async def test_a_dead_port_is_chain_unavailable(start_anvil) -> None:  # type: ignore[no-untyped-def]
    anvil = start_anvil(chain_id=4242)
    async with ChainClient(name="dying", rpc_url=anvil.url, timeout_s=2.0) as client:
        assert await client.chain_id() == 4242
        anvil.kill()
        for call in (client.block_number(), client.chain_id(), client.get_blocks([0, 1]),
                     client.suggest_fees(max_fee_per_gas_cap_wei=10**12), client.send_raw_transaction(b"\x02")):
            with pytest.raises(ChainUnavailable) as info:
                await asyncio.wait_for(call, HANG_GUARD_S)
            assert info.value.code == "chain_unavailable" and "dying" in info.value.message


async def test_a_silent_node_times_out_as_chain_unavailable() -> None:
    async def swallow(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.read(65536)
        await asyncio.sleep(HANG_GUARD_S)  # accepts, reads, never answers
        writer.close()

    server = await asyncio.start_server(swallow, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with ChainClient(name="silent", rpc_url=f"http://127.0.0.1:{port}", timeout_s=0.3) as client:
            with pytest.raises(ChainUnavailable):
                await asyncio.wait_for(client.block_number(), HANG_GUARD_S)
            with pytest.raises(ChainUnavailable):
                await asyncio.wait_for(client.chain_id(), HANG_GUARD_S)
    finally:
        server.close()


@pytest.mark.parametrize("status, body", [
    (502, b"<html>bad gateway</html>"), (200, b"not json"), (200, b"[1, 2]"), (200, b'{"jsonrpc": "2.0"}'),
    (200, b'{"jsonrpc": "2.0", "id": 1, "result": "0xzz"}'),
])
async def test_a_node_answering_nonsense_is_chain_unavailable(status: int, body: bytes) -> None:
    async def answer(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 %d X\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s" % (status, len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(answer, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        async with ChainClient(name="odd", rpc_url=f"http://127.0.0.1:{port}", timeout_s=2.0) as client:
            with pytest.raises(ChainUnavailable):
                await asyncio.wait_for(client.block_number(), HANG_GUARD_S)
    finally:
        server.close()


async def test_a_batch_of_sends_answers_each_transaction_on_its_own(devnet: DevNet, chain_client: ChainClient) -> None:
    sender = devnet.wallet.account(5)
    nonce = await chain_client.get_nonce(sender.address)
    devnet.dev.set_automine(False)
    first, second = (sign_native_transfer(sender, chain_id=devnet.chain_id, nonce=nonce + i, to=user(devnet, 26),
                                          amount_wei=1, **FEES) for i in range(2))
    assert (await chain_client.send_raw_transaction(first.raw)).outcome is SendOutcome.ACCEPTED
    results = await chain_client.send_raw_transactions([first.raw, second.raw])
    assert [(r.outcome, r.tx_hash) for r in results] == [
        (SendOutcome.ALREADY_KNOWN, first.tx_hash), (SendOutcome.ACCEPTED, second.tx_hash)]
    assert await chain_client.send_raw_transactions([]) == []
    assert await chain_client.get_nonce(sender.address, pending=True) == nonce + 2
