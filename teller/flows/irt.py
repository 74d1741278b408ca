"""The IRT flow: card verification, bank-statement sync and matching, user and ops routes.

On when both ``[paystar]`` and ``[irt]`` are configured: PaymentMatcher then StatementSync under
the ``payments`` slot (rest_for_one: a matcher restart restarts the sync after it; the sync
re-reads its page from the stored cursor). StatementSync runs only when there is a statement
source (``irt.statement_url`` or ``overrides["statement_source"]``). Off, the routes still exist and
answer 503 ``feature_disabled``.

Overrides (tests): ``paystar`` (a PaystarClient-like object), ``statement_source`` (a
StatementSource), ``statement_page_max`` (int).
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from typing import Any

from teller.actors.payment_matcher import PaymentMatcher
from teller.actors.statement_sync import CURSOR_NAME, PAGE_MAX_DEFAULT, StatementSync
from teller.config import IrtSettings, Settings
from teller.flows.base import AppContext, Flow
from teller.http.irt import routes as user_routes
from teller.http.ops_irt import routes as ops_routes
from teller.payments.cards import CARD_HASH_SECRET_LEN_MIN
from teller.payments.paystar import PaystarClient
from teller.payments.statement import HttpStatementSource
from teller.runtime import ChildSpec, Handle
from teller.storage.irt import LIST_LIMIT_MAX, IrtRepository

__all__ = ["build", "IrtService", "MATCHER_PATH", "SYNC_PATH", "card_hash_secret"]

MATCHER_PATH = "payments/payment-matcher"
SYNC_PATH = "payments/statement-sync"
_DERIVED_LABEL = b"teller/irt/card-hash/v1"


def card_hash_secret(settings: Settings) -> bytes:
    """``irt.card_hash_secret``, or a key derived from the JWT secret when unset (dev, tests).

    Derived, so that a deployment without the key still never stores a plain SHA of a card; a
    production deployment sets its own (rotating the JWT secret must not orphan every card).
    """
    assert settings.irt is not None
    configured = settings.irt.card_hash_secret.encode()
    if configured:
        if len(configured) < CARD_HASH_SECRET_LEN_MIN:
            raise ValueError(f"irt.card_hash_secret must be at least {CARD_HASH_SECRET_LEN_MIN} bytes")
        return configured
    return hmac.new(settings.auth.jwt_secret.encode(), _DERIVED_LABEL, hashlib.sha256).digest()


@dataclass(slots=True)
class IrtService:
    """What the HTTP handlers use (``request.app[SERVICES].flows["irt"]``)."""

    ctx: AppContext
    irt: IrtSettings
    repo: IrtRepository
    has_sync: bool

    def matcher(self) -> Handle:
        return self.ctx.handle(MATCHER_PATH)

    def sync(self) -> Handle:
        return self.ctx.handle(SYNC_PATH)


def build(ctx: AppContext) -> Flow:
    routes = (*user_routes(), *ops_routes())
    settings = ctx.settings
    if settings.paystar is None or settings.irt is None:
        return Flow(name="irt", routes=routes)
    irt = settings.irt
    secret = card_hash_secret(settings)
    owned: list[Any] = []
    paystar = ctx.overrides.get("paystar")
    if paystar is None:
        paystar = PaystarClient(settings.paystar)
        owned.append(paystar)
    source = ctx.overrides.get("statement_source")
    if source is None and irt.statement_url:
        source = HttpStatementSource(irt.statement_url, timeout_s=settings.paystar.timeout_s,
                                     retries_max=settings.paystar.retries_max)
        owned.append(source)
    page_max = int(ctx.overrides.get("statement_page_max", PAGE_MAX_DEFAULT))
    store = ctx.store

    children: list[Any] = [ChildSpec(name="payment-matcher", factory=lambda: PaymentMatcher(
        store=store, wallet=ctx.wallet, paystar=paystar, card_secret=secret))]
    if source is not None:
        children.append(ChildSpec(name="statement-sync", factory=lambda: StatementSync(
            store=store, source=source, matcher=lambda: ctx.handle(MATCHER_PATH),
            poll_interval_s=irt.statement_poll_interval_s, page_max=page_max)))
    service = IrtService(ctx=ctx, irt=irt, repo=IrtRepository(store), has_sync=source is not None)

    async def close() -> None:
        for client in owned:
            await client.close()

    async def status() -> dict[str, Any]:
        cursor = await service.repo.cursor(CURSOR_NAME) if service.has_sync else None
        # Counted up to one listing's bound: ops want "some" vs "none", the list has the rest.
        unmatched = len(await service.repo.unmatched(limit=LIST_LIMIT_MAX))
        return {"irt": {"statement_sync": service.has_sync, "statement_cursor": cursor,
                        "unmatched_lines": unmatched}}

    return Flow(name="irt", children={"payments": tuple(children)}, routes=routes,
                services={"irt": service}, status=status, close=close)
