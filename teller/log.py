"""Structured JSON logs (structlog), configured in one place.

Every line is JSON with a timestamp, level and event; actors bind their path (``actor``) and ids.
A redaction processor is the last line of defence, whatever the caller passed: keys that name secrets are
masked; long digit runs that look like card numbers are masked; and every URL in any string (the rendered
traceback included, nested lists and dicts too) is cut to ``scheme://host[:port]``, since providers put API
keys in the path or query (``https://mainnet.example/v3/<key>``), Telegram puts the bot token in the path and
database URLs carry a password. Lines from the stdlib loggers (aiohttp, web3, aiogram) get the URL cut too.

A traceback is rendered as plain text (``format_exc_info``), never with its frames' local variables: a
frame may hold a signing key. Loggers are lazy proxies (``get_logger``) that read the configuration on each
use, so a module-level logger follows ``configure_logging``; until that runs, importing this module has put
the same JSON pipeline on stderr in place of structlog's own default (which renders tracebacks with their
locals when rich is installed), unless the embedding configured structlog itself first.
"""

from __future__ import annotations

import logging
import re
import sys
from collections.abc import MutableMapping
from typing import Any, TextIO

import structlog
from aiohttp.http_exceptions import HttpProcessingError

__all__ = ["configure_logging", "get_logger", "redact", "endpoint_of", "scrub_urls", "redact_text"]

_SECRET_KEYS = re.compile(r"(secret|password|token|mnemonic|private|init_data|initdata|authorization|card_number|key)$", re.I)
_SAFE_KEYS = frozenset({"idempotency_key", "key", "event_key", "transfer_key"})
_CARD_RUN = re.compile(r"(?<!\d)(\d{6})\d{6,}(\d{4})(?!\d)")
_HAS_RUN = re.compile(r"\d{16}")  # cheap pre-check: a card run has 16+ digits in a row


def _mask_text(text: str) -> str:
    return _CARD_RUN.sub(lambda m: f"{m.group(1)}******{m.group(2)}", text)


# A URL runs from its scheme to the first blank or angle bracket, or a quote that ends it (followed by a
# blank or a delimiter, as in a repr or HTML): a quote inside a password does not end it. The scheme is
# bounded, or a long run of letters and digits (a raw transaction's hex) would cost its length squared.
SCHEME_LEN_MAX = 32
_URL = re.compile(r"([A-Za-z][A-Za-z0-9+.\-]{0,%d})://((?:[^\s'\"`<>]+|['\"`](?![\s,;:)\]}>'\"`]|$))*)"
                  % (SCHEME_LEN_MAX - 1))
_HOST_PORT = re.compile(r"(?:\[[0-9A-Fa-f:.]*\]|[A-Za-z0-9\-._~%]+)(?::\d{1,5}(?!\d))?")
_NO_HOST = "<redacted>"
_TRAILING = ").,;:!?"
_SCALARS = frozenset({int, float, bool, type(None)})
NESTING_MAX = 8  # lists and dicts in a log value are cleaned this deep; deeper, their repr is


def _endpoint(match: re.Match[str]) -> str:
    """``scheme://host[:port]`` of one URL: userinfo, path, query and fragment dropped. Punctuation that ends
    it is kept, as prose's, not the URL's: ``(see http://host/path).`` becomes ``(see http://host).``"""
    token = match.group(2)
    rest = token.rstrip(_TRAILING)
    tail = token[len(rest):]
    end = len(rest)
    for stop in "/?#\\":
        at = rest.find(stop)
        if at != -1 and at < end:
            end = at
    authority = rest[:end]
    if ("@" in authority or ":" in authority) and "@" in rest[end:]:
        # A password holding "/", "?" or "#" ends the authority early: "user:12/3@host" looks like host
        # "user" on port 12, "user:p@ss/w@host" like host "ss". Which it is cannot be told: show no host.
        return f"{match.group(1)}://{_NO_HOST}{tail}"
    host = _HOST_PORT.match(authority.rpartition("@")[2])
    return f"{match.group(1)}://{host.group(0) if host else (_NO_HOST if authority else '')}{tail}"


def scrub_urls(text: str) -> str:
    """``text`` with every URL in it cut to ``scheme://host[:port]``."""
    return _URL.sub(_endpoint, text) if "://" in text else text


def redact_text(text: str) -> str:
    """What ``redact`` does to a string value, for text shown outside the logs (``/ops/status``)."""
    text = scrub_urls(text)
    return _mask_text(text) if _HAS_RUN.search(text) else text


def endpoint_of(url: str) -> str:
    """What may be said of a configured URL (an RPC node, a provider): ``scheme://host[:port]`` only."""
    match = _URL.match(url.strip())
    return _endpoint(match) if match else (_NO_HOST if url else "")


def _clean_text(text: str) -> str:
    if "://" in text:
        text = _URL.sub(_endpoint, text)
    return _mask_text(text) if _HAS_RUN.search(text) else text


def _clean(value: Any, depth: int = 0) -> Any:
    """A nested value cleaned like a top-level one. Objects are cleaned as their repr (what the JSON renderer
    would print for them), and left as they are when that holds nothing to clean."""
    if isinstance(value, str):
        return _clean_text(value)
    if type(value) in _SCALARS:
        return value
    if depth < NESTING_MAX and isinstance(value, (list, tuple)):
        return [_clean(item, depth + 1) for item in value]
    if depth < NESTING_MAX and isinstance(value, dict):
        return {k: "<redacted>" if isinstance(k, str) and _is_secret_key(k) else _clean(v, depth + 1)
                for k, v in value.items()}
    text = repr(value)
    cleaned = _clean_text(text)
    return value if cleaned is text else cleaned


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
    """Mask secret-named keys and anything that looks like a full card number; cut URLs to their host.

    Runs after ``format_exc_info``: the traceback is the string under ``exception`` by then, and is cut too."""
    for key, value in list(event.items()):
        if _is_secret_key(key):
            event[key] = "<redacted>"
        elif isinstance(value, str):
            if "://" in value or _HAS_RUN.search(value):  # the cheap checks first: most values hold neither
                event[key] = _clean_text(value)
        elif type(value) not in _SCALARS:
            event[key] = _clean(value)
    return event


class _BadRequestsAreDebug(logging.Filter):
    """aiohttp logs a request it cannot parse (a control byte in a header, a raw non-ASCII byte in the URL,
    a header over 8190 bytes) at error level with a traceback, per request, quoting the offending line, which
    may carry a token. That is the client's error, answered with a 400: keep it a one-line debug record."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if not isinstance(exc, HttpProcessingError):
            return True
        record.msg, record.args = "%s (%s, status %d)", (record.getMessage(), type(exc).__name__, exc.code)
        record.exc_info, record.exc_text = None, None
        record.levelno, record.levelname = logging.DEBUG, logging.getLevelName(logging.DEBUG)
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


_BAD_REQUESTS_ARE_DEBUG = _BadRequestsAreDebug()


class _UrlCuttingFormatter(logging.Formatter):
    """The stdlib loggers' lines (aiohttp, web3, aiogram) do not pass ``redact``: their URLs are cut here."""

    def format(self, record: logging.LogRecord) -> str:
        return scrub_urls(super().format(record))


def _configure_structlog(*, level: str, stream: TextIO) -> None:
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,  # plain traceback text: no local variables
            redact,
            structlog.processors.JSONRenderer(),
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level)),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def configure_logging(*, level: str = "INFO", stream: TextIO | None = None) -> None:
    """Configure structlog and the stdlib root logger to write JSON lines to ``stream``."""
    stream = stream or sys.stdout
    logging.basicConfig(level=level, stream=stream, format="%(message)s", force=True)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(_UrlCuttingFormatter("%(message)s"))
    for noisy in ("aiohttp.access", "web3", "urllib3", "asyncio", "aiogram.event"):
        logging.getLogger(noisy).setLevel(logging.WARNING)
    logging.getLogger("aiohttp.server").addFilter(_BAD_REQUESTS_ARE_DEBUG)  # added once, however often called
    _configure_structlog(level=level, stream=stream)


def get_logger(**bound: Any) -> Any:
    """A lazy logger: safe to create at import, it uses whatever configuration is current when it logs."""
    return structlog.get_logger(**bound)


if not structlog.is_configured():
    _configure_structlog(level="INFO", stream=sys.stderr)
