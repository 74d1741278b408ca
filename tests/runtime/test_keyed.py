from __future__ import annotations

import asyncio
from typing import Any

import pytest

from teller.runtime import ActorUnavailable, AsyncioActor, Backoff, KeyedSpec, SupervisorSpec, start_tree

from .helpers import Boom, until


class Wallet(AsyncioActor):
    activations: dict[Any, int] = {}

    def __init__(self, key: Any, journal: list[str]) -> None:
        super().__init__()
        self.key = key
        self.journal = journal
        self.count = 0

    async def on_start(self) -> None:
        self.journal.append(f"start {self.key}")
        await asyncio.sleep(0)  # activation is not instantaneous: callers must still share it

    def on_stop(self) -> None:
        self.journal.append(f"stop {self.key}")

    def on_receive(self, message: Any) -> Any:
        if message == "crash":
            raise Boom(str(self.key))
        self.count += 1
        return (self.key, self.count)


def wallets(journal: list[str], **kwargs: Any) -> SupervisorSpec:
    kwargs.setdefault("backoff", Backoff(base_s=0.0, max_s=0.0, jitter=0.0))
    keyed = KeyedSpec(name="wallets", factory=lambda key: Wallet(key, journal), **kwargs)
    return SupervisorSpec(name="root", children=(keyed,))


async def test_single_activation_under_1000_concurrent_calls() -> None:
    journal: list[str] = []
    tree = await start_tree(wallets(journal))
    keyed = tree.keyed("wallets")

    async def use(n: int) -> Any:
        await asyncio.sleep(0)
        return await keyed.handle_for("alice").ask(n)

    replies = await asyncio.gather(*(use(n) for n in range(1000)))
    assert journal.count("start alice") == 1
    assert sorted(count for _, count in replies) == list(range(1, 1001))
    assert keyed.live == 1
    await tree.stop()


async def test_keys_are_independent_and_status_summarizes() -> None:
    journal: list[str] = []
    tree = await start_tree(wallets(journal))
    keyed = tree.keyed("wallets")
    for key in range(50):
        assert await keyed.handle_for(key).ask("x") == (key, 1)
    node = tree.status()["tree"]["children"][0]
    assert node["kind"] == "supervisor" and node["children"] == [] and node["live"] == 50
    await tree.stop()
    assert journal.count("stop 7") == 1


async def test_idle_children_are_passivated_and_come_back_on_use() -> None:
    journal: list[str] = []
    tree = await start_tree(wallets(journal, idle_timeout_s=0.05))
    keyed = tree.keyed("wallets")
    kept = keyed.handle_for("bob")
    assert await kept.ask("x") == ("bob", 1)
    await until(lambda: "stop bob" in journal)
    await until(lambda: keyed.live == 0)
    assert await kept.ask("x") == ("bob", 1)  # an old handle re-activates its key (fresh state)
    assert journal.count("start bob") == 2
    assert keyed.passivations == 1
    await tree.stop()


async def test_live_bound_passivates_the_least_recently_used_first() -> None:
    journal: list[str] = []
    tree = await start_tree(wallets(journal, live_max=3))
    keyed = tree.keyed("wallets")
    for key in ("a", "b", "c"):
        await keyed.handle_for(key).ask("x")
    await keyed.handle_for("a").ask("x")  # a is now the most recently used; b the least
    await keyed.handle_for("d").ask("x")
    await until(lambda: "stop b" in journal)
    assert not any(line in journal for line in ("stop a", "stop c"))
    await until(lambda: keyed.live == 3)
    await tree.stop()


async def test_messages_sent_while_passivating_reach_a_fresh_instance() -> None:
    journal: list[str] = []
    tree = await start_tree(wallets(journal))
    keyed = tree.keyed("wallets")
    handle = keyed.handle_for("eve")
    await handle.ask("x")
    keyed._passivate(handle)  # what the idle sweeper or the live bound does
    reply = handle.ask("x")  # arrives while the old instance finishes
    assert await reply == ("eve", 1)
    assert journal == ["start eve", "stop eve", "start eve"]
    await tree.stop()


async def test_crashed_child_restarts_and_others_keep_their_state() -> None:
    journal: list[str] = []
    tree = await start_tree(wallets(journal))
    keyed = tree.keyed("wallets")
    await keyed.handle_for("x").ask("m")
    with pytest.raises(Boom):
        await keyed.handle_for("y").ask("crash")
    assert await keyed.handle_for("y").ask("m") == ("y", 1)
    assert await keyed.handle_for("x").ask("m") == ("x", 2)
    assert keyed.handle_for("y").restarts == 1
    await tree.stop()


async def test_stopped_keyed_supervisor_refuses() -> None:
    tree = await start_tree(wallets([]))
    keyed = tree.keyed("wallets")
    await tree.stop()
    with pytest.raises(ActorUnavailable):
        keyed.handle_for("late")


async def test_keyed_intensity_exceeded_escalates_to_the_parent_which_restarts_it() -> None:
    from teller.runtime import ChildSpec, Intensity

    from .helpers import Recorder

    journal: list[str] = []
    keyed = KeyedSpec(name="wallets", factory=lambda key: Wallet(key, journal),
                      intensity=Intensity(restarts_max=2, period_s=60), backoff=Backoff(base_s=0.0, max_s=0.0, jitter=0.0))
    root = SupervisorSpec(name="root", children=(keyed, ChildSpec(name="z", factory=lambda: Recorder("z", journal))),
                          backoff=Backoff(base_s=0.0, max_s=0.0, jitter=0.0))
    tree = await start_tree(root)
    node = tree.keyed("wallets")
    kept = node.handle_for("u2")
    assert await kept.ask("x") == ("u2", 1)
    for key in ("u1", "u1", "u3"):  # three crashes in the window, two allowed
        node.handle_for(key).tell("crash")
        await asyncio.sleep(0.01)
    await until(lambda: node.restarts == 1 and node.state == "running")
    assert tree.root.last_failure is None and tree.running  # the parent absorbed it
    assert node.last_failure is not None and "intensity" in node.last_failure.error
    assert await kept.ask("x") == ("u2", 1)  # the old handle re-activates a fresh instance
    assert await tree.handle("z").ask("x") == ("z", 1)  # the sibling was not touched
    assert journal.count("start z") == 1
    await tree.stop()
