"""An RPC URL's key never leaves ChainClient: not in its errors, not in any log line, whatever the node does.

Providers put the API key in the URL (``https://mainnet.example/v3/<key>``); aiohttp's and web3's errors
carry the full URL. A local aiohttp server on loopback plays such a provider: it answers 429, 500, an error
object that echoes the key, or closes the connection.
"""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web

from teller.chain.client import ChainClient
from teller.errors import ChainUnavailable
from teller.log import get_logger
from tests.fixtures.failing_server import hang_up, serving

HANG_GUARD_S = 30  # not a timing assertion: only keeps a broken test from hanging the run
KEY_IN_PATH = "SECRETKEY123"
KEY_IN_QUERY = "SECRET2"
SECRETS = (KEY_IN_PATH, KEY_IN_QUERY)


class Node:
    """The provider: ``mode`` says how it fails; ``url`` is its URL, the key in the path and the query."""

    def __init__(self) -> None:
        self.mode = "429"
        self.url = ""

    async def answer(self, request: web.Request) -> web.StreamResponse:
        await request.read()
        return await _fail(self.mode, request)


async def _fail(mode: str, request: web.Request) -> web.StreamResponse:
    if mode == "429":
        return web.Response(status=429, text="Too Many Requests")
    if mode == "500":
        return web.Response(status=500, text=f"<html>internal error at {request.url}</html>")
    if mode == "echo":  # a provider that names the key in its error object, as some do
        return web.json_response({"jsonrpc": "2.0", "id": 1, "error": {
            "code": -32005, "message": f"rate limit exceeded for project {KEY_IN_PATH} ({request.url})"}}, status=429)
    assert mode == "close"
    return hang_up(request)  # mid-request: the client sees the server disconnect


@pytest.fixture
async def node() -> AsyncIterator[Node]:
    provider = Node()
    async with serving(provider.answer) as port:
        provider.url = f"http://127.0.0.1:{port}/v3/{KEY_IN_PATH}?apikey={KEY_IN_QUERY}"
        yield provider


def _calls(client: ChainClient) -> list[Any]:
    """One call per way the client reaches the node: raw JSON-RPC, a batch, and web3."""
    return [client.block_number(), client.get_blocks([0, 1]), client.chain_id(),
            client.suggest_fees(max_fee_per_gas_cap_wei=10**12), client.send_raw_transaction(b"\x02")]


@pytest.mark.parametrize("mode", ["429", "500", "echo", "close"])
async def test_no_part_of_the_rpc_url_reaches_an_error_or_a_log_line(
    node: Node, log_stream: io.StringIO, mode: str,
) -> None:
    node.mode = mode
    log = get_logger(actor="/teller/chains/ethereum")
    async with ChainClient(name="ethereum", rpc_url=node.url, timeout_s=2.0) as client:
        assert not any(secret in repr(client) for secret in SECRETS)
        for call in _calls(client):
            with pytest.raises(ChainUnavailable) as info:
                await asyncio.wait_for(call, HANG_GUARD_S)
            error = info.value
            # what the callers do with it: the watcher logs it, a crash logs the traceback
            log.warning("deposits.chain_unavailable", chain="ethereum", error=str(error)[:200])
            log.error("actor crashed", error=repr(error), exc_info=error)
            for text in (error.message, str(error), repr(error), repr(error.details)):
                assert not any(secret in text for secret in SECRETS), text
            assert error.code == "chain_unavailable" and error.message.startswith("ethereum: ")
    logged = log_stream.getvalue()
    assert logged.count("deposits.chain_unavailable") == 5
    assert not any(secret in logged for secret in SECRETS), logged
    assert "/v3/" not in logged


async def test_the_error_names_the_endpoint_host_and_port_and_the_status(node: Node) -> None:
    endpoint = node.url.split("/v3/")[0]
    for mode in ("429", "500"):
        node.mode = mode
        async with ChainClient(name="ethereum", rpc_url=node.url, timeout_s=2.0) as client:
            for call in (client.block_number(), client.chain_id()):
                with pytest.raises(ChainUnavailable) as info:
                    await asyncio.wait_for(call, HANG_GUARD_S)
                assert f"HTTP {mode}" in info.value.message and endpoint in info.value.message


@pytest.mark.parametrize("mode", ["429", "500", "echo", "close"])
async def test_the_reconcilers_chain_reads_keep_the_url_out_of_errors_too(node: Node, mode: str) -> None:
    from teller.chain.receipts import ChainReads

    node.mode = mode
    reads = ChainReads(name="ethereum", rpc_url=node.url, timeout_s=2.0)
    try:
        assert not any(secret in repr(reads) for secret in SECRETS)
        for call in (reads.receipts(["0x" + "ab" * 32]), reads.transactions(["0x" + "cd" * 32]),
                     reads.mined_counts(["0x" + "11" * 20])):
            with pytest.raises(ChainUnavailable) as info:
                await asyncio.wait_for(call, HANG_GUARD_S)
            for text in (info.value.message, str(info.value), repr(info.value)):
                assert not any(secret in text for secret in SECRETS), text
            assert info.value.__cause__ is None  # a traceback would print the client error's URL
    finally:
        await reads.close()
