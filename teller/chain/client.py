"""``ChainClient``: everything Teller asks of one chain's node, over one cached aiohttp session.

Hot and bulk reads (blocks, Transfer logs, receipts, transactions) go as raw JSON-RPC (``JsonRpc``) and are
decoded here by hand; the library-shaped calls (chain id, fee history) go through ``AsyncWeb3`` sharing the
same session (FIELD-NOTES: without a cached session web3 opens a TCP connection per request). web3's own
retries are off: the watcher and withdrawal actors own retry policy and backoff.

Errors: every transport, protocol and library failure becomes ``teller.errors.ChainUnavailable``
(``UnknownBlock`` for a block hash the node does not know) in ``_translated``, the one place that knows
the foreign error types. Sending a raw transaction answers a ``SendResult`` for the node's well-known
refusals instead of failing. Addresses in and out are lowercase hex (see ``teller.chain.types``).

The RPC URL is a secret: providers put the API key in its path or query. An error names the node by
``scheme://host[:port]`` only and is built from the foreign error's type and HTTP status, never its text
(aiohttp's and web3's carry the full URL); what a node says in an error object is kept, bounded, with
URLs cut and every part of our URL's path, query and userinfo blotted out (some providers echo the key).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from typing import Any
from urllib.parse import unquote, urlsplit

import aiohttp
from eth_utils import keccak
from web3 import AsyncHTTPProvider, AsyncWeb3
from web3.exceptions import Web3Exception, Web3RPCError

from teller.chain.address import normalize_address
from teller.chain.decode import MalformedAnswer, decode_block, decode_receipt, decode_tx, quantity
from teller.chain.erc20 import TRANSFER_TOPIC, address_topic, decode_transfer_log, encode_balance_of
from teller.chain.rpc import JsonRpc, RpcError, RpcProtocolError
from teller.chain.types import Block, FeeSuggestion, Receipt, SendOutcome, SendResult, TransferLog, TxSummary
from teller.config import ChainSettings
from teller.errors import ChainUnavailable, UnknownBlock
from teller.log import endpoint_of, scrub_urls

__all__ = ["ChainClient"]

CONNECT_TIMEOUT_S = 3.0
CONNECTIONS_MAX = 8  # per chain; the watcher and the withdrawal actor share them
TOPIC_FILTER_ADDRESSES_MAX = 500  # recipients put in the node-side filter; past it, filter here
FEE_HISTORY_BLOCKS = 10
PRIORITY_FEE_MIN_WEI = 10**8  # 0.1 gwei: a floor for chains (and anvil) whose recent tips are all zero
BASE_FEE_HEADROOM = 2  # max fee = 2 x next base fee + tip: survives ~6 full blocks of +12.5 %
_UNKNOWN_BLOCK = ("unknown block", "block not found", "header not found")
_ALREADY_KNOWN = ("already known", "already imported", "known transaction", "already exists")
_NONCE_TOO_LOW = ("nonce too low", "nonce has already been used", "oldnonce")
_TRANSIENT_CODES = (-32603, -32005)  # internal error, limit exceeded: worth a retry, not a verdict
NODE_TEXT_LEN_MAX = 200  # of what a node said, kept in an error message or a send result
_NODE_TEXT_READ_MAX = 4096  # what is looked at to make it (a node's message can be any size)
_URL_PART_LEN_MIN = 4  # shorter parts of a URL ("v3", "eth") are no key, and too common to blot out


class ChainClient:
    def __init__(self, *, name: str, rpc_url: str, timeout_s: float = 10.0) -> None:
        self.name = name
        self.rpc_url = rpc_url
        self.endpoint = endpoint_of(rpc_url)  # all that may be said of the URL
        self.timeout_s = timeout_s
        self._url_parts = secret_parts(rpc_url)
        self._session: aiohttp.ClientSession | None = None
        self._rpc: JsonRpc | None = None
        self._web3: AsyncWeb3 | None = None

    @classmethod
    def from_settings(cls, settings: ChainSettings) -> ChainClient:
        return cls(name=settings.name, rpc_url=settings.rpc_url, timeout_s=settings.rpc_timeout_s)

    def __repr__(self) -> str:
        return f"ChainClient(name={self.name!r}, endpoint={self.endpoint!r})"

    async def __aenter__(self) -> ChainClient:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
        self._session = self._rpc = self._web3 = None

    # -- plumbing ------------------------------------------------------------------------------------
    def _timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=self.timeout_s, connect=min(CONNECT_TIMEOUT_S, self.timeout_s))

    def _json_rpc(self) -> JsonRpc:
        if self._rpc is None:  # created lazily: a session belongs to the loop it is made in
            connector = aiohttp.TCPConnector(limit=CONNECTIONS_MAX)
            self._session = aiohttp.ClientSession(timeout=self._timeout(), connector=connector)
            self._rpc = JsonRpc(self.rpc_url, self._session)
        return self._rpc

    async def web3(self) -> AsyncWeb3:
        """The library client on the same session, for calls that want web3's shapes (tools, benches)."""
        if self._web3 is None:
            self._json_rpc()
            assert self._session is not None
            provider = AsyncHTTPProvider(
                self.rpc_url, request_kwargs={"timeout": self._timeout()}, exception_retry_configuration=None,
            )
            await provider.cache_async_session(self._session)
            self._web3 = AsyncWeb3(provider)
        return self._web3

    @asynccontextmanager
    async def _translated(self, method: str) -> AsyncIterator[None]:
        # ``from None``: the foreign error's text is what the translation leaves out (the URL in aiohttp's
        # and web3's, the node's own words in the rest, a reason phrase too), and a logged traceback prints it.
        try:
            yield
        except RpcError as exc:
            unknown = any(marker in exc.message.lower() for marker in _UNKNOWN_BLOCK)
            error = UnknownBlock if unknown else ChainUnavailable
            raise error(self._message(method, self.node_text(exc.message)), chain=self.name) from None
        except (aiohttp.ClientError, TimeoutError, OSError, RpcProtocolError, MalformedAnswer,
                Web3Exception) as exc:
            raise ChainUnavailable(self._message(method, self._reason(exc)), chain=self.name) from None

    def _message(self, method: str, reason: str) -> str:
        return f"{self.name}: {method}: {reason} ({self.endpoint})"

    def _reason(self, exc: BaseException) -> str:
        """A foreign error as its type and status: its text may hold the URL (aiohttp's and web3's do)."""
        if isinstance(exc, aiohttp.ClientResponseError):  # web3 raises these for a bad HTTP status
            return f"HTTP {exc.status}"
        if isinstance(exc, (RpcProtocolError, MalformedAnswer)):  # ours, from the method and the status
            return self.node_text(str(exc) or type(exc).__name__)
        if isinstance(exc, Web3RPCError) and isinstance(exc.rpc_response, dict):
            error = exc.rpc_response.get("error")
            if isinstance(error, dict):
                return self.node_text(f"[{error.get('code')}] {error.get('message', '')}")
        return type(exc).__name__

    def node_text(self, text: str) -> str:
        return node_text(text, self._url_parts)

    async def _call(self, method: str, *params: Any) -> Any:
        async with self._translated(method):
            return await self._json_rpc().call(method, params)

    # -- chain and head ------------------------------------------------------------------------------
    async def chain_id(self) -> int:
        async with self._translated("eth_chainId"):
            w3 = await self.web3()
            return int(await w3.eth.chain_id)

    async def block_number(self) -> int:
        async with self._translated("eth_blockNumber"):
            return quantity(await self._json_rpc().call("eth_blockNumber"), "blockNumber")

    # -- blocks --------------------------------------------------------------------------------------
    async def get_block(self, number: int, *, full_transactions: bool = True) -> Block | None:
        """The block at ``number`` (None past the node's head)."""
        async with self._translated("eth_getBlockByNumber"):
            raw = await self._json_rpc().call("eth_getBlockByNumber", (hex(number), full_transactions))
            return None if raw is None else decode_block(raw, full_transactions=full_transactions)

    async def get_block_by_hash(self, block_hash: str, *, full_transactions: bool = True) -> Block | None:
        async with self._translated("eth_getBlockByHash"):
            raw = await self._json_rpc().call("eth_getBlockByHash", (block_hash, full_transactions))
            return None if raw is None else decode_block(raw, full_transactions=full_transactions)

    async def get_blocks(self, numbers: Sequence[int], *, full_transactions: bool = True) -> list[Block | None]:
        """Many blocks in JSON-RPC batches, in the order asked; None for each past the head."""
        async with self._translated("eth_getBlockByNumber"):
            answers = await self._json_rpc().batch(
                "eth_getBlockByNumber", [(hex(n), full_transactions) for n in numbers])
            blocks: list[Block | None] = []
            for answer in answers:
                if isinstance(answer, RpcError):
                    raise answer
                blocks.append(None if answer is None else decode_block(answer, full_transactions=full_transactions))
            return blocks

    # -- ERC-20 Transfer logs ------------------------------------------------------------------------
    async def get_transfer_logs(
        self, *, tokens: Iterable[str], from_block: int, to_block: int, to_addresses: Iterable[str] | None = None,
    ) -> list[TransferLog]:
        """Transfer logs of ``tokens`` in blocks ``from_block..to_block`` (inclusive), optionally only to
        ``to_addresses``, ordered by (block, log index). An empty answer cannot tell a quiet range from a
        lagging node: check the head first, or the blocks' hashes with ``get_transfer_logs_by_block_hash``."""
        token_set, to_set = _normalize(tokens), _normalize(to_addresses) if to_addresses is not None else None
        if not token_set or from_block > to_block or to_set == frozenset():
            return []  # an empty address list would mean "every contract" to the node
        log_filter = {"fromBlock": hex(from_block), "toBlock": hex(to_block), **_log_filter(token_set, to_set)}
        async with self._translated("eth_getLogs"):
            raw = await self._json_rpc().call("eth_getLogs", (log_filter,))
            logs = _decode_logs(raw, token_set, to_set)
        if any(not from_block <= log.block_number <= to_block for log in logs):
            raise ChainUnavailable(f"{self.name}: eth_getLogs answered logs outside the range", chain=self.name)
        return logs

    async def get_transfer_logs_by_block_hash(
        self, *, tokens: Iterable[str], block_hash: str, to_addresses: Iterable[str] | None = None,
    ) -> list[TransferLog]:
        """Transfer logs of one block named by hash; ``UnknownBlock`` when the node does not have it, so an
        empty list really means "no transfers in that block"."""
        by_hash = await self.get_transfer_logs_by_block_hashes(
            tokens=tokens, block_hashes=[block_hash], to_addresses=to_addresses)
        return by_hash[block_hash.lower()]

    async def get_transfer_logs_by_block_hashes(
        self, *, tokens: Iterable[str], block_hashes: Sequence[str], to_addresses: Iterable[str] | None = None,
    ) -> dict[str, list[TransferLog]]:
        """Per block hash (lowercase), its Transfer logs; one batched request; ``UnknownBlock`` if any is
        unknown to the node."""
        token_set, to_set = _normalize(tokens), _normalize(to_addresses) if to_addresses is not None else None
        hashes = [h.lower() for h in block_hashes]
        if not token_set or to_set == frozenset():
            return {h: [] for h in hashes}
        base = _log_filter(token_set, to_set)
        async with self._translated("eth_getLogs"):
            answers = await self._json_rpc().batch("eth_getLogs", [({**base, "blockHash": h},) for h in hashes])
            result: dict[str, list[TransferLog]] = {}
            for block_hash, answer in zip(hashes, answers):
                if isinstance(answer, RpcError):
                    raise answer
                logs = _decode_logs(answer, token_set, to_set)
                if any(log.block_hash != block_hash for log in logs):
                    raise RpcProtocolError("eth_getLogs by hash answered logs of another block")
                result[block_hash] = logs
            return result

    # -- transactions and accounts -------------------------------------------------------------------
    async def get_transaction(self, tx_hash: str) -> TxSummary | None:
        async with self._translated("eth_getTransactionByHash"):
            raw = await self._json_rpc().call("eth_getTransactionByHash", (tx_hash,))
            return None if raw is None else decode_tx(raw)

    async def get_receipt(self, tx_hash: str) -> Receipt | None:
        """The receipt once mined (None while pending or unknown)."""
        async with self._translated("eth_getTransactionReceipt"):
            raw = await self._json_rpc().call("eth_getTransactionReceipt", (tx_hash,))
            return None if raw is None else decode_receipt(raw)

    async def get_nonce(self, address: str, *, pending: bool = False) -> int:
        """Transactions sent from ``address``: mined (``latest``) or including the node's pool (``pending``)."""
        tag = "pending" if pending else "latest"
        async with self._translated("eth_getTransactionCount"):
            return quantity(await self._json_rpc().call("eth_getTransactionCount", (address, tag)), "nonce")

    async def get_balance(self, address: str) -> int:
        """The native balance in wei at the latest block."""
        async with self._translated("eth_getBalance"):
            return quantity(await self._json_rpc().call("eth_getBalance", (address, "latest")), "balance")

    async def get_token_balance(self, *, token: str, owner: str) -> int:
        """``token.balanceOf(owner)`` in the token's minor unit, at the latest block."""
        call = {"to": token, "data": "0x" + encode_balance_of(owner).hex()}
        async with self._translated("eth_call"):
            return quantity(await self._json_rpc().call("eth_call", (call, "latest")), "balanceOf")

    # -- fees and sending ----------------------------------------------------------------------------
    async def suggest_fees(
        self,
        *,
        max_fee_per_gas_cap_wei: int,
        priority_fee_percentile: int = 50,
        priority_fee_min_wei: int = PRIORITY_FEE_MIN_WEI,
    ) -> FeeSuggestion:
        """EIP-1559 fees from ``eth_feeHistory``: the tip is the median of recent blocks' tips at
        ``priority_fee_percentile`` (at least ``priority_fee_min_wei``); the max fee is twice the next base
        fee plus the tip, never above the cap."""
        async with self._translated("eth_feeHistory"):
            w3 = await self.web3()
            history = await w3.eth.fee_history(FEE_HISTORY_BLOCKS, "latest", [priority_fee_percentile])
            base_fee_next = int(history["baseFeePerGas"][-1])
            tips = sorted(int(r[0]) for r in history.get("reward") or [] if r)
        tip = max(tips[len(tips) // 2] if tips else 0, priority_fee_min_wei)
        wanted = BASE_FEE_HEADROOM * base_fee_next + tip
        max_fee = min(wanted, max_fee_per_gas_cap_wei)
        return FeeSuggestion(
            max_fee_per_gas_wei=max_fee,
            max_priority_fee_per_gas_wei=min(tip, max_fee),
            base_fee_per_gas_wei=base_fee_next,
            capped=max_fee < wanted,
        )

    async def send_raw_transaction(self, raw: bytes) -> SendResult:
        """Broadcast signed bytes. Idempotent from the caller's view: resending answers ALREADY_KNOWN or
        NONCE_TOO_LOW (then look the hash up) rather than failing. Transport failures and the node's
        transient errors raise ChainUnavailable: the transaction may or may not have reached the node."""
        (result,) = await self.send_raw_transactions([raw])
        return result

    async def send_raw_transactions(self, raws: Sequence[bytes]) -> list[SendResult]:
        """Broadcast many signed transactions in one JSON-RPC batch (per ``BATCH_SIZE_MAX``), one result
        each, as ``send_raw_transaction`` would answer. A transient error on any of them raises
        ChainUnavailable for all: each may or may not have reached the node, and resending is safe."""
        if not raws:
            return []
        hashes = ["0x" + keccak(raw).hex() for raw in raws]
        async with self._translated("eth_sendRawTransaction"):
            if len(raws) == 1:
                try:
                    answers: list[Any] = [await self._json_rpc().call("eth_sendRawTransaction", ("0x" + raws[0].hex(),))]
                except RpcError as exc:
                    answers = [exc]
            else:
                answers = await self._json_rpc().batch("eth_sendRawTransaction", [("0x" + raw.hex(),) for raw in raws])
            results = []
            for tx_hash, answer in zip(hashes, answers):
                if isinstance(answer, RpcError):
                    outcome = _classify_send_error(answer)
                    if outcome is None:
                        raise answer
                    reason = self.node_text(answer.message)
                    results.append(SendResult(outcome=outcome, tx_hash=tx_hash, reason=reason))
                elif not isinstance(answer, str) or answer.lower() != tx_hash:
                    raise ChainUnavailable(f"{self.name}: eth_sendRawTransaction answered another hash", chain=self.name)
                else:
                    results.append(SendResult(outcome=SendOutcome.ACCEPTED, tx_hash=tx_hash))
        return results


def _classify_send_error(exc: RpcError) -> SendOutcome | None:
    message = exc.message.lower()
    if any(marker in message for marker in _ALREADY_KNOWN):
        return SendOutcome.ALREADY_KNOWN
    if any(marker in message for marker in _NONCE_TOO_LOW):
        return SendOutcome.NONCE_TOO_LOW
    if "replacement" in message and "underpriced" in message:
        return SendOutcome.REPLACEMENT_UNDERPRICED
    if exc.code in _TRANSIENT_CODES or "timeout" in message or "rate limit" in message:
        return None
    return SendOutcome.REJECTED


def node_text(text: str, url_parts: tuple[str, ...]) -> str:
    """What a node said, fit for a message: bounded, URLs cut, no part of our URL's path, query or
    userinfo (``secret_parts``; cut after cleaning, so no part of a secret is left at the cut)."""
    text = scrub_urls(text[:_NODE_TEXT_READ_MAX])
    for part in url_parts:
        text = text.replace(part, "<redacted>")
    return text[:NODE_TEXT_LEN_MAX]


def secret_parts(url: str) -> tuple[str, ...]:
    """The parts of ``url`` that may be a key, longest first, as written and percent-decoded: path segments,
    query values, fragment, user and password."""
    split = urlsplit(url)
    query_values = [item.partition("=")[2] or item for item in split.query.replace(";", "&").split("&")]
    userinfo = [split.username or "", split.password or ""]
    candidates = [*split.path.split("/"), *query_values, split.fragment, *userinfo]
    parts = {form for part in candidates for form in (part, unquote(part)) if len(form) >= _URL_PART_LEN_MIN}
    return tuple(sorted(parts, key=len, reverse=True))


def _normalize(addresses: Iterable[str]) -> frozenset[str]:
    return frozenset(normalize_address(a) for a in addresses)


def _log_filter(tokens: frozenset[str], to_set: frozenset[str] | None) -> dict[str, Any]:
    topics: list[Any] = [TRANSFER_TOPIC]
    if to_set is not None and len(to_set) <= TOPIC_FILTER_ADDRESSES_MAX:
        topics += [None, sorted(address_topic(a) for a in to_set)]
    return {"address": sorted(tokens), "topics": topics}


def _decode_logs(raw: Any, tokens: frozenset[str], to_set: frozenset[str] | None) -> list[TransferLog]:
    if not isinstance(raw, list):
        raise MalformedAnswer("eth_getLogs: not a list")
    logs = []
    for item in raw:
        log = decode_transfer_log(item) if isinstance(item, dict) else None
        # the node filtered already; this guards against one that ignores part of the filter
        if log is not None and log.token in tokens and (to_set is None or log.to_address in to_set):
            logs.append(log)
    logs.sort(key=lambda log: (log.block_number, log.log_index))
    return logs
