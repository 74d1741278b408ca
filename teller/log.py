"""Structured JSON logs (structlog), configured in one place.

Every line is JSON with a timestamp, level and event; actors bind their path (``actor``) and ids.
A redaction processor is the last line of defence: keys that name secrets are masked, and long digit
runs that look like card numbers are masked, whatever the caller passed.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog

__all__ = ["configure_logging", "get_logger", "redact"]

_SECRET_KEYS = re.compile(r"(secret|password|token|mnemonic|private|init_data|initdata|authorization|card_number|key)$", re.I)
_SAFE_KEYS = frozenset({"idempotency_key", "key", "event_key", "transfer_key"})
_CARD_RUN = re.compile(r"(?<!\d)(\d{6})\d{6,}(\d{4})(?!\d)")
_HAS_RUN = re.compile(r"\d{16}")  # cheap pre-check: a card run has 16+ digits in a row


def _mask_text(text: str) -> str:
    return _CARD_RUN.sub(lambda m: f"{m.group(1)}******{m.group(2)}", text)


_secret_key_cache: dict[str, bool] = {}


def _is_secret_key(key: str) -> bool:
    # Log keys are a small, fixed vocabulary: decide each once (a regex per key per line cost ~8 us).
    try:
        return _secret_key_cache[key]
    except KeyError:
        secret = key not in _SAFE_KEYS and bool(_SECRET_KEYS.search(key))
        if len(_secret_key_cache) < 4096:
            _secret_key_cache[key] = secret
        return secret


def redact(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    """Mask secret-named keys and anything that looks like a full card number."""
    for key, value in list(event.items()):
        if _is_secret_key(key):
            event[key] = "<redacted>"
        elif isinstance(value, str) and _HAS_RUN.search(value):
            event[key] = _mask_text(value)
    return event


def configure_logging(*, level: str = "INFO", stream: TextIO | None = None) -> None:
    """Configure structlog and the stdlib root logger to write JSON lines to ``stream``."""
    stream = stream or sys.stdout
    logging.basicConfig(level=level, stream=stream, format="%(message)s", force=True)
    for noisy in ("aiohttp.access", "web3", "urllib3", "asyncio", "aiogram.event"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            redact,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def get_logger(**bound: Any) -> Any:
    return structlog.get_logger().bind(**bound)
