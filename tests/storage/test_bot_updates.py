"""The bot's update memory: each id claimed once, across reopened stores, pruned by age and by count."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

from teller.storage import open_store, utc_now
from teller.storage.bot_updates import KEPT_S, PRUNE_EVERY_CLAIMS, BotUpdates


async def test_an_update_id_is_claimed_once(store: Any) -> None:
    updates = BotUpdates(store)
    assert await updates.claim(1001) is True
    assert await updates.claim(1001) is False
    assert await updates.claim(1002) is True


async def test_concurrent_claims_of_one_id_have_one_winner(store: Any) -> None:
    results = await asyncio.gather(*(BotUpdates(store).claim(7) for _ in range(8)))
    assert sorted(results) == [False] * 7 + [True]


async def test_a_claim_survives_a_reopened_store(store: Any, store_url: str) -> None:
    assert await BotUpdates(store).claim(555) is True
    again = await open_store(store_url)
    try:
        assert await BotUpdates(again).claim(555) is False
    finally:
        await again.close()


async def _insert(store: Any, update_id: int, *, age_s: float) -> None:
    await store.execute("INSERT INTO bot_updates (update_id, received_at) VALUES (?, ?)",
                        update_id, utc_now() - timedelta(seconds=age_s))


async def test_prune_forgets_ids_older_than_the_age_bound(store: Any) -> None:
    updates = BotUpdates(store)
    await _insert(store, 1, age_s=KEPT_S + 60)
    await _insert(store, 2, age_s=KEPT_S - 60)
    await updates.prune()
    assert [r["update_id"] for r in await store.fetch_all("SELECT update_id FROM bot_updates")] == [2]


async def test_prune_keeps_the_newest_rows_past_the_count_bound(store: Any) -> None:
    for update_id in range(10):
        await _insert(store, update_id, age_s=100 - update_id)  # 9 is the newest
    await BotUpdates(store).prune(kept_max=4)
    rows = await store.fetch_all("SELECT update_id FROM bot_updates ORDER BY update_id")
    assert [r["update_id"] for r in rows] == [6, 7, 8, 9]


async def test_claims_prune_on_the_first_claim_and_then_every_so_often(store: Any) -> None:
    await _insert(store, 1, age_s=KEPT_S + 60)
    updates = BotUpdates(store)
    assert await updates.claim(2) is True
    assert await updates.count() == 1  # the stale id went on the first claim
    await _insert(store, 3, age_s=KEPT_S + 60)
    for update_id in range(100, 100 + PRUNE_EVERY_CLAIMS - 1):
        await updates.claim(update_id)
    assert await updates.count() == PRUNE_EVERY_CLAIMS + 1  # not yet pruned
    await updates.claim(10_000)
    assert await updates.count() == PRUNE_EVERY_CLAIMS + 1  # pruned (id 3 went), then 10_000 came
