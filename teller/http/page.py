"""The Mini App page: static HTML, CSS and JavaScript, no build step.

The page itself (``index.html``) lives beside this module, outside ``static/``, so it is served once,
at ``/``; ``/static/`` holds only the scripts and the stylesheet. Its security headers come from
:mod:`teller.http.headers`, as every response's do.
"""

from __future__ import annotations

from pathlib import Path

from aiohttp import web

from teller.http.routing import Route

__all__ = ["PAGE_FILE", "STATIC_DIR", "routes"]

STATIC_DIR = Path(__file__).with_name("static")
PAGE_FILE = Path(__file__).with_name("index.html")


async def index(request: web.Request) -> web.FileResponse:
    response = web.FileResponse(PAGE_FILE)
    response.headers["Cache-Control"] = "no-cache"
    return response


def routes() -> list[Route]:
    return [Route("GET", "/", index, "The Mini App page", "page", security=None,
                  responses={200: {"type": "string"}}, content_type="text/html")]
