"""The flows Teller runs, each a plug-in of actors and routes that the app wires into one tree.

A flow module exposes ``build(ctx: AppContext) -> Flow``. ``Flow.children`` places child specs into
the tree's fixed slots (``signer``, ``chains``, ``withdrawals``, ``payments``, ``outbox-relay``,
``notifier``); ``routes`` extend the HTTP API; ``status`` adds keys to /ops/status; ``close``
releases clients after the tree has stopped.
"""

from teller.flows.base import AppContext, Flow, SLOTS

__all__ = ["AppContext", "Flow", "SLOTS"]
