"""``SimRpcServer``: a ``SimNode`` served as JSON-RPC 2.0 over HTTP on 127.0.0.1, faults from a ``FaultPlan``.

``async with SimRpcServer(node, faults=plan) as server:`` then point a chain's ``rpc_url`` at ``server.url``.
Single calls and batches (up to ``BATCH_SIZE_MAX``) as geth answers them. The methods are the subset
Teller's ``ChainClient`` and ``ChainReads`` call, plus the dev levers the test helpers use
(``anvil_setBalance``, ``anvil_mine``/``evm_mine``, ``anvil_setNextBlockBaseFeePerGas``,
``anvil_dropAllTransactions``, ``eth_sendTransaction`` from any address as if impersonated):
see ``_METHODS``. Errors carry geth's codes and words. ``eth_getLogs`` refuses ranges wider than
``LOG_RANGE_BLOCKS_MAX`` and answers of more than ``LOGS_PER_QUERY_MAX`` logs, as providers do.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from typing import Any, Self

from aiohttp import web

from teller.chain.erc20 import decode_transfer_calldata
from tests.simulation.evm_json import block_json, log_json, receipt_json, tx_json
from tests.simulation.evm_node import SimNode
from tests.simulation.evm_state import TOKEN_TRANSFER_GAS
from tests.simulation.evm_types import SimBlock, TxRejected, intrinsic_gas
from tests.simulation.faults import HTTP_FAULTS, Fault, FaultPlan

__all__ = ["BATCH_SIZE_MAX", "LOGS_PER_QUERY_MAX", "LOG_RANGE_BLOCKS_MAX", "SimRpcServer"]

BATCH_SIZE_MAX = 1_000  # geth's BatchRequestLimit
LOG_RANGE_BLOCKS_MAX = 10_000
LOGS_PER_QUERY_MAX = 10_000
REQUEST_BYTES_MAX = 16 * 1024 * 1024
FEE_HISTORY_BLOCKS_MAX = 1_024
PRIORITY_FEE_WEI = 10**9
_BALANCE_OF = bytes.fromhex("70a08231")


class _RpcFailure(Exception):
    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class SimRpcServer:
    def __init__(self, node: SimNode, *, faults: FaultPlan | None = None) -> None:
        self.node = node
        self.faults = faults or FaultPlan(0)
        self.calls: dict[str, int] = {}
        self.url = ""
        self._runner: web.AppRunner | None = None
        self._methods: dict[str, Callable[[list[Any]], Any]] = {
            name: getattr(self, "_" + name) for name in _METHODS}

    async def __aenter__(self) -> Self:
        app = web.Application(client_max_size=REQUEST_BYTES_MAX)
        app.router.add_post("/", self._handle)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/"
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    # -- HTTP ------------------------------------------------------------------------------------------
    async def _handle(self, request: web.Request) -> web.Response:
        try:
            body = json.loads(await request.read())
        except ValueError:
            return web.json_response(_error(None, -32700, "parse error"))
        first = body[0] if isinstance(body, list) and body else body
        method = str(first.get("method", "")) if isinstance(first, dict) else ""
        fault = self.faults.decide(method, HTTP_FAULTS)
        if fault is Fault.HTTP_429:
            return web.Response(status=429, text="Too Many Requests")
        if fault is Fault.HTTP_5XX:
            return web.Response(status=502, text="Bad Gateway")
        if fault is Fault.TIMEOUT:
            await asyncio.sleep(self.faults.hang_s)
        if isinstance(body, list):
            if not body:
                return web.json_response(_error(None, -32600, "empty batch"))
            if len(body) > BATCH_SIZE_MAX:
                return web.json_response(_error(None, -32600, f"batch too large (max {BATCH_SIZE_MAX})"))
            return web.json_response([self._answer(item) for item in body])
        return web.json_response(self._answer(body))

    def _answer(self, call: Any) -> dict[str, Any]:
        if not isinstance(call, dict) or not isinstance(call.get("method"), str):
            return _error(None, -32600, "invalid request")
        request_id, method = call.get("id"), call["method"]
        params = call.get("params") or []
        self.calls[method] = self.calls.get(method, 0) + 1
        handler = self._methods.get(method)
        if handler is None:
            return _error(request_id, -32601, f"the method {method} does not exist/is not available")
        try:
            if not isinstance(params, list):
                raise _RpcFailure(-32602, "invalid params")
            result = handler(params)
        except _RpcFailure as exc:
            return _error(request_id, exc.code, exc.message)
        except TxRejected as exc:
            return _error(request_id, exc.code, exc.message)
        except (ValueError, TypeError, KeyError, IndexError, AttributeError) as exc:
            return _error(request_id, -32602, f"invalid params: {type(exc).__name__}")
        return {"jsonrpc": "2.0", "id": request_id, "result": result}

    # -- reads -----------------------------------------------------------------------------------------
    def _block_at(self, tag: Any) -> SimBlock | None:
        if tag in ("latest", "pending", "safe", "finalized", None):
            return self.node.block(self.node.head)
        if tag == "earliest":
            return self.node.block(0)
        return self.node.block(int(tag, 16))

    def _eth_chainId(self, params: list[Any]) -> str:
        return hex(self.node.chain_id)

    def _net_version(self, params: list[Any]) -> str:
        return str(self.node.chain_id)

    def _eth_blockNumber(self, params: list[Any]) -> str:
        lag = self.faults.stale_lag_blocks if self.faults.decide("eth_blockNumber", (Fault.STALE_HEAD,)) else 0
        return hex(max(self.node.head - lag, 0))

    def _eth_getBlockByNumber(self, params: list[Any]) -> Any:
        block = self._block_at(params[0])
        return None if block is None else block_json(block, full_transactions=bool(params[1]))

    def _eth_getBlockByHash(self, params: list[Any]) -> Any:
        block = self.node.block_by_hash(params[0])
        return None if block is None else block_json(block, full_transactions=bool(params[1]))

    def _eth_getTransactionByHash(self, params: list[Any]) -> Any:
        found = self.node.transaction(params[0])
        return None if found is None else tx_json(*found)

    def _eth_getTransactionReceipt(self, params: list[Any]) -> Any:
        found = self.node.receipt(params[0])
        if found is None or self.faults.decide("eth_getTransactionReceipt", (Fault.NULL_RECEIPT,)):
            return None
        return receipt_json(*found)

    def _eth_getTransactionCount(self, params: list[Any]) -> str:
        address, tag = params[0], params[1] if len(params) > 1 else "latest"
        if tag == "pending":
            return hex(self.node.pending_nonce(address))
        if tag not in ("latest", "safe", "finalized") and int(tag, 16) != self.node.head:
            raise _RpcFailure(-32000, "historical state is not kept by the simulated node")
        return hex(self.node.nonce(address))

    def _eth_getBalance(self, params: list[Any]) -> str:
        return hex(self.node.balance(params[0]))

    def _eth_call(self, params: list[Any]) -> str:
        call = params[0]
        to, data = (call.get("to") or "").lower(), bytes.fromhex((call.get("data") or call.get("input") or "0x")[2:])
        if to not in self.node.tokens:
            return "0x"
        if data[:4] == _BALANCE_OF and len(data) == 36:
            return "0x" + self.node.token_balance(to, "0x" + data[16:36].hex()).to_bytes(32, "big").hex()
        raise _RpcFailure(3, "execution reverted")

    def _eth_getLogs(self, params: list[Any]) -> list[dict[str, Any]]:
        log_filter = params[0]
        if "blockHash" in log_filter:
            block = self.node.block_by_hash(log_filter["blockHash"])
            if block is None:
                raise _RpcFailure(-32000, "unknown block")
            blocks = [block]
        else:
            first = self._block_at(log_filter.get("fromBlock", "latest"))
            last_number = min(int(log_filter["toBlock"], 16), self.node.head) \
                if log_filter.get("toBlock", "latest") not in ("latest", "pending", "safe", "finalized") \
                else self.node.head
            if first is None:
                return []
            if last_number - first.number + 1 > LOG_RANGE_BLOCKS_MAX:
                raise _RpcFailure(-32005, f"query exceeds max block range {LOG_RANGE_BLOCKS_MAX}")
            blocks = [b for n in range(first.number, last_number + 1) if (b := self.node.block(n)) is not None]
        if self.faults.decide("eth_getLogs", (Fault.EMPTY_LOGS,)):
            return []
        addresses = _address_set(log_filter.get("address"))
        topics = log_filter.get("topics") or []
        found = []
        for block in blocks:
            for receipt in block.receipts:
                for log in receipt.logs:
                    if (addresses is None or log.address in addresses) and _topics_match(log.topics, topics):
                        found.append(log_json(log, block))
                        if len(found) > LOGS_PER_QUERY_MAX:
                            raise _RpcFailure(-32005, f"query returned more than {LOGS_PER_QUERY_MAX} results")
        return found

    # -- fees ------------------------------------------------------------------------------------------
    def _eth_gasPrice(self, params: list[Any]) -> str:
        return hex(self.node.next_base_fee_wei + PRIORITY_FEE_WEI)

    def _eth_maxPriorityFeePerGas(self, params: list[Any]) -> str:
        return hex(PRIORITY_FEE_WEI)

    def _eth_feeHistory(self, params: list[Any]) -> dict[str, Any]:
        count = params[0] if isinstance(params[0], int) else int(params[0], 16)
        newest = self._block_at(params[1])
        percentiles = params[2] if len(params) > 2 else []
        if newest is None or not 1 <= count <= FEE_HISTORY_BLOCKS_MAX:
            raise _RpcFailure(-32602, "invalid block count or block")
        blocks = [b for n in range(max(newest.number - count + 1, 0), newest.number + 1)
                  if (b := self.node.block(n)) is not None]
        next_fee = self.node.next_base_fee_wei if newest.number == self.node.head \
            else self.node.block(newest.number + 1).base_fee_per_gas_wei  # type: ignore[union-attr]
        answer: dict[str, Any] = {
            "oldestBlock": hex(blocks[0].number),
            "baseFeePerGas": [hex(b.base_fee_per_gas_wei) for b in blocks] + [hex(next_fee)],
            "gasUsedRatio": [b.gas_used / b.gas_limit for b in blocks],
        }
        if percentiles:
            answer["reward"] = [[hex(t) for t in _rewards(b, percentiles)] for b in blocks]
        return answer

    def _eth_estimateGas(self, params: list[Any]) -> str:
        call = params[0]
        to = (call.get("to") or "").lower()
        data = bytes.fromhex((call.get("data") or call.get("input") or "0x")[2:])
        gas = intrinsic_gas(data)
        if to in self.node.tokens:
            transfer = decode_transfer_calldata(data)
            sender = (call.get("from") or "0x" + "00" * 20).lower()
            if transfer is None or self.node.token_balance(to, sender) < transfer[1]:
                raise _RpcFailure(3, "execution reverted")
            gas += TOKEN_TRANSFER_GAS
        return hex(gas)

    # -- sending and dev levers ---------------------------------------------------------------------------
    def _eth_sendRawTransaction(self, params: list[Any]) -> str:
        raw = params[0]
        if not isinstance(raw, str) or not raw.startswith("0x"):
            raise _RpcFailure(-32602, "invalid params")
        tx_hash = self.node.submit_raw(bytes.fromhex(raw[2:]))
        if self.faults.decide("eth_sendRawTransaction", (Fault.DROP_TX,)):
            self.node.drop_pending(tx_hash)
        return tx_hash

    def _eth_sendTransaction(self, params: list[Any]) -> str:
        call = params[0]
        data = bytes.fromhex((call.get("data") or call.get("input") or "0x")[2:])
        gas = int(call["gas"], 16) if "gas" in call else int(self._eth_estimateGas([call]), 16)
        fee = {"max_fee_per_gas_wei": int(call["maxFeePerGas"], 16)} if "maxFeePerGas" in call else {}
        return self.node.submit(sender=call["from"], to=call.get("to"), value_wei=int(call.get("value", "0x0"), 16),
                                data=data, gas=gas, **fee)

    def _anvil_setBalance(self, params: list[Any]) -> None:
        address, wanted = params[0], int(params[1], 16)
        self.node.fund(address, wanted - self.node.balance(address))

    def _anvil_mine(self, params: list[Any]) -> None:
        blocks = params[0] if params and isinstance(params[0], int) else int(params[0], 16) if params else 1
        self.node.mine(blocks)

    def _evm_mine(self, params: list[Any]) -> str:
        self.node.mine(1)
        return "0x0"

    def _anvil_setNextBlockBaseFeePerGas(self, params: list[Any]) -> None:
        self.node.set_next_base_fee(int(params[0], 16))

    def _anvil_dropAllTransactions(self, params: list[Any]) -> None:
        self.node.drop_all_pending()

    def _anvil_impersonateAccount(self, params: list[Any]) -> None:
        return None

    def _anvil_getAutomine(self, params: list[Any]) -> bool:
        return False


_METHODS = (
    "eth_chainId", "net_version", "eth_blockNumber", "eth_getBlockByNumber", "eth_getBlockByHash",
    "eth_getTransactionByHash", "eth_getTransactionReceipt", "eth_getTransactionCount", "eth_getBalance",
    "eth_call", "eth_getLogs", "eth_gasPrice", "eth_maxPriorityFeePerGas", "eth_feeHistory", "eth_estimateGas",
    "eth_sendRawTransaction", "eth_sendTransaction", "anvil_setBalance", "anvil_mine", "evm_mine",
    "anvil_setNextBlockBaseFeePerGas", "anvil_dropAllTransactions", "anvil_impersonateAccount",
    "anvil_getAutomine",
)


def _error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}


def _address_set(value: Any) -> frozenset[str] | None:
    if value is None:
        return None
    return frozenset(a.lower() for a in ([value] if isinstance(value, str) else value))


def _topics_match(topics: tuple[str, ...], wanted: list[Any]) -> bool:
    if len(wanted) > len(topics):
        return False
    for topic, choice in zip(topics, wanted):
        if choice is None:
            continue
        options = [choice] if isinstance(choice, str) else choice
        if topic not in {o.lower() for o in options}:
            return False
    return True


def _rewards(block: SimBlock, percentiles: list[Any]) -> list[int]:
    """geth's rule: the tip at which ``p`` % of the block's gas was paid, by tip ascending (0 when empty)."""
    if not block.receipts:
        return [0 for _ in percentiles]
    paid = sorted((r.tx.tip_at(block.base_fee_per_gas_wei), r.gas_used) for r in block.receipts)
    rewards = []
    for p in percentiles:
        threshold, total, chosen = block.gas_used * float(p) / 100, 0, paid[-1][0]
        for tip, gas in paid:
            total += gas
            if total >= threshold:
                chosen = tip
                break
        rewards.append(chosen)
    return rewards
