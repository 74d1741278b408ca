"""A whole Teller on a node that answers 429 at an RPC URL holding an API key: the key is in no log line,
no /ops/status, no HTTP answer (the dev faucet's included).

Storage is not what is tested here: SQLite only.
"""

from __future__ import annotations

import io
import json
from collections.abc import AsyncIterator

import pytest
from aiohttp import web

from tests.deposits.helpers import CHAIN, chain_table, deposit_settings, running, wait_for
from tests.fixtures.failing_server import serving
from tests.fixtures.http import OPS_TOKEN

KEY_IN_PATH = "SECRETKEY123"
KEY_IN_QUERY = "SECRET2"
TOKEN = "0x5FbDB2315678afecb367f032d93F642f64180aa3"


@pytest.fixture
async def rate_limited_node() -> AsyncIterator[str]:
    async def answer(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(status=429, text="Too Many Requests")

    async with serving(answer) as port:
        yield f"http://127.0.0.1:{port}/v3/{KEY_IN_PATH}?apikey={KEY_IN_QUERY}"


@pytest.mark.parametrize("store_backend", ["sqlite"], indirect=True)
async def test_the_rpc_key_reaches_no_log_status_or_answer(store, rate_limited_node: str,
                                                           log_stream: io.StringIO) -> None:
    settings = deposit_settings(chain_table(rpc_url=rate_limited_node, token=TOKEN), dev=True)
    async with running(settings, store) as app:
        await wait_for(lambda: _logged(log_stream, "deposits.chain_unavailable"), what="the watcher's failure")
        status = await app.client.get("/ops/status", headers={"Authorization": f"Bearer {OPS_TOKEN}"})
        assert status.status == 200
        status_text = await status.text()
        _, headers = await app.sign_in(5301)
        faucet = await app.client.post("/dev/faucet", json={"chain": CHAIN, "asset": "ETH", "amount": "1",
                                                            "address": "0x" + "11" * 20}, headers=headers)
        faucet_text = await faucet.text()
        assert faucet.status >= 500
    logged = log_stream.getvalue()
    line = next(json.loads(x) for x in logged.splitlines() if "deposits.chain_unavailable" in x)
    assert "HTTP 429" in line["error"] and line["error"].endswith(f"({rate_limited_node.split('/v3/')[0]})")
    for text in (logged, status_text, faucet_text):
        assert KEY_IN_PATH not in text and KEY_IN_QUERY not in text and "/v3/" not in text, text


async def _logged(stream: io.StringIO, event: str) -> bool:
    return f'"{event}"' in stream.getvalue()
