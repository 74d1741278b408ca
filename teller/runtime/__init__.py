"""Teller's actor runtime: asyncio-native pykka actors under OTP-style supervisors.

Write an actor (plain methods are the usual way; ``on_receive`` for raw messages)::

    from teller.runtime import AsyncioActor, ThreadActor

    class WalletActor(AsyncioActor):
        expected_errors = (TellerError,)      # answers, not crashes: no restart
        mailbox_max = 1_000                   # past it senders get MailboxFull

        def __init__(self, user_id: str, store: Store) -> None:
            super().__init__()                # required (pykka)
            self.user_id, self.store = user_id, store

        async def on_start(self) -> None:     # sync or async; reload state here (restart = fresh)
            self.balances = await self.store.balances(self.user_id)

        async def withdraw(self, amount_minor: int) -> str:   # one message at a time
            self.log.info("withdraw", amount_minor=amount_minor)   # line carries actor=<path>
            ...

    class Signer(ThreadActor): ...            # handlers run on the actor's own thread (blocking/CPU)

Describe and start the tree (children start in order, stop in reverse)::

    from teller.runtime import ChildSpec, KeyedSpec, Restart, Strategy, SupervisorSpec, start_tree

    root = SupervisorSpec(name="root", children=(
        ChildSpec(name="signer", factory=lambda: Signer(settings)),
        SupervisorSpec(name="chains", strategy=Strategy.ONE_FOR_ONE, children=(
            ChildSpec(name="ethereum", factory=lambda: ChainWatcher("ethereum", store)),)),
        KeyedSpec(name="wallets", factory=lambda user_id: WalletActor(user_id, store),
                  idle_timeout_s=300, live_max=200_000),
    ), intensity=Intensity(restarts_max=5, period_s=10), backoff=Backoff(base_s=0.05, max_s=5))
    tree = await start_tree(root, on_restart=lambda event: RESTARTS.labels(event.path).inc())

Talk to actors through handles (stable across restarts; look them up once)::

    watcher = tree.handle("chains/ethereum")
    await watcher.call("rescan", from_block=100)      # runs watcher.rescan(from_block=100) inside it
    await watcher.ask(Ping(), timeout_s=2.0)          # on_receive; AskTimeout past the timeout
    watcher.tell(NewHead(123))                        # fire and forget
    wallet = tree.keyed("wallets").handle_for(user_id)  # activates on first use; O(1)
    await wallet.call("withdraw", amount_minor=5_000)

    tree.status()       # {"uptime_s": ..., "tree": Node} as /ops/status wants it
    await tree.stop()   # reverse order; tree.failed (an asyncio.Event) is set if the root gives up

Semantics worth knowing:
- An exception in ``expected_errors`` goes back to the caller (a tell logs it); the actor keeps
  its state. Any other exception - in ``on_start``, a tell, or an ask (the caller still gets it) -
  ends the instance; its supervisor restarts a fresh one from ``factory`` (permanent: always;
  transient: after a crash; temporary: never) per its strategy (one_for_one, one_for_all,
  rest_for_one), at most ``intensity.restarts_max`` in ``period_s`` (else the supervisor fails to
  its parent), after a backoff (first restart immediate, then base_s * 2^n with jitter, reset after
  ``reset_after_s`` of quiet). A BaseException ends only that actor.
- Messages queued in a crashed instance, and those sent while it restarts, reach the next instance.
  The restart buffer is bounded (``ChildSpec.buffer_max``): past it ``RestartBufferFull``; a child
  that will not come back raises ``ActorUnavailable``; a full mailbox ``MailboxFull``.
- Call handles from the loop thread; ``tell``/``ask``/``call`` also work from other threads (the
  returned future's ``get()`` blocks there). ``future.get()`` on the loop raises ``BlockingGetOnLoop``.
- pykka's ``Actor.start()``, ``ActorRef.tell/ask`` and proxies work on these actors too (on the
  loop), unsupervised; ``await ref.ask(msg, block=False)`` and ``await proxy.method()`` never block.
"""

from teller.runtime.actor import AsyncioActor, Call
from teller.runtime.errors import (
    ActorKilled,
    ActorRuntimeError,
    ActorUnavailable,
    AskTimeout,
    BlockingGetOnLoop,
    MailboxFull,
    RestartBufferFull,
    StartFailed,
    SupervisorFailed,
)
from teller.runtime.future import AsyncioFuture
from teller.runtime.handle import Handle
from teller.runtime.keyed import KeyedSupervisor
from teller.runtime.pass_loop import PassLoopActor
from teller.runtime.spec import Backoff, ChildSpec, Intensity, KeyedSpec, Restart, Strategy, SupervisorSpec
from teller.runtime.status import RestartEvent
from teller.runtime.supervisor import Supervisor
from teller.runtime.thread import ThreadActor
from teller.runtime.tree import Tree, start_tree

__all__ = [
    "PassLoopActor",
    "ActorKilled",
    "ActorRuntimeError",
    "ActorUnavailable",
    "AskTimeout",
    "AsyncioActor",
    "AsyncioFuture",
    "Backoff",
    "BlockingGetOnLoop",
    "Call",
    "ChildSpec",
    "Handle",
    "Intensity",
    "KeyedSpec",
    "KeyedSupervisor",
    "MailboxFull",
    "Restart",
    "RestartBufferFull",
    "RestartEvent",
    "StartFailed",
    "Strategy",
    "Supervisor",
    "SupervisorFailed",
    "SupervisorSpec",
    "ThreadActor",
    "Tree",
    "start_tree",
]
