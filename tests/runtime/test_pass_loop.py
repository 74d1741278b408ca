"""PassLoopActor: passes repeat through the mailbox; an expected error is a failed pass, a crash restarts."""

from __future__ import annotations

from typing import Any

from teller.runtime import Backoff, ChildSpec, PassLoopActor, SupervisorSpec, start_tree

from .helpers import Boom, Declined, until


class Counter(PassLoopActor):
    expected_errors = (Declined,)
    pass_method = "count"

    def __init__(self, script: list[str], seen: list[tuple[Any, int]]) -> None:
        super().__init__()
        self.script, self.seen = script, seen
        self.passes = 0

    async def count(self) -> int:
        self.passes += 1
        step = self.script.pop(0) if self.script else "ok"
        if step == "decline":
            raise Declined("not now")
        if step == "crash":
            raise Boom("bad state")
        return self.passes

    def delay_after(self, result: Any, failures: int) -> float:
        self.seen.append((result, failures))
        return 0.0

    def get_passes(self) -> int:
        return self.passes


async def test_passes_repeat_count_failures_and_restart_after_a_crash() -> None:
    seen: list[tuple[Any, int]] = []
    script = ["ok", "decline", "decline", "ok", "crash"]
    tree = await start_tree(SupervisorSpec(name="root", backoff=Backoff(base_s=0.0, max_s=0.0, jitter=0.0), children=(
        ChildSpec(name="counter", factory=lambda: Counter(script, seen)),)))
    handle = tree.handle("counter")
    await until(lambda: handle.restarts == 1 and len(seen) >= 6)
    # one pass ok, two failed in a row, one ok; the crash ended that instance's loop ...
    assert seen[:4] == [(1, 0), (None, 1), (None, 2), (4, 0)]
    # ... and the fresh instance loops from its own clean state
    assert seen[4:6] == [(1, 0), (2, 0)]
    assert await handle.call("get_passes") >= 2  # callers are served between passes
    await tree.stop()
