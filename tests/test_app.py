"""The whole app wired from settings: the tree has its slots, the server answers, it stops cleanly."""

from __future__ import annotations

from typing import Any

from aiohttp.test_utils import TestClient, TestServer

from teller.app import start_teller
from tests.fixtures.http import OPS_TOKEN, settings_for_tests


async def test_started_teller_serves_status_with_the_supervisor_tree(store: Any) -> None:
    settings = settings_for_tests(chains=[])
    teller = await start_teller(settings, store=store)
    try:
        async with TestClient(TestServer(teller.app, host="127.0.0.1")) as client:
            doc = await (await client.get("/ops/status", headers={"Authorization": f"Bearer {OPS_TOKEN}"})).json()
            names = [child["name"] for child in doc["tree"]["children"]]
            assert {"chains", "withdrawals", "wallets", "payments"} <= set(names)
            assert doc["tree"]["state"] == "running"
            assert doc["outbox"]["backlog"] == 0
            assert (await client.get("/readyz")).status == 200
    finally:
        await teller.stop()


async def test_wallet_actor_runs_commands_for_its_user(store: Any) -> None:
    teller = await start_teller(settings_for_tests(chains=[]), store=store)
    try:
        async def whoami(_store: Any, user_id: int) -> int:
            return user_id

        assert await teller.ctx.wallet(7).call("run", whoami) == 7
    finally:
        await teller.stop()


async def test_stopping_teller_leaves_a_store_it_was_given_open(store: Any) -> None:
    teller = await start_teller(settings_for_tests(chains=[]), store=store)
    await teller.stop()
    assert await store.fetch_one("SELECT COUNT(*) AS n FROM users") == {"n": 0}  # still the caller's, still open


async def test_a_crash_text_in_ops_status_carries_no_url_path_nor_card_number() -> None:
    from types import SimpleNamespace

    from teller.http.ops import status_document

    failure = {"at": "2026-12-01T00:00:00Z",
               "error": "ClientResponseError: 429 at https://node.example/v3/SECRETKEY?apikey=SECRET2 for 6037991234567893"}
    tree = {"name": "root", "kind": "supervisor", "state": "running", "restarts": 1, "last_failure": None,
            "children": [{"name": "chains", "kind": "actor", "state": "running", "restarts": 1,
                          "last_failure": failure, "children": []}]}
    services = SimpleNamespace(tree=SimpleNamespace(status=lambda: {"tree": tree}), started_at_s=0.0,
                               settings=SimpleNamespace(server=SimpleNamespace(node="n1")), extra_status=None)
    doc = await status_document(services)  # type: ignore[arg-type]
    error = doc["tree"]["children"][0]["last_failure"]["error"]
    assert "SECRET" not in error and "/v3/" not in error and "6037991234567893" not in error
    assert "https://node.example" in error and "603799******7893" in error
