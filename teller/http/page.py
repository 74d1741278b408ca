"""The Mini App page: static HTML, CSS and JavaScript, no build step."""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from teller.http.routing import Route

__all__ = ["routes", "STATIC_DIR"]

STATIC_DIR = Path(__file__).with_name("static")


async def index(request: web.Request) -> web.FileResponse:
    response = web.FileResponse(STATIC_DIR / "index.html")
    response.headers["Cache-Control"] = "no-cache"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; script-src 'self' https://telegram.org; img-src 'self' data:; "
        "style-src 'self' 'unsafe-inline'; connect-src 'self'; frame-ancestors https://web.telegram.org https://*.telegram.org 'self'"
    )
    return response


def routes() -> list[Route]:
    return [Route("GET", "/", index, "The Mini App page", "page", security=None,
                  responses={200: {"type": "string"}}, content_type="text/html")]
