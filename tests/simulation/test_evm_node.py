"""The simulated node on its own: transactions, the pool's refusals, fees, reorgs, bounds, faults, determinism."""

from __future__ import annotations

import random
import re

import pytest
from eth_account import Account
from eth_utils import keccak, to_checksum_address
from hypothesis import given, settings
from hypothesis import strategies as st

from teller.chain.client import ChainClient
from teller.chain.erc20 import TRANSFER_TOPIC, address_topic, encode_transfer
from teller.chain.receipts import ChainReads
from teller.chain.signing import sign_native_transfer, sign_token_transfer
from teller.errors import ChainUnavailable
from tests.simulation import Fault, FaultPlan, SimLimit, SimNode, SimRpcServer, TxRejected, TxStatus
from tests.simulation.evm_node import POOL_QUEUED_PER_SENDER_MAX
from tests.simulation.evm_rpc import LOG_RANGE_BLOCKS_MAX
from tests.simulation.evm_state import COINBASE
from tests.simulation.evm_types import decode_raw_transaction

TOKEN = "0x" + "70" * 20
KEY = Account.from_key(keccak(b"sim node test key"))
ALICE = KEY.address.lower()
BOB = "0x" + "b0" * 20
CAROL = "0x" + "c0" * 20
GWEI = 10**9


def _node(**kwargs: object) -> SimNode:
    node = SimNode(**kwargs)  # type: ignore[arg-type]
    node.add_token(TOKEN)
    node.fund(ALICE, 10**21)
    node.mint(TOKEN, ALICE, 10**12)
    return node


def _native(nonce: int, amount_wei: int = 1, *, fee: int = 3 * GWEI, tip: int = GWEI // 10, chain_id: int = 31337,
            to: str = BOB) -> bytes:
    return sign_native_transfer(KEY, chain_id=chain_id, nonce=nonce, to=to, amount_wei=amount_wei,
                                max_fee_per_gas_wei=fee, max_priority_fee_per_gas_wei=tip).raw


def _token(nonce: int, amount_minor: int, *, gas: int = 120_000, to: str = BOB) -> bytes:
    return sign_token_transfer(KEY, chain_id=31337, nonce=nonce, token=TOKEN, to=to, amount_minor=amount_minor,
                               gas=gas, max_fee_per_gas_wei=3 * GWEI, max_priority_fee_per_gas_wei=GWEI // 10).raw


def test_a_native_transfer_moves_the_value_and_charges_the_fee() -> None:
    node = _node()
    tx_hash = node.submit_raw(_native(0, 5 * 10**17))
    assert node.tx_status(tx_hash) is TxStatus.PENDING and node.pending_nonce(ALICE) == 1 and node.nonce(ALICE) == 0
    (block,) = node.mine(1)
    receipt, _ = node.receipt(tx_hash)  # type: ignore[misc]
    price = block.base_fee_per_gas_wei + GWEI // 10
    assert receipt.succeeded and receipt.gas_used == 21_000 and receipt.effective_gas_price_wei == price
    assert node.balance(BOB) == 5 * 10**17
    assert node.balance(ALICE) == 10**21 - 5 * 10**17 - 21_000 * price
    assert node.balance(COINBASE) == 21_000 * (GWEI // 10)  # the tip; the base fee is burnt
    assert node.nonce(ALICE) == 1 and node.tx_status(tx_hash) is TxStatus.SUCCEEDED


def test_a_token_transfer_emits_the_standard_transfer_log() -> None:
    node = _node()
    tx_hash = node.submit_raw(_token(0, 12_500_000))
    node.mine(1)
    receipt, block = node.receipt(tx_hash)  # type: ignore[misc]
    (log,) = receipt.logs
    assert log.address == TOKEN and log.topics == (TRANSFER_TOPIC, address_topic(ALICE), address_topic(BOB))
    assert log.data == "0x" + (12_500_000).to_bytes(32, "big").hex() and log.log_index == 0
    assert node.token_balance(TOKEN, BOB) == 12_500_000
    assert [(t.token, t.amount_minor, t.block_hash) for t in node.transfers(to=BOB)] == [
        (TOKEN, 12_500_000, block.block_hash)]


def test_a_token_transfer_above_the_balance_or_out_of_gas_reverts_without_a_log() -> None:
    node = _node()
    above = node.submit_raw(_token(0, 10**12 + 1))
    starved = node.submit_raw(_token(1, 1, gas=30_000))
    node.mine(1)
    for tx_hash in (above, starved):
        receipt, _ = node.receipt(tx_hash)  # type: ignore[misc]
        assert not receipt.succeeded and receipt.logs == () and node.tx_status(tx_hash) is TxStatus.REVERTED
    assert node.receipt(starved)[0].gas_used == 30_000  # type: ignore[index]
    assert node.token_balance(TOKEN, BOB) == 0 and node.nonce(ALICE) == 2 and node.transfers(to=BOB) == []


def _unsigned_checked(*, tip: int, fee: int) -> bytes:
    """Signed bytes Teller's own signer refuses to make (a tip above the fee cap)."""
    tx = {"type": 2, "chainId": 31337, "nonce": 0, "to": to_checksum_address(BOB), "value": 1, "gas": 21_000, "maxFeePerGas": fee,
          "maxPriorityFeePerGas": tip, "data": b"", "accessList": []}
    return bytes(Account.sign_transaction(tx, KEY.key).raw_transaction)


@pytest.mark.parametrize(("raw", "words"), [
    (lambda: _native(0, chain_id=5), "invalid chain id for signer"),
    (lambda: _native(0, 10**22), "insufficient funds for gas * price + value"),
    (lambda: _unsigned_checked(tip=2 * GWEI, fee=GWEI), "max priority fee per gas higher than max fee per gas"),
])
def test_the_pool_refuses_with_geths_words(raw, words) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(TxRejected, match=re.escape(words)):
        _node().submit_raw(raw())


def test_resending_replacing_and_reusing_nonces_answer_as_geth() -> None:
    node = _node()
    node.submit_raw(_native(0, 1))
    with pytest.raises(TxRejected, match="already known"):
        node.submit_raw(_native(0, 1))
    with pytest.raises(TxRejected, match="replacement transaction underpriced"):
        node.submit_raw(_native(0, 2, fee=3 * GWEI * 109 // 100, tip=GWEI // 10 * 2))  # fee cap +9 % only
    replacement = node.submit_raw(_native(0, 3, fee=4 * GWEI, tip=GWEI // 5))
    node.mine(1)
    assert node.tx_status(replacement) is TxStatus.SUCCEEDED and node.balance(BOB) == 3
    with pytest.raises(TxRejected, match="nonce too low"):
        node.submit_raw(_native(0, 3, fee=4 * GWEI, tip=GWEI // 5))  # the mined one again


def test_a_future_nonce_waits_for_the_gap_and_the_queue_per_sender_is_bounded() -> None:
    node = _node()
    later = node.submit_raw(_native(1))
    node.mine(1)
    assert node.tx_status(later) is TxStatus.PENDING and node.pending_nonce(ALICE) == 0
    node.submit_raw(_native(0))
    node.mine(1)
    assert node.nonce(ALICE) == 2 and node.tx_status(later) is TxStatus.SUCCEEDED
    with pytest.raises(TxRejected, match="txpool is full"):
        node.submit_raw(_native(2 + POOL_QUEUED_PER_SENDER_MAX))


def test_a_full_pool_refuses_a_new_transaction_but_takes_a_replacement() -> None:
    node = _node(pool_max=2)
    node.submit_raw(_native(0))
    node.submit_raw(_native(1))
    with pytest.raises(TxRejected, match="txpool is full"):
        node.submit_raw(_native(2))
    node.submit_raw(_native(1, 5, fee=4 * GWEI, tip=GWEI // 5))
    node.mine(1)
    assert node.nonce(ALICE) == 2 and node.balance(BOB) == 6 and node.pending() == []


def test_a_max_fee_below_the_base_fee_waits_until_the_fee_falls() -> None:
    node = _node()
    node.set_next_base_fee(50 * GWEI)
    waiting = node.submit_raw(_native(0, fee=3 * GWEI))
    node.mine(3)
    assert node.tx_status(waiting) is TxStatus.PENDING
    node.set_next_base_fee(GWEI)
    node.mine(1)
    assert node.tx_status(waiting) is TxStatus.SUCCEEDED
    with pytest.raises(TxRejected, match="less than block base fee"):
        strict = _node(reject_below_base_fee=True)
        strict.set_next_base_fee(50 * GWEI)
        strict.submit_raw(_native(0, fee=3 * GWEI))


def test_a_reorg_reincludes_at_other_positions_drops_and_keeps_the_chain_consistent() -> None:
    node = _node()
    node.mine(2)
    first, second, third = (node.submit_raw(raw) for raw in (_native(0, 1), _token(1, 7), _native(2, 3, to=CAROL)))
    (old,) = node.mine(1)
    node.fund(CAROL, 1)  # a driver's change outside any block survives the reorg
    old_hashes = node.reorg(1, reinclude={second: 1, first: 0}, drop=[third], length=2)
    assert old_hashes == [old.block_hash] and node.head == old.number + 1
    new_first, new_second = node.block(old.number), node.block(old.number + 1)
    assert new_first is not None and new_second is not None
    assert new_first.block_hash != old.block_hash and new_first.parent_hash == old.parent_hash
    assert new_second.parent_hash == new_first.block_hash
    assert node.block_by_hash(old.block_hash) is None
    assert [tx.tx_hash for tx in new_first.txs] == [first] and [tx.tx_hash for tx in new_second.txs] == [second]
    receipt, block = node.receipt(second)  # type: ignore[misc]
    assert block is new_second and receipt.tx_index == 0 and receipt.logs[0].log_index == 0
    assert node.tx_status(third) is TxStatus.UNKNOWN and node.transaction(third) is None
    assert node.balance(CAROL) == 1 and node.nonce(ALICE) == 2 and node.token_balance(TOKEN, BOB) == 7
    # nonce 2 is free again: another transaction can take it
    node.submit_raw(_native(2, 9))
    node.mine(1)
    assert node.nonces_used(ALICE) == [0, 1, 2] and node.balance(BOB) == 10


def test_a_reorg_returns_what_it_does_not_place_to_the_pool() -> None:
    node = _node()
    tx_hash = node.submit_raw(_native(0, 4))
    (old,) = node.mine(1)
    node.reorg(1)
    assert node.tx_status(tx_hash) is TxStatus.PENDING and node.balance(BOB) == 0 and node.nonce(ALICE) == 0
    assert node.balance(ALICE) == 10**21 and node.balance(COINBASE) == 0  # the fee is undone too
    node.mine(1)
    receipt, block = node.receipt(tx_hash)  # type: ignore[misc]
    assert block.number == old.number + 1 and node.balance(BOB) == 4
    assert node.balance(ALICE) == 10**21 - 4 - receipt.gas_used * receipt.effective_gas_price_wei
    with pytest.raises(SimLimit):
        node.reorg(node.head + 1)


def _workload(seed: int) -> SimNode:
    """Random transfers among a few unsigned senders, with reorgs, from one seed."""
    rng = random.Random(seed)
    node = SimNode()
    node.add_token(TOKEN)
    people = ["0x%040x" % (i + 1) for i in range(6)]
    for person in people:
        node.fund(person, 10**20)
        node.mint(TOKEN, person, 10**9)
    for _ in range(300):
        sender, to = rng.choice(people), rng.choice(people)
        if rng.random() < 0.5:
            node.submit(sender=sender, to=to, value_wei=rng.randrange(10**18))
        else:
            node.submit(sender=sender, to=TOKEN, data=encode_transfer(to, rng.randrange(2 * 10**8)), gas=80_000)
        if rng.random() < 0.3:
            node.mine(rng.randrange(1, 3))
        if rng.random() < 0.05 and node.head > 3:
            old = [tx.tx_hash for tx in node.block(node.head).txs]  # type: ignore[union-attr]
            node.reorg(rng.randrange(1, 4), drop=old[:1], reinclude={h: 0 for h in old[1:]})
    node.mine(3)
    return node


@pytest.mark.parametrize("seed", range(4))
def test_random_workloads_conserve_money_and_replay_from_their_seed(seed: int) -> None:
    node = _workload(seed)
    people = ["0x%040x" % (i + 1) for i in range(6)]
    burnt = sum(r.gas_used * block.base_fee_per_gas_wei for r, block in node.canonical_receipts())
    assert sum(node.balance(p) for p in people) + node.balance(COINBASE) + burnt == 6 * 10**20
    assert sum(node.token_balance(TOKEN, p) for p in people) == 6 * 10**9
    for person in people:
        assert node.nonces_used(person) == list(range(node.nonce(person)))
    again = _workload(seed)
    assert [node.block(n).block_hash for n in range(node.head + 1)] == \
        [again.block(n).block_hash for n in range(again.head + 1)]  # type: ignore[union-attr]


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=300))
def test_any_bytes_are_a_transaction_or_a_refusal(raw: bytes) -> None:
    try:
        decode_raw_transaction(raw)
    except TxRejected:
        pass


async def test_the_rpc_refuses_a_log_range_wider_than_a_providers() -> None:
    node = _node()
    node.mine(LOG_RANGE_BLOCKS_MAX + 1)
    async with SimRpcServer(node) as server, ChainClient(name="sim", rpc_url=server.url) as client:
        with pytest.raises(ChainUnavailable, match="max block range"):
            await client.get_transfer_logs(tokens=[TOKEN], from_block=0, to_block=LOG_RANGE_BLOCKS_MAX)
        assert await client.get_transfer_logs(tokens=[TOKEN], from_block=1, to_block=LOG_RANGE_BLOCKS_MAX) == []


async def test_faults_reach_teller_as_a_lying_node_and_stop_on_heal() -> None:
    node = _node()
    tx_hash = node.submit_raw(_native(0))
    node.submit_raw(_token(1, 5))
    node.mine(5)
    plan = FaultPlan(7, stale_lag_blocks=3, hang_s=1.0)
    async with SimRpcServer(node, faults=plan) as server, \
            ChainClient(name="sim", rpc_url=server.url, timeout_s=0.3) as client:
        reads = ChainReads(name="sim", rpc_url=server.url, timeout_s=0.3)
        try:
            plan.enable(Fault.NULL_RECEIPT)
            assert await client.get_receipt(tx_hash) is None and (await reads.receipts([tx_hash]))[tx_hash] is None
            plan.enable(Fault.EMPTY_LOGS)
            assert await client.get_transfer_logs(tokens=[TOKEN], from_block=0, to_block=node.head) == []
            plan.enable(Fault.STALE_HEAD)
            assert await client.block_number() == node.head - 3
            for fault in (Fault.HTTP_429, Fault.HTTP_5XX, Fault.TIMEOUT):
                plan.enable(fault, methods=["eth_chainId"])
                with pytest.raises(ChainUnavailable):
                    await client.chain_id()
                plan.disable(fault)
            plan.enable(Fault.DROP_TX)
            dropped = (await client.send_raw_transaction(_native(2))).tx_hash
            assert node.tx_status(dropped) is TxStatus.DROPPED and await client.get_transaction(dropped) is None
            plan.heal()
            assert (await client.get_receipt(tx_hash)) is not None
            assert len(await client.get_transfer_logs(tokens=[TOKEN], from_block=0, to_block=node.head)) == 1
            assert await client.block_number() == node.head
            assert (await client.send_raw_transaction(_native(2))).outcome.value == "accepted"
            assert plan.injected[Fault.NULL_RECEIPT] == 2 and plan.injected[Fault.TIMEOUT] == 1
        finally:
            await reads.close()


def test_fault_decisions_depend_only_on_the_seed_and_the_call_count() -> None:
    def decisions(seed: int, interleave: bool) -> list[Fault | None]:
        plan = FaultPlan(seed)
        plan.enable(Fault.NULL_RECEIPT, probability=0.5)
        plan.enable(Fault.HTTP_5XX, probability=0.2)
        seen = []
        for _ in range(50):
            if interleave:
                plan.decide("eth_blockNumber", (Fault.HTTP_5XX,))
            seen.append(plan.decide("eth_getTransactionReceipt", (Fault.HTTP_5XX, Fault.NULL_RECEIPT)))
        return seen

    assert decisions(3, False) == decisions(3, True) != decisions(4, False)
    assert {Fault.NULL_RECEIPT, Fault.HTTP_5XX, None} == set(decisions(3, False))


def test_a_fault_for_a_while_switches_itself_off() -> None:
    plan = FaultPlan(1)
    plan.enable(Fault.NULL_RECEIPT, hits_max=3)
    hits = [plan.decide("eth_getTransactionReceipt", (Fault.NULL_RECEIPT,)) for _ in range(5)]
    assert hits == [Fault.NULL_RECEIPT] * 3 + [None, None] and plan.healed


def test_a_legacy_eip155_transaction_is_recovered_and_priced_at_its_gas_price() -> None:
    node = _node()
    tx = {"nonce": 0, "gasPrice": 2 * GWEI, "gas": 21_000, "to": to_checksum_address(BOB), "value": 9,
          "data": b"", "chainId": 31337}
    tx_hash = node.submit_raw(bytes(Account.sign_transaction(tx, KEY.key).raw_transaction))
    node.mine(1)
    receipt, _ = node.receipt(tx_hash)  # type: ignore[misc]
    assert receipt.tx.sender == ALICE and receipt.tx.tx_type == 0 and receipt.effective_gas_price_wei == 2 * GWEI
    assert node.balance(BOB) == 9


def test_a_transaction_cannot_be_both_reincluded_and_dropped() -> None:
    node = _node()
    tx_hash = node.submit_raw(_native(0))
    node.mine(1)
    with pytest.raises(ValueError, match="both"):
        node.reorg(1, reinclude={tx_hash: 0}, drop=[tx_hash])
    assert node.tx_status(tx_hash) is TxStatus.SUCCEEDED  # refused before anything changed


def test_a_block_takes_transactions_until_its_gas_is_spent() -> None:
    node = _node()
    senders = ["0x%040x" % (i + 1) for i in range(30)]
    for sender in senders:
        node.fund(sender, 10**20)
        for _ in range(50):
            node.submit(sender=sender, to=BOB, value_wei=1)
    first, second = node.mine(2)
    assert len(first.receipts) == 30_000_000 // 21_000 and len(second.receipts) == 1_500 - len(first.receipts)
    assert first.gas_used <= 30_000_000 and node.balance(BOB) == 1_500 and node.pending() == []
