"""Headers every response carries, set by one ``on_response_prepare`` hook.

aiohttp fills in ``Server: Python/3.x aiohttp/3.x`` in ``StreamResponse._prepare_headers`` and runs the
application's ``on_response_prepare`` signal right after it, before the headers are written; so the
hook has the last word on every response that went through routing: handlers, static files, the
middleware's error answers, and aiohttp's own 404/405/500 pages. (A request the HTTP parser rejects
never reaches routing and keeps aiohttp's default header.)
"""

from __future__ import annotations

from aiohttp import web

__all__ = ["CONTENT_SECURITY_POLICY", "SERVER_NAME", "add_security_headers"]

# The one policy of every page this server sends (there is one page, `/`, and the error bodies).
# - script-src: this origin's files and exactly Telegram's SDK file, not all of telegram.org.
# - style-src: no 'unsafe-inline'; the page has no inline style (theme colours are set through the
#   CSSOM, which CSP does not govern).
# - frame-ancestors: only Telegram's web client may frame the page. telegram.js treats "being
#   framed" as proof that Telegram is the host, which holds only while nothing else can frame it:
#   no 'self' (no page of this origin frames the wallet) and no wildcard over *.telegram.org.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self' https://telegram.org/js/telegram-web-app.js; style-src 'self'; "
    "img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors https://web.telegram.org"
)
SERVER_NAME = "teller"  # no versions: they only help someone pick an exploit


async def add_security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """The ``on_response_prepare`` hook. The CSP goes on every response, not only on text/html: a
    policy on a JSON body is inert, and a check on the content type could miss an HTML answer."""
    headers = response.headers
    headers["Server"] = SERVER_NAME
    headers["X-Content-Type-Options"] = "nosniff"
    headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
