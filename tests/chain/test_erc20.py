"""The hand-written ERC-20 codec: Transfer logs and transfer() calldata."""

from __future__ import annotations

import re
from typing import Any

from eth_utils import keccak
from hypothesis import given
from hypothesis import strategies as st

from teller.chain.erc20 import (
    TRANSFER_TOPIC,
    address_topic,
    decode_transfer_calldata,
    decode_transfer_log,
    encode_transfer,
)
from teller.chain.types import TransferLog

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())
uint256 = st.integers(min_value=0, max_value=2**256 - 1)
hashes = st.binary(min_size=32, max_size=32).map(lambda b: "0x" + b.hex())
small = st.integers(min_value=0, max_value=2**40)


def raw_log(*, token: str, sender: str, to: str, amount: int, tx_hash: str, block_hash: str,
            block_number: int, log_index: int, tx_index: int) -> dict[str, Any]:
    return {
        "address": token, "topics": [TRANSFER_TOPIC, address_topic(sender), address_topic(to)],
        "data": "0x" + amount.to_bytes(32, "big").hex(), "blockNumber": hex(block_number),
        "blockHash": block_hash, "transactionHash": tx_hash, "transactionIndex": hex(tx_index),
        "logIndex": hex(log_index), "removed": False,
    }


def test_transfer_topic_is_the_event_signature_hash() -> None:
    assert TRANSFER_TOPIC == "0x" + keccak(text="Transfer(address,address,uint256)").hex()


def test_decodes_a_node_shaped_log() -> None:
    log = decode_transfer_log({
        "address": "0x5FbDB2315678afecb367f032d93F642f64180aa3",
        "topics": [TRANSFER_TOPIC.upper().replace("0X", "0x"),
                   "0x000000000000000000000000f39fd6e51aad88f6f4ce6ab8827279cfffb92266",
                   "0x00000000000000000000000070997970C51812dc3A010C7d01b50e0d17dc79C8"],
        "data": "0x00000000000000000000000000000000000000000000000000000000000f4240",
        "blockNumber": "0x2", "blockHash": "0x" + "AB" * 32, "transactionHash": "0x" + "cd" * 32,
        "transactionIndex": "0x0", "logIndex": "0x1", "removed": False,
    })
    assert log == TransferLog(
        token="0x5fbdb2315678afecb367f032d93f642f64180aa3",
        from_address="0xf39fd6e51aad88f6f4ce6ab8827279cfffb92266",
        to_address="0x70997970c51812dc3a010c7d01b50e0d17dc79c8",
        amount_minor=1_000_000, tx_hash="0x" + "cd" * 32, log_index=1, block_number=2,
        block_hash="0x" + "ab" * 32, transaction_index=0,
    )


@given(addresses, addresses, addresses, uint256, hashes, hashes, small, small, small)
def test_decode_inverts_the_log_layout(token: str, sender: str, to: str, amount: int, tx_hash: str,
                                       block_hash: str, block_number: int, log_index: int, tx_index: int) -> None:
    raw = raw_log(token=token, sender=sender, to=to, amount=amount, tx_hash=tx_hash, block_hash=block_hash,
                  block_number=block_number, log_index=log_index, tx_index=tx_index)
    assert decode_transfer_log(raw) == TransferLog(
        token=token, from_address=sender, to_address=to, amount_minor=amount, tx_hash=tx_hash,
        log_index=log_index, block_number=block_number, block_hash=block_hash, transaction_index=tx_index)


@given(addresses, addresses, uint256)
def test_an_erc721_transfer_is_not_a_token_transfer(sender: str, to: str, token_id: int) -> None:
    raw = raw_log(token="0x" + "11" * 20, sender=sender, to=to, amount=0, tx_hash="0x" + "22" * 32,
                  block_hash="0x" + "33" * 32, block_number=1, log_index=0, tx_index=0)
    raw["topics"].append("0x" + token_id.to_bytes(32, "big").hex())
    raw["data"] = "0x"
    assert decode_transfer_log(raw) is None


def test_other_events_and_dirty_words_are_refused() -> None:
    base = raw_log(token="0x" + "11" * 20, sender="0x" + "aa" * 20, to="0x" + "bb" * 20, amount=5,
                   tx_hash="0x" + "22" * 32, block_hash="0x" + "33" * 32, block_number=1, log_index=0, tx_index=0)
    approval = {**base, "topics": ["0x" + keccak(text="Approval(address,address,uint256)").hex(),
                                   *base["topics"][1:]]}
    dirty_address = {**base, "topics": [TRANSFER_TOPIC, "0x01" + base["topics"][1][4:], base["topics"][2]]}
    underscored = {**base, "data": "0x" + "_" + "0" * 63}
    pending = {**base, "blockNumber": None, "blockHash": None}
    for raw in (approval, dirty_address, underscored, pending, {**base, "data": "0x05"}):
        assert decode_transfer_log(raw) is None


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=70),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4),
    max_leaves=12,
)
log_keys = st.sampled_from(["address", "topics", "data", "blockNumber", "blockHash", "transactionHash",
                            "transactionIndex", "logIndex", "removed"])


@given(st.dictionaries(log_keys, json_values))
def test_garbage_never_raises(raw: dict[str, Any]) -> None:
    result = decode_transfer_log(raw)
    assert result is None or isinstance(result, TransferLog)


@given(addresses, addresses, addresses, uint256, hashes, hashes, small, small, small, st.data())
def test_one_corrupted_field_is_refused_not_misread(token: str, sender: str, to: str, amount: int, tx_hash: str,
                                                    block_hash: str, block_number: int, log_index: int,
                                                    tx_index: int, data: st.DataObject) -> None:
    raw = raw_log(token=token, sender=sender, to=to, amount=amount, tx_hash=tx_hash, block_hash=block_hash,
                  block_number=block_number, log_index=log_index, tx_index=tx_index)
    key = data.draw(st.sampled_from(["topics", "data", "blockNumber", "logIndex", "transactionIndex"]))
    # lists could be valid topics and 0x-hex strings valid quantities: only clearly corrupt values here
    raw[key] = data.draw(json_values.filter(
        lambda v: not isinstance(v, list) and not (isinstance(v, str) and re.fullmatch(r"0x[0-9a-fA-F]+", v))))
    assert decode_transfer_log(raw) is None


@given(addresses, uint256)
def test_transfer_calldata_round_trips(to: str, amount: int) -> None:
    data = encode_transfer(to, amount)
    assert data[:4] == keccak(text="transfer(address,uint256)")[:4]
    assert decode_transfer_calldata(data) == (to, amount)
    assert decode_transfer_calldata("0x" + data.hex()) == (to, amount)
    assert decode_transfer_calldata(data + b"\x00") is None
