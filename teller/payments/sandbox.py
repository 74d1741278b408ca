"""The Paystar sandbox: an aiohttp server speaking ``paystar_wire`` plus the statement endpoint.

For tests and dev mode only; it binds loopback addresses only and holds everything in memory.

Routes::

    POST /open-banking/application/refresh-api-key      Paystar: a new API key (lifetime api_key_ttl_s)
    POST /open-banking/service/bank-inquiry/card-to-iban Paystar: card -> IBAN, owner, bank
    POST /open-banking/service/bank-inquiry/iban-inquiry Paystar: IBAN -> owners, bank
    POST /open-banking/service/info-matching/mobile-national-id   Shahkar: national code <-> mobile
    POST /open-banking/service/info-matching/card-national-id     card <-> national code
    POST /open-banking/service/info-matching/iban-national-id     IBAN <-> national code
    GET  /sandbox/statement?cursor=&limit=               statement lines, cursor-paginated
    POST /sandbox/statement/lines                        append a line {amount_rial, source_iban|source_card, ...}
    POST /sandbox/control                                {"action": "fail", "mode", "count", "scope"}
                                                         | {"action": "expire_keys"} | {"action": "forget_card", "card"}
                                                         | {"action": "duplicate_line", "bank_reference"}
                                                         | {"action": "clear_failures"}

Tests use the Python API instead: ``handle = await start_sandbox("127.0.0.1", port)``, then
``handle.state.fail(...)``, ``handle.state.append_line(...)``, ... and ``await handle.close()``.
Standalone: ``python -m teller.payments.sandbox --port 8091``.
"""

from __future__ import annotations

import argparse
import asyncio
import ipaddress
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web

from teller.log import configure_logging, get_logger
from teller.payments import paystar_wire as wire
from teller.errors import InvalidCard
from teller.payments.sandbox_state import FailureMode, SandboxState, Scope
from teller.payments.statement import PATH_STATEMENT, STATEMENT_PAGE_MAX, line_to_wire

__all__ = ["SandboxHandle", "start_sandbox", "make_app", "main"]

_STATE = web.AppKey("sandbox_state", SandboxState)
_STOP = web.AppKey("sandbox_stop", asyncio.Event)
_BODY_BYTES_MAX = 64 * 1024

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def _json(body: Any, status: int = 200) -> web.Response:
    return web.json_response(body, status=status)


async def _read_json(request: web.Request) -> dict[str, Any]:
    try:
        body = json.loads(await request.content.read(_BODY_BYTES_MAX))
    except ValueError:
        body = None
    return body if isinstance(body, dict) else {}


async def _planned_failure(request: web.Request, scope: str) -> web.Response | None:
    mode = request.app[_STATE].next_failure(scope)
    if mode is None:
        return None
    if mode == FailureMode.TIMEOUT:
        stop = request.app[_STOP]
        try:
            await asyncio.wait_for(stop.wait(), request.app[_STATE].hang_s)
        except asyncio.TimeoutError:
            pass
        return _json(wire.error_answer(wire.STATUS_UPSTREAM_ERROR, "sandbox: too late"), status=504)
    if mode == FailureMode.ERROR:
        return _json(wire.error_answer(0, "sandbox: internal server error"), status=500)
    if mode == FailureMode.GARBAGE:
        return web.Response(text="<html>502 Bad Gateway</html>", content_type="text/html")
    if mode == FailureMode.MALFORMED:
        return _json({"status": wire.STATUS_OK, "data": {"unexpected": True}, "message": "ok"})
    if mode == FailureMode.MISMATCH:
        return _json(wire.match_answer(False))
    if mode == FailureMode.LIMIT:
        return _json(wire.error_answer(wire.STATUS_INQUIRY_LIMIT, "sandbox: insufficient banking wallet balance"))
    return _json(wire.error_answer(wire.STATUS_INVALID_INPUT, "sandbox: card not found"), status=422)


def _bad_credentials(state: SandboxState, body: dict[str, Any]) -> web.Response | None:
    if body.get(wire.F_APPLICATION_ID) != state.application_id or body.get(wire.F_ACCESS_PASSWORD) != state.access_password:
        return _json(wire.error_answer(wire.STATUS_WRONG_PASSWORD, "wrong application id or password"), status=403)
    return None


async def _refresh(request: web.Request) -> web.Response:
    state = request.app[_STATE]
    if (failed := await _planned_failure(request, Scope.REFRESH)) is not None:
        return failed
    body = await _read_json(request)
    if (denied := _bad_credentials(state, body)) is not None:
        return denied
    if body.get(wire.F_REFRESH_TOKEN) != state.refresh_token:
        return _json(wire.error_answer(wire.STATUS_REFRESH_TOKEN_INVALID, "invalid refresh token"), status=403)
    key, expires_at_s = state.issue_key()
    return _json(wire.ok_answer({wire.A_API_KEY: key, wire.A_API_KEY_EXPIRE: int(expires_at_s)}))


async def _authorized(request: web.Request) -> tuple[dict[str, Any], web.Response | None]:
    state = request.app[_STATE]
    header = request.headers.get("Authorization", "")
    key = header[len("Bearer ") :] if header.startswith("Bearer ") else ""
    verdict = state.key_state(key)
    if verdict == "invalid":
        return {}, _json(wire.error_answer(wire.STATUS_TOKEN_INVALID, "invalid api key"), status=401)
    if verdict == "expired":
        return {}, _json(wire.error_answer(wire.STATUS_TOKEN_EXPIRED, "api key expired"), status=401)
    body = await _read_json(request)
    return body, _bad_credentials(state, body)


async def _card_to_iban(request: web.Request) -> web.Response:
    if (failed := await _planned_failure(request, Scope.INQUIRY)) is not None:
        return failed
    body, denied = await _authorized(request)
    if denied is not None:
        return denied
    card = body.get(wire.F_CARD)
    info = request.app[_STATE].card_account(card) if isinstance(card, str) else None
    if info is None:
        return _json(wire.error_answer(wire.STATUS_INVALID_INPUT, "card not found"), status=422)
    return _json(wire.ok_answer({wire.CARD_IBAN: info.iban, wire.CARD_OWNER: info.owner_name, wire.CARD_BANK: info.bank}))


async def _iban_inquiry(request: web.Request) -> web.Response:
    if (failed := await _planned_failure(request, Scope.INQUIRY)) is not None:
        return failed
    body, denied = await _authorized(request)
    if denied is not None:
        return denied
    iban = body.get(wire.F_IBAN)
    info = request.app[_STATE].iban_account(iban) if isinstance(iban, str) else None
    if info is None:
        return _json(wire.error_answer(wire.STATUS_INVALID_INPUT, "iban not found"), status=422)
    return _json(wire.ok_answer({
        wire.F_IBAN: info.iban, wire.IBAN_OWNERS: list(info.owners), wire.IBAN_BANK: info.bank,
        wire.IBAN_ACCOUNT_STATUS: info.account_status,
    }))


MatchRule = Callable[[SandboxState, dict[str, Any]], "bool | None"]


def _matching(rule: MatchRule) -> Handler:
    """An info-matching route: planned failures, auth, then ``rule`` (None: status 10, the input is unknown)."""

    async def handle(request: web.Request) -> web.Response:
        if (failed := await _planned_failure(request, Scope.MATCHING)) is not None:
            return failed
        body, denied = await _authorized(request)
        if denied is not None:
            return denied
        matched = rule(request.app[_STATE], body)
        if matched is None:
            return _json(wire.error_answer(wire.STATUS_INVALID_INPUT, "invalid input"), status=422)
        return _json(wire.match_answer(matched))

    return handle


def _text_fields(body: dict[str, Any], *names: str) -> list[str] | None:
    """The named fields when every one is a string, else None (Paystar's status 10)."""
    values = [body.get(n) for n in names]
    return values if all(isinstance(v, str) for v in values) else None  # type: ignore[return-value]


def _shahkar_rule(state: SandboxState, body: dict[str, Any]) -> bool | None:
    fields = _text_fields(body, wire.F_NATIONAL_ID, wire.F_MOBILE)
    return None if fields is None else state.shahkar(*fields)


def _card_rule(state: SandboxState, body: dict[str, Any]) -> bool | None:
    fields = _text_fields(body, wire.F_CARD_NUMBER, wire.F_NATIONAL_ID)
    return None if fields is None else state.card_owned_by(*fields)


def _iban_rule(state: SandboxState, body: dict[str, Any]) -> bool | None:
    fields = _text_fields(body, wire.F_IBAN, wire.F_NATIONAL_ID)
    return None if fields is None else state.iban_owned_by(*fields)


async def _statement(request: web.Request) -> web.Response:
    if (failed := await _planned_failure(request, Scope.STATEMENT)) is not None:
        return failed
    try:
        cursor = int(request.query.get("cursor", "0") or "0")
        limit = min(int(request.query.get("limit", "100")), STATEMENT_PAGE_MAX)
        if cursor < 0 or limit < 1:
            raise ValueError
    except ValueError:
        return _json(wire.error_answer(wire.STATUS_INVALID_INPUT, "bad cursor or limit"), status=400)
    lines, next_cursor = request.app[_STATE].page(cursor, limit)
    return _json(wire.ok_answer({"lines": [line_to_wire(ln) for ln in lines], "next_cursor": str(next_cursor)}))


async def _append_line(request: web.Request) -> web.Response:
    body = await _read_json(request)
    try:
        at = body.get("occurred_at")
        line = request.app[_STATE].append_line(
            amount_rial=body["amount_rial"],
            source_iban=body.get("source_iban"),
            source_card=body.get("source_card"),
            bank_reference=body.get("bank_reference"),
            occurred_at=datetime.fromisoformat(at) if isinstance(at, str) else None,
        )
    except (KeyError, ValueError, AssertionError, TypeError) as exc:
        return _json(wire.error_answer(wire.STATUS_INVALID_INPUT, f"bad line: {type(exc).__name__}"), status=400)
    return _json(wire.ok_answer(line_to_wire(line)), status=201)


async def _control(request: web.Request) -> web.Response:
    state, body = request.app[_STATE], await _read_json(request)
    action = body.get("action")
    try:
        if action == "fail":
            state.fail(str(body.get("mode")), count=int(body.get("count", 1)), scope=str(body.get("scope", Scope.INQUIRY)))
        elif action == "expire_keys":
            state.expire_keys()
        elif action == "forget_card":
            state.forget_card(str(body.get("card")))
        elif action == "duplicate_line":
            state.duplicate_line(str(body.get("bank_reference")))
        elif action == "clear_failures":
            state.clear_failures()
        else:
            raise ValueError("unknown action")
    except (ValueError, TypeError, StopIteration, InvalidCard) as exc:
        return _json(wire.error_answer(wire.STATUS_INVALID_INPUT, f"{action}: {type(exc).__name__}"), status=400)
    return _json(wire.ok_answer({"action": action}))


def make_app(state: SandboxState) -> web.Application:
    app = web.Application(client_max_size=_BODY_BYTES_MAX)
    app[_STATE] = state
    app[_STOP] = asyncio.Event()
    app.router.add_post(wire.PATH_REFRESH, _refresh)
    app.router.add_post(wire.PATH_CARD_TO_IBAN, _card_to_iban)
    app.router.add_post(wire.PATH_IBAN_INQUIRY, _iban_inquiry)
    app.router.add_post(wire.PATH_SHAHKAR, _matching(_shahkar_rule))
    app.router.add_post(wire.PATH_CARD_NATIONAL_ID, _matching(_card_rule))
    app.router.add_post(wire.PATH_IBAN_NATIONAL_ID, _matching(_iban_rule))
    app.router.add_get(PATH_STATEMENT, _statement)
    app.router.add_post(PATH_STATEMENT + "/lines", _append_line)
    app.router.add_post("/sandbox/control", _control)
    return app


@dataclass
class SandboxHandle:
    url: str
    state: SandboxState
    _runner: web.AppRunner
    _app: web.Application

    async def close(self) -> None:
        self._app[_STOP].set()  # release hanging TIMEOUT requests first, so shutdown is quick
        await self._runner.cleanup()


def _require_loopback(host: str) -> None:
    try:
        loopback = ipaddress.ip_address(host).is_loopback
    except ValueError:
        loopback = host == "localhost"
    if not loopback:
        raise ValueError(f"the sandbox binds loopback addresses only, not {host!r}")


async def start_sandbox(host: str, port: int, *, state: SandboxState | None = None) -> SandboxHandle:
    """Start the sandbox on ``host:port`` (loopback only); ``handle.url`` is its base URL."""
    _require_loopback(host)
    state = state or SandboxState()
    app = make_app(state)
    runner = web.AppRunner(app, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    await web.TCPSite(runner, host, port).start()
    return SandboxHandle(url=f"http://{host}:{port}", state=state, _runner=runner, _app=app)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Paystar sandbox (dev and tests only)")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8091)
    parser.add_argument("--api-key-ttl-s", type=float, default=3600.0)
    args = parser.parse_args(argv)
    configure_logging()

    async def serve() -> None:
        handle = await start_sandbox(args.host, args.port, state=SandboxState(api_key_ttl_s=args.api_key_ttl_s))
        get_logger(actor="payments/sandbox").info("sandbox.started", url=handle.url)
        try:
            await asyncio.Event().wait()
        finally:
            await handle.close()

    try:
        asyncio.run(serve())
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
