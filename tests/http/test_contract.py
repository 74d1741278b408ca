"""docs/ is the contract (docs/ARCHITECTURE.md, "The contract"), checked against the code; never skipped.

- Every route the server registers (all flows, dev mode and webhook mode on, so every conditional route
  is there) has a ``### `METHOD /path``` heading in docs/API.md, and every such heading is served.
- The served OpenAPI document (built from the same route table) lists no route the server does not serve.
- Every configuration key teller/config.py accepts has a table row ``| `section.key` |`` in docs/CONFIG.md,
  with its environment variable when it has one, and every row is a key the loader accepts.
"""

from __future__ import annotations

import dataclasses
import re
import typing
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

import teller.config as config
from teller.app import start_teller
from tests.fixtures.http import settings_for_tests

DOCS = Path(__file__).resolve().parents[2] / "docs"
API_MD = DOCS / "API.md"
CONFIG_MD = DOCS / "CONFIG.md"
SIGNER_MNEMONIC = "abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon abandon about"
# A route's heading: "### `GET /api/v1/me`" (levels 2 to 4). Path parameters as the server names them.
ROUTE_HEADING = re.compile(r"^#{2,4} `(GET|POST|PUT|PATCH|DELETE) (/[^`\s]*)`\s*$", re.MULTILINE)
# A key's row: "| `server.port` | 8080 | TELLER_PORT | ... |".
KEY_ROW = re.compile(r"^\| `([A-Za-z0-9_.\[\]]+)` \|(.*)$", re.MULTILINE)


def documented_routes() -> set[tuple[str, str]]:
    return set(ROUTE_HEADING.findall(API_MD.read_text(encoding="utf-8")))


def served_routes(app: web.Application) -> set[tuple[str, str]]:
    routes = set()
    for route in app.router.routes():
        resource = route.resource
        assert resource is not None
        if isinstance(resource, web.StaticResource):
            if route.method == "GET":  # aiohttp adds HEAD beside it
                routes.add(("GET", f"{resource.canonical}/{{filename}}"))
            continue
        routes.add((route.method, resource.canonical))
    return routes


def _listing(routes: set[tuple[str, str]]) -> str:
    return "\n".join(f"  ### `{method} {path}`" for method, path in sorted(routes, key=lambda r: (r[1], r[0])))


async def test_every_served_route_is_documented_and_every_documented_route_is_served(store: Any) -> None:
    settings = settings_for_tests(
        auth={"dev": True},                       # dev-only routes (/dev/*)
        signer={"mnemonic": SIGNER_MNEMONIC},
        telegram={"mode": "webhook", "webhook_secret": "webhook-secret-for-tests",
                  "webhook_path_secret": "webhook-path-secret-for-tests"},
    )
    teller = await start_teller(settings, store=store)
    try:
        served = served_routes(teller.app)
        async with TestClient(TestServer(teller.app, host="127.0.0.1")) as client:
            doc = await (await client.get("/api/v1/openapi.json")).json()
    finally:
        await teller.stop()
    in_openapi = {(method.upper(), path) for path, ops in doc["paths"].items() for method in ops}
    documented = documented_routes()

    assert len(served) >= 20, "the route table looks empty: is every flow built?"
    where = API_MD.relative_to(DOCS.parent)
    problems = []
    if served - documented:
        problems.append(f"served but not documented in {where}: add a heading per route in the section of its "
                        f"area (docs/ is the contract):\n{_listing(served - documented)}")
    if documented - served:
        problems.append(f"documented in {where} but not served (a removed or renamed route? update the "
                        f"heading):\n{_listing(documented - served)}")
    if in_openapi - served:
        problems.append(f"in the OpenAPI document but not served:\n{_listing(in_openapi - served)}")
    assert not problems, "\n".join(problems)


def accepted_keys() -> dict[str, str | None]:
    """Every key the loader accepts, as CONFIG.md names it, with its environment variable (or None)."""
    hints = typing.get_type_hints(config.Settings)
    keys: dict[str, str | None] = {}
    for section in sorted(config._SECTIONS - {"chains", "limits"}):
        cls = typing.get_args(hints[section])[0] if typing.get_args(hints[section]) else hints[section]
        for f in dataclasses.fields(cls):
            keys[f"{section}.{f.name}"] = config._ENV.get((section, f.name))
    for key in (*config._CHAIN_PLAIN, "native", "tokens"):
        keys[f"chains[].{key}"] = None
    for key in config._ASSET_KEYS:
        if key != "contract":
            keys[f"chains[].native.{key}"] = None
        keys[f"chains[].tokens[].{key}"] = None
    keys["limits.withdrawal_daily_per_user"] = None
    return keys


def test_every_config_key_is_in_config_md_and_every_row_is_a_key() -> None:
    rows = {key: rest for key, rest in KEY_ROW.findall(CONFIG_MD.read_text(encoding="utf-8"))}
    accepted = accepted_keys()
    assert "nats.subject_prefix" in accepted and "server.port" in accepted, "the key list is incomplete"
    where = CONFIG_MD.relative_to(DOCS.parent)
    missing = sorted(set(accepted) - set(rows))
    unknown = sorted(set(rows) - set(accepted))
    env_missing = sorted(f"{k} ({var})" for k, var in accepted.items() if var and k in rows and var not in rows[k])
    problems = []
    if missing:
        problems.append(f"keys of teller/config.py with no row in {where} (add '| `key` | default | env | what |' "
                        f"in its section):\n" + "\n".join(f"  {k}" for k in missing))
    if unknown:
        problems.append(f"rows in {where} for keys teller/config.py does not accept (removed or renamed?):\n"
                        + "\n".join(f"  {k}" for k in unknown))
    if env_missing:
        problems.append(f"rows in {where} that do not name their environment variable:\n"
                        + "\n".join(f"  {k}" for k in env_missing))
    assert not problems, "\n".join(problems)


def test_readme_and_docs_link_only_files_inside_the_repo() -> None:
    repo = DOCS.parent
    problems = []
    for page in [repo / "README.md", *sorted(DOCS.glob("*.md"))]:
        text = page.read_text(encoding="utf-8")
        if "../shared" in text or "/work/" in text:
            problems.append(f"{page.relative_to(repo)} refers outside the repo (../shared or /work/)")
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text):
            if re.match(r"[a-z]+://", target):
                continue
            resolved = (page.parent / target).resolve()
            if not resolved.is_relative_to(repo) or not resolved.exists():
                problems.append(f"{page.relative_to(repo)} links {target}, which is not a file in the repo")
    assert not problems, "\n".join(problems)
