"""``ChainReads``: what the reconciler asks of one chain's node, many at a time.

Receipts with their ERC-20 Transfer logs (``ChainClient.get_receipt`` decodes the receipt without its
logs), transactions, and mined-transaction counts, each as JSON-RPC batches (``JsonRpc.batch``:
``BATCH_SIZE_MAX`` a request). The reconciler's own session, so its batches never queue behind the
watcher's or the withdrawal actor's requests.

A null answer (the node does not know the transaction, or has not mined it) is ``None`` in the result,
never an error: the caller decides what not knowing means. Every failure - transport, protocol, a
malformed answer, an error object for any one item of a batch - is ``ChainUnavailable``, raised here,
the one place that knows those error types. The RPC URL may carry a provider's key: it is never put
in a message or a repr.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp

from teller.chain.client import node_text, secret_parts
from teller.chain.decode import MalformedAnswer, decode_receipt, decode_tx, quantity
from teller.chain.erc20 import decode_transfer_log
from teller.chain.rpc import JsonRpc, RpcError, RpcProtocolError
from teller.chain.types import Receipt, TransferLog, TxSummary
from teller.config import ChainSettings
from teller.errors import ChainUnavailable

__all__ = ["ChainReads", "ReceiptWithLogs", "LOGS_PER_RECEIPT_MAX"]

CONNECT_TIMEOUT_S = 3.0
CONNECTIONS_MAX = 2
LOGS_PER_RECEIPT_MAX = 10_000   # a batch payout can hold many; past it the answer is refused as malformed


@dataclass(frozen=True, slots=True)
class ReceiptWithLogs:
    receipt: Receipt
    transfers: tuple[TransferLog, ...]   # the receipt's ERC-20 Transfer logs, in log order


class ChainReads:
    def __init__(self, *, name: str, rpc_url: str, timeout_s: float = 10.0) -> None:
        self.name = name
        self._rpc_url = rpc_url
        self._url_parts = secret_parts(rpc_url)
        self._timeout_s = timeout_s
        self._session: aiohttp.ClientSession | None = None
        self._rpc: JsonRpc | None = None

    @classmethod
    def from_settings(cls, settings: ChainSettings) -> ChainReads:
        return cls(name=settings.name, rpc_url=settings.rpc_url, timeout_s=settings.rpc_timeout_s)

    def __repr__(self) -> str:
        return f"ChainReads(name={self.name!r})"

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = self._rpc = None

    def _json_rpc(self) -> JsonRpc:
        if self._rpc is None:   # created lazily: a session belongs to the loop it is made in
            timeout = aiohttp.ClientTimeout(total=self._timeout_s, connect=min(CONNECT_TIMEOUT_S, self._timeout_s))
            self._session = aiohttp.ClientSession(timeout=timeout,
                                                  connector=aiohttp.TCPConnector(limit=CONNECTIONS_MAX))
            self._rpc = JsonRpc(self._rpc_url, self._session)
        return self._rpc

    @asynccontextmanager
    async def _translated(self, method: str) -> AsyncIterator[None]:
        try:
            yield
        except RpcError as exc:
            raise ChainUnavailable(f"{self.name}: {method}: {node_text(exc.message, self._url_parts)}",
                                   chain=self.name) from None
        except (aiohttp.ClientError, TimeoutError, OSError, RpcProtocolError, MalformedAnswer) as exc:
            # a client error's text holds the URL, a node's may echo the key: the type, or the cleaned text
            reason = type(exc).__name__ if isinstance(exc, aiohttp.ClientError) else \
                node_text(str(exc) or type(exc).__name__, self._url_parts)
            raise ChainUnavailable(f"{self.name}: {method}: {reason}", chain=self.name) from None

    async def _batch(self, method: str, params: Sequence[Sequence[Any]]) -> list[Any]:
        if not params:
            return []
        answers = await self._json_rpc().batch(method, params)
        for answer in answers:
            if isinstance(answer, RpcError):
                raise answer
        return answers

    async def receipts(self, tx_hashes: Sequence[str]) -> dict[str, ReceiptWithLogs | None]:
        """Each hash's receipt and Transfer logs; None while the node does not know it as mined."""
        hashes = sorted({h.lower() for h in tx_hashes})
        async with self._translated("eth_getTransactionReceipt"):
            answers = await self._batch("eth_getTransactionReceipt", [(h,) for h in hashes])
            return {h: None if raw is None else _with_logs(h, raw) for h, raw in zip(hashes, answers)}

    async def transactions(self, tx_hashes: Sequence[str]) -> dict[str, TxSummary | None]:
        hashes = sorted({h.lower() for h in tx_hashes})
        async with self._translated("eth_getTransactionByHash"):
            answers = await self._batch("eth_getTransactionByHash", [(h,) for h in hashes])
            return {h: None if raw is None else decode_tx(raw) for h, raw in zip(hashes, answers)}

    async def mined_counts(self, addresses: Sequence[str]) -> dict[str, int]:
        """Transactions mined from each address (``eth_getTransactionCount`` at ``latest``): a nonce below it
        is used for good, so a transaction of ours with that nonce and no receipt can never be mined."""
        wanted = sorted({a.lower() for a in addresses})
        async with self._translated("eth_getTransactionCount"):
            answers = await self._batch("eth_getTransactionCount", [(a, "latest") for a in wanted])
            return {a: quantity(raw, "nonce") for a, raw in zip(wanted, answers)}


def _with_logs(tx_hash: str, raw: Any) -> ReceiptWithLogs:
    receipt = decode_receipt(raw)
    if receipt.tx_hash != tx_hash:
        raise MalformedAnswer("eth_getTransactionReceipt answered another transaction's receipt")
    logs = raw.get("logs")
    if not isinstance(logs, list) or len(logs) > LOGS_PER_RECEIPT_MAX:
        raise MalformedAnswer("receipt.logs: not a list, or too long")
    transfers = []
    for item in logs:
        log = decode_transfer_log(item) if isinstance(item, dict) else None
        if log is not None and log.tx_hash == tx_hash:
            transfers.append(log)
    return ReceiptWithLogs(receipt=receipt, transfers=tuple(transfers))
