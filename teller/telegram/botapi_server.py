"""A local Telegram Bot API server for dev and tests, speaking the real protocol over loopback.

``/bot<token>/<method>`` with JSON, urlencoded or multipart bodies (aiogram sends multipart, with
nested values JSON-encoded), answering ``{"ok": true, "result": ...}`` or Telegram's error shape.
Methods: getMe, sendMessage, setWebhook, deleteWebhook, getWebhookInfo, getUpdates (long polling
with offset and timeout), answerCallbackQuery, setMyCommands. Everything received is recorded.

A test (in process, or over HTTP under ``/_test/``) injects user messages (in a private chat or a
group, from any sender), which are served to getUpdates or POSTed to the webhook when one is set,
redelivers an update under its same ``update_id`` (as Telegram does after a webhook timeout, or to
a poller that never confirmed it), and makes a chat answer 429 (with ``retry_after``) or 403 (bot
blocked) on demand. As Telegram does, a ``web_app`` button is refused outside a private chat.
Run standalone with ``python -m teller.telegram.botapi_server --port 8092``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import re
import time
from collections import deque
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp import web

from teller.log import configure_logging, get_logger

__all__ = ["BotApiServer", "RecordedCall", "start_botapi_server", "main"]

CALLS_RECORDED_MAX = 10_000
UPDATES_PENDING_MAX = 1_000
GET_UPDATES_LIMIT_MAX = 100
GET_UPDATES_TIMEOUT_MAX_S = 50
WEBHOOK_ATTEMPTS_MAX = 5
_WEBHOOK_RETRY_WAIT_S = 0.2
_WEBHOOK_TIMEOUT_S = 10.0
_TOKEN_RE = re.compile(r"(?P<bot_id>[0-9]{1,20}):[A-Za-z0-9_-]{1,100}")
_INT_FIELDS = frozenset({"chat_id", "offset", "limit", "timeout", "reply_to_message_id", "message_thread_id",
                         "max_connections", "cache_time"})
_BOOL_FIELDS = frozenset({"disable_notification", "protect_content", "drop_pending_updates", "show_alert",
                          "disable_web_page_preview", "allow_sending_without_reply"})
_JSON_FIELDS = frozenset({"reply_markup", "allowed_updates", "entities", "link_preview_options",
                          "reply_parameters", "commands", "scope"})


@dataclass(frozen=True, slots=True)
class RecordedCall:
    token: str
    method: str
    params: Mapping[str, Any]


@dataclass(slots=True)
class _Fault:
    status: int
    retry_after_s: int
    times: int


class BotApiServer:
    def __init__(self, *, host: str = "127.0.0.1", port: int = 0, bot_username: str = "teller_dev_bot") -> None:
        self._host, self._port = host, port
        self._bot_username = bot_username
        self.calls: deque[RecordedCall] = deque(maxlen=CALLS_RECORDED_MAX)
        self._updates: deque[dict[str, Any]] = deque(maxlen=UPDATES_PENDING_MAX)
        self._update_id = 0
        self._message_id = 0
        self._changed = asyncio.Condition()
        self._faults: dict[Any, deque[_Fault]] = {}
        self._chat_types: dict[Any, str] = {}  # chat id -> "private" | "group" | ..., from injected messages
        self._blocked: set[Any] = set()
        self._webhook_url = ""
        self._webhook_secret = ""
        self._webhook_task: asyncio.Task[None] | None = None
        self._runner: web.AppRunner | None = None
        self._client: aiohttp.ClientSession | None = None
        self._log = get_logger(component="botapi-server")

    # ---- lifecycle ---------------------------------------------------------------------------
    @property
    def api_base(self) -> str:
        """What ``telegram.api_base`` should be set to."""
        return f"http://{self._host}:{self._port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_route("*", r"/bot{token}/{method}", self._handle_method)
        app.router.add_post("/_test/messages", _bad_input_is_400(self._test_inject))
        app.router.add_post("/_test/faults", _bad_input_is_400(self._test_fault))
        app.router.add_get("/_test/calls", self._test_calls)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self._host, self._port)
        await site.start()
        if self._port == 0:
            self._port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # aiohttp has no public accessor
        self._client = aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=_WEBHOOK_TIMEOUT_S))

    async def stop(self) -> None:
        await self._stop_webhook()
        if self._client is not None:
            await self._client.close()
        if self._runner is not None:
            await self._runner.cleanup()

    # ---- the test's controls -----------------------------------------------------------------
    async def inject_message(self, chat_id: int, text: str, *, user_id: int | None = None,
                             chat_type: str = "private", first_name: str = "Tester",
                             username: str | None = None) -> dict[str, Any]:
        """A user (``user_id``, by default the chat's own id) writes ``text`` in chat ``chat_id``
        (``chat_type``: private, group or supergroup); returns the Update as queued."""
        self._message_id += 1
        user = {"id": user_id or chat_id, "is_bot": False, "first_name": first_name}
        if username:
            user["username"] = username
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        chat.update({"first_name": first_name} if chat_type == "private" else {"title": "Test group"})
        self._chat_types[chat_id] = chat_type
        message: dict[str, Any] = {
            "message_id": self._message_id, "from": user, "date": int(time.time()), "text": text, "chat": chat,
        }
        if text.startswith("/"):
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": len(text.split()[0])}]
        return await self.inject_update({"message": message})

    async def inject_update(self, update: Mapping[str, Any]) -> dict[str, Any]:
        self._update_id += 1
        full = {"update_id": self._update_id, **update}
        async with self._changed:
            self._updates.append(full)
            self._changed.notify_all()
        return full

    async def redeliver(self, update: Mapping[str, Any]) -> None:
        """Queue ``update`` again under its own ``update_id``: a webhook gets it posted again; a poller
        gets it if its offset has not passed it (a new one, after a restart, starts with none)."""
        async with self._changed:
            self._updates.append(dict(update))
            self._changed.notify_all()

    def fail(self, chat_id: Any, *, status: int = 429, retry_after_s: int = 1, times: int = 1) -> None:
        """The next ``times`` calls for ``chat_id`` answer ``status`` (429 carries ``retry_after``)."""
        if status not in (400, 403, 429, 500):
            raise ValueError("status must be 400, 403, 429 or 500")
        self._faults.setdefault(chat_id, deque()).append(_Fault(status, retry_after_s, times))

    def block(self, chat_id: Any) -> None:
        """The user blocked the bot: every call for this chat answers 403 until ``unblock``."""
        self._blocked.add(chat_id)

    def unblock(self, chat_id: Any) -> None:
        self._blocked.discard(chat_id)

    def sent_messages(self, chat_id: Any | None = None) -> list[dict[str, Any]]:
        """sendMessage calls that succeeded, as the parameters received."""
        return [dict(c.params) for c in self.calls if c.method == "sendmessage" and "_failed" not in c.params
                and (chat_id is None or c.params.get("chat_id") == chat_id)]

    def calls_of(self, method: str) -> list[RecordedCall]:
        return [c for c in self.calls if c.method == method.lower()]

    def calls_of_chat(self, method: str, chat_id: Any) -> list[RecordedCall]:
        """Calls of ``method`` for ``chat_id``, refused or not."""
        return [c for c in self.calls_of(method) if c.params.get("chat_id") == chat_id]

    async def wait_for_messages(self, count: int, *, chat_id: Any | None = None,
                                timeout_s: float = 10.0) -> list[dict[str, Any]]:
        async with self._changed:
            await asyncio.wait_for(self._changed.wait_for(lambda: len(self.sent_messages(chat_id)) >= count),
                                   timeout=timeout_s)
        return self.sent_messages(chat_id)

    # ---- the Bot API -------------------------------------------------------------------------
    async def _handle_method(self, request: web.Request) -> web.Response:
        token, method = request.match_info["token"], request.match_info["method"].lower()
        if not _TOKEN_RE.fullmatch(token):
            return _error(401, "Unauthorized")
        try:
            params = await _read_params(request)
        except ValueError as exc:
            return _error(400, f"Bad Request: {exc}")
        return await self._call(token, method, params)

    async def _call(self, token: str, method: str, params: dict[str, Any]) -> web.Response:
        handler = _METHODS.get(method)
        if handler is None:
            return _error(404, "Not Found")
        fault = self._take_fault(params.get("chat_id"))
        async with self._changed:
            self.calls.append(RecordedCall(token, method, {**params, "_failed": fault[0]} if fault else params))
            self._changed.notify_all()
        if fault:
            return _error(*fault)
        try:
            return await handler(self, token, params)
        except KeyError as exc:
            return _error(400, f"Bad Request: parameter {exc} is required")
        except (TypeError, ValueError) as exc:
            return _error(400, f"Bad Request: {exc}")

    def _take_fault(self, chat_id: Any) -> tuple[int, str, dict[str, Any] | None] | None:
        if chat_id is None:
            return None
        if chat_id in self._blocked:
            return 403, "Forbidden: bot was blocked by the user", None
        queue = self._faults.get(chat_id)
        if not queue:
            return None
        fault = queue[0]
        fault.times -= 1
        if fault.times <= 0:
            queue.popleft()
        if fault.status == 429:
            return 429, f"Too Many Requests: retry after {fault.retry_after_s}", {"retry_after": fault.retry_after_s}
        if fault.status == 403:
            return 403, "Forbidden: bot was blocked by the user", None
        if fault.status == 400:
            return 400, "Bad Request: chat not found", None
        return 500, "Internal Server Error", None

    def _bot_user(self, token: str) -> dict[str, Any]:
        match = _TOKEN_RE.fullmatch(token)
        assert match is not None  # checked in _handle_method
        return {"id": int(match["bot_id"]), "is_bot": True, "first_name": "Teller",
                "username": self._bot_username, "can_join_groups": False,
                "can_read_all_group_messages": False, "supports_inline_queries": False}

    async def _get_me(self, token: str, _params: dict[str, Any]) -> web.Response:
        return _ok(self._bot_user(token))

    async def _send_message(self, token: str, params: dict[str, Any]) -> web.Response:
        chat_id, text = params["chat_id"], params["text"]
        if not isinstance(text, str) or not 0 < len(text) <= 4096:
            return _error(400, "Bad Request: message text is empty or too long")
        chat_type = self._chat_types.get(chat_id, "private")
        if chat_type != "private" and _has_web_app_button(params.get("reply_markup")):
            return _error(400, "Bad Request: BUTTON_TYPE_INVALID")
        self._message_id += 1
        message = {"message_id": self._message_id, "from": self._bot_user(token), "date": int(time.time()),
                   "chat": {"id": chat_id, "type": chat_type}, "text": text}
        if isinstance(params.get("reply_markup"), dict):
            message["reply_markup"] = params["reply_markup"]
        return _ok(message)

    async def _true(self, _token: str, _params: dict[str, Any]) -> web.Response:
        return _ok(True)

    async def _set_webhook(self, _token: str, params: dict[str, Any]) -> web.Response:
        await self._stop_webhook()
        self._webhook_url = str(params.get("url") or "")
        self._webhook_secret = str(params.get("secret_token") or "")
        if params.get("drop_pending_updates"):
            self._updates.clear()
        if self._webhook_url:
            self._webhook_task = asyncio.create_task(self._deliver_webhook())
        return _ok(True)

    async def _delete_webhook(self, token: str, params: dict[str, Any]) -> web.Response:
        return await self._set_webhook(token, {"url": "", "drop_pending_updates": params.get("drop_pending_updates")})

    async def _get_webhook_info(self, _token: str, _params: dict[str, Any]) -> web.Response:
        return _ok({"url": self._webhook_url, "has_custom_certificate": False,
                    "pending_update_count": len(self._updates)})

    async def _get_updates(self, _token: str, params: dict[str, Any]) -> web.Response:
        if self._webhook_url:
            return _error(409, "Conflict: can't use getUpdates method while webhook is active; "
                               "use deleteWebhook to delete the webhook first")
        offset = int(params.get("offset") or 0)
        limit = max(1, min(int(params.get("limit") or GET_UPDATES_LIMIT_MAX), GET_UPDATES_LIMIT_MAX))
        timeout_s = max(0, min(int(params.get("timeout") or 0), GET_UPDATES_TIMEOUT_MAX_S))
        async with self._changed:
            while self._updates and self._updates[0]["update_id"] < offset:
                self._updates.popleft()  # an offset confirms every earlier update
            with contextlib.suppress(asyncio.TimeoutError):
                await asyncio.wait_for(self._changed.wait_for(lambda: bool(self._updates)), timeout=timeout_s)
            return _ok(list(self._updates)[:limit])

    # ---- webhook delivery --------------------------------------------------------------------
    async def _deliver_webhook(self) -> None:
        while True:
            async with self._changed:
                await self._changed.wait_for(lambda: bool(self._updates))
                update = self._updates[0]
            await self._post_update(update)
            async with self._changed:
                if self._updates and self._updates[0] is update:
                    self._updates.popleft()

    async def _post_update(self, update: dict[str, Any]) -> None:
        assert self._client is not None
        headers = {"X-Telegram-Bot-Api-Secret-Token": self._webhook_secret} if self._webhook_secret else {}
        for _attempt in range(WEBHOOK_ATTEMPTS_MAX):
            try:
                async with self._client.post(self._webhook_url, json=update, headers=headers) as resp:
                    if resp.status < 300:
                        await self._run_webhook_reply(resp)
                        return
                    self._log.warning("botapi.webhook_refused", status=resp.status)
            except (aiohttp.ClientError, asyncio.TimeoutError) as exc:
                self._log.warning("botapi.webhook_failed", error=type(exc).__name__)
            await asyncio.sleep(_WEBHOOK_RETRY_WAIT_S)
        self._log.warning("botapi.webhook_gave_up", update_id=update["update_id"])

    async def _run_webhook_reply(self, resp: aiohttp.ClientResponse) -> None:
        """A webhook may answer with a method call in its body, as aiogram does (multipart)."""
        params: dict[str, Any] = {}
        if resp.content_type == "multipart/form-data":
            reader = aiohttp.MultipartReader(resp.headers, resp.content)
            while (part := await reader.next()) is not None:
                if isinstance(part, aiohttp.BodyPartReader) and part.name:
                    params[part.name] = await part.text()
        elif resp.content_type == "application/json":
            body = await resp.json()
            params = body if isinstance(body, dict) else {}
        method = str(params.pop("method", "")).lower()
        if method:
            await self._call("0:webhook", method, _coerce(params))

    async def _stop_webhook(self) -> None:
        task, self._webhook_task = self._webhook_task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # ---- the test API over HTTP (for the standalone server) ----------------------------------
    async def _test_inject(self, request: web.Request) -> web.Response:
        body = await request.json()
        update = await self.inject_message(int(body["chat_id"]), str(body["text"]),
                                           username=body.get("username"))
        return web.json_response(update)

    async def _test_fault(self, request: web.Request) -> web.Response:
        body = await request.json()
        if body.get("blocked") is not None:
            (self.block if body["blocked"] else self.unblock)(int(body["chat_id"]))
        else:
            self.fail(int(body["chat_id"]), status=int(body.get("status", 429)),
                      retry_after_s=int(body.get("retry_after", 1)), times=int(body.get("times", 1)))
        return web.json_response({"ok": True})

    async def _test_calls(self, _request: web.Request) -> web.Response:
        return web.json_response([{"method": c.method, "params": dict(c.params)} for c in self.calls])


_METHODS = {
    "getme": BotApiServer._get_me,
    "sendmessage": BotApiServer._send_message,
    "setwebhook": BotApiServer._set_webhook,
    "deletewebhook": BotApiServer._delete_webhook,
    "getwebhookinfo": BotApiServer._get_webhook_info,
    "getupdates": BotApiServer._get_updates,
    "answercallbackquery": BotApiServer._true,
    "setmycommands": BotApiServer._true,
}


async def _read_params(request: web.Request) -> dict[str, Any]:
    params: dict[str, Any] = dict(request.query)
    if request.content_type == "application/json":
        body = await request.json()
        if not isinstance(body, dict):
            raise ValueError("the body must be a JSON object")
        return {**params, **body}
    if request.content_type in ("multipart/form-data", "application/x-www-form-urlencoded"):
        form = await request.post()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return _coerce(params)


def _coerce(params: dict[str, Any]) -> dict[str, Any]:
    """Form values arrive as strings; decode them the way Telegram does, field by field."""
    out: dict[str, Any] = {}
    for key, value in params.items():
        if isinstance(value, str) and key in _INT_FIELDS and re.fullmatch(r"-?[0-9]{1,20}", value):
            value = int(value)
        elif isinstance(value, str) and key in _BOOL_FIELDS:
            value = value.lower() in ("true", "1")
        elif isinstance(value, str) and key in _JSON_FIELDS:
            try:
                value = json.loads(value)
            except json.JSONDecodeError as exc:
                raise ValueError(f"can't parse {key} JSON object") from exc
        out[key] = value
    return out


def _has_web_app_button(markup: Any) -> bool:
    rows = markup.get("inline_keyboard") if isinstance(markup, dict) else None
    return isinstance(rows, list) and any(
        isinstance(button, dict) and "web_app" in button for row in rows if isinstance(row, list) for button in row)


def _bad_input_is_400(handler: Callable[[web.Request], Awaitable[web.Response]]) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def wrapped(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            return web.json_response({"ok": False, "description": f"bad test request: {exc!r}"}, status=400)

    return wrapped


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _error(status: int, description: str, parameters: dict[str, Any] | None = None) -> web.Response:
    body: dict[str, Any] = {"ok": False, "error_code": status, "description": description}
    if parameters:
        body["parameters"] = parameters
    return web.json_response(body, status=status)


async def start_botapi_server(*, host: str = "127.0.0.1", port: int = 0) -> BotApiServer:
    """Start a server (port 0: any free port); ``server.api_base`` is its URL. Stop with ``stop()``."""
    server = BotApiServer(host=host, port=port)
    await server.start()
    return server


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Local Telegram Bot API server for dev and tests")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8092)
    args = parser.parse_args(argv)
    configure_logging()

    async def serve() -> None:
        server = await start_botapi_server(host=args.host, port=args.port)
        get_logger(component="botapi-server").info("botapi.listening", api_base=server.api_base)
        try:
            await asyncio.Event().wait()
        finally:
            await server.stop()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve())


if __name__ == "__main__":
    main()
