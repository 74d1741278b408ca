from __future__ import annotations

import asyncio
from typing import Any

import pytest
import structlog.testing

from teller.runtime import (
    ActorKilled,
    ActorUnavailable,
    Backoff,
    ChildSpec,
    Intensity,
    RestartBufferFull,
    RestartEvent,
    Restart,
    StartFailed,
    Strategy,
    SupervisorSpec,
    start_tree,
)

from .helpers import Boom, Declined, Recorder, until

NO_BACKOFF = Backoff(base_s=0.0, max_s=0.0, jitter=0.0)


def child(name: str, journal: list[str], **kwargs: Any) -> ChildSpec:
    fail_start = kwargs.pop("fail_start", None)
    return ChildSpec(name=name, factory=lambda: Recorder(name, journal, fail_start=fail_start), **kwargs)


def sup(name: str, *children: Any, **kwargs: Any) -> SupervisorSpec:
    kwargs.setdefault("backoff", NO_BACKOFF)
    return SupervisorSpec(name=name, children=children, **kwargs)


async def test_children_start_in_order_and_stop_in_reverse() -> None:
    journal: list[str] = []
    tree = await start_tree(sup("root", child("a", journal), sup("inner", child("b", journal)), child("c", journal)))
    assert journal == ["start a", "start b", "start c"]
    await tree.stop()
    assert journal[3:] == ["stop c", "stop b", "stop a"]
    with pytest.raises(ActorUnavailable):
        tree.handle("a").tell("x")


async def test_one_for_one_restarts_only_the_crashed_child_with_clean_state() -> None:
    journal: list[str] = []
    tree = await start_tree(sup("root", child("a", journal), child("b", journal)))
    a, b = tree.handle("a"), tree.handle("b")
    await a.ask("x")
    await b.ask("x")
    with pytest.raises(Boom):
        await a.ask("crash")  # the caller gets the error ...
    assert await a.ask("x") == ("a", 1)  # ... and the next answer comes from a fresh instance
    assert await b.ask("x") == ("b", 2)  # the sibling kept its state
    assert journal.count("start a") == 2 and journal.count("start b") == 1
    assert a.restarts == 1 and a.last_failure is not None
    await tree.stop()


async def test_one_for_all_restarts_every_child_in_order() -> None:
    journal: list[str] = []
    tree = await start_tree(
        sup("root", child("a", journal), child("b", journal), child("c", journal), strategy=Strategy.ONE_FOR_ALL)
    )
    await tree.handle("c").ask("x")
    journal.clear()
    tree.handle("b").tell("crash")
    await until(lambda: journal.count("start c") == 1)
    assert await tree.handle("c").ask("x") == ("c", 1)  # a fresh c
    assert journal == ["stop c", "stop a", "start a", "start b", "start c"]
    await tree.stop()


async def test_rest_for_one_restarts_the_crashed_child_and_those_after_it() -> None:
    journal: list[str] = []
    tree = await start_tree(
        sup("root", child("a", journal), child("b", journal), child("c", journal), strategy=Strategy.REST_FOR_ONE)
    )
    await tree.handle("c").ask("x")
    journal.clear()
    tree.handle("b").tell("crash")
    await until(lambda: journal.count("start c") == 1)
    assert await tree.handle("c").ask("x") == ("c", 1)  # a fresh c
    assert journal == ["stop c", "start b", "start c"]
    await tree.stop()


async def test_transient_and_temporary_children_are_not_restarted_after_a_normal_exit() -> None:
    journal: list[str] = []
    tree = await start_tree(
        sup(
            "root",
            child("perm", journal),
            child("trans", journal, restart=Restart.TRANSIENT),
            child("temp", journal, restart=Restart.TEMPORARY),
        )
    )
    for name in ("perm", "trans", "temp"):
        tree.handle(name).actor.stop()  # a normal exit, asked by the actor itself
    await until(lambda: tree.handle("perm").restarts == 1)
    await until(lambda: tree.handle("trans").state == "stopped" and tree.handle("temp").state == "stopped")
    assert await tree.handle("perm").ask("x") == ("perm", 1)
    with pytest.raises(ActorUnavailable):
        await tree.handle("trans").ask("x")
    await tree.stop()


async def test_transient_restarts_after_a_crash_temporary_does_not() -> None:
    journal: list[str] = []
    tree = await start_tree(
        sup("root", child("trans", journal, restart=Restart.TRANSIENT), child("temp", journal, restart=Restart.TEMPORARY))
    )
    with pytest.raises(Boom):
        await tree.handle("trans").ask("crash")
    with pytest.raises(Boom):
        await tree.handle("temp").ask("crash")
    assert await tree.handle("trans").ask("x") == ("trans", 1)
    await until(lambda: tree.handle("temp").state == "stopped")
    with pytest.raises(ActorUnavailable):
        tree.handle("temp").tell("x")
    await tree.stop()


async def test_expected_errors_do_not_restart() -> None:
    tree = await start_tree(sup("root", child("a", [])))
    await tree.handle("a").ask("x")
    with pytest.raises(Declined):
        await tree.handle("a").ask("decline")
    assert await tree.handle("a").ask("x") == ("a", 2)
    assert tree.handle("a").restarts == 0
    await tree.stop()


async def test_failure_in_on_start_counts_as_an_exit_and_is_retried() -> None:
    journal: list[str] = []
    fail_start = [False, True, True, False]  # first start ok, then two failed restarts, then ok
    tree = await start_tree(sup("root", child("a", journal, fail_start=fail_start)))
    with pytest.raises(Boom):
        await tree.handle("a").ask("crash")
    assert await tree.handle("a").ask("x") == ("a", 1)
    assert journal.count("start a") == 4
    await tree.stop()


async def test_start_failure_during_tree_start_stops_the_started_and_raises() -> None:
    journal: list[str] = []
    with pytest.raises(StartFailed, match="b"):
        await start_tree(sup("root", child("a", journal), child("b", journal, fail_start=[True]), child("c", journal)))
    assert journal == ["start a", "start b", "stop a"]


async def test_intensity_exceeded_fails_the_supervisor_and_its_parent_restarts_it() -> None:
    journal: list[str] = []
    events: list[RestartEvent] = []
    inner = sup("inner", child("a", journal), intensity=Intensity(restarts_max=2, period_s=60))
    tree = await start_tree(sup("root", inner, child("z", journal)), on_restart=events.append)
    a = tree.handle("a" if False else "inner/a")
    for _ in range(3):
        a.tell("crash")
        await until(lambda: a.state == "running" and a.actor is not None and a.actor.count == 0)
        await asyncio.sleep(0)
    await until(lambda: tree.node("inner").restarts == 1)
    assert await a.ask("x") == ("a", 1)  # the handle outlived its supervisor's restart
    assert tree.node("inner").last_failure is not None
    assert {event.path for event in events} == {"/root/inner/a", "/root/inner"}
    assert journal.count("start z") == 1
    await tree.stop()


async def test_root_intensity_exceeded_fails_the_tree() -> None:
    tree = await start_tree(sup("root", child("a", []), intensity=Intensity(restarts_max=1, period_s=60)))
    a = tree.handle("a")
    a.tell("crash")
    await until(lambda: a.restarts == 1 and a.state == "running")
    a.tell("crash")
    await asyncio.wait_for(tree.failed.wait(), 5)
    assert tree.status()["tree"]["state"] == "failed"
    with pytest.raises(ActorUnavailable):
        a.tell("x")


async def test_backoff_delays_restarts_and_messages_wait_in_the_buffer() -> None:
    journal: list[str] = []
    backoff = Backoff(base_s=0.05, max_s=0.05, jitter=0.0, reset_after_s=60)
    tree = await start_tree(sup("root", child("a", journal, buffer_max=2), backoff=backoff))
    a = tree.handle("a")
    a.tell("crash")
    await until(lambda: a.restarts == 1 and a.state == "running")  # first restart: immediate
    a.tell("crash")
    await until(lambda: a.state == "restarting")  # second: waits out the backoff
    replies = [a.ask("x"), a.ask("x")]
    with pytest.raises(RestartBufferFull):
        a.tell("x")  # past the bound: refused, not dropped
    assert [await reply for reply in replies] == [("a", 1), ("a", 2)]
    assert a.restarts == 2
    await tree.stop()


async def test_messages_queued_behind_a_crash_reach_the_next_instance() -> None:
    tree = await start_tree(sup("root", child("a", [])))
    a = tree.handle("a")
    a.tell("crash")
    replies = [a.ask("x") for _ in range(5)]  # queued behind the crash in the same mailbox
    assert [await reply for reply in replies] == [("a", n) for n in range(1, 6)]
    await tree.stop()


async def test_base_exception_restarts_only_that_actor() -> None:
    tree = await start_tree(sup("root", child("a", []), child("b", [])))
    await tree.handle("b").ask("x")
    with pytest.raises(SystemExit):
        await tree.handle("a").ask("exit")
    assert await tree.handle("a").ask("x") == ("a", 1)
    assert await tree.handle("b").ask("x") == ("b", 2)
    await tree.stop()


async def test_call_runs_methods_inside_the_actor() -> None:
    tree = await start_tree(sup("root", child("a", [])))
    a = tree.handle("a")
    assert await a.call("slow_add", 2, b=3) == 5
    await a.ask("x")
    assert await a.call("get_count") == 1
    with pytest.raises(AttributeError):
        a.call("_private")
    await tree.stop()


async def test_handle_works_from_another_thread() -> None:
    tree = await start_tree(sup("root", child("a", [])))
    a = tree.handle("a")

    def from_thread() -> Any:
        a.tell("x")
        return a.ask("x").get(timeout=5)  # type: ignore[attr-defined]

    assert await asyncio.to_thread(from_thread) == ("a", 2)
    await tree.stop()


async def test_status_is_the_ops_node_shape() -> None:
    tree = await start_tree(sup("root", child("a", []), sup("inner", child("b", []))))
    with pytest.raises(Boom):
        await tree.handle("a").ask("crash")
    await tree.handle("a").ask("x")
    status = tree.status()
    assert status["uptime_s"] >= 0
    root = status["tree"]
    assert root["name"] == "root" and root["kind"] == "supervisor" and root["strategy"] == "one_for_one"
    assert root["state"] == "running"
    a = root["children"][0]
    assert set(a) == {"name", "kind", "state", "restarts", "last_failure", "mailbox", "processed", "children"}
    assert a["restarts"] == 1 and a["processed"] == 2 and a["last_failure"]["error"].startswith("Boom")
    assert a["last_failure"]["at"].endswith("Z")
    assert root["children"][1]["children"][0]["name"] == "b"
    await tree.stop()


class Stuck(Recorder):
    """Its ``hang`` never returns (a handler awaiting something that never comes)."""

    async def hang(self) -> None:
        await asyncio.Event().wait()


async def test_shutdown_timeout_cancels_a_stuck_actor_and_answers_its_caller() -> None:
    journal: list[str] = []
    spec = ChildSpec(name="stuck", factory=lambda: Stuck("stuck", journal), shutdown_s=0.05)
    tree = await start_tree(sup("root", spec, child("z", journal)))
    stuck = tree.handle("stuck")
    hung = asyncio.ensure_future(stuck.call("hang"))
    await until(lambda: stuck.actor is not None and stuck.actor.count == 0 and stuck.mailbox == 0)
    await asyncio.sleep(0)
    await tree.stop()  # would never return without the shutdown timeout
    with pytest.raises(ActorKilled):
        await hung
    assert journal[-1] == "stop z" and "stop stuck" not in journal  # killed, not a clean stop
    with pytest.raises(ActorUnavailable):
        await stuck.ask("x")


async def test_one_for_all_with_backoff_restarts_every_child_after_the_delay() -> None:
    journal: list[str] = []
    backoff = Backoff(base_s=0.05, max_s=0.05, jitter=0.0, reset_after_s=60)
    tree = await start_tree(sup("root", child("a", journal), child("b", journal), strategy=Strategy.ONE_FOR_ALL,
                                backoff=backoff))
    a, b = tree.handle("a"), tree.handle("b")
    assert await b.ask("x") == ("b", 1)
    a.tell("crash")
    await until(lambda: a.restarts == 1 and b.restarts == 1 and a.state == b.state == "running")  # first: now
    assert await b.ask("x") == ("b", 1)  # b restarted from clean state too
    a.tell("crash")
    await until(lambda: a.state == "restarting" and b.state == "restarting")  # second: after the backoff
    replies = [a.ask("x"), b.ask("x")]  # buffered while both wait
    assert [await reply for reply in replies] == [("a", 1), ("b", 1)]
    assert (a.restarts, b.restarts) == (2, 2)
    assert journal.count("start a") == journal.count("start b") == 3
    await tree.stop()


async def test_rest_for_one_with_backoff_leaves_earlier_children_alone() -> None:
    journal: list[str] = []
    backoff = Backoff(base_s=0.05, max_s=0.05, jitter=0.0, reset_after_s=60)
    tree = await start_tree(sup("root", child("a", journal), child("b", journal), child("c", journal),
                                strategy=Strategy.REST_FOR_ONE, backoff=backoff))
    a, b, c = tree.handle("a"), tree.handle("b"), tree.handle("c")
    assert await a.ask("x") == ("a", 1)
    b.tell("crash")
    await until(lambda: b.restarts == 1 and c.restarts == 1 and b.state == c.state == "running")
    b.tell("crash")
    await until(lambda: b.state == "restarting" and c.state == "restarting")
    assert a.state == "running"
    replies = [b.ask("x"), c.ask("x")]
    assert [await reply for reply in replies] == [("b", 1), ("c", 1)]
    assert await a.ask("x") == ("a", 2)  # a kept its state throughout
    assert a.restarts == 0
    await tree.stop()


async def test_a_crash_loop_logs_its_traceback_once_then_only_counts() -> None:
    journal: list[str] = []
    tree = await start_tree(sup("root", child("a", journal)))
    a = tree.handle("a")
    with structlog.testing.capture_logs() as logs:
        for _ in range(3):
            with pytest.raises(Boom):
                await a.ask("crash")
            await a.ask("x")
    crashes = [entry for entry in logs if entry["event"].startswith("actor crashed")]
    assert [entry["event"] for entry in crashes] == ["actor crashed", "actor crashed again", "actor crashed again"]
    assert "exc_info" in crashes[0] and all("exc_info" not in entry for entry in crashes[1:])
    await tree.stop()
