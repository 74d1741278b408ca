"""The runtime's own errors: what a caller of a handle or a future can be told.

::

    ActorRuntimeError
    ├── MailboxFull ............ the actor's mailbox is at its bound; the message was refused
    │   └── RestartBufferFull .. the child is restarting and its buffer is at its bound; refused
    ├── ActorUnavailable ....... the child is stopped or failed and will not come back by itself
    ├── AskTimeout ............. no reply within ``timeout_s`` (the message may still be handled)
    ├── BlockingGetOnLoop ...... ``future.get()`` on the event-loop thread would deadlock: await it
    ├── ActorKilled ............ exit reason of an actor cancelled after its shutdown timeout
    ├── SupervisorFailed ....... exit reason of a supervisor past its restart intensity
    └── StartFailed ............ a child failed to start while the tree was starting

None of these is a domain error: they say the runtime could not deliver, never that the request
was wrong. The HTTP layer maps them to 503.
"""

from __future__ import annotations


class ActorRuntimeError(Exception):
    """Base of every error the runtime itself raises."""


class MailboxFull(ActorRuntimeError):
    """The message was refused because a bounded queue is full (never silently dropped)."""


class RestartBufferFull(MailboxFull):
    """The child is restarting and its restart buffer is full; the message was refused."""


class ActorUnavailable(ActorRuntimeError):
    """The child is stopped or its supervisor failed; nothing will handle the message."""


class AskTimeout(ActorRuntimeError, TimeoutError):
    """No reply arrived within the timeout. The actor may still handle the message later."""


class BlockingGetOnLoop(ActorRuntimeError):
    """A blocking ``get()`` was called on the event-loop thread, which would deadlock it."""


class ActorKilled(ActorRuntimeError):
    """The actor did not stop within its shutdown timeout and was cancelled."""


class SupervisorFailed(ActorRuntimeError):
    """A supervisor exceeded its restart intensity; its parent decides what happens next."""


class StartFailed(ActorRuntimeError):
    """A child failed in ``on_start`` while the tree was starting."""
