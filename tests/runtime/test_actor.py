from __future__ import annotations

import asyncio
import threading
from typing import Any

import pytest

from teller.runtime import AsyncioActor, BlockingGetOnLoop, MailboxFull

from .helpers import Boom, Declined, Recorder, until


class Echo(AsyncioActor):
    def __init__(self) -> None:
        super().__init__()
        self.inside = 0
        self.max_inside = 0

    async def on_receive(self, message: Any) -> Any:
        self.inside += 1
        self.max_inside = max(self.max_inside, self.inside)
        await asyncio.sleep(0)
        self.inside -= 1
        return message

    def thread_name(self) -> str:
        return threading.current_thread().name


async def test_ask_tell_and_proxy_work_through_pykka_refs() -> None:
    journal: list[str] = []
    ref = Recorder.start("a", journal)
    ref.tell("x")
    assert await ref.ask("y", block=False) == ("a", 2)
    assert await ref.proxy().slow_add(2, 3) == 5
    assert await ref.proxy().get_count() == 2
    await ref.stop(block=False)
    assert journal == ["start a", "stop a"]


async def test_async_handlers_run_one_message_at_a_time() -> None:
    ref = Echo.start()
    replies = await asyncio.gather(*(ref.ask(i, block=False) for i in range(50)))
    assert replies == list(range(50))
    assert await ref.proxy().max_inside == 1
    await ref.stop(block=False)


async def test_actor_runs_on_the_loop_thread_not_its_own() -> None:
    ref = Echo.start()
    assert await ref.proxy().thread_name() == threading.current_thread().name
    await ref.stop(block=False)


async def test_blocking_get_on_the_loop_thread_raises_instead_of_deadlocking() -> None:
    ref = Echo.start()
    future = ref.ask("hi", block=False)
    with pytest.raises(BlockingGetOnLoop):
        future.get()
    assert await future == "hi"
    assert future.get() == "hi"  # once done, get() is fine anywhere
    await ref.stop(block=False)


async def test_tell_and_ask_from_another_thread() -> None:
    journal: list[str] = []
    ref = Recorder.start("t", journal)

    def from_thread() -> Any:
        ref.tell("one")
        return ref.ask("two", timeout=5)

    assert await asyncio.to_thread(from_thread) == ("t", 2)
    await ref.stop(block=False)


async def test_expected_error_goes_to_caller_and_actor_keeps_state() -> None:
    ref = Recorder.start("e", [])
    await ref.ask("x", block=False)
    with pytest.raises(Declined):
        await ref.ask("decline", block=False)
    assert ref.is_alive()
    assert await ref.ask("x", block=False) == ("e", 2)
    await ref.stop(block=False)


async def test_unexpected_error_in_ask_reaches_caller_and_ends_the_instance() -> None:
    ref = Recorder.start("u", [])
    with pytest.raises(Boom):
        await ref.ask("crash", block=False)
    await until(lambda: not ref.is_alive())


async def test_base_exception_in_one_actor_leaves_others_alive() -> None:
    victim = Recorder.start("v", [])
    bystander = Recorder.start("b", [])
    with pytest.raises(SystemExit):
        await victim.ask("exit", block=False)
    await until(lambda: not victim.is_alive())
    assert bystander.is_alive()
    assert await bystander.ask("x", block=False) == ("b", 1)
    await bystander.stop(block=False)


async def test_full_mailbox_refuses_with_a_clear_error() -> None:
    class Tiny(Recorder):
        mailbox_max = 3

    ref = Tiny.start("tiny", [])
    for _ in range(3):
        ref.tell("x")  # the actor cannot run until we yield: the mailbox fills
    with pytest.raises(MailboxFull):
        ref.tell("x")
    await until(lambda: ref.actor_inbox.empty())
    assert await ref.ask("x", block=False) == ("tiny", 4)
    await ref.stop(block=False)


def test_an_actor_cannot_shadow_the_runtimes_own_attributes() -> None:
    import pytest

    from teller.runtime import AsyncioActor

    with pytest.raises(TypeError, match="_ended"):
        class Shadowing(AsyncioActor):  # a method named like the runtime's state would freeze the actor
            def _ended(self) -> None: ...


async def test_an_actor_setting_the_runtimes_state_in_init_fails_to_start() -> None:
    import pytest

    from teller.runtime import AsyncioActor, ChildSpec, StartFailed, SupervisorSpec, start_tree

    class SetsTask(AsyncioActor):
        def __init__(self) -> None:
            super().__init__()
            self._task = None  # the runtime's own name

    with pytest.raises((StartFailed, TypeError)):
        await start_tree(SupervisorSpec(name="root", children=(ChildSpec(name="a", factory=SetsTask),)))
