"""The simulated node's records as the JSON objects geth and anvil answer (hex quantities, lowercase hex).

Field sets follow anvil's answers; the fields Teller decodes (``teller.chain.decode``, ``teller.chain.erc20``)
are all present and exact, the rest are there so that web3 and other tools do not trip.
"""

from __future__ import annotations

from typing import Any

from tests.simulation.evm_state import COINBASE
from tests.simulation.evm_types import SimBlock, SimLog, SimReceipt, SimTx

__all__ = ["block_json", "log_json", "receipt_json", "tx_json"]

_ZERO_HASH = "0x" + "00" * 32
_EMPTY_BLOOM = "0x" + "00" * 256


def tx_json(tx: SimTx, block: SimBlock | None = None, index: int | None = None) -> dict[str, Any]:
    base_fee = block.base_fee_per_gas_wei if block is not None else None
    answer: dict[str, Any] = {
        "hash": tx.tx_hash,
        "type": hex(tx.tx_type),
        "nonce": hex(tx.nonce),
        "from": tx.sender,
        "to": tx.to,
        "value": hex(tx.value_wei),
        "gas": hex(tx.gas),
        "input": "0x" + tx.data.hex(),
        "gasPrice": hex(tx.price_at(base_fee) if base_fee is not None else tx.max_fee_per_gas_wei),
        "blockHash": None if block is None else block.block_hash,
        "blockNumber": None if block is None else hex(block.number),
        "transactionIndex": None if index is None else hex(index),
        "v": hex(tx.v), "r": hex(tx.r), "s": hex(tx.s),
    }
    if tx.chain_id is not None:
        answer["chainId"] = hex(tx.chain_id)
    if tx.tx_type == 2:
        answer.update(maxFeePerGas=hex(tx.max_fee_per_gas_wei),
                      maxPriorityFeePerGas=hex(tx.max_priority_fee_per_gas_wei), accessList=[], yParity=hex(tx.v))
    return answer


def block_json(block: SimBlock, *, full_transactions: bool) -> dict[str, Any]:
    receipts = block.receipts
    return {
        "number": hex(block.number),
        "hash": block.block_hash,
        "parentHash": block.parent_hash,
        "timestamp": hex(block.timestamp_s),
        "baseFeePerGas": hex(block.base_fee_per_gas_wei),
        "gasLimit": hex(block.gas_limit),
        "gasUsed": hex(block.gas_used),
        "miner": COINBASE,
        "difficulty": "0x0",
        "totalDifficulty": "0x0",
        "extraData": "0x",
        "nonce": "0x0000000000000000",
        "mixHash": _ZERO_HASH,
        "sha3Uncles": "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347",
        "logsBloom": _EMPTY_BLOOM,
        "stateRoot": _ZERO_HASH,
        "transactionsRoot": _ZERO_HASH,
        "receiptsRoot": _ZERO_HASH,
        "size": hex(512 + 128 * len(receipts)),
        "uncles": [],
        "transactions": [tx_json(r.tx, block, r.tx_index) if full_transactions else r.tx.tx_hash for r in receipts],
    }


def log_json(log: SimLog, block: SimBlock) -> dict[str, Any]:
    return {
        "address": log.address,
        "topics": list(log.topics),
        "data": log.data,
        "blockHash": block.block_hash,
        "blockNumber": hex(block.number),
        "blockTimestamp": hex(block.timestamp_s),
        "transactionHash": log.tx_hash,
        "transactionIndex": hex(log.tx_index),
        "logIndex": hex(log.log_index),
        "removed": False,
    }


def receipt_json(receipt: SimReceipt, block: SimBlock) -> dict[str, Any]:
    tx = receipt.tx
    return {
        "transactionHash": tx.tx_hash,
        "transactionIndex": hex(receipt.tx_index),
        "blockHash": block.block_hash,
        "blockNumber": hex(block.number),
        "from": tx.sender,
        "to": tx.to,
        "cumulativeGasUsed": hex(receipt.cumulative_gas_used),
        "gasUsed": hex(receipt.gas_used),
        "effectiveGasPrice": hex(receipt.effective_gas_price_wei),
        "contractAddress": None,
        "logs": [log_json(log, block) for log in receipt.logs],
        "logsBloom": _EMPTY_BLOOM,
        "status": "0x1" if receipt.succeeded else "0x0",
        "type": hex(tx.tx_type),
    }
