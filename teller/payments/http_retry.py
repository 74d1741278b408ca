"""One HTTP exchange with a timeout and bounded retries, translating every transport failure.

Both payment clients (Paystar, the statement source) call their provider through here, so the
retry policy and the translation of aiohttp errors into ``ProviderUnavailable`` live in one place.
Retried: timeouts, refused/reset connections and answers the caller's predicate calls transient
(5xx by default). Not retried: anything else, which goes back to the caller to interpret.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp

from teller.errors import ProviderUnavailable

__all__ = ["Answer", "RetryPolicy", "ANSWER_BYTES_MAX", "exchange"]

# Bound on what we read from a provider: its answers are a few hundred bytes.
ANSWER_BYTES_MAX = 256 * 1024


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    timeout_s: float
    retries_max: int  # attempts = retries_max + 1
    backoff_base_s: float = 0.2
    backoff_max_s: float = 2.0

    def backoff_s(self, attempt: int) -> float:
        return float(min(self.backoff_max_s, self.backoff_base_s * 2**attempt))


@dataclass(frozen=True, slots=True)
class Answer:
    http_status: int
    body: Any  # decoded JSON, or None when the body was not JSON

    def __repr__(self) -> str:  # bodies may hold owners' names or keys: never in a repr
        return f"Answer(http_status={self.http_status})"


def _server_error(answer: Answer) -> bool:
    return answer.http_status >= 500


async def exchange(
    session: aiohttp.ClientSession,
    method: str,
    url: str,
    *,
    policy: RetryPolicy,
    log: Any,
    json_body: Mapping[str, Any] | None = None,
    params: Mapping[str, str] | None = None,
    headers: Mapping[str, str] | None = None,
    transient: Callable[[Answer], bool] = _server_error,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> Answer:
    """Send, retry what is transient, and return the last answer; ProviderUnavailable when none came."""
    timeout = aiohttp.ClientTimeout(total=policy.timeout_s)
    attempts = policy.retries_max + 1
    last_error: BaseException | None = None
    answer: Answer | None = None
    for attempt in range(attempts):
        if attempt:
            await sleep(policy.backoff_s(attempt - 1))
        try:
            async with session.request(
                method, url, json=json_body, params=params, headers=headers, timeout=timeout, allow_redirects=False
            ) as resp:
                raw = await resp.content.read(ANSWER_BYTES_MAX + 1)
                answer = Answer(resp.status, _decode(raw))
        except (asyncio.TimeoutError, aiohttp.ClientError, OSError) as exc:
            last_error, answer = exc, None
            log.warning("provider.retry", attempt=attempt + 1, attempts=attempts, reason=type(exc).__name__)
            continue
        if not transient(answer):
            return answer
        log.warning("provider.retry", attempt=attempt + 1, attempts=attempts, reason=f"http {answer.http_status}")
    if answer is not None:
        raise ProviderUnavailable(f"the provider kept failing (HTTP {answer.http_status}) after {attempts} attempts")
    raise ProviderUnavailable(f"the provider did not answer after {attempts} attempts") from last_error


def _decode(raw: bytes) -> Any:
    if len(raw) > ANSWER_BYTES_MAX:
        return None
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        return None
