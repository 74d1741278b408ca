"""Raw JSON-RPC 2.0 over one aiohttp session: single calls and batches, answers as plain JSON.

FIELD-NOTES: web3's response formatting costs 10-14x the raw JSON on bulk reads, so blocks and logs come
through here. This module raises only its own two errors (``RpcError``: the node answered with an error
object; ``RpcProtocolError``: the answer is not JSON-RPC) plus aiohttp's and the timeout's; ``ChainClient``
translates all of them, in one place.
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import Sequence
from typing import Any

import aiohttp

__all__ = ["JsonRpc", "RpcError", "RpcProtocolError", "BATCH_SIZE_MAX", "RESPONSE_BYTES_MAX"]

BATCH_SIZE_MAX = 100  # requests per HTTP batch; nodes commonly refuse more (geth: 1000, providers: 100)
BATCH_CONCURRENCY_MAX = 4  # batches of one call in flight at once
RESPONSE_BYTES_MAX = 128 * 1024 * 1024  # a getLogs over a wide busy range can be big; past this, narrow it
_READ_CHUNK_BYTES = 256 * 1024
_HEADERS = {"Content-Type": "application/json"}


class RpcError(Exception):
    """The node answered with a JSON-RPC error object."""

    def __init__(self, method: str, code: int, message: str, data: Any = None) -> None:
        super().__init__(f"{method}: [{code}] {message}")
        self.method = method
        self.code = code
        self.message = message
        self.data = data


class RpcProtocolError(Exception):
    """The answer was not JSON-RPC (bad status without an error object, not JSON, wrong ids, too big)."""


class JsonRpc:
    def __init__(self, url: str, session: aiohttp.ClientSession) -> None:
        self.url = url
        self._session = session
        self._ids = itertools.count(1)

    async def call(self, method: str, params: Sequence[Any] = ()) -> Any:
        request_id = next(self._ids)
        answer = await self._post({"jsonrpc": "2.0", "id": request_id, "method": method, "params": list(params)})
        if not isinstance(answer, dict):
            raise RpcProtocolError(f"{method}: the answer is not a JSON object")
        return _result(method, answer)

    async def batch(self, method: str, params_list: Sequence[Sequence[Any]]) -> list[Any | RpcError]:
        """Call ``method`` once per params, in batches of ``BATCH_SIZE_MAX``; results in input order, with
        an ``RpcError`` in place of each call the node refused (the others still count)."""
        chunks = [params_list[i:i + BATCH_SIZE_MAX] for i in range(0, len(params_list), BATCH_SIZE_MAX)]
        gate = asyncio.Semaphore(BATCH_CONCURRENCY_MAX)

        async def run(chunk: Sequence[Sequence[Any]]) -> list[Any | RpcError]:
            async with gate:
                return await self._batch_once(method, chunk)

        results: list[Any | RpcError] = []
        for part in await asyncio.gather(*(run(chunk) for chunk in chunks)):
            results.extend(part)
        return results

    async def _batch_once(self, method: str, params_list: Sequence[Sequence[Any]]) -> list[Any | RpcError]:
        ids = [next(self._ids) for _ in params_list]
        body = [{"jsonrpc": "2.0", "id": i, "method": method, "params": list(p)} for i, p in zip(ids, params_list)]
        answer = await self._post(body)
        if isinstance(answer, dict):  # one error object for the whole batch (e.g. batch too large)
            _result(method, answer)
            raise RpcProtocolError(f"{method}: a batch got a single non-error answer")
        if not isinstance(answer, list):
            raise RpcProtocolError(f"{method}: the batch answer is not a JSON array")
        by_id = {item.get("id"): item for item in answer if isinstance(item, dict)}
        if set(by_id) != set(ids):
            raise RpcProtocolError(f"{method}: the batch answer's ids do not match the requests")
        results: list[Any | RpcError] = []
        for request_id in ids:
            try:
                results.append(_result(method, by_id[request_id]))
            except RpcError as exc:
                results.append(exc)
        return results

    async def _post(self, body: Any) -> Any:
        async with self._session.post(self.url, data=json.dumps(body), headers=_HEADERS) as resp:
            chunks: list[bytes] = []
            size = 0
            async for chunk in resp.content.iter_chunked(_READ_CHUNK_BYTES):
                size += len(chunk)
                if size > RESPONSE_BYTES_MAX:
                    raise RpcProtocolError(f"answer larger than {RESPONSE_BYTES_MAX} bytes")
                chunks.append(chunk)
            status = resp.status
        try:
            answer = json.loads(b"".join(chunks))
        except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
            raise RpcProtocolError(f"HTTP {status}: the answer is not JSON") from exc
        if status != 200 and not (isinstance(answer, dict) and "error" in answer):
            raise RpcProtocolError(f"HTTP {status}")
        return answer


def _result(method: str, answer: dict[str, Any]) -> Any:
    error = answer.get("error")
    if error is not None:
        if not isinstance(error, dict):
            raise RpcProtocolError(f"{method}: malformed error object")
        code = error.get("code")
        raise RpcError(method, code if isinstance(code, int) else 0, str(error.get("message", "")),
                       error.get("data"))
    if "result" not in answer:
        raise RpcProtocolError(f"{method}: neither result nor error")
    return answer["result"]
